//! Connects the shared dependencies, starts the chosen services and serves them.

use std::{future::Future, time::Duration};

use axum::{Extension, Router, routing::get};
use fred::{
    clients::Pool as RedisPool,
    interfaces::ClientLike,
    types::{
        Builder,
        config::{Config as RedisConfig, ReconnectPolicy},
    },
};
use meridian_jetstream::Naming;
use meridian_platform::{
    ServiceContext,
    auth::{JwksSource, TokenVerifier},
    ops::{self, Dependencies},
    settings::Settings,
};
use sqlx::PgPool;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::registry::{self, ServiceEntry};

/// The broker and cache connections one process shares between its services.
pub struct Connections {
    pub naming: Naming,
    pub nats: async_nats::Client,
    pub jetstream: async_nats::jetstream::Context,
    pub redis: RedisPool,
}

pub async fn connect(settings: &Settings) -> anyhow::Result<Connections> {
    let naming = Naming::new(&settings.nats_prefix).map_err(anyhow::Error::msg)?;
    let nats = async_nats::ConnectOptions::new()
        .name(format!("meridian-core/{}", settings.region))
        .connection_timeout(Duration::from_secs(5))
        .connect(&settings.nats_url)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to NATS: {e}"))?;
    let jetstream = async_nats::jetstream::new(nats.clone());
    let redis_config = RedisConfig::from_url(&settings.redis_url)
        .map_err(|e| anyhow::anyhow!("REDIS_URL is not a Redis URL: {e}"))?;
    let redis = Builder::from_config(redis_config)
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
        .with_connection_config(|c| c.connection_timeout = Duration::from_secs(5))
        .build_pool(4)
        .map_err(|e| anyhow::anyhow!("configuring Redis: {e}"))?;
    tokio::time::timeout(Duration::from_secs(10), redis.init())
        .await
        .map_err(|_| anyhow::anyhow!("connecting to Redis timed out"))?
        .map_err(|e| anyhow::anyhow!("connecting to Redis: {e}"))?;
    Ok(Connections {
        naming,
        nats,
        jetstream,
        redis,
    })
}

/// One pool per service, in the service's schema.
async fn pools(
    settings: &Settings,
    services: &[&'static ServiceEntry],
) -> anyhow::Result<Vec<(&'static ServiceEntry, PgPool)>> {
    let mut pools = Vec::with_capacity(services.len());
    for service in services {
        let pool = meridian_platform::db::connect(
            &settings.database_url,
            service.schema,
            settings.db_pool_size,
        )
        .await?;
        pools.push((*service, pool));
    }
    Ok(pools)
}

/// Applies the chosen services' migrations and declares the streams. Idempotent.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let services = registry::select(&settings.services)?;
    for (service, pool) in pools(settings, &services).await? {
        (service.migrate)(&pool).await?;
        pool.close().await;
    }
    let naming = Naming::new(&settings.nats_prefix).map_err(anyhow::Error::msg)?;
    let nats = async_nats::connect(&settings.nats_url)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to NATS: {e}"))?;
    meridian_jetstream::declare::declare_streams(&async_nats::jetstream::new(nats), &naming)
        .await?;
    Ok(())
}

/// A started core: its routers and background work.
pub struct Core {
    pub router: Router,
    pub ops_router: Router,
    pub shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    pools: Vec<PgPool>,
}

/// Connects, migrates and starts the services chosen by `settings`.
pub async fn build(settings: &Settings) -> anyhow::Result<Core> {
    let services = registry::select(&settings.services)?;
    let connections = connect(settings).await?;
    meridian_jetstream::declare::declare_streams(&connections.jetstream, &connections.naming)
        .await?;
    let shutdown = CancellationToken::new();
    let verifier = TokenVerifier::new(JwksSource::Nats {
        client: connections.nats.clone(),
        naming: connections.naming.clone(),
    });
    let ctx = ServiceContext {
        region: settings.region.clone(),
        regions: settings.regions.clone(),
        naming: connections.naming.clone(),
        nats: connections.nats.clone(),
        jetstream: connections.jetstream.clone(),
        redis: connections.redis.clone(),
        redis_prefix: settings.redis_prefix.clone(),
        verifier: verifier.clone(),
        data_dir: settings.data_dir.clone(),
        shutdown: shutdown.clone(),
    };
    let mut router = Router::new();
    let mut docs = Vec::new();
    let mut tasks = Vec::new();
    let mut deps_pools = Vec::new();
    let mut all_pools = Vec::new();
    for (service, pool) in pools(settings, &services).await? {
        (service.migrate)(&pool).await?;
        let mounted = (service.start)(&ctx, pool.clone()).await?;
        tracing::info!(service = mounted.name, "service started");
        router = router.merge(mounted.router);
        docs.push(mounted.openapi);
        tasks.extend(mounted.tasks);
        deps_pools.push((service.name, pool.clone()));
        all_pools.push(pool);
    }
    let deps = Dependencies {
        pools: deps_pools,
        redis: connections.redis.clone(),
        nats: connections.nats.clone(),
    };
    let document = crate::openapi::document(docs);
    let router = router
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { axum::Json(document) }
            }),
        )
        .merge(ops::probes(deps.clone()))
        .layer(Extension(verifier));
    let router = meridian_platform::http::layer(router, &settings.region);
    Ok(Core {
        router,
        ops_router: ops::router(deps),
        shutdown,
        tasks,
        pools: all_pools,
    })
}

impl Core {
    /// Serves until `signal` resolves, then drains requests and background work.
    pub async fn serve(
        self,
        listener: TcpListener,
        ops_listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shutdown = self.shutdown.clone();
        tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                signal.await;
                shutdown.cancel();
            }
        });
        let ops = tokio::spawn({
            let shutdown = shutdown.clone();
            let ops_router = self.ops_router.clone();
            async move {
                axum::serve(ops_listener, ops_router)
                    .with_graceful_shutdown(async move { shutdown.cancelled().await })
                    .await
            }
        });
        axum::serve(listener, self.router.clone())
            .with_graceful_shutdown({
                let shutdown = shutdown.clone();
                async move { shutdown.cancelled().await }
            })
            .await?;
        let _ = ops.await;
        let drained = tokio::time::timeout(
            Duration::from_secs(10),
            futures::future::join_all(self.tasks),
        )
        .await;
        if drained.is_err() {
            tracing::warn!("background tasks did not stop within 10 s");
        }
        for pool in self.pools {
            pool.close().await;
        }
        Ok(())
    }
}
