//! Requests forwarded to the core: forwarding headers, request ids, upstream choice.

use crate::helpers::{DEAD_ADDR, Echo, EchoCore, EdgeConfig, TestDir, TestEdge, forged_forwarding};

/// Sends a request the core must answer; returns the id the client got back and the echo.
async fn forwarded(request: reqwest::RequestBuilder) -> (String, Echo) {
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    (id, response.json().await.unwrap())
}

#[tokio::test]
async fn forwarding_headers_are_overwritten_and_reserved_ones_stripped() {
    let core = EchoCore::start("core").await;
    let dir = TestDir::new();
    let edge = TestEdge::start(EdgeConfig::in_front_of(&core), dir.path()).await;

    let request = edge
        .client
        .get(edge.url("/api/products?page=2"))
        .headers(forged_forwarding())
        .header("X-Meridian-Roles", "root")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("accept-language", "fr");
    let (_, seen) = forwarded(request).await;

    assert_eq!(seen.path, "/api/products?page=2");
    assert_eq!(seen.header("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.header("x-real-ip"), ["127.0.0.1"]);
    assert_eq!(seen.header("x-forwarded-proto"), ["http"]);
    assert_eq!(seen.header("x-forwarded-host"), ["shop.example"]);
    assert_eq!(seen.header("accept-language"), ["fr"]);
    assert!(seen.header("proxy-authorization").is_empty());
    let reserved: Vec<_> = seen
        .header_names()
        .filter(|n| n.starts_with("x-meridian-"))
        .collect();
    assert!(reserved.is_empty(), "forwarded {reserved:?}");
}

#[tokio::test]
async fn sane_request_ids_are_kept_and_others_replaced() {
    let core = EchoCore::start("core").await;
    let dir = TestDir::new();
    let edge = TestEdge::start(EdgeConfig::in_front_of(&core), dir.path()).await;

    let sane = "client-42:a.b_c";
    let request = edge.client.get(edge.url("/")).header("x-request-id", sane);
    let (returned, seen) = forwarded(request).await;
    assert_eq!(seen.header("x-request-id"), [sane]);
    assert_eq!(returned, sane);

    let too_long = "a".repeat(500);
    for insane in [too_long.as_str(), "has spaces in it", "semi;colon"] {
        let request = edge
            .client
            .get(edge.url("/"))
            .header("x-request-id", insane);
        let (returned, seen) = forwarded(request).await;
        assert_generated(&returned, insane);
        assert_eq!(seen.header("x-request-id"), [returned.as_str()]);
    }

    let (returned, seen) = forwarded(edge.client.get(edge.url("/"))).await;
    assert_generated(&returned, "");
    assert_eq!(seen.header("x-request-id"), [returned.as_str()]);
}

fn assert_generated(id: &str, sent: &str) {
    let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|_| panic!("{id:?} is not a UUID"));
    assert_eq!(uuid.get_version_num(), 7, "{id}");
    assert_ne!(id, sent);
}

#[tokio::test]
async fn requests_rotate_over_the_home_cores_and_skip_a_dead_one() {
    let (a, b) = (EchoCore::start("a").await, EchoCore::start("b").await);
    let dead = DEAD_ADDR;
    let upstreams = format!("local={}|{dead}|{},eu=10.255.255.1:80", a.addr, b.addr);
    let dir = TestDir::new();
    let edge = TestEdge::start(EdgeConfig::with_upstreams(upstreams), dir.path()).await;

    let mut served_by = Vec::new();
    for _ in 0..6 {
        let (_, seen) = forwarded(edge.client.get(edge.url("/cart"))).await;
        served_by.push(seen.core);
    }
    assert!(served_by.contains(&"a".to_owned()), "{served_by:?}");
    assert!(served_by.contains(&"b".to_owned()), "{served_by:?}");
}

#[tokio::test]
async fn a_dead_home_region_fails_over_to_another_region() {
    let us = EchoCore::start("us").await;
    let dead = DEAD_ADDR;
    let upstreams = format!("local={dead},us={}", us.addr);
    let dir = TestDir::new();
    let edge = TestEdge::start(EdgeConfig::with_upstreams(upstreams), dir.path()).await;

    // At once (the refused connection moves on), and after the probes took the home core out.
    for _ in 0..3 {
        let (_, seen) = forwarded(edge.client.get(edge.url("/products"))).await;
        assert_eq!(seen.core, "us");
    }
    let post = edge
        .client
        .post(edge.url("/cart/items"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        post.status(),
        200,
        "a refused connection is safe to retry for any method"
    );
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let hits = us.hits();
    let (_, seen) = forwarded(edge.client.get(edge.url("/products"))).await;
    assert_eq!(seen.core, "us");
    assert_eq!(us.hits(), hits + 1);
}
