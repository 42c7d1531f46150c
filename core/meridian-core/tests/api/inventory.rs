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

mod reservations {
    use std::collections::BTreeMap;

    use chrono::Duration;
    use meridian_inventory::reservations::{self, ReserveError, Transition};
    use sqlx::PgPool;
    use uuid::Uuid;

    use crate::helpers::isolated_settings;

    async fn stocked(products: &[(Uuid, i32)]) -> PgPool {
        let settings = isolated_settings().await;
        let pool = meridian_platform::db::connect(&settings.database_url, "inventory", 20)
            .await
            .expect("pool");
        meridian_inventory::migrate(&pool).await.expect("migrate");
        let mut conn = pool.acquire().await.expect("conn");
        for (product, units) in products {
            meridian_inventory::store::set_available(&mut conn, *product, "local", *units)
                .await
                .expect("stock");
        }
        pool
    }

    async fn levels(pool: &PgPool, product: Uuid) -> (i32, i32) {
        sqlx::query_as("SELECT available, reserved FROM stock WHERE product_id = $1")
            .bind(product)
            .fetch_one(pool)
            .await
            .expect("levels")
    }

    #[tokio::test]
    async fn five_hundred_buyers_for_fifty_units_never_oversell() {
        let product = Uuid::now_v7();
        for round in 0..3 {
            let pool = stocked(&[(product, 50)]).await;
            let attempts = (0..500).map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let items = BTreeMap::from([(product, 1)]);
                    reservations::reserve(&pool, "local", &items, Duration::minutes(10)).await
                })
            });
            let results = futures::future::join_all(attempts).await;
            let won = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
            let short = results
                .iter()
                .filter(|r| matches!(r, Ok(Err(ReserveError::Short(p))) if p == &[product]))
                .count();
            assert_eq!((won, short), (50, 450), "round {round}");
            assert_eq!(levels(&pool, product).await, (0, 50), "round {round}");
        }
    }

    #[tokio::test]
    async fn multi_item_reservations_are_all_or_nothing_without_deadlocks() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let pool = stocked(&[(a, 100), (b, 30)]).await;
        // Half the buyers list the products one way round, half the other: the fixed lock
        // order makes that irrelevant.
        let attempts = (0..200).map(|n| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let items: BTreeMap<_, _> = if n % 2 == 0 {
                    [(a, 1), (b, 1)].into()
                } else {
                    [(b, 1), (a, 1)].into()
                };
                reservations::reserve(&pool, "local", &items, Duration::minutes(10)).await
            })
        });
        let results = futures::future::join_all(attempts).await;
        let won = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(won, 30);
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Ok(Ok(_)) | Ok(Err(ReserveError::Short(_))))),
            "a reservation failed for another reason than stock"
        );
        assert_eq!(levels(&pool, a).await, (70, 30));
        assert_eq!(levels(&pool, b).await, (0, 30));
    }

    #[tokio::test]
    async fn release_expiry_and_confirmation_settle_each_reservation_once() {
        let product = Uuid::now_v7();
        let pool = stocked(&[(product, 40)]).await;
        let items = BTreeMap::from([(product, 1)]);
        let mut held = Vec::new();
        for _ in 0..40 {
            let reservation = reservations::reserve(&pool, "local", &items, Duration::seconds(-1))
                .await
                .expect("reserve");
            held.push(reservation.reservation_id);
        }
        // Confirm ten, then race releases against the sweeper for all forty.
        for id in &held[..10] {
            assert_eq!(
                reservations::confirm(&pool, *id).await.expect("confirm").0,
                Transition::Done
            );
        }
        let releases = held.iter().map(|id| {
            let (pool, id) = (pool.clone(), *id);
            tokio::spawn(async move { reservations::release(&pool, id).await })
        });
        let sweeps = (0..4).map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { reservations::expire_due(&pool, 100).await })
        });
        let (released, expired) = tokio::join!(
            futures::future::join_all(releases),
            futures::future::join_all(sweeps)
        );
        let released = released
            .iter()
            .filter(|r| matches!(r, Ok(Ok((Transition::Done, _)))))
            .count();
        let expired: usize = expired
            .into_iter()
            .map(|r| r.expect("task").expect("sweep"))
            .sum();
        assert_eq!(
            released + expired,
            30,
            "each unconfirmed reservation settled exactly once"
        );
        // Ten sold, thirty back on the shelf, nothing left reserved.
        assert_eq!(levels(&pool, product).await, (30, 0));
        assert_eq!(
            reservations::release(&pool, held[0])
                .await
                .expect("release"),
            (Transition::AlreadyLeft, "confirmed".to_owned())
        );
        assert_eq!(
            reservations::release(&pool, Uuid::now_v7())
                .await
                .expect("release")
                .0,
            Transition::NotFound
        );
    }
}

