//! The orders process killed at each step of a checkout: after reserving, after charging and
//! before confirming, and once before confirming with the reservation expiring while the core
//! is down. After a restart every saga ends confirmed, each with one charge, except the one
//! whose stock was no longer held: cancelled and refunded in full. No reservation stays held,
//! and every outbox row reaches its stream.

use std::time::Duration;

use meridian_platform::auth::Role;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{CoreProcess, fast_user, isolated_settings};

#[tokio::test]
async fn a_core_killed_mid_checkout_resumes_every_saga() {
    let settings = isolated_settings().await;
    meridian_core::app::migrate(&settings)
        .await
        .expect("migrate");
    let client = reqwest::Client::new();
    let pool = |schema: &'static str| {
        let url = settings.database_url.clone();
        async move {
            meridian_platform::db::connect(&url, schema, 2)
                .await
                .expect("pool")
        }
    };
    let users = pool("users").await;

    // Set the shop up through a healthy core: the first start creates the signing key.
    let setup = CoreProcess::start(&settings, &[]).await;
    let admin = fast_user(&users, Role::Admin).await;
    let product: serde_json::Value = client
        .post(format!("{}/products", setup.base))
        .bearer_auth(&admin.access_token)
        .json(&json!({"sku": "CRASH-1", "name": "Crash", "price": {"amount": 500, "currency": "USD"}}))
        .send()
        .await
        .expect("product")
        .json()
        .await
        .expect("json");
    let product = product["id"].as_str().expect("id").to_owned();
    let stocked = client
        .put(format!("{}/inventory/{product}", setup.base))
        .bearer_auth(&admin.access_token)
        .json(&json!({"region": "local", "available": 10}))
        .send()
        .await
        .expect("stock");
    assert_eq!(stocked.status(), StatusCode::OK);
    let mut buyers = Vec::new();
    for _ in 0..4 {
        let buyer = fast_user(&users, Role::Buyer).await;
        let address: Uuid = sqlx::query_scalar(
            "INSERT INTO addresses (id, user_id, name, line1, city, postal_code, country) \
             VALUES ($1, $2, 'Home', '1 Main St', 'Springfield', '12345', 'US') RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(buyer.id)
        .fetch_one(&users)
        .await
        .expect("address");
        let added = client
            .post(format!("{}/cart/items", setup.base))
            .bearer_auth(&buyer.access_token)
            .json(&json!({"product_id": product, "quantity": 1}))
            .send()
            .await
            .expect("cart");
        assert_eq!(added.status(), StatusCode::CREATED);
        buyers.push((buyer, address));
    }
    drop(setup);

    // One core per crash point; each dies by itself in the middle of its checkout.
    let points = [
        "after_reserve",
        "after_charge",
        "before_confirm",
        "before_confirm",
    ];
    for (n, ((buyer, address), point)) in buyers.iter().zip(points).enumerate() {
        let mut core = CoreProcess::start(&settings, &[("MERIDIAN_CRASH_AT", point)]).await;
        let answer = client
            .post(format!("{}/orders", core.base))
            .bearer_auth(&buyer.access_token)
            .header("idempotency-key", format!("crash-{n}-{point}"))
            .json(&json!({"shipping_address_id": address, "payment": {"method": "card", "token": "tok_visa"}}))
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        assert!(
            answer.is_err(),
            "{point}: the core answered instead of crashing"
        );
        assert!(
            core.wait_exit(Duration::from_secs(5)),
            "{point}: the core did not die"
        );
    }

    // The last one's reservation runs out while its core is down (the sweeper of the next core
    // releases it): the paid order can no longer be fulfilled.
    let inventory = pool("inventory").await;
    let expired = sqlx::query(
        "UPDATE reservations SET expires_at = now() - interval '1 second' \
         WHERE id = (SELECT id FROM reservations WHERE status = 'held' ORDER BY id DESC LIMIT 1)",
    )
    .execute(&inventory)
    .await
    .expect("expire");
    assert_eq!(expired.rows_affected(), 1);

    // A healthy core resumes all four once their leases run out.
    let orders = pool("orders").await;
    let _core = CoreProcess::start(&settings, &[]).await;
    let mut open = i64::MAX;
    for _ in 0..600 {
        open = sqlx::query_scalar("SELECT count(*) FROM orders WHERE saga_step <> 'done'")
            .fetch_one(&orders)
            .await
            .expect("count");
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open, 0, "sagas still open a minute after the restart");
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM orders ORDER BY id")
        .fetch_all(&orders)
        .await
        .expect("statuses");
    assert_eq!(
        statuses,
        ["confirmed", "confirmed", "confirmed", "refunded"]
    );

    let payments = pool("payments").await;
    let charges: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT order_id, count(*) FROM payments WHERE status = 'succeeded' GROUP BY order_id",
    )
    .fetch_all(&payments)
    .await
    .expect("charges");
    assert_eq!(charges.len(), 4);
    assert!(
        charges.iter().all(|(_, n)| *n == 1),
        "an order was charged twice"
    );
    let refunds: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT r.amount, p.amount FROM refunds r JOIN payments p ON p.id = r.payment_id \
         WHERE r.status = 'succeeded'",
    )
    .fetch_all(&payments)
    .await
    .expect("refunds");
    assert_eq!(
        refunds,
        [(500, 500)],
        "the unfulfilled order is refunded in full, once"
    );

    let (available, reserved): (i32, i32) = sqlx::query_as("SELECT available, reserved FROM stock")
        .fetch_one(&inventory)
        .await
        .expect("stock");
    assert_eq!((available, reserved), (7, 0));
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations WHERE status = 'held'")
        .fetch_one(&inventory)
        .await
        .expect("held");
    assert_eq!(held, 0, "a reservation outlived its saga");

    // Every outbox row of every service reaches its stream.
    for schema in ["orders", "payments", "inventory", "catalog"] {
        let pool = pool(schema).await;
        let mut pending = i64::MAX;
        for _ in 0..100 {
            pending = meridian_platform::outbox::pending(&pool)
                .await
                .expect("pending");
            if pending == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(pending, 0, "{schema}: outbox rows left unpublished");
    }
}
