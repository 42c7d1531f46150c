use std::time::Duration;

use meridian_platform::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, fast_user, product_body};
use crate::orders::{buyer_with_cart, place, stocked_product};

async fn reviews(app: &TestApp, product: &str) -> Value {
    let (status, page) = app
        .call(
            Method::GET,
            &format!("/products/{product}/reviews"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

#[tokio::test]
async fn one_review_per_buyer_plain_text_and_a_rating_that_follows_every_change() {
    let app = TestApp::spawn().await;
    let users = app.pool("users").await;
    let admin = fast_user(&users, Role::Admin).await;
    let (ana, bo) = (
        fast_user(&users, Role::Buyer).await,
        fast_user(&users, Role::Buyer).await,
    );
    let (status, product) = app
        .call(
            Method::POST,
            "/products",
            Some(&admin.access_token),
            Some(product_body("REV-1")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let product = product["id"].as_str().expect("id").to_owned();
    let path = format!("/products/{product}/reviews");

    let (status, body) = app
        .call(
            Method::POST,
            &path,
            None,
            Some(json!({"rating": 5, "title": "x"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .call(
            Method::POST,
            &path,
            Some(&ana.access_token),
            Some(json!({"rating": 6, "title": "<b></b>", "body": "x".repeat(5001)})),
        )
        .await;
    assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["errors"]
            .as_object()
            .expect("errors")
            .keys()
            .collect::<Vec<_>>(),
        ["body", "rating", "title"]
    );

    let (status, first) = app
        .call(
            Method::POST,
            &path,
            Some(&ana.access_token),
            Some(json!({"rating": 5, "title": "<b>Great</b>", "body": "Works<script>alert(1)</script> well"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["title"], "Great");
    assert_eq!(first["body"], "Worksalert(1) well");
    assert_eq!(first["verified_purchase"], false);
    let (status, body) = app
        .call(
            Method::POST,
            &path,
            Some(&ana.access_token),
            Some(json!({"rating": 1, "title": "Again"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT);
    let (status, second) = app
        .call(
            Method::POST,
            &path,
            Some(&bo.access_token),
            Some(json!({"rating": 2, "title": "Meh"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let page = reviews(&app, &product).await;
    assert_eq!(page["rating"], json!({"average": 3.5, "count": 2}));
    assert_eq!(page["items"][0]["id"], second["id"], "newest first");

    // Only the author edits; the rating follows.
    let first_path = format!("/reviews/{}", first["id"].as_str().expect("id"));
    let (status, body) = app
        .call(
            Method::PUT,
            &first_path,
            Some(&bo.access_token),
            Some(json!({"rating": 1, "title": "Mine now"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, edited) = app
        .call(
            Method::PUT,
            &first_path,
            Some(&ana.access_token),
            Some(json!({"rating": 4, "title": "Good"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(
        reviews(&app, &product).await["rating"],
        json!({"average": 3.0, "count": 2})
    );

    // An admin hides a review: off the page and out of the rating; shown again, back in.
    let second_path = format!("/reviews/{}", second["id"].as_str().expect("id"));
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("{second_path}/hidden"),
            Some(&ana.access_token),
            Some(json!({"hidden": true})),
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    for (hidden, expected) in [
        (true, json!({"average": 4.0, "count": 1})),
        (true, json!({"average": 4.0, "count": 1})),
        (false, json!({"average": 3.0, "count": 2})),
    ] {
        let (status, body) = app
            .call(
                Method::PUT,
                &format!("{second_path}/hidden"),
                Some(&admin.access_token),
                Some(json!({"hidden": hidden})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = reviews(&app, &product).await;
        assert_eq!(page["rating"], expected);
        assert_eq!(
            page["items"].as_array().expect("items").len() as i64,
            expected["count"].as_i64().expect("count")
        );
    }

    // The author or an admin removes one.
    let (status, body) = app
        .call(Method::DELETE, &first_path, Some(&bo.access_token), None)
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(Method::DELETE, &first_path, Some(&ana.access_token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .call(
            Method::DELETE,
            &second_path,
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        reviews(&app, &product).await["rating"],
        json!({"average": 0.0, "count": 0})
    );
    let (status, body) = app
        .call(
            Method::DELETE,
            &second_path,
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);

    // Reviews are for products on sale.
    let unknown = format!("/products/{}/reviews", uuid::Uuid::now_v7());
    let (status, body) = app
        .call(
            Method::POST,
            &unknown,
            Some(&ana.access_token),
            Some(json!({"rating": 3, "title": "?"})),
        )
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_confirmed_order_makes_a_verified_purchase_and_its_cancellation_undoes_it() {
    let app = TestApp::spawn().await;
    let product = stocked_product(&app, 10, 1500).await;
    let (buyer, address) = buyer_with_cart(&app, &product, 1).await;
    let (status, order) = place(&app, &buyer, &address, "tok_visa", "rev-order-1").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let path = format!("/products/{product}/reviews");
    let (status, review) = app
        .call(
            Method::POST,
            &path,
            Some(&buyer.access_token),
            Some(json!({"rating": 5, "title": "Bought it"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{review}");

    // The purchase arrives through the orders stream.
    let mut verified = false;
    for _ in 0..200 {
        verified = reviews(&app, &product).await["items"][0]["verified_purchase"] == true;
        if verified {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(verified, "the confirmed order did not verify the review");

    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/orders/{}/cancel", order["id"].as_str().expect("id")),
            Some(&buyer.access_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut still = true;
    for _ in 0..200 {
        still = reviews(&app, &product).await["items"][0]["verified_purchase"] == true;
        if !still {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!still, "a cancelled order still verifies the review");
}
