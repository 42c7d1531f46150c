//! What the composition root hands a service, and what a service hands back.
//!
//! API boundary: a service crate exposes `SCHEMA`, `migrate(&PgPool)` and
//! `start(&ServiceContext, PgPool) -> Mounted`; the core binary needs nothing else to host it.

use async_nats::jetstream;
use meridian_jetstream::Naming;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{auth::TokenVerifier, outbox::Relay};

/// The shared connections and settings of one core process.
#[derive(Clone)]
pub struct ServiceContext {
    pub region: String,
    /// Every region of the deployment, this one included.
    pub regions: Vec<String>,
    pub naming: Naming,
    pub nats: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub redis: fred::clients::Pool,
    pub redis_prefix: String,
    pub verifier: TokenVerifier,
    /// Local state a service can rebuild (see `Settings::data_dir`).
    pub data_dir: std::path::PathBuf,
    pub shutdown: CancellationToken,
}

impl ServiceContext {
    /// The outbox relay of the service whose pool is `pool`.
    pub fn relay(&self, pool: PgPool, schema: &str) -> Relay {
        Relay {
            pool,
            schema: schema.to_owned(),
            jetstream: self.jetstream.clone(),
            naming: self.naming.clone(),
            batch_size: 256,
        }
    }

    /// Starts the outbox relay of a service as a background task.
    pub fn spawn_relay(&self, pool: PgPool, schema: &str) -> JoinHandle<()> {
        let relay = self.relay(pool, schema);
        tokio::spawn(relay.run(self.shutdown.clone()))
    }
}

/// A started service.
pub struct Mounted {
    pub name: &'static str,
    pub router: axum::Router,
    pub openapi: utoipa::openapi::OpenApi,
    /// Background work (outbox relay, NATS endpoints); ends when the context's shutdown fires.
    pub tasks: Vec<JoinHandle<()>>,
}
