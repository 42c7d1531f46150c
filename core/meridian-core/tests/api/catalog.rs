use std::collections::HashSet;

use meridian_platform::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, assert_problem, product_body};

#[tokio::test]
async fn categories_form_a_tree_that_only_admins_grow() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let seller = app.user(Role::Seller).await;
    let (status, home) = app
        .call(
            Method::POST,
            "/categories",
            Some(&admin.access_token),
            Some(json!({"name": "Home & Garden"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{home}");
    assert_eq!(home["slug"], "home-garden");
    let (status, lamps) = app
        .call(
            Method::POST,
            "/categories",
            Some(&admin.access_token),
            Some(json!({"name": "Lamps", "parent_id": home["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lamps}");

    let (status, tree) = app.call(Method::GET, "/categories", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tree[0]["name"], "Home & Garden");
    assert_eq!(tree[0]["children"][0]["id"], lamps["id"]);

    let (status, body) = app
        .call(
            Method::POST,
            "/categories",
            Some(&admin.access_token),
            Some(json!({"name": "Home garden", "slug": "home-garden"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let (status, body) = app
        .call(
            Method::POST,
            "/categories",
            Some(&admin.access_token),
            Some(json!({"name": "Orphan", "parent_id": "0192f6a0-7b3c-7cc1-9d2e-1a2b3c4d5e6f"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app
        .call(
            Method::POST,
            "/categories",
            Some(&seller.access_token),
            Some(json!({"name": "Mine"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_seller_manages_its_products_with_conditional_requests() {
    let app = TestApp::spawn().await;
    let seller = app.user(Role::Seller).await;
    let rival = app.user(Role::Seller).await;
    let buyer = app.user(Role::Buyer).await;

    let response = app
        .request(Method::POST, "/products", Some(&seller.access_token))
        .json(&product_body("MUG-1"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let etag = response.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_owned();
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let product: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        location,
        format!("/products/{}", product["id"].as_str().expect("id"))
    );
    assert_eq!(product["seller_id"], seller.id.to_string());
    assert_eq!(product["version"], 1);
    assert_eq!(product["status"], "active");

    // GET carries the ETag and Cache-Control; If-None-Match answers 304.
    let response = app
        .request(Method::GET, &location, None)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], etag.as_str());
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .expect("cc")
            .contains("public")
    );
    let response = app
        .request(Method::GET, &location, None)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);

    // Only the seller (or an admin) may change it; others get 403, guests 401.
    let mut changed = product_body("MUG-1");
    changed["name"] = json!("Big Mug");
    let (status, body) = app
        .call(
            Method::PUT,
            &location,
            Some(&rival.access_token),
            Some(changed.clone()),
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(
            Method::POST,
            "/products",
            Some(&buyer.access_token),
            Some(product_body("B-1")),
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(Method::POST, "/products", None, Some(product_body("G-1")))
        .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);

    // A matching If-Match updates and bumps the version; the stale one then gets 412.
    let response = app
        .request(Method::PUT, &location, Some(&seller.access_token))
        .header("if-match", &etag)
        .json(&changed)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let new_etag = response.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_owned();
    assert_ne!(new_etag, etag);
    let updated: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        (updated["name"].as_str(), updated["version"].as_i64()),
        (Some("Big Mug"), Some(2))
    );
    let response = app
        .request(Method::PUT, &location, Some(&seller.access_token))
        .header("if-match", &etag)
        .json(&changed)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);

    let (status, body) = app
        .call(Method::DELETE, &location, Some(&rival.access_token), None)
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(Method::DELETE, &location, Some(&seller.access_token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.call(Method::GET, &location, None, None).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    // The SKU of a deleted product can be used again.
    let (status, _) = app
        .call(
            Method::POST,
            "/products",
            Some(&seller.access_token),
            Some(product_body("MUG-1")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn invalid_products_and_duplicate_skus_are_refused() {
    let app = TestApp::spawn().await;
    let seller = app.user(Role::Seller).await;
    app.call(
        Method::POST,
        "/products",
        Some(&seller.access_token),
        Some(product_body("DUP")),
    )
    .await;
    let (status, body) = app
        .call(
            Method::POST,
            "/products",
            Some(&seller.access_token),
            Some(product_body("DUP")),
        )
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT);

    let mut bad = product_body("BAD");
    bad["price"] = json!({"amount": -1, "currency": "usd"});
    bad["category_id"] = json!("0192f6a0-7b3c-7cc1-9d2e-1a2b3c4d5e6f");
    let (status, body) = app
        .call(
            Method::POST,
            "/products",
            Some(&seller.access_token),
            Some(bad),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["price"].is_string(), "{body}");
    let mut fractional = product_body("FRAC");
    fractional["price"] = json!({"amount": 19.99, "currency": "USD"});
    let (status, body) = app
        .call(
            Method::POST,
            "/products",
            Some(&seller.access_token),
            Some(fractional),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn drafts_are_visible_to_their_seller_only() {
    let app = TestApp::spawn().await;
    let seller = app.user(Role::Seller).await;
    let mut draft = product_body("DRAFT-1");
    draft["status"] = json!("draft");
    let (_, product) = app
        .call(
            Method::POST,
            "/products",
            Some(&seller.access_token),
            Some(draft),
        )
        .await;
    let path = format!("/products/{}", product["id"].as_str().expect("id"));
    let (status, _) = app.call(Method::GET, &path, None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(Method::GET, &path, Some(&seller.access_token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, public) = app.call(Method::GET, "/products", None, None).await;
    assert_eq!(public["items"].as_array().map(Vec::len), Some(0));
    let own = format!("/products?seller_id={}", seller.id);
    let (_, mine) = app
        .call(Method::GET, &own, Some(&seller.access_token), None)
        .await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn listings_page_with_opaque_cursors_and_cap_the_limit() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin).await;
    let pool = app.pool("catalog").await;
    let seeded = meridian_catalog::seed::seed_demo(&pool, "local", admin.id)
        .await
        .expect("seed");
    assert_eq!((seeded.categories, seeded.products), (12, 240));

    let (_, capped) = app
        .call(Method::GET, "/products?limit=1000", None, None)
        .await;
    assert_eq!(capped["items"].as_array().map(Vec::len), Some(100));
    let (status, body) = app.call(Method::GET, "/products?limit=0", None, None).await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);

    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/products?limit=35&cursor={c}"),
            None => "/products?limit=35".to_owned(),
        };
        let (status, page) = app.call(Method::GET, &path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for item in page["items"].as_array().expect("items") {
            assert!(
                seen.insert(item["id"].as_str().expect("id").to_owned()),
                "duplicate"
            );
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 240);

    let (_, tree) = app.call(Method::GET, "/categories", None, None).await;
    let kitchen = tree
        .as_array()
        .expect("tree")
        .iter()
        .find(|c| c["slug"] == "kitchen")
        .expect("kitchen");
    let path = format!(
        "/products?limit=100&category_id={}",
        kitchen["id"].as_str().expect("id")
    );
    let (_, page) = app.call(Method::GET, &path, None, None).await;
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 20);
    assert!(items.iter().all(|p| p["category_id"] == kitchen["id"]));
    // A second seeding adds nothing.
    let again = meridian_catalog::seed::seed_demo(&pool, "local", admin.id)
        .await
        .expect("seed");
    assert_eq!((again.categories, again.products), (0, 0));
}
