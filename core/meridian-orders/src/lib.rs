//! The orders service: checkout as a saga, and the orders it leaves behind.
//!
//! - [`store`]: orders, their lines and status history, as plain SQL functions.
//! - [`saga`]: the checkout saga (reserve → charge → confirm → clear the cart, with
//!   compensation), recorded at checkpoints and resumed after a crash.
//! - [`routes`]: one file per action.
//!
//! Invariant: every remote effect of the saga is requested with a key derived from the order
//! id and the step, and every service answering it is idempotent by that key; progress is
//! recorded by guarded checkpoints, and a resumed order replays the steps since its last one.
//! So a crash between any two instructions neither repeats an effect nor loses one.

pub mod routes;
pub mod saga;
pub mod store;

use meridian_platform::{Mounted, ServiceContext};
use sqlx::PgPool;

/// The Postgres schema this service owns.
pub const SCHEMA: &str = "orders";

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    meridian_platform::db::migrate(pool, SCHEMA, sqlx::migrate!("./migrations")).await?;
    meridian_platform::outbox::migrate(pool, SCHEMA).await?;
    meridian_platform::idempotency::migrate(pool, SCHEMA).await
}

#[derive(Clone)]
pub struct OrdersState {
    pub pool: PgPool,
    pub region: String,
    pub saga: saga::Saga,
    pub nats: async_nats::Client,
    pub naming: meridian_jetstream::Naming,
    /// Checkouts this process runs at once; the rest queue for a slot. Under a flash sale,
    /// hundreds of sagas at once would only slow every step past its timeouts.
    pub checkout_slots: std::sync::Arc<tokio::sync::Semaphore>,
}

/// How many checkouts one process runs at once.
pub const CHECKOUT_SLOTS: usize = 16;

pub async fn start(ctx: &ServiceContext, pool: PgPool) -> anyhow::Result<Mounted> {
    let saga = saga::Saga {
        pool: pool.clone(),
        nats: ctx.nats.clone(),
        naming: ctx.naming.clone(),
        region: ctx.region.clone(),
    };
    let tasks = vec![
        ctx.spawn_relay(pool.clone(), SCHEMA),
        saga.clone().spawn_resumer(ctx.shutdown.clone()),
    ];
    let state = OrdersState {
        pool,
        region: ctx.region.clone(),
        saga,
        nats: ctx.nats.clone(),
        naming: ctx.naming.clone(),
        checkout_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(CHECKOUT_SLOTS)),
    };
    Ok(Mounted {
        name: "orders",
        router: routes::router(state),
        openapi: routes::openapi(),
        tasks,
    })
}
