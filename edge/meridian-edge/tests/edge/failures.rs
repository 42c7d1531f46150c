//! Errors the edge produces itself, and configurations it refuses to start with.

use crate::helpers::{
    DEAD_ADDR, EdgeConfig, TestDir, TestEdge, edge_command, free_port, free_ports, run_to_exit,
};

#[tokio::test]
async fn a_dead_core_is_a_503_problem_without_internal_details() {
    let dir = TestDir::new();
    let config = EdgeConfig::with_upstreams(format!("local={DEAD_ADDR}"));
    let edge = TestEdge::start(config, dir.path()).await;

    let response = edge
        .client
        .post(edge.url("/api/orders"))
        .header("x-request-id", "order-attempt-1")
        .body("{}")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 503);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["x-request-id"], "order-attempt-1");
    let body = response.text().await.unwrap();
    assert!(!body.contains("127.0.0.1"), "leaks the address: {body}");
    let problem: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&body).unwrap();
    let mut fields: Vec<&str> = problem.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["detail", "request_id", "status", "title", "type"]);
    assert_eq!(problem["request_id"], "order-attempt-1");
    assert_eq!(problem["status"], 503);
    assert_eq!(problem["title"], "Service Unavailable");
}

#[test]
fn bad_configuration_exits_with_code_2_and_names_the_variable() {
    let dir = TestDir::new();
    let cases = [
        ("MERIDIAN_EDGE_UPSTREAMS", "local"),
        ("MERIDIAN_REGION", "eu"),
        ("MERIDIAN_EDGE_HTTP_ADDR", "localhost"),
        ("MERIDIAN_EDGE_TLS_CERT", "/nonexistent/cert.pem"),
        ("MERIDIAN_EDGE_RATE_CLIENT", "fast"),
        ("MERIDIAN_EDGE_RATE_LIMITS", "maybe"),
        ("MERIDIAN_EDGE_TRUSTED_HOPS", "-1"),
        ("MERIDIAN_EDGE_JWKS_URL", "ftp://keys"),
        ("MERIDIAN_EDGE_REDIS_URL", "127.0.0.1:6379"),
    ];
    for (variable, value) in cases {
        let mut command = edge_command(dir.path());
        // Free ports, so only the variable under test can be at fault.
        for (listener, port) in ["HTTP", "HTTPS", "OPS"].into_iter().zip(free_ports::<3>()) {
            command.env(
                format!("MERIDIAN_EDGE_{listener}_ADDR"),
                format!("127.0.0.1:{port}"),
            );
        }
        command.env(variable, value);
        if variable == "MERIDIAN_EDGE_TLS_CERT" {
            command.env("MERIDIAN_EDGE_TLS_KEY", "/nonexistent/key.pem");
        }
        let output = run_to_exit(command);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{variable}={value}: {stderr}"
        );
        let named = if variable == "MERIDIAN_EDGE_TLS_CERT" {
            value
        } else {
            variable
        };
        assert!(stderr.contains(named), "{variable}={value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_port_in_use_exits_with_code_2_and_names_the_address() {
    let dir = TestDir::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut command = edge_command(dir.path());
    command
        .env(
            "MERIDIAN_EDGE_HTTP_ADDR",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("MERIDIAN_EDGE_HTTPS_ADDR", "")
        .env("MERIDIAN_EDGE_OPS_ADDR", &addr);

    let output = run_to_exit(command);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
}
