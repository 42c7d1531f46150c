//! What the edge answers itself: health endpoints and the refusal of `/metrics`.

use std::time::{Duration, Instant};

use crate::helpers::{EchoCore, EdgeConfig, TestDir, TestEdge};

#[tokio::test]
async fn health_endpoints_are_answered_without_the_core() {
    let core = EchoCore::start("core").await;
    let dir = TestDir::new();
    let edge = TestEdge::start(EdgeConfig::in_front_of(&core), dir.path()).await;
    let hits_before = core.hits();

    for (path, expected) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = edge.client.get(edge.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert!(response.headers().contains_key("x-request-id"), "{path}");
        assert_eq!(response.headers()["x-region"], "local", "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body, serde_json::json!({ "status": expected }));
    }
    assert_eq!(core.hits(), hits_before, "a health check reached the core");
}

#[tokio::test]
async fn readiness_follows_the_cores_health_probes() {
    let dead = crate::helpers::DEAD_ADDR;
    let dir = TestDir::new();
    let edge = TestEdge::start(
        EdgeConfig::with_upstreams(format!("local={dead}")),
        dir.path(),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = edge.client.get(edge.url("/readyz")).send().await.unwrap();
        if response.status() == 503 {
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed ready without a core"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let live = edge.client.get(edge.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status(), 200, "the process itself is alive");
}

#[tokio::test]
async fn metrics_is_refused_publicly_and_served_on_the_ops_port() {
    let core = EchoCore::start("core").await;
    let dir = TestDir::new();
    let edge = TestEdge::start(EdgeConfig::in_front_of(&core), dir.path()).await;
    let hits_before = core.hits();

    for path in ["/metrics", "/metrics/", "/metrics?format=json"] {
        let response = edge.client.get(edge.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        assert!(response.headers().contains_key("x-request-id"));
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["status"], 404);
        assert_eq!(problem["type"], "https://meridian.dev/problems/not-found");
    }
    assert_eq!(core.hits(), hits_before, "/metrics reached the core");

    // The refusals above are counted; the access hook runs just after the response is sent.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = edge.client.get(edge.ops_url("/metrics")).send().await;
        let scrape = response.unwrap().text().await.unwrap();
        let refused = scrape
            .lines()
            .find(|l| l.starts_with("meridian_edge_requests_total{status_class=\"4xx\"}"));
        if refused.is_some_and(|line| line.ends_with(" 3")) {
            assert!(scrape.contains("meridian_edge_request_duration_seconds_bucket"));
            break;
        }
        assert!(Instant::now() < deadline, "no 4xx count in:\n{scrape}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
