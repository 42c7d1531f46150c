use reqwest::StatusCode;

use crate::helpers::TestApp;

#[tokio::test]
async fn probes_metrics_openapi_and_response_headers() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    // Every response names its region and a request id; a sane incoming id is kept.
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "client-id-1")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["x-region"], "local");
    assert_eq!(response.headers()["x-request-id"], "client-id-1");
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .expect("sent");
    assert_ne!(response.headers()["x-request-id"], "bad id with spaces");

    let metrics = app
        .client
        .get(format!("http://{}/metrics", app.ops_addr))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    let response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let document: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert!(
        document["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.1")
    );
    insta::assert_json_snapshot!("openapi", document);
}
