//! Bad input gets a clear problem+json and changes nothing.

use meridian_platform::auth::Role;
use reqwest::{Method, StatusCode};

use crate::helpers::{TestApp, assert_problem};

#[tokio::test]
async fn malformed_wrong_type_oversized_and_unknown_are_problems() {
    let app = TestApp::spawn().await;
    let seller = app.user(Role::Seller).await;

    let response = app
        .request(Method::POST, "/products", Some(&seller.access_token))
        .header("content-type", "application/json")
        .body("{\"sku\": ")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );

    let response = app
        .request(Method::POST, "/products", Some(&seller.access_token))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = serde_json::json!({"sku": "BIG", "name": "x".repeat(100_000)});
    let (status, body) = app
        .call(
            Method::POST,
            "/products",
            Some(&seller.access_token),
            Some(huge),
        )
        .await;
    assert_problem(status, &body, StatusCode::PAYLOAD_TOO_LARGE);

    let (status, body) = app
        .call(
            Method::POST,
            "/products",
            Some(&seller.access_token),
            Some(serde_json::json!({"sku": 12, "name": "n", "price": "free"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);

    for path in [
        "/products/00000000-0000-7000-8000-000000000000",
        "/products/not-a-uuid",
        "/nowhere",
    ] {
        let (status, body) = app.call(Method::GET, path, None, None).await;
        assert_problem(status, &body, StatusCode::NOT_FOUND);
    }

    let (status, body) = app.call(Method::PATCH, "/products", None, None).await;
    assert_problem(status, &body, StatusCode::METHOD_NOT_ALLOWED);

    // Nothing was written by any of the above.
    let (_, page) = app.call(Method::GET, "/products", None, None).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn problems_leak_no_internals() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .call(
            Method::GET,
            "/products?cursor=%27%3B+DROP+TABLE+products%3B--",
            None,
            None,
        )
        .await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
    let text = body.to_string().to_lowercase();
    for leak in ["sqlx", "postgres", "select", "panicked", "src/"] {
        assert!(!text.contains(leak), "{leak} in {body}");
    }
}
