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
