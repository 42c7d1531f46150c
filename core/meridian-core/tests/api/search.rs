use std::time::Duration;

use meridian_jetstream::{Naming, StreamKind};
use meridian_platform::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    self, CoreProcess, TestApp, assert_problem, fast_user, isolated_settings, republish,
    wait_for_published,
};

/// Polls a search URL without a token.
async fn eventually(
    client: &reqwest::Client,
    url: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> (Value, Option<Duration>) {
    helpers::eventually(client, url, None, within, done).await
}

fn ids(body: &Value) -> Vec<String> {
    helpers::item_ids(body, "id")
}

#[tokio::test]
async fn a_new_product_is_found_misspelled_within_two_seconds_and_leaves_when_deleted() {
    let app = TestApp::spawn().await;
    let admin = fast_user(&app.pool("users").await, Role::Admin).await;
    let token = Some(admin.access_token.as_str());
    let (status, audio) = app
        .call(
            Method::POST,
            "/categories",
            token,
            Some(json!({"name": "Audio Gear"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{audio}");
    let mut body = json!({
        "sku": "HP-1", "name": "Wireless Headphones", "description": "Over-ear, noise cancelling",
        "price": {"amount": 12999, "currency": "USD"}, "category_id": audio["id"],
        "attributes": {"color": "midnight"}
    });
    let (status, product) = app
        .call(Method::POST, "/products", token, Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{product}");
    let id = product["id"].as_str().expect("id").to_owned();

    let (found, after) = eventually(
        &app.client,
        &app.url("/search?q=wirless%20headphnoes"),
        Duration::from_secs(2),
        |b| ids(b) == [id.clone()],
    )
    .await;
    assert!(after.is_some(), "not found within 2 s: {found}");
    assert_eq!(found["total"], 1);
    assert_eq!(
        found["items"][0]["price"],
        json!({"amount": 12999, "currency": "USD"})
    );
    assert_eq!(
        found["facets"]["category"],
        json!([{"id": audio["id"], "name": "Audio Gear", "count": 1}])
    );
    assert_eq!(
        found["facets"]["price"],
        json!([{"min": 10000, "max": 25000, "count": 1}])
    );

    // Filters, completions and the published facets see it too.
    let (_, none) = app
        .call(
            Method::GET,
            "/search?q=headphones&max_price=9999",
            None,
            None,
        )
        .await;
    assert_eq!(none["total"], 0, "{none}");
    let (_, suggested) = app
        .call(Method::GET, "/search/suggestions?q=wirel", None, None)
        .await;
    assert_eq!(suggested["suggestions"], json!(["Wireless Headphones"]));
    let (_, suggested) = app
        .call(Method::GET, "/search/suggestions?q=audio%20g", None, None)
        .await;
    assert_eq!(suggested["suggestions"], json!(["Audio Gear"]));
    let (status, filters) = app.call(Method::GET, "/search/filters", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(filters["facets"]["category"][0]["count"], 1, "{filters}");
    assert_eq!(
        filters["sorts"],
        json!(["relevance", "price_asc", "price_desc", "newest"])
    );

    // A rename is searchable within 2 s; the old name no longer finds it.
    body["name"] = json!("Studio Monitors");
    let (status, _) = app
        .call(Method::PUT, &format!("/products/{id}"), token, Some(body))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (renamed, after) = eventually(
        &app.client,
        &app.url("/search?q=studio%20monitor"),
        Duration::from_secs(2),
        |b| ids(b) == [id.clone()],
    )
    .await;
    assert!(
        after.is_some(),
        "rename not searchable within 2 s: {renamed}"
    );
    let (_, old) = app
        .call(Method::GET, "/search?q=headphones", None, None)
        .await;
    assert_eq!(old["total"], 0, "{old}");

    let (status, _) = app
        .call(Method::DELETE, &format!("/products/{id}"), token, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (gone, after) = eventually(
        &app.client,
        &app.url("/search?q=studio"),
        Duration::from_secs(2),
        |b| b["total"] == 0,
    )
    .await;
    assert!(after.is_some(), "still found 2 s after deletion: {gone}");
    assert_eq!(gone["facets"]["category"], json!([]));
}

#[tokio::test]
async fn stock_moves_a_product_in_and_out_of_the_in_stock_filter_within_two_seconds() {
    let app = TestApp::spawn().await;
    let admin = fast_user(&app.pool("users").await, Role::Admin).await;
    let token = Some(admin.access_token.as_str());
    let (status, product) = app
        .call(
            Method::POST,
            "/products",
            token,
            Some(
                json!({"sku": "KT-1", "name": "Copper Kettle", "description": "Hob kettle",
                "price": {"amount": 5900, "currency": "USD"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{product}");
    let id = product["id"].as_str().expect("id").to_owned();
    let in_stock = app.url("/search?q=kettle&in_stock=true");
    let out_of_stock = app.url("/search?q=kettle&in_stock=false");
    let only = |id: &str| {
        let id = id.to_owned();
        move |b: &Value| ids(b) == [id.clone()]
    };
    let none = |b: &Value| b["total"] == 0;

    // No stock anywhere yet: found, but not in stock.
    let (found, after) = eventually(
        &app.client,
        &out_of_stock,
        Duration::from_secs(2),
        only(&id),
    )
    .await;
    assert!(after.is_some(), "{found}");
    assert_eq!(found["items"][0]["in_stock"], false);
    let (body, _) = eventually(&app.client, &in_stock, Duration::from_secs(1), none).await;
    assert_eq!(body["total"], 0, "{body}");

    // Stocked: in stock within 2 s.
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/inventory/{id}"),
            token,
            Some(json!({"region": "local", "available": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (found, after) =
        eventually(&app.client, &in_stock, Duration::from_secs(2), only(&id)).await;
    assert!(after.is_some(), "not in stock within 2 s: {found}");
    assert_eq!(found["items"][0]["in_stock"], true);

    // Every unit held: out of stock; released: back.
    let response = app
        .request(Method::POST, "/inventory/reserve", token)
        .header("idempotency-key", "search-stock-1")
        .json(&json!({"items": [{"product_id": id, "quantity": 2}]}))
        .send()
        .await
        .expect("reserve");
    assert_eq!(response.status(), StatusCode::CREATED);
    let reservation: Value = response.json().await.expect("json");
    let (found, after) = eventually(
        &app.client,
        &out_of_stock,
        Duration::from_secs(2),
        only(&id),
    )
    .await;
    assert!(
        after.is_some(),
        "still in stock with every unit held: {found}"
    );
    let (status, _) = app
        .call(
            Method::POST,
            "/inventory/release",
            token,
            Some(json!({"reservation_id": reservation["reservation_id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (found, after) =
        eventually(&app.client, &in_stock, Duration::from_secs(2), only(&id)).await;
    assert!(after.is_some(), "not back in stock: {found}");

    // A rename keeps the stock state; a reindex from scratch gives the same answers.
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/products/{id}"),
            token,
            Some(
                json!({"sku": "KT-1", "name": "Copper Kettle Pro", "description": "Hob kettle",
                "price": {"amount": 5900, "currency": "USD"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (found, after) = eventually(&app.client, &in_stock, Duration::from_secs(2), |b| {
        b["items"][0]["name"] == "Copper Kettle Pro"
    })
    .await;
    assert!(after.is_some(), "{found}");
    let (status, _) = app.call(Method::POST, "/search/reindex", token, None).await;
    assert_eq!(status, StatusCode::OK);
    // (Scores aside: BM25 statistics count the replaced versions until segments merge.)
    let unscored = |mut body: Value| {
        for item in body["items"].as_array_mut().expect("items") {
            item.as_object_mut().expect("item").remove("score");
        }
        body
    };
    let (_, again) = app
        .call(Method::GET, "/search?q=kettle&in_stock=true", None, None)
        .await;
    assert_eq!(unscored(again), unscored(found));
    let (_, none) = app
        .call(Method::GET, "/search?q=kettle&in_stock=false", None, None)
        .await;
    assert_eq!(none["total"], 0, "{none}");
    let (status, body) = app
        .call(Method::GET, "/search?in_stock=maybe", None, None)
        .await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_search_parameters_are_refused_clearly() {
    let app = TestApp::spawn().await;
    let long = "x".repeat(201);
    for path in [
        "/search?sort=cheapest".to_owned(),
        format!("/search?q={long}"),
        "/search?min_price=-1".to_owned(),
        "/search?min_price=500&max_price=100".to_owned(),
        "/search?limit=0".to_owned(),
        format!("/search/suggestions?q={long}"),
    ] {
        let (status, body) = app.call(Method::GET, &path, None, None).await;
        assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["errors"].is_object(), "{path}: {body}");
    }
    for path in ["/search?cursor=not-a-cursor", "/search?min_price=cheap"] {
        let (status, body) = app.call(Method::GET, path, None, None).await;
        assert_problem(status, &body, StatusCode::BAD_REQUEST);
    }
    // A cursor only continues the search it came from.
    let admin = fast_user(&app.pool("users").await, Role::Admin).await;
    for n in 0..3 {
        let mut product = crate::helpers::product_body(&format!("PAGE-{n}"));
        product["name"] = json!(format!("Paged lamp {n}"));
        let (status, _) = app
            .call(
                Method::POST,
                "/products",
                Some(&admin.access_token),
                Some(product),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (first, _) = eventually(
        &app.client,
        &app.url("/search?q=lamp&limit=2"),
        Duration::from_secs(5),
        |b| b["total"] == 3,
    )
    .await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (status, second) = app
        .call(
            Method::GET,
            &format!("/search?q=lamp&limit=2&cursor={cursor}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&second).len(), 1);
    assert!(second["next_cursor"].is_null());
    assert!(!ids(&first).contains(&ids(&second)[0]));
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/search?q=paged&limit=2&cursor={cursor}"),
            None,
            None,
        )
        .await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST);

    // Reindexing is for admins.
    let buyer = fast_user(&app.pool("users").await, Role::Buyer).await;
    let (status, body) = app
        .call(
            Method::POST,
            "/search/reindex",
            Some(&buyer.access_token),
            None,
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
}

/// What a set of searches answers: hit ids in order, totals and facets.
async fn answers(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "/search?limit=100",
        "/search?q=lamp&limit=100",
        "/search?q=desk%20edition&limit=100",
        "/search?q=desk%20eddition&limit=100",
        "/search?q=lamp&sort=price_desc&limit=7",
        "/search?q=edition&sort=newest&limit=100",
        "/search?in_stock=true&limit=100",
        "/search?q=lamp&in_stock=false&limit=100",
        "/search/filters",
        "/search/suggestions?q=desk%20l",
    ] {
        let body: Value = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("search")
            .json()
            .await
            .expect("JSON");
        all.push(
            json!({"path": path, "ids": ids(&body), "total": body["total"],
            "facets": body["facets"], "suggestions": body["suggestions"]}),
        );
    }
    all
}

/// Waits until the search consumers (catalog and inventory) have nothing pending or
/// unacknowledged.
async fn drained(js: &async_nats::jetstream::Context, naming: &Naming) {
    let streams = [StreamKind::Catalog, StreamKind::Inventory];
    helpers::drained(js, naming, &streams, "search-", 2).await;
}

#[tokio::test]
async fn duplicated_events_and_a_killed_indexer_leave_the_index_as_a_clean_build_would() {
    let settings = isolated_settings().await;
    let naming = Naming::new(&settings.nats_prefix).expect("prefix");
    let nats = async_nats::connect(&settings.nats_url).await.expect("nats");
    let js = async_nats::jetstream::new(nats.clone());
    let client = reqwest::Client::new();
    let core = CoreProcess::start(&settings, &[]).await;
    let users = meridian_platform::db::connect(&settings.database_url, "users", 2)
        .await
        .expect("users pool");
    let admin = fast_user(&users, Role::Admin).await;

    // 40 products; then every third renamed, every fifth deleted, and a draft.
    let mut products = Vec::new();
    for n in 0..40 {
        let name = if n % 2 == 0 {
            format!("Desk lamp edition {n}")
        } else {
            format!("Floor fan edition {n}")
        };
        let product: Value = client
            .post(format!("{}/products", core.base))
            .bearer_auth(&admin.access_token)
            .json(&json!({"sku": format!("DUP-{n}"), "name": name,
                "price": {"amount": 1000 + n * 250, "currency": "USD"}}))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("product");
        products.push(product);
    }
    for (n, product) in products.iter().enumerate() {
        let url = format!(
            "{}/products/{}",
            core.base,
            product["id"].as_str().expect("id")
        );
        if n % 5 == 0 {
            let response = client
                .delete(&url)
                .bearer_auth(&admin.access_token)
                .send()
                .await
                .expect("delete");
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
        } else if n % 3 == 0 {
            let response = client
                .put(&url)
                .bearer_auth(&admin.access_token)
                .json(
                    &json!({"sku": product["sku"], "name": format!("Desk lamp remake {n}"),
                    "price": {"amount": 777, "currency": "USD"},
                    "status": if n == 9 { "draft" } else { "active" }}),
                )
                .send()
                .await
                .expect("update");
            assert_eq!(response.status(), StatusCode::OK);
        }
    }

    // Every fourth product still in the catalog stocked, every eighth sold out again.
    let stocked = |n: &usize| n.is_multiple_of(4) && !n.is_multiple_of(5);
    for (n, product) in products.iter().enumerate().filter(|(n, _)| stocked(n)) {
        let url = format!(
            "{}/inventory/{}",
            core.base,
            product["id"].as_str().expect("id")
        );
        for available in if n % 8 == 0 { &[5, 0][..] } else { &[5][..] } {
            let response = client
                .put(&url)
                .bearer_auth(&admin.access_token)
                .json(&json!({"region": "local", "available": available}))
                .send()
                .await
                .expect("stock");
            assert_eq!(response.status(), StatusCode::OK);
        }
    }

    // Every event again, as new messages (another Nats-Msg-Id, so the stream keeps both),
    // while the core is killed part-way through and started again.
    let catalog = js
        .get_stream(naming.stream_name(StreamKind::Catalog))
        .await
        .expect("stream");
    let inventory = js
        .get_stream(naming.stream_name(StreamKind::Inventory))
        .await
        .expect("stream");
    // The outbox relays publish shortly after each commit.
    let expected = 40 + 8 + 11;
    let originals = wait_for_published(&catalog, expected).await;
    assert_eq!(originals, expected, "one event per change");
    let stock_originals = wait_for_published(&inventory, 8 + 4).await;
    assert_eq!(stock_originals, 12, "one event per stock transition");
    let mut core = Some(core);
    for sequence in 1..=originals {
        republish(&js, &catalog, sequence).await;
        if sequence <= stock_originals {
            republish(&js, &inventory, sequence).await;
        }
        if sequence == originals / 2 {
            drop(core.take()); // SIGKILL, whatever it was doing
        }
    }
    let core = CoreProcess::start(&settings, &[]).await;
    drained(&js, &naming).await;
    let live: Vec<Value> = products
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 5 != 0 && *n != 9)
        .map(|(_, p)| p.clone())
        .collect();
    let (all, _) = eventually(
        &client,
        &format!("{}/search?limit=100", core.base),
        Duration::from_secs(5),
        |b| b["total"] == live.len(),
    )
    .await;
    assert_eq!(all["total"], live.len(), "{all}");
    let before = answers(&client, &core.base).await;
    assert_eq!(before[3]["ids"], before[2]["ids"], "one typo, same hits");
    assert_eq!(before[2]["total"], 11, "{}", before[2]);
    // In stock: the fourth products not sold out again (n % 8 == 4), live.
    assert_eq!(before[6]["total"], 4, "{}", before[6]);

    // A rebuild from the catalog answers every search the same way.
    let rebuilt: Value = client
        .post(format!("{}/search/reindex", core.base))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .expect("reindex")
        .json()
        .await
        .expect("JSON");
    assert_eq!(rebuilt["products"], live.len(), "{rebuilt}");
    let after = answers(&client, &core.base).await;
    assert_eq!(before, after);
}
