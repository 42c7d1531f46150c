//! The users service: accounts, sessions and the access-token issuer.
//!
//! - [`domain`]: parsed e-mails, names, passwords and addresses.
//! - [`passwords`]: Argon2id hashing behind a concurrency cap, with a breached-password list.
//! - [`keys`]: the Ed25519 signing keys, their rotation and the JWKS.
//! - [`sessions`]: refresh tokens: rotation, reuse detection, logout.
//! - [`store`]: the SQL, as plain functions.
//! - [`throttle`]: failed-login counting in Redis.
//! - [`routes`]: one file per action.
//!
//! Invariant: this crate imports no other service; other services learn the JWKS through the
//! `users.jwks` NATS contract and registrations through the users stream.

pub mod domain;
pub mod keys;
pub mod passwords;
pub mod routes;
pub mod seed;
pub mod sessions;
pub mod store;
pub mod throttle;

use std::sync::Arc;

use meridian_contracts::users::{
    ContactRequest, GetAddress, GetAddressRequest, GetContact, GetJwks, GetJwksRequest,
};
use meridian_platform::{Mounted, ServiceContext};
use sqlx::PgPool;

/// The Postgres schema this service owns.
pub const SCHEMA: &str = "users";

/// Applies this service's migrations and its outbox.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    meridian_platform::db::migrate(pool, SCHEMA, sqlx::migrate!("./migrations")).await?;
    meridian_platform::outbox::migrate(pool, SCHEMA).await
}

/// Everything a handler needs.
#[derive(Clone)]
pub struct UsersState {
    pub pool: PgPool,
    pub passwords: Arc<passwords::Hasher>,
    pub keys: keys::KeyRing,
    pub throttle: throttle::LoginThrottle,
    pub region: String,
}

/// Starts the service: key ring, JWKS endpoint on NATS, outbox relay, HTTP routes.
pub async fn start(ctx: &ServiceContext, pool: PgPool) -> anyhow::Result<Mounted> {
    let keys = keys::KeyRing::load_or_create(pool.clone()).await?;
    let mut tasks = vec![
        keys.spawn_reload(ctx.shutdown.clone()),
        ctx.spawn_relay(pool.clone(), SCHEMA),
    ];
    let jwks_keys = keys.clone();
    tasks.push(
        meridian_platform::rpc::serve::<GetJwks, _, _>(
            ctx.nats.clone(),
            &ctx.naming,
            "users",
            move |_: GetJwksRequest| {
                let keys = jwks_keys.clone();
                async move { Ok(keys.jwks()) }
            },
            ctx.shutdown.clone(),
        )
        .await?,
    );
    let addresses = pool.clone();
    tasks.push(
        meridian_platform::rpc::serve::<GetAddress, _, _>(
            ctx.nats.clone(),
            &ctx.naming,
            "users",
            move |request: GetAddressRequest| {
                let pool = addresses.clone();
                async move { store::address_snapshot(&pool, &request).await }
            },
            ctx.shutdown.clone(),
        )
        .await?,
    );
    let contacts = pool.clone();
    tasks.push(
        meridian_platform::rpc::serve::<GetContact, _, _>(
            ctx.nats.clone(),
            &ctx.naming,
            "users",
            move |request: ContactRequest| {
                let pool = contacts.clone();
                async move { store::contact(&pool, request.user_id).await }
            },
            ctx.shutdown.clone(),
        )
        .await?,
    );
    let state = UsersState {
        pool,
        passwords: Arc::new(passwords::Hasher::new(passwords::default_concurrency())),
        keys,
        throttle: throttle::LoginThrottle::new(ctx.redis.clone(), &ctx.redis_prefix),
        region: ctx.region.clone(),
    };
    Ok(Mounted {
        name: "users",
        router: routes::router(state),
        openapi: routes::openapi(),
        tasks,
    })
}
