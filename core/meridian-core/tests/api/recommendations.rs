//! Recommendations from the real embedding model (`MERIDIAN_EMBED_MODEL_DIR`, installed by
//! `cargo xtask test`) and real order events.

use std::time::Duration;

use meridian_platform::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{self, TestApp, assert_problem};
use crate::orders::{buyer_with_cart, place};

const KITCHEN: &[(&str, &str)] = &[
    (
        "Stainless steel electric kettle",
        "Boils 1.7 litres of water in minutes",
    ),
    ("Ceramic teapot", "Brews loose-leaf tea for four"),
    ("Pour-over coffee dripper", "Makes one cup of filter coffee"),
    ("Cast iron frying pan", "Sears steaks and fries eggs"),
];
const FOOTWEAR: &[(&str, &str)] = &[
    (
        "Leather hiking boots",
        "Waterproof boots for mountain trails",
    ),
    ("Trail running shoes", "Light shoes with a grippy sole"),
    ("Summer sandals", "Open shoes for the beach"),
];

/// Creates the categories and products (stocked), returning (name, id, category) per product.
async fn shop(app: &TestApp, admin: &str) -> Vec<(String, String, String)> {
    let mut products = Vec::new();
    for (category, items) in [("Kitchen", KITCHEN), ("Footwear", FOOTWEAR)] {
        let (status, created) = app
            .call(
                Method::POST,
                "/categories",
                Some(admin),
                Some(json!({"name": category})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        for (n, (name, description)) in items.iter().enumerate() {
            let (status, product) = app
                .call(
                    Method::POST,
                    "/products",
                    Some(admin),
                    Some(json!({"sku": format!("{category}-{n}"), "name": name,
                        "description": description, "category_id": created["id"],
                        "price": {"amount": 2500, "currency": "USD"}})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{product}");
            let id = product["id"].as_str().expect("id").to_owned();
            let (status, _) = app
                .call(
                    Method::PUT,
                    &format!("/inventory/{id}"),
                    Some(admin),
                    Some(json!({"region": "local", "available": 10})),
                )
                .await;
            assert_eq!(status, StatusCode::OK);
            products.push(((*name).to_owned(), id, category.to_owned()));
        }
    }
    products
}

/// Polls `path` of the app.
async fn poll(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> (Value, Option<Duration>) {
    helpers::eventually(&app.client, &app.url(path), token, within, done).await
}

fn ids(body: &Value) -> Vec<String> {
    helpers::item_ids(body, "product_id")
}

#[tokio::test]
async fn a_product_is_recommended_its_category_neighbours_then_what_sold_with_it() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let products = shop(&app, &admin.access_token).await;
    let category_of = |id: &str| {
        products
            .iter()
            .find(|p| p.1 == id)
            .map(|p| p.2.clone())
            .unwrap_or_default()
    };
    let kettle = &products[0].1;
    let path = format!("/recommendations/product/{kettle}?limit=3");
    let (found, after) = poll(&app, &path, None, Duration::from_secs(30), |b| {
        ids(b).len() == 3
    })
    .await;
    assert!(after.is_some(), "no recommendations: {found}");
    assert_eq!(found["model"], "all-MiniLM-L6-v2");
    let recommended = ids(&found);
    assert!(!recommended.contains(kettle));
    assert!(
        recommended.iter().all(|id| category_of(id) == "Kitchen"),
        "{found}"
    );
    let scores: Vec<f64> = found["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["score"].as_f64().expect("score"))
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // Bought together twice with the kettle, the sandals (far from it in meaning) join its top 3.
    let sandals = &products[6].1;
    for n in 0..2 {
        let (buyer, address) = buyer_with_cart(&app, kettle, 1).await;
        let (status, body) = app
            .call(
                Method::POST,
                "/cart/items",
                Some(&buyer.access_token),
                Some(json!({"product_id": sandals, "quantity": 1})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, order) = place(&app, &buyer, &address, "tok_visa", &format!("rec-{n}")).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
    }
    assert!(!recommended.contains(sandals));
    let (found, after) = poll(&app, &path, None, Duration::from_secs(5), |b| {
        b["model"] == "all-MiniLM-L6-v2+co-purchase" && ids(b).contains(sandals)
    })
    .await;
    assert!(after.is_some(), "co-purchases not blended: {found}");

    // Clear errors.
    let (status, body) = app
        .call(
            Method::GET,
            "/recommendations/product/0190a000-0000-7000-8000-000000000000",
            None,
            None,
        )
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/recommendations/product/{kettle}?limit=0"),
            None,
            None,
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_users_recommendations_follow_their_confirmed_order_within_two_seconds() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let products = shop(&app, &admin.access_token).await;
    let boots = &products[4].1;
    // Every product embedded first.
    let path = format!("/recommendations/product/{boots}?limit=6");
    let (found, after) = poll(&app, &path, None, Duration::from_secs(30), |b| {
        ids(b).len() == 6
    })
    .await;
    assert!(after.is_some(), "{found}");

    let (buyer, address) = buyer_with_cart(&app, boots, 1).await;
    let mine = format!("/recommendations/user/{}?limit=2", buyer.id);
    let (status, before) = app
        .call(Method::GET, &mine, Some(&buyer.access_token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["model"], "popularity/local");
    let other = app.user(Role::Buyer).await;
    let (status, body) = app
        .call(Method::GET, &mine, Some(&other.access_token), None)
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);

    let (status, order) = place(&app, &buyer, &address, "tok_visa", "rec-user").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let (after_order, after) = poll(
        &app,
        &mine,
        Some(&buyer.access_token),
        Duration::from_secs(2),
        |b| b["model"] != "popularity/local",
    )
    .await;
    assert!(
        after.is_some(),
        "unchanged 2 s after the order: {after_order}"
    );
    let footwear: Vec<&String> = products
        .iter()
        .filter(|p| p.2 == "Footwear" && &p.1 != boots)
        .map(|p| &p.1)
        .collect();
    let recommended = ids(&after_order);
    assert!(!recommended.contains(boots), "{after_order}");
    assert!(
        recommended.iter().all(|id| footwear.contains(&id)),
        "{after_order}"
    );

    // Cancelled, the order no longer counts: no history, and nothing sold in the region.
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/orders/{}/cancel", order["id"].as_str().expect("id")),
            Some(&buyer.access_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (after_cancel, after) = poll(
        &app,
        &mine,
        Some(&buyer.access_token),
        Duration::from_secs(2),
        |b| b["model"] == "popularity/local" && ids(b).is_empty(),
    )
    .await;
    assert!(
        after.is_some(),
        "the cancelled order still counts: {after_cancel}"
    );
}

#[tokio::test]
async fn every_catalog_event_twice_in_a_burst_leaves_each_products_latest_embedding() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let products = shop(&app, &admin.access_token).await;
    let (kettle, teapot, sandals) = (&products[0].1, &products[1].1, &products[6].1);
    // The teapot becomes a draft (version 2), the sandals are deleted (version 2).
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/products/{teapot}"),
            Some(&admin.access_token),
            Some(
                json!({"sku": "Kitchen-1", "name": "Ceramic teapot", "status": "draft",
                "price": {"amount": 2500, "currency": "USD"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/products/{sandals}"),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Every catalog event again, as new messages, in one burst: the consumer takes them in
    // batches, each event's embedding computed beside others.
    let (naming, js) = helpers::jetstream(&app.settings).await;
    let catalog = js
        .get_stream(naming.stream_name(meridian_jetstream::StreamKind::Catalog))
        .await
        .expect("stream");
    let originals = helpers::wait_for_published(&catalog, products.len() as u64 + 2).await;
    for sequence in 1..=originals {
        helpers::republish(&js, &catalog, sequence).await;
    }
    helpers::drained(
        &js,
        &naming,
        &[meridian_jetstream::StreamKind::Catalog],
        "recommendations-catalog",
        1,
    )
    .await;

    let pool = app.pool("recommendations").await;
    let rows: Vec<(uuid::Uuid, i64, bool, Vec<f32>)> =
        sqlx::query_as("SELECT product_id, version, active, vector FROM embeddings")
            .fetch_all(&pool)
            .await
            .expect("embeddings");
    assert_eq!(rows.len(), products.len(), "one row per product");
    for (id, version, active, vector) in &rows {
        let id = id.to_string();
        let changed = id == *teapot || id == *sandals;
        assert_eq!(*version, if changed { 2 } else { 1 }, "{id}");
        assert_eq!(*active, !changed, "{id}");
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{id}: |v| = {norm}");
    }
    let path = format!("/recommendations/product/{kettle}?limit=10");
    let (found, after) = poll(&app, &path, None, Duration::from_secs(5), |b| {
        ids(b).len() == products.len() - 3
    })
    .await;
    assert!(after.is_some(), "{found}");
    let recommended = ids(&found);
    assert!(
        !recommended.contains(teapot) && !recommended.contains(sandals),
        "{found}"
    );
}
