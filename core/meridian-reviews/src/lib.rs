//! The reviews service: one review per user and product, the products' ratings, and which
//! reviews are verified purchases.
//!
//! - [`store`]: the SQL; every write keeps the product's rating in the same transaction.
//! - [`text`]: review text is plain text (markup stripped on the way in).
//! - [`routes`]: `/products/{id}/reviews`, `/reviews/{id}` and `/reviews/{id}/hidden`.
//! - The purchase projection: a durable consumer of the orders stream
//!   (`meridian_jetstream::consumers::reviews_purchases`) records the lines of confirmed
//!   orders and forgets cancelled ones, in this service's own tables; nothing reads another
//!   service's schema.
//!
//! Invariant: a product's rating counts exactly its visible reviews.

pub mod routes;
pub mod store;
pub mod text;

use meridian_jetstream::{
    RawEnvelope, StreamKind,
    events::orders::{OrderCancelledV1, OrderConfirmedV1},
};
use meridian_platform::{Mounted, ServiceContext, consume::Failure};
use sqlx::PgPool;

/// The Postgres schema this service owns.
pub const SCHEMA: &str = "reviews";

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    meridian_platform::db::migrate(pool, SCHEMA, sqlx::migrate!("./migrations")).await
}

#[derive(Clone)]
pub struct ReviewsState {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub naming: meridian_jetstream::Naming,
}

pub async fn start(ctx: &ServiceContext, pool: PgPool) -> anyhow::Result<Mounted> {
    let projection = pool.clone();
    let purchases = tokio::spawn(meridian_platform::consume::run(
        ctx.jetstream.clone(),
        ctx.naming.clone(),
        StreamKind::Orders,
        meridian_jetstream::consumers::reviews_purchases(&ctx.naming),
        move |event, _delivered| {
            let pool = projection.clone();
            async move { project(&pool, event).await }
        },
        ctx.shutdown.clone(),
    ));
    let state = ReviewsState {
        pool,
        nats: ctx.nats.clone(),
        naming: ctx.naming.clone(),
    };
    Ok(Mounted {
        name: "reviews",
        router: routes::router(state),
        openapi: routes::openapi(),
        tasks: vec![purchases],
    })
}

/// Applies one order event to the purchase projection.
async fn project(pool: &PgPool, event: RawEnvelope) -> Result<(), Failure> {
    let retry = |error: sqlx::Error| Failure::Retry {
        delay: std::time::Duration::from_secs(1),
        cause: error.to_string(),
    };
    let mut tx = pool.begin().await.map_err(retry)?;
    if let Some(confirmed) = event.decode::<OrderConfirmedV1>() {
        let confirmed = confirmed.map_err(|e| Failure::Drop(e.to_string()))?;
        let products: Vec<uuid::Uuid> = confirmed.lines.iter().map(|l| l.product_id).collect();
        store::record_purchase(&mut tx, confirmed.order_id, confirmed.user_id, &products)
            .await
            .map_err(retry)?;
    } else if let Some(cancelled) = event.decode::<OrderCancelledV1>() {
        let cancelled = cancelled.map_err(|e| Failure::Drop(e.to_string()))?;
        store::record_cancellation(&mut tx, cancelled.order_id)
            .await
            .map_err(retry)?;
    }
    tx.commit().await.map_err(retry)
}
