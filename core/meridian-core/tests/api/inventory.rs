use meridian_platform::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, assert_problem, isolated_settings, product_body};

#[tokio::test]
async fn sellers_and_admins_set_stock_per_region() {
    let mut settings = isolated_settings().await;
    settings.regions = vec!["eu-west".into(), "local".into(), "us-east".into()];
    let app = TestApp::spawn_with(settings).await;
    let seller = app.user(Role::Seller).await;
    let rival = app.user(Role::Seller).await;
    let buyer = app.user(Role::Buyer).await;
    let admin = app.user(Role::Admin).await;
    let (_, product) = app
        .call(
            Method::POST,
            "/products",
            Some(&seller.access_token),
            Some(product_body("INV-1")),
        )
        .await;
    let path = format!("/inventory/{}", product["id"].as_str().expect("id"));

    // A new product has no stock yet, in any region.
    let (status, stock) = app.call(Method::GET, &path, None, None).await;
    assert_eq!(status, StatusCode::OK, "{stock}");
    assert_eq!(stock["available"], 0);
    assert_eq!(stock["regions"].as_array().map(Vec::len), Some(3));

    let (status, row) = app
        .call(
            Method::PUT,
            &path,
            Some(&seller.access_token),
            Some(json!({"region": "local", "available": 40})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{row}");
    let (status, _) = app
        .call(
            Method::PUT,
            &path,
            Some(&admin.access_token),
            Some(json!({"region": "eu-west", "available": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, stock) = app.call(Method::GET, &path, None, None).await;
    assert_eq!(stock["available"], 42);
    assert_eq!(
        stock["regions"],
        json!([
            {"region": "eu-west", "available": 2, "reserved": 0},
            {"region": "local", "available": 40, "reserved": 0},
            {"region": "us-east", "available": 0, "reserved": 0},
        ])
    );

    for (token, expected) in [
        (&rival.access_token, StatusCode::FORBIDDEN),
        (&buyer.access_token, StatusCode::FORBIDDEN),
    ] {
        let (status, body) = app
            .call(
                Method::PUT,
                &path,
                Some(token),
                Some(json!({"region": "local", "available": 0})),
            )
            .await;
        assert_problem(status, &body, expected);
    }
    for bad in [
        json!({"region": "mars", "available": 1}),
        json!({"region": "local", "available": -1}),
        json!({"region": "local", "available": 1_000_001}),
        json!({"region": "local", "available": 1.5}),
        json!({"region": "local", "available": "ten"}),
    ] {
        let (status, body) = app
            .call(
                Method::PUT,
                &path,
                Some(&admin.access_token),
                Some(bad.clone()),
            )
            .await;
        assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Nothing of the refused requests changed anything.
    let (_, after) = app.call(Method::GET, &path, None, None).await;
    assert_eq!(after, stock);
}

#[tokio::test]
async fn unknown_products_have_no_stock() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let path = "/inventory/0192f6a0-7b3c-7cc1-9d2e-1a2b3c4d5e6f";
    let (status, body) = app.call(Method::GET, path, None, None).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app
        .call(
            Method::PUT,
            path,
            Some(&admin.access_token),
            Some(json!({"region": "local", "available": 5})),
        )
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_demo_catalog_is_stocked_in_every_region() {
    let mut settings = isolated_settings().await;
    settings.regions = vec!["local".into(), "us-east".into()];
    let app = TestApp::spawn_with(settings).await;
    let admin = app.user(Role::Admin).await;
    let seeded = meridian_catalog::seed::seed_demo(&app.pool("catalog").await, "local", admin.id)
        .await
        .expect("seed catalog");
    let inventory = app.pool("inventory").await;
    let regions = app.settings.regions.clone();
    let created = meridian_inventory::seed::ensure_stock(&inventory, &seeded.product_ids, &regions)
        .await
        .expect("seed stock");
    assert_eq!(created, 480);
    let again = meridian_inventory::seed::ensure_stock(&inventory, &seeded.product_ids, &regions)
        .await
        .expect("seed stock");
    assert_eq!(again, 0);
    let (_, stock) = app
        .call(
            Method::GET,
            &format!("/inventory/{}", seeded.product_ids[0]),
            None,
            None,
        )
        .await;
    let regions = stock["regions"].as_array().expect("regions");
    assert_eq!(regions.len(), 2);
    assert!(
        regions
            .iter()
            .all(|r| r["available"].as_i64().unwrap_or(0) >= 5),
        "{stock}"
    );
}
