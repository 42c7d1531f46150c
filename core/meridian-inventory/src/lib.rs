//! The inventory service: stock per product and region.
//!
//! - [`store`]: the SQL of stock levels.
//! - [`reservations`]: holding stock all-or-nothing, releasing, confirming, expiring; each
//!   hold and release is an event (outbox) in the same transaction.
//! - [`rpc`]: the `inventory.reserve` and `inventory.settle` contracts for the order saga.
//! - [`routes`]: one file per action.
//! - [`seed`]: stock for the dev profile's demo catalog.
//!
//! Invariant: each region owns and sells its own quota; `available` and `reserved` can never
//! be negative (CHECK constraints, whatever the interleaving). Redis is never the source of
//! truth for stock.

pub mod reservations;
pub mod routes;
pub mod rpc;
pub mod seed;
pub mod store;

use meridian_platform::{Mounted, ServiceContext};
use sqlx::PgPool;

/// The Postgres schema this service owns.
pub const SCHEMA: &str = "inventory";

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    meridian_platform::db::migrate(pool, SCHEMA, sqlx::migrate!("./migrations")).await?;
    meridian_platform::outbox::migrate(pool, SCHEMA).await?;
    meridian_platform::idempotency::migrate(pool, SCHEMA).await
}

#[derive(Clone)]
pub struct InventoryState {
    pub pool: PgPool,
    /// The region this process serves: reservations default to its stock.
    pub region: String,
    /// The regions whose quotas may be set (`MERIDIAN_REGIONS`).
    pub regions: Vec<String>,
    pub nats: async_nats::Client,
    pub naming: meridian_jetstream::Naming,
}

pub async fn start(ctx: &ServiceContext, pool: PgPool) -> anyhow::Result<Mounted> {
    let mut tasks = vec![
        reservations::spawn_sweeper(
            pool.clone(),
            std::time::Duration::from_secs(1),
            ctx.shutdown.clone(),
        ),
        ctx.spawn_relay(pool.clone(), SCHEMA),
    ];
    tasks.extend(rpc::serve(ctx, pool.clone()).await?);
    let state = InventoryState {
        pool,
        region: ctx.region.clone(),
        regions: ctx.regions.clone(),
        nats: ctx.nats.clone(),
        naming: ctx.naming.clone(),
    };
    Ok(Mounted {
        name: "inventory",
        router: routes::router(state),
        openapi: routes::openapi(),
        tasks,
    })
}
