//! The response cache (`MERIDIAN_EDGE_CACHE=on`) against the real binary, following catalog
//! events on the real NATS JetStream (`NATS_URL`, as `cargo xtask test` exports it).

use std::time::{Duration, Instant};

use meridian_jetstream::Naming;

use crate::helpers::{EchoCore, EdgeConfig, TestDir, TestEdge};

/// An edge with its cache on, in front of `core`, following the catalog stream of a fresh
/// prefix (declared here); returns once it follows.
async fn cached_edge(
    core: &EchoCore,
    dir: &TestDir,
    rate_limits: bool,
) -> (TestEdge, Naming, async_nats::jetstream::Context) {
    let nats_url =
        std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:14222".to_owned());
    let prefix = format!("e{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let naming = Naming::new(&prefix).unwrap();
    let client = async_nats::connect(&nats_url)
        .await
        .expect("NATS with JetStream (run through cargo xtask test)");
    let jetstream = async_nats::jetstream::new(client);
    meridian_jetstream::declare::declare_streams(&jetstream, &naming)
        .await
        .unwrap();
    let mut config = EdgeConfig::in_front_of(core)
        .with_env("MERIDIAN_EDGE_CACHE", "on")
        .with_env("NATS_URL", &nats_url)
        .with_env("MERIDIAN_NATS_PREFIX", &prefix);
    if !rate_limits {
        config = config.with_env("MERIDIAN_EDGE_RATE_LIMITS", "off");
    }
    let edge = TestEdge::start(config, dir.path()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !edge.log_text().contains("following catalog events") {
        assert!(
            Instant::now() < deadline,
            "the edge never followed the catalog stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (edge, naming, jetstream)
}

fn cache_state(response: &reqwest::Response) -> String {
    response.headers()["x-cache"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_thousand_concurrent_misses_make_one_upstream_request() {
    let core = EchoCore::start_cacheable("core").await;
    let dir = TestDir::new();
    let (edge, _, _) = cached_edge(&core, &dir, false).await;
    let requests = (0..1000).map(|_| {
        let request = edge.client.get(edge.url("/products/42?b=2&a=1"));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            cache_state(&response)
        }
    });
    let states = futures::future::join_all(requests).await;
    assert_eq!(core.hits(), 1, "the misses were not collapsed");
    assert_eq!(
        states.iter().filter(|s| *s == "MISS").count(),
        1,
        "{states:?}"
    );

    // Same query in another order: the same entry. Another path: its own.
    let again = edge
        .client
        .get(edge.url("/products/42?a=1&b=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(cache_state(&again), "HIT");
    let other = edge
        .client
        .get(edge.url("/products/43"))
        .send()
        .await
        .unwrap();
    assert_eq!(cache_state(&other), "MISS");
    assert_eq!(core.hits(), 2);
}

#[tokio::test]
async fn signed_in_and_uncacheable_requests_bypass_the_cache() {
    let core = EchoCore::start_cacheable("core").await;
    let dir = TestDir::new();
    let (edge, _, _) = cached_edge(&core, &dir, true).await;
    for _ in 0..2 {
        let cart = edge.client.get(edge.url("/cart")).send().await.unwrap();
        assert!(!cart.headers().contains_key("x-cache"));
        let cookie = edge
            .client
            .get(edge.url("/products/7"))
            .header("cookie", "session=1")
            .send()
            .await
            .unwrap();
        assert!(!cookie.headers().contains_key("x-cache"));
    }
    assert_eq!(
        core.hits(),
        4,
        "a private request was answered from the cache"
    );
}

#[tokio::test]
async fn a_catalog_event_purges_the_cache_within_a_second() {
    let core = EchoCore::start_cacheable("core").await;
    let dir = TestDir::new();
    let (edge, naming, jetstream) = cached_edge(&core, &dir, true).await;
    let get = || edge.client.get(edge.url("/products/42")).send();
    assert_eq!(cache_state(&get().await.unwrap()), "MISS");
    assert_eq!(cache_state(&get().await.unwrap()), "HIT");

    // The product changes: within a second, reads go to the core again.
    jetstream
        .publish(
            naming.event_subject("catalog.product_updated.v1"),
            r#"{"type":"catalog.product_updated.v1"}"#.into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let changed = Instant::now();
    while cache_state(&get().await.unwrap()) != "MISS" {
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "still cached a second after the change"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(core.hits(), 2);
}
