//! The search service: a tantivy index of the products for sale in this region, fed by a
//! durable JetStream consumer of the catalog's events.
//!
//! - [`index`]: the schema, the analyzers, and the writer that applies a product's changes only
//!   when they are newer than what the index holds.
//! - [`query`]: full-text search (BM25, name boost, one typo on long words), filters, exact
//!   facet counts, sorts; name completion.
//! - [`indexer`]: index generations, each with its own consumer; building one from the catalog,
//!   applying events in committed batches, reindexing.
//! - [`categories`]: category names, over `catalog.categories`.
//! - [`routes`]: `/search`, `/search/suggestions`, `/search/filters`, `/search/reindex`.
//!
//! Invariant: the service reads the catalog only through its events and its contracts; the
//! index is a projection that can be deleted and rebuilt at any time.

pub mod categories;
pub mod index;
pub mod indexer;
pub mod query;
pub mod routes;

use std::sync::Arc;

use meridian_platform::{Mounted, ServiceContext};
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::{
    categories::Categories,
    indexer::{Engine, Indexer, ReindexReply},
};

/// The Postgres schema this service owns (it keeps nothing there: its state is the index).
pub const SCHEMA: &str = "search";

pub async fn migrate(_pool: &PgPool) -> anyhow::Result<()> {
    Ok(())
}

#[derive(Clone)]
pub struct SearchState {
    pub engine: Arc<Engine>,
    pub categories: Arc<Categories>,
    pub reindex: mpsc::Sender<ReindexReply>,
}

pub async fn start(ctx: &ServiceContext, _pool: PgPool) -> anyhow::Result<Mounted> {
    let engine = Arc::new(Engine::default());
    let categories = Arc::new(Categories::new(ctx.nats.clone(), ctx.naming.clone()));
    let (reindex, requests) = mpsc::channel(4);
    let indexer = Indexer {
        nats: ctx.nats.clone(),
        jetstream: ctx.jetstream.clone(),
        naming: ctx.naming.clone(),
        root: ctx
            .data_dir
            .join("search")
            .join(ctx.naming.prefix())
            .join(&ctx.region),
        region: ctx.region.clone(),
        engine: engine.clone(),
        categories: categories.clone(),
        reindex: requests,
        shutdown: ctx.shutdown.clone(),
    };
    let tasks = vec![tokio::spawn(indexer.run())];
    let state = SearchState {
        engine,
        categories,
        reindex,
    };
    Ok(Mounted {
        name: "search",
        router: routes::router(state),
        openapi: routes::openapi(),
        tasks,
    })
}

#[cfg(test)]
mod tests;