mod reserve_over_http {
    use meridian_platform::auth::Role;
    use reqwest::{Method, StatusCode};
    use serde_json::{Value, json};

    use crate::helpers::{TestApp, TestUser, assert_problem, product_body};

    async fn stocked_product(app: &TestApp, admin: &TestUser, units: i64) -> String {
        let (_, product) = app
            .call(
                Method::POST,
                "/products",
                Some(&admin.access_token),
                Some(product_body(&format!(
                    "R-{}",
                    uuid::Uuid::now_v7().simple()
                ))),
            )
            .await;
        let id = product["id"].as_str().expect("id").to_owned();
        let (status, _) = app
            .call(
                Method::PUT,
                &format!("/inventory/{id}"),
                Some(&admin.access_token),
                Some(json!({"region": "local", "available": units})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        id
    }

    async fn reserve(
        app: &TestApp,
        token: &str,
        key: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Vec<u8>) {
        let mut request = app
            .request(Method::POST, "/inventory/reserve", Some(token))
            .json(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.expect("sent");
        let status = response.status();
        (status, response.bytes().await.expect("body").to_vec())
    }

    async fn available(app: &TestApp, id: &str) -> i64 {
        let (_, stock) = app
            .call(Method::GET, &format!("/inventory/{id}"), None, None)
            .await;
        stock["available"].as_i64().expect("available")
    }

    #[tokio::test]
    async fn one_key_one_effect_and_byte_identical_replays() {
        let app = TestApp::spawn().await;
        let admin = app.user(Role::Admin).await;
        let product = stocked_product(&app, &admin, 10).await;
        let body = json!({"items": [{"product_id": product, "quantity": 3}], "ttl_seconds": 60});

        // Twenty concurrent requests with one key: one reservation.
        let attempts = (0..20).map(|_| reserve(&app, &admin.access_token, Some("key-1"), &body));
        let results = futures::future::join_all(attempts).await;
        let created: Vec<_> = results
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .collect();
        assert!(!created.is_empty());
        assert!(
            created.windows(2).all(|w| w[0].1 == w[1].1),
            "replays differ"
        );
        assert!(
            results
                .iter()
                .all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT)
        );
        assert_eq!(available(&app, &product).await, 7);

        let (status, again) = reserve(&app, &admin.access_token, Some("key-1"), &body).await;
        assert_eq!((status, &again), (StatusCode::CREATED, &created[0].1));
        let (status, other) = reserve(
            &app,
            &admin.access_token,
            Some("key-1"),
            &json!({"items": [{"product_id": product, "quantity": 4}]}),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            String::from_utf8_lossy(&other)
        );
        assert_eq!(available(&app, &product).await, 7);

        // Release returns the units, once.
        let reservation: Value = serde_json::from_slice(&again).expect("json");
        let release = json!({"reservation_id": reservation["reservation_id"]});
        for _ in 0..2 {
            let (status, released) = app
                .call(
                    Method::POST,
                    "/inventory/release",
                    Some(&admin.access_token),
                    Some(release.clone()),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{released}");
            assert_eq!(released["status"], "released");
        }
        assert_eq!(available(&app, &product).await, 10);
    }

    #[tokio::test]
    async fn short_stock_and_bad_input_change_nothing() {
        let app = TestApp::spawn().await;
        let admin = app.user(Role::Admin).await;
        let plenty = stocked_product(&app, &admin, 100).await;
        let scarce = stocked_product(&app, &admin, 1).await;
        let body = json!({"items": [{"product_id": plenty, "quantity": 5}, {"product_id": scarce, "quantity": 2}]});
        let (status, first) = reserve(&app, &admin.access_token, Some("short-1"), &body).await;
        let problem: Value = serde_json::from_slice(&first).expect("json");
        assert_problem(status, &problem, StatusCode::CONFLICT);
        assert!(
            problem["detail"]
                .as_str()
                .expect("detail")
                .contains(&scarce)
        );
        let (status, replay) = reserve(&app, &admin.access_token, Some("short-1"), &body).await;
        assert_eq!((status, replay), (StatusCode::CONFLICT, first));
        assert_eq!(
            (
                available(&app, &plenty).await,
                available(&app, &scarce).await
            ),
            (100, 1)
        );

        let (status, _) = reserve(&app, &admin.access_token, None, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = reserve(&app, &admin.access_token, Some(&"k".repeat(256)), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        for quantity in [
            json!(0),
            json!(-1),
            json!(1.5),
            json!("two"),
            json!(1_000_000),
        ] {
            let bad = json!({"items": [{"product_id": plenty, "quantity": quantity}]});
            let (status, _) = reserve(&app, &admin.access_token, Some("bad"), &bad).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{quantity}");
        }
        let buyer = app.user(Role::Buyer).await;
        let (status, _) = reserve(&app, &buyer.access_token, Some("buyer-1"), &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            (
                available(&app, &plenty).await,
                available(&app, &scarce).await
            ),
            (100, 1)
        );
    }
}

mod reserve_over_nats {
    use meridian_contracts::inventory::{
        Reserve, ReserveItem, ReserveRequest, ReserveResponse, Settle, SettleAction, SettleRequest,
    };
    use meridian_jetstream::Naming;
    use meridian_platform::{auth::Role, rpc};
    use reqwest::Method;
    use serde_json::json;

    use crate::helpers::{TestApp, product_body};

    #[tokio::test]
    async fn the_saga_gets_one_reservation_per_key_and_settles_it() {
        let app = TestApp::spawn().await;
        let admin = app.user(Role::Admin).await;
        let (_, product) = app
            .call(
                Method::POST,
                "/products",
                Some(&admin.access_token),
                Some(product_body("NATS-1")),
            )
            .await;
        let id = product["id"].as_str().expect("id").to_owned();
        app.call(
            Method::PUT,
            &format!("/inventory/{id}"),
            Some(&admin.access_token),
            Some(json!({"region": "local", "available": 5})),
        )
        .await;
        let naming = Naming::new(&app.settings.nats_prefix).expect("prefix");
        let client = async_nats::connect(&app.settings.nats_url)
            .await
            .expect("nats");
        let request = |quantity, key: &str| ReserveRequest {
            region: "local".into(),
            items: vec![ReserveItem {
                product_id: id.clone(),
                quantity,
            }],
            ttl_seconds: 60,
            idempotency_key: key.into(),
        };
        let timeout = rpc::DEFAULT_TIMEOUT;
        let first = rpc::call::<Reserve>(&client, &naming, &request(2, "order-1:reserve"), timeout)
            .await
            .expect("reserve");
        let again = rpc::call::<Reserve>(&client, &naming, &request(2, "order-1:reserve"), timeout)
            .await
            .expect("replay");
        assert_eq!(first, again);
        let short = rpc::call::<Reserve>(&client, &naming, &request(4, "order-2:reserve"), timeout)
            .await
            .expect("short");
        assert_eq!(
            short,
            ReserveResponse::Short {
                product_ids: vec![id.clone()]
            }
        );
        let (_, stock) = app
            .call(Method::GET, &format!("/inventory/{id}"), None, None)
            .await;
        assert_eq!(
            (stock["available"].as_i64(), stock["reserved"].as_i64()),
            (Some(3), Some(2))
        );

        let ReserveResponse::Reserved { reservation_id, .. } = first else {
            panic!("expected a reservation, got {first:?}");
        };
        let settle = SettleRequest {
            reservation_id,
            action: SettleAction::Confirm,
        };
        for _ in 0..2 {
            let settled = rpc::call::<Settle>(&client, &naming, &settle, timeout)
                .await
                .expect("settle");
            assert_eq!(settled.status, "confirmed");
        }
        let (_, stock) = app
            .call(Method::GET, &format!("/inventory/{id}"), None, None)
            .await;
        assert_eq!(
            (stock["available"].as_i64(), stock["reserved"].as_i64()),
            (Some(3), Some(0))
        );
    }
}
