//! Liveness, readiness and metrics: `/healthz`, `/readyz` on every port, `/metrics` only on the
//! ops port, which the edge never forwards to.

use std::time::Duration;

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use serde_json::json;
use sqlx::PgPool;

/// What readiness depends on.
#[derive(Clone)]
pub struct Dependencies {
    pub pools: Vec<(&'static str, PgPool)>,
    pub redis: fred::clients::Pool,
    pub nats: async_nats::Client,
}

impl Dependencies {
    /// Checks every dependency, each within a second; names those that failed.
    pub async fn check(&self) -> Vec<String> {
        use fred::interfaces::ClientLike;
        let within = Duration::from_secs(1);
        let mut failed = Vec::new();
        for (service, pool) in &self.pools {
            let ok = tokio::time::timeout(within, sqlx::query("SELECT 1").execute(pool)).await;
            if !matches!(ok, Ok(Ok(_))) {
                failed.push(format!("postgres ({service})"));
            }
        }
        let ping = tokio::time::timeout(within, self.redis.ping::<String>(None)).await;
        if !matches!(ping, Ok(Ok(_))) {
            failed.push("redis".to_owned());
        }
        if self.nats.connection_state() != async_nats::connection::State::Connected {
            failed.push("nats".to_owned());
        }
        failed
    }
}

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(deps): State<Dependencies>) -> impl IntoResponse {
    let failed = deps.check().await;
    if failed.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response()
    } else {
        // Names the kind of dependency only; no addresses or errors.
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(http::header::RETRY_AFTER, "1")],
            Json(json!({ "status": "unavailable", "failing": failed })),
        )
            .into_response()
    }
}

/// `/healthz` and `/readyz`, for the public port.
pub fn probes(deps: Dependencies) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(deps)
}

/// The ops port: the probes plus `/metrics`.
pub fn router(deps: Dependencies) -> Router {
    let handle = crate::telemetry::metrics_handle();
    probes(deps).route("/metrics", get(move || async move { handle.render() }))
}
