//! Rate limits against the real binary: spoofed forwarding headers buy nothing, and refusals
//! say when to come back.

use std::time::Instant;

use crate::helpers::{EchoCore, EdgeConfig, TestDir, TestEdge};

const BURST: u32 = 5;

/// Sends `count` GETs, each with its own made-up `X-Forwarded-For` (`left` + a number) in
/// front of `right`; returns how many passed, how many were refused, and the elapsed seconds.
async fn flood(edge: &TestEdge, count: u32, right: &str) -> (u32, u32, f64) {
    let started = Instant::now();
    let (mut passed, mut refused) = (0, 0);
    for n in 0..count {
        let spoofed = format!("198.51.100.{}, 2001:db8:{n:x}::1{right}", n % 250);
        let response = edge
            .client
            .get(edge.url("/products"))
            .header("x-forwarded-for", spoofed)
            .header("x-real-ip", format!("203.0.113.{}", n % 250))
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => {
                passed += 1;
                assert_eq!(
                    response.headers()["ratelimit-limit"],
                    BURST.to_string().as_str()
                );
            }
            429 => {
                refused += 1;
                let headers = response.headers();
                assert_eq!(headers["content-type"], "application/problem+json");
                let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=2).contains(&retry), "Retry-After {retry}");
                assert_eq!(headers["ratelimit-remaining"], "0");
                assert!(headers.contains_key("ratelimit-reset"));
                assert!(headers.contains_key("x-request-id"));
            }
            other => panic!("unexpected status {other}"),
        }
    }
    (passed, refused, started.elapsed().as_secs_f64())
}

/// At most the burst plus what the rate refilled while the flood ran (and one for rounding).
fn allowance(elapsed_s: f64) -> u32 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let refilled = elapsed_s.ceil() as u32;
    BURST + refilled
}

#[tokio::test]
async fn rotating_spoofed_forwarded_for_gains_nothing() {
    let core = EchoCore::start("core").await;
    let dir = TestDir::new();
    let quota = format!("1:{BURST}");
    let edge = TestEdge::start(
        EdgeConfig::in_front_of(&core).with_env("MERIDIAN_EDGE_RATE_CLIENT", &quota),
        dir.path(),
    )
    .await;
    let (passed, refused, elapsed) = flood(&edge, 40, "").await;
    assert!(passed >= BURST, "the burst was not granted: {passed}");
    assert!(
        passed <= allowance(elapsed),
        "{passed} passed in {elapsed:.2} s"
    );
    assert_eq!(passed + refused, 40);
}

#[tokio::test]
async fn behind_a_trusted_proxy_only_the_entry_it_wrote_counts() {
    let core = EchoCore::start("core").await;
    let dir = TestDir::new();
    let quota = format!("1:{BURST}");
    let edge = TestEdge::start(
        EdgeConfig::in_front_of(&core)
            .with_env("MERIDIAN_EDGE_RATE_CLIENT", &quota)
            .with_env("MERIDIAN_EDGE_TRUSTED_HOPS", "1"),
        dir.path(),
    )
    .await;
    // The trusted proxy appended the client it saw; what the client wrote before that varies.
    let (passed, _, elapsed) = flood(&edge, 30, ", 192.0.2.44").await;
    assert!(
        passed >= BURST && passed <= allowance(elapsed),
        "{passed} passed"
    );
    // Another client behind the same proxy has its own allowance.
    let (others, _, _) = flood(&edge, 3, ", 192.0.2.45").await;
    assert_eq!(others, 3);
}

/// Redis for the shared budget: `REDIS_URL`, or the local server.
fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

#[tokio::test]
async fn edge_nodes_sharing_redis_share_one_budget() {
    let core = EchoCore::start("core").await;
    let dir = TestDir::new();
    let prefix = format!("meridian-edge-test-{}", uuid::Uuid::new_v4().simple());
    let quota = format!("1:{BURST}");
    let config = || {
        EdgeConfig::in_front_of(&core)
            .with_env("MERIDIAN_EDGE_RATE_CLIENT", &quota)
            .with_env("MERIDIAN_EDGE_REDIS_URL", &redis_url())
            .with_env("MERIDIAN_EDGE_REDIS_PREFIX", &prefix)
    };
    let first = TestEdge::start(config(), dir.path()).await;
    let second = TestEdge::start(config(), dir.path()).await;

    // Each node alone would let BURST through; together they still let only BURST through.
    let started = Instant::now();
    let mut passed = 0;
    for n in 0..20 {
        let edge = if n % 2 == 0 { &first } else { &second };
        let response = edge.client.get(edge.url("/products")).send().await.unwrap();
        if response.status() == 200 {
            passed += 1;
        } else {
            assert_eq!(response.status(), 429);
            assert!(response.headers().contains_key("retry-after"));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert!(passed >= BURST, "{passed} passed");
    assert!(
        passed <= allowance(elapsed),
        "{passed} passed in {elapsed:.2} s"
    );
}

#[tokio::test]
async fn an_unreachable_redis_leaves_the_local_limits_in_charge() {
    let core = EchoCore::start("core").await;
    let dir = TestDir::new();
    let dead = format!("redis://{}", crate::helpers::DEAD_ADDR);
    let edge = TestEdge::start(
        EdgeConfig::in_front_of(&core)
            .with_env("MERIDIAN_EDGE_RATE_CLIENT", &format!("1:{BURST}"))
            .with_env("MERIDIAN_EDGE_REDIS_URL", &dead),
        dir.path(),
    )
    .await;
    let (passed, refused, elapsed) = flood(&edge, 10, "").await;
    assert!(
        passed >= BURST && passed <= allowance(elapsed),
        "{passed} passed"
    );
    assert_eq!(passed + refused, 10);
}
