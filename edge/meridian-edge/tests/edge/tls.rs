//! HTTPS with the generated development certificate.

use base64::Engine;
use reqwest::Version;

use crate::helpers::{Echo, EchoCore, EdgeConfig, TestDir, TestEdge};

/// The DER bytes of the first certificate in a PEM file.
fn pem_to_der(pem: &str) -> Vec<u8> {
    let base64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(base64)
        .unwrap()
}

/// Sends one request over HTTPS and returns the certificate the edge presented.
async fn https_request(edge: &TestEdge, client: &reqwest::Client, version: Version) -> Vec<u8> {
    let response = client.get(edge.https_url("/account")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), version);
    let tls = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .unwrap();
    let served = tls.peer_certificate().unwrap().to_vec();
    let seen: Echo = response.json().await.unwrap();
    assert_eq!(seen.header("x-forwarded-proto"), ["https"]);
    assert_eq!(seen.header("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.header("x-forwarded-host").len(), 1);
    served
}

#[tokio::test]
async fn https_serves_the_dev_certificate_over_h1_and_h2_and_reuses_it_on_restart() {
    let core = EchoCore::start("core").await;
    let dir = TestDir::new();
    let tls_dir = dir.path().join("tls");
    let config = || EdgeConfig::in_front_of(&core).with_tls_dir(&tls_dir);
    let http1_only = reqwest::Client::builder()
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .http1_only()
        .build()
        .unwrap();

    let edge = TestEdge::start(config(), dir.path()).await;
    let pem = std::fs::read_to_string(tls_dir.join("dev-cert.pem")).unwrap();
    let on_disk = pem_to_der(&pem);
    assert_eq!(
        https_request(&edge, &edge.client, Version::HTTP_2).await,
        on_disk
    );
    assert_eq!(
        https_request(&edge, &http1_only, Version::HTTP_11).await,
        on_disk
    );
    drop(edge);

    let restarted = TestEdge::start(config(), dir.path()).await;
    let pem_after_restart = std::fs::read_to_string(tls_dir.join("dev-cert.pem")).unwrap();
    assert_eq!(pem_after_restart, pem, "the certificate was regenerated");
    let served = https_request(&restarted, &restarted.client, Version::HTTP_2).await;
    assert_eq!(served, on_disk);
}

#[tokio::test]
async fn plain_http_can_be_redirected_to_https() {
    let core = EchoCore::start("core").await;
    let dir = TestDir::new();
    let certs = dir.path().join("redirect-tls");
    let edge = TestEdge::start(
        EdgeConfig::in_front_of(&core)
            .with_tls_dir(&certs)
            .with_env("MERIDIAN_EDGE_HTTPS_REDIRECT", "on"),
        dir.path(),
    )
    .await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let moved = no_redirects
        .post(edge.url("/cart/items?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 308);
    let https_port = edge.https.expect("https").port();
    assert_eq!(
        moved.headers()["location"],
        format!("https://127.0.0.1:{https_port}/cart/items?x=1").as_str()
    );

    // Probes stay on plain HTTP; HTTPS is served.
    let health = no_redirects.get(edge.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let secure = edge
        .client
        .get(edge.https_url("/products"))
        .send()
        .await
        .unwrap();
    assert_eq!(secure.status(), 200);
    let seen: Echo = secure.json().await.unwrap();
    assert_eq!(seen.header("x-forwarded-proto"), ["https"]);
}
