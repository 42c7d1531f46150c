//! The recommendation worker: product embeddings computed in process (meridian-embed, on the
//! catalog's events) and purchase statistics (on confirmed orders), and the recommendation API.
//!
//! - [`worker`]: the two durable consumers (`recommendations-catalog`,
//!   `recommendations-orders`), shared by the replicas.
//! - [`vectors`]: the embeddings in memory, searched exactly.
//! - [`recommend`]: content similarity blended with co-purchases; best sellers as a fallback.
//! - [`routes`]: `GET /recommendations/product/{id}`, `GET /recommendations/user/{id}`.
//!
//! Invariant: an embedding is replaced only by one of a newer product version (in Postgres by
//! a conditional upsert, in memory likewise), and an order adds to the statistics once and is
//! taken back once when cancelled (its row in `counted_orders`, in the same transaction, under
//! the order's advisory lock), so redeliveries and reordering change nothing.
//!
//! The model comes from `MERIDIAN_EMBED_MODEL_DIR` (`cargo xtask` installs it); a process loads
//! it once, however many times the service starts in it.

pub mod recommend;
pub mod routes;
pub mod synthetic;
pub mod vectors;
pub mod worker;

#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

use meridian_embed::Embedder;
use meridian_jetstream::StreamKind;
use meridian_platform::{Mounted, ServiceContext};
use sqlx::PgPool;

use crate::{vectors::Vectors, worker::Worker};

/// The Postgres schema this service owns.
pub const SCHEMA: &str = "recommendations";

/// The model answers name.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    meridian_platform::db::migrate(pool, SCHEMA, sqlx::migrate!("./migrations")).await
}

#[derive(Clone)]
pub struct RecommendationsState {
    pub pool: PgPool,
    pub vectors: Arc<Vectors>,
    /// The embedding model's name.
    pub model: String,
    pub region: String,
}

/// The model in `dir`, loaded once per process.
async fn embedder(dir: &Path) -> anyhow::Result<Arc<Embedder>> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Arc<Embedder>>>> = OnceLock::new();
    let loaded = LOADED.get_or_init(Default::default);
    if let Some(embedder) = loaded.lock().unwrap_or_else(|e| e.into_inner()).get(dir) {
        return Ok(embedder.clone());
    }
    let path = dir.to_owned();
    let embedder = tokio::task::spawn_blocking(move || {
        let device = meridian_embed::default_device()?;
        Embedder::load(&path, MODEL_NAME, &device)
    })
    .await??;
    let embedder = Arc::new(embedder);
    loaded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(dir.to_owned(), embedder.clone());
    Ok(embedder)
}

pub async fn start(ctx: &ServiceContext, pool: PgPool) -> anyhow::Result<Mounted> {
    let dir = std::env::var_os("MERIDIAN_EMBED_MODEL_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "MERIDIAN_EMBED_MODEL_DIR must name the all-MiniLM-L6-v2 directory \
             (`cargo xtask up` installs it)"
            )
        })?;
    let embedder = embedder(&dir)
        .await
        .map_err(|e| anyhow::anyhow!("loading the embedding model from {}: {e}", dir.display()))?;
    let vectors = Arc::new(Vectors::new(embedder.dimension()));
    let worker = Worker {
        pool: pool.clone(),
        nats: ctx.nats.clone(),
        naming: ctx.naming.clone(),
        embedder: embedder.clone(),
        vectors: vectors.clone(),
        categories: Default::default(),
    };
    let loaded = worker.load().await?;
    tracing::info!(embeddings = loaded, "recommendations: embeddings loaded");
    let catalog = {
        let worker = worker.clone();
        tokio::spawn(meridian_platform::consume::run_batched(
            ctx.jetstream.clone(),
            ctx.naming.clone(),
            StreamKind::Catalog,
            meridian_jetstream::consumers::recommendations_catalog(&ctx.naming),
            worker::EMBED_BATCH,
            move |events: Vec<(meridian_jetstream::RawEnvelope, i64)>| {
                let worker = worker.clone();
                let events = events.into_iter().map(|(event, _)| event).collect();
                async move { worker.catalog_events(events).await }
            },
            ctx.shutdown.clone(),
        ))
    };
    let orders = tokio::spawn(meridian_platform::consume::run(
        ctx.jetstream.clone(),
        ctx.naming.clone(),
        StreamKind::Orders,
        meridian_jetstream::consumers::recommendations_orders(&ctx.naming),
        move |event, _| {
            let worker = worker.clone();
            async move { worker.order_event(event).await }
        },
        ctx.shutdown.clone(),
    ));
    let state = RecommendationsState {
        pool,
        vectors,
        model: embedder.name().to_owned(),
        region: ctx.region.clone(),
    };
    Ok(Mounted {
        name: "recommendations",
        router: routes::router(state),
        openapi: routes::openapi(),
        tasks: vec![catalog, orders],
    })
}
