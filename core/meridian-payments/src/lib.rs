//! The payments service: charges and refunds behind a provider trait.
//!
//! - [`provider`]: the [`provider::Provider`] trait, the built-in `test` provider and Stripe.
//! - [`domain`]: charge input, parsed and bounded; keys and request fingerprints.
//! - [`store`]: the SQL, as plain functions.
//! - [`charges`] and [`refunds`]: claim the key, ask the provider, settle once.
//! - [`routes`]: one file per action. [`internal`]: the NATS contracts of the order saga.
//! - `stripe_fake` (feature `fake-stripe`): a local Stripe for tests.
//!
//! Invariant: a payment row exists, `pending`, before the provider is asked, under a unique
//! key that goes to the provider with every call; so one key charges once whatever the
//! concurrency, and an unknown outcome (outage, timeout) is looked up under that key, never
//! recorded as a failure. Every settlement enqueues its event in the same transaction.

pub mod charges;
pub mod domain;
pub mod internal;
pub mod provider;
pub mod refunds;
pub mod routes;
pub mod store;
#[cfg(feature = "fake-stripe")]
pub mod stripe_fake;

use std::{sync::Arc, time::Duration};

use meridian_contracts::payments::{Charge, ChargeRequest, Refund, RefundRequest};
use meridian_platform::{Mounted, ServiceContext, rpc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::provider::Provider;

/// The Postgres schema this service owns.
pub const SCHEMA: &str = "payments";

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    meridian_platform::db::migrate(pool, SCHEMA, sqlx::migrate!("./migrations")).await?;
    meridian_platform::outbox::migrate(pool, SCHEMA).await?;
    meridian_platform::idempotency::migrate(pool, SCHEMA).await
}

#[derive(Clone)]
pub struct PaymentsState {
    pub pool: PgPool,
    pub region: String,
    pub provider: Arc<dyn Provider>,
}

/// Starts the service with the provider chosen by the environment
/// (`MERIDIAN_PAYMENTS_PROVIDER`, see [`provider::from_env`]).
pub async fn start(ctx: &ServiceContext, pool: PgPool) -> anyhow::Result<Mounted> {
    let provider = provider::from_env(|name| std::env::var(name).ok())?;
    start_with(ctx, pool, provider).await
}

/// Starts the service: outbox relay, NATS contracts, HTTP routes.
pub async fn start_with(
    ctx: &ServiceContext,
    pool: PgPool,
    provider: Arc<dyn Provider>,
) -> anyhow::Result<Mounted> {
    tracing::info!(provider = provider.name(), "payments provider chosen");
    let state = PaymentsState {
        pool: pool.clone(),
        region: ctx.region.clone(),
        provider,
    };
    let mut tasks = vec![
        ctx.spawn_relay(pool.clone(), SCHEMA),
        spawn_purger(pool, ctx.shutdown.clone()),
    ];
    let charging = state.clone();
    tasks.push(
        rpc::serve::<Charge, _, _>(
            ctx.nats.clone(),
            &ctx.naming,
            "payments",
            move |request: ChargeRequest| {
                let state = charging.clone();
                async move { internal::charge(&state, request).await }
            },
            ctx.shutdown.clone(),
        )
        .await?,
    );
    let refunding = state.clone();
    tasks.push(
        rpc::serve::<Refund, _, _>(
            ctx.nats.clone(),
            &ctx.naming,
            "payments",
            move |request: RefundRequest| {
                let state = refunding.clone();
                async move { internal::refund(&state, request).await }
            },
            ctx.shutdown.clone(),
        )
        .await?,
    );
    Ok(Mounted {
        name: "payments",
        router: routes::router(state),
        openapi: routes::openapi(),
        tasks,
    })
}

/// Deletes HTTP idempotency keys past their retention, hourly, until `shutdown` fires.
fn spawn_purger(pool: PgPool, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    const EVERY: Duration = Duration::from_secs(3600);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(EVERY) => {}
            }
            match meridian_platform::idempotency::purge_expired(&pool).await {
                Ok(purged) => tracing::debug!(purged, "old idempotency keys purged"),
                Err(error) => tracing::warn!(%error, "purging idempotency keys failed"),
            }
        }
    })
}
