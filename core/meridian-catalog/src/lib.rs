//! The catalog service: products and categories.
//!
//! - [`domain`]: product and category input, parsed and bounded.
//! - [`store`]: the SQL, as plain functions; every product write enqueues its event in the
//!   same transaction (the outbox), so the stream never misses or invents a change.
//! - [`routes`]: one file per action.
//! - [`seed`]: the dev profile's demo catalog.
//!
//! Invariant: a product's `version` grows by one with every write, including its deletion; its
//! ETag is derived from it, and its events carry it.

pub mod domain;
pub mod routes;
pub mod seed;
pub mod store;

use meridian_contracts::catalog::{
    GetProductSummary, ListCategories, ListProductSnapshots, ProductSummaryRequest,
    SnapshotPageRequest,
};
use meridian_platform::{Mounted, ServiceContext};
use sqlx::PgPool;

/// The Postgres schema this service owns.
pub const SCHEMA: &str = "catalog";

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    meridian_platform::db::migrate(pool, SCHEMA, sqlx::migrate!("./migrations")).await?;
    meridian_platform::outbox::migrate(pool, SCHEMA).await
}

#[derive(Clone)]
pub struct CatalogState {
    pub pool: PgPool,
    pub region: String,
}

pub async fn start(ctx: &ServiceContext, pool: PgPool) -> anyhow::Result<Mounted> {
    let mut tasks = vec![ctx.spawn_relay(pool.clone(), SCHEMA)];
    let summaries = pool.clone();
    tasks.push(
        meridian_platform::rpc::serve::<GetProductSummary, _, _>(
            ctx.nats.clone(),
            &ctx.naming,
            "catalog",
            move |request: ProductSummaryRequest| {
                let pool = summaries.clone();
                async move { store::summary(&pool, &request.product_id).await }
            },
            ctx.shutdown.clone(),
        )
        .await?,
    );
    let snapshots = pool.clone();
    tasks.push(
        meridian_platform::rpc::serve::<ListProductSnapshots, _, _>(
            ctx.nats.clone(),
            &ctx.naming,
            "catalog",
            move |request: SnapshotPageRequest| {
                let pool = snapshots.clone();
                async move { store::snapshot_page(&pool, &request).await }
            },
            ctx.shutdown.clone(),
        )
        .await?,
    );
    let categories = pool.clone();
    tasks.push(
        meridian_platform::rpc::serve::<ListCategories, _, _>(
            ctx.nats.clone(),
            &ctx.naming,
            "catalog",
            move |()| {
                let pool = categories.clone();
                async move { store::category_infos(&pool).await }
            },
            ctx.shutdown.clone(),
        )
        .await?,
    );
    let state = CatalogState {
        pool,
        region: ctx.region.clone(),
    };
    Ok(Mounted {
        name: "catalog",
        router: routes::router(state),
        openapi: routes::openapi(),
        tasks,
    })
}
