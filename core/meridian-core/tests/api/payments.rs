//! Payments: charges with the `test` provider over HTTP and NATS, refunds, idempotency; the
//! Stripe provider against the local fake.

mod over_http {
    use meridian_platform::auth::Role;
    use reqwest::{Method, StatusCode};
    use serde_json::{Value, json};
    use sqlx::PgPool;
    use uuid::Uuid;

    use crate::helpers::{TestApp, TestUser, assert_problem};

    fn charge_body(token: &str, amount: i64) -> Value {
        json!({
            "order_id": Uuid::now_v7(),
            "amount": amount,
            "currency": "USD",
            "method": {"type": "card", "token": token},
        })
    }

    async fn post(
        app: &TestApp,
        path: &str,
        user: &TestUser,
        key: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Vec<u8>) {
        let mut request = app
            .request(Method::POST, path, Some(&user.access_token))
            .json(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.expect("sent");
        let status = response.status();
        (status, response.bytes().await.expect("body").to_vec())
    }

    fn json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("a JSON body")
    }

    async fn count(pool: &PgPool, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn cards_succeed_decline_or_meet_an_outage() {
        let app = TestApp::spawn().await;
        let buyer = app.user(Role::Buyer).await;
        let pool = app.pool("payments").await;

        let body = charge_body("tok_visa", 1999);
        let (status, paid) = post(&app, "/payments", &buyer, Some("visa-1"), &body).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&paid)
        );
        let paid = json(&paid);
        assert_eq!(paid["status"], "succeeded");
        assert_eq!(paid["amount"], 1999);
        assert_eq!(paid["currency"], "USD");
        assert_eq!(paid["provider"], "test");
        assert_eq!(paid["order_id"], body["order_id"]);
        assert!(paid.get("failure_reason").is_none(), "{paid}");
        let (status, shown) = app
            .call(
                Method::GET,
                &format!("/payments/{}", paid["id"].as_str().expect("id")),
                Some(&buyer.access_token),
                None,
            )
            .await;
        assert_eq!((status, &shown), (StatusCode::OK, &paid));

        for (token, reason) in [
            ("tok_chargeDeclined", "card_declined"),
            ("tok_insufficientFunds", "insufficient_funds"),
            ("tok_nonsense", "invalid_token"),
        ] {
            let (status, declined) = post(
                &app,
                "/payments",
                &buyer,
                Some(token),
                &charge_body(token, 500),
            )
            .await;
            let declined = json(&declined);
            assert_problem(status, &declined, StatusCode::PAYMENT_REQUIRED);
            assert_eq!(declined["payment"]["status"], "failed", "{declined}");
            assert_eq!(declined["payment"]["failure_reason"], reason, "{declined}");
            let id = declined["payment"]["id"].as_str().expect("id");
            let (status, recorded) = app
                .call(
                    Method::GET,
                    &format!("/payments/{id}"),
                    Some(&buyer.access_token),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(recorded["status"], "failed");
        }

        // An outage: 503 with Retry-After, nothing recorded as failed, and the key stays usable.
        let outage = charge_body("tok_processingError", 700);
        for _ in 0..2 {
            let response = app
                .request(Method::POST, "/payments", Some(&buyer.access_token))
                .header("idempotency-key", "outage-1")
                .json(&outage)
                .send()
                .await
                .expect("sent");
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(response.headers().contains_key("retry-after"));
        }
        assert_eq!(
            count(
                &pool,
                "SELECT count(*) FROM payments WHERE status = 'failed'"
            )
            .await,
            3,
            "only the three declines failed"
        );
        assert_eq!(
            count(&pool, "SELECT count(*) FROM payments WHERE amount = 700").await,
            1,
            "one pending payment, retried under one key"
        );
        assert_eq!(
            count(
                &pool,
                "SELECT count(*) FROM outbox WHERE event_type = 'payments.payment_failed.v1'"
            )
            .await,
            3
        );
        assert_eq!(
            count(
                &pool,
                "SELECT count(*) FROM outbox WHERE event_type = 'payments.payment_succeeded.v1'"
            )
            .await,
            1
        );

        // Another user may not see the payment; an admin may.
        let other = app.user(Role::Buyer).await;
        let admin = app.user(Role::Admin).await;
        let path = format!("/payments/{}", paid["id"].as_str().expect("id"));
        let (status, body) = app
            .call(Method::GET, &path, Some(&other.access_token), None)
            .await;
        assert_problem(status, &body, StatusCode::FORBIDDEN);
        let (status, _) = app
            .call(Method::GET, &path, Some(&admin.access_token), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = app.call(Method::GET, &path, None, None).await;
        assert_problem(status, &body, StatusCode::UNAUTHORIZED);
        let (status, body) = app
            .call(
                Method::GET,
                &format!("/payments/{}", Uuid::now_v7()),
                Some(&admin.access_token),
                None,
            )
            .await;
        assert_problem(status, &body, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn one_key_one_charge_and_bad_requests_change_nothing() {
        let app = TestApp::spawn().await;
        let buyer = app.user(Role::Buyer).await;
        let pool = app.pool("payments").await;
        let body = charge_body("tok_visa", 4200);

        let attempts = (0..20).map(|_| post(&app, "/payments", &buyer, Some("same-key"), &body));
        let results = futures::future::join_all(attempts).await;
        let created: Vec<_> = results
            .iter()
            .filter(|(status, _)| *status == StatusCode::CREATED)
            .collect();
        assert!(!created.is_empty());
        assert!(
            results
                .iter()
                .all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
            "{:?}",
            results.iter().map(|(s, _)| *s).collect::<Vec<_>>()
        );
        assert!(
            created.windows(2).all(|w| w[0].1 == w[1].1),
            "replays differ"
        );
        assert_eq!(count(&pool, "SELECT count(*) FROM payments").await, 1);

        let (status, replay) = post(&app, "/payments", &buyer, Some("same-key"), &body).await;
        assert_eq!((status, &replay), (StatusCode::CREATED, &created[0].1));
        let (status, other) = post(
            &app,
            "/payments",
            &buyer,
            Some("same-key"),
            &charge_body("tok_visa", 4300),
        )
        .await;
        assert_problem(status, &json(&other), StatusCode::UNPROCESSABLE_ENTITY);

        let (status, missing) = post(&app, "/payments", &buyer, None, &body).await;
        assert_problem(status, &json(&missing), StatusCode::BAD_REQUEST);
        let long_key = "k".repeat(256);
        let (status, _) = post(&app, "/payments", &buyer, Some(&long_key), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        for bad in [
            json!({"order_id": Uuid::now_v7(), "amount": 0, "currency": "USD", "method": {"type": "card", "token": "tok_visa"}}),
            json!({"order_id": Uuid::now_v7(), "amount": -5, "currency": "USD", "method": {"type": "card", "token": "tok_visa"}}),
            json!({"order_id": Uuid::now_v7(), "amount": 1.5, "currency": "USD", "method": {"type": "card", "token": "tok_visa"}}),
            json!({"order_id": Uuid::now_v7(), "amount": "ten", "currency": "USD", "method": {"type": "card", "token": "tok_visa"}}),
            json!({"order_id": Uuid::now_v7(), "amount": 100, "currency": "usd", "method": {"type": "card", "token": "tok_visa"}}),
            json!({"order_id": Uuid::now_v7(), "amount": 100, "currency": "XXX", "method": {"type": "card", "token": "tok_visa"}}),
            json!({"order_id": Uuid::now_v7(), "amount": 100, "currency": "USD", "method": {"type": "iban", "token": "tok_visa"}}),
            json!({"order_id": Uuid::now_v7(), "amount": 100, "currency": "USD", "method": {"type": "card", "token": ""}}),
            json!({"order_id": "not-a-uuid", "amount": 100, "currency": "USD", "method": {"type": "card", "token": "tok_visa"}}),
            json!({"amount": 100, "currency": "USD"}),
        ] {
            let (status, problem) = post(&app, "/payments", &buyer, Some("bad-1"), &bad).await;
            assert_problem(status, &json(&problem), StatusCode::UNPROCESSABLE_ENTITY);
        }
        let (status, _) = app
            .call(Method::POST, "/payments", None, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(count(&pool, "SELECT count(*) FROM payments").await, 1);
    }

    #[tokio::test]
    async fn refunds_never_add_up_to_more_than_was_paid() {
        let app = TestApp::spawn().await;
        let buyer = app.user(Role::Buyer).await;
        let admin = app.user(Role::Admin).await;
        let pool = app.pool("payments").await;
        let (_, paid) = post(
            &app,
            "/payments",
            &buyer,
            Some("to-refund"),
            &charge_body("tok_visa", 1000),
        )
        .await;
        let paid = json(&paid);
        let id = paid["id"].as_str().expect("id");
        let refund_path = format!("/payments/{id}/refund");
        let refunded = || async {
            let (_, payment) = app
                .call(
                    Method::GET,
                    &format!("/payments/{id}"),
                    Some(&admin.access_token),
                    None,
                )
                .await;
            payment["refunded_amount"]
                .as_i64()
                .expect("refunded_amount")
        };

        // Only admins; a key is required.
        let (status, _) = post(
            &app,
            &refund_path,
            &buyer,
            Some("r0"),
            &json!({"amount": 1}),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = post(&app, &refund_path, &admin, None, &json!({"amount": 1})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // A partial refund, replayed by its key.
        let (status, first) = post(
            &app,
            &refund_path,
            &admin,
            Some("r1"),
            &json!({"amount": 300}),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&first)
        );
        let refund = json(&first);
        assert_eq!(refund["amount"], 300);
        assert_eq!(refund["payment_id"], paid["id"]);
        assert_eq!(refund["status"], "succeeded");
        let (status, again) = post(
            &app,
            &refund_path,
            &admin,
            Some("r1"),
            &json!({"amount": 300}),
        )
        .await;
        assert_eq!((status, again), (StatusCode::CREATED, first));
        assert_eq!(refunded().await, 300);

        // More than remains: 422, nothing changed.
        let (status, over) = post(
            &app,
            &refund_path,
            &admin,
            Some("r2"),
            &json!({"amount": 701}),
        )
        .await;
        let over = json(&over);
        assert_problem(status, &over, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(over["errors"]["amount"].is_string(), "{over}");
        assert_eq!(refunded().await, 300);
        for bad in [
            json!({"amount": 0}),
            json!({"amount": -1}),
            json!({"amount": "x"}),
        ] {
            let (status, _) = post(&app, &refund_path, &admin, Some("r-bad"), &bad).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }

        // Ten concurrent refunds of 300 under distinct keys: two fit in the 700 left.
        let racing = (0..10).map(|i| {
            let key = format!("race-{i}");
            let path = refund_path.clone();
            let admin = admin.clone();
            let app = &app;
            async move { post(app, &path, &admin, Some(&key), &json!({"amount": 300})).await }
        });
        let results = futures::future::join_all(racing).await;
        let created = results
            .iter()
            .filter(|(status, _)| *status == StatusCode::CREATED)
            .count();
        assert_eq!(
            created,
            2,
            "{:?}",
            results.iter().map(|r| r.0).collect::<Vec<_>>()
        );
        assert!(
            results
                .iter()
                .all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::UNPROCESSABLE_ENTITY)
        );
        assert_eq!(refunded().await, 900);

        // No amount: what remains; then nothing remains.
        let (status, rest) = post(&app, &refund_path, &admin, Some("r-rest"), &json!({})).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(json(&rest)["amount"], 100);
        let (status, none) = post(&app, &refund_path, &admin, Some("r-none"), &json!({})).await;
        assert_problem(status, &json(&none), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refunded().await, 1000);
        assert_eq!(
            count(
                &pool,
                "SELECT coalesce(sum(amount), 0)::bigint FROM refunds WHERE status = 'succeeded'"
            )
            .await,
            1000
        );
        assert_eq!(
            count(
                &pool,
                "SELECT count(*) FROM outbox WHERE event_type = 'payments.payment_refunded.v1'"
            )
            .await,
            4
        );

        // A failed payment cannot be refunded; an unknown one is not found.
        let (_, declined) = post(
            &app,
            "/payments",
            &buyer,
            Some("declined"),
            &charge_body("tok_chargeDeclined", 500),
        )
        .await;
        let declined_id = json(&declined)["payment"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let (status, _) = post(
            &app,
            &format!("/payments/{declined_id}/refund"),
            &admin,
            Some("r-failed"),
            &json!({}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = post(
            &app,
            &format!("/payments/{}/refund", Uuid::now_v7()),
            &admin,
            Some("r-unknown"),
            &json!({}),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

mod over_nats {
    use std::time::Duration;

    use meridian_contracts::payments::{
        Charge, ChargeRequest, ChargeResponse, Refund, RefundRequest, RefundResponse,
    };
    use meridian_jetstream::Naming;
    use meridian_platform::rpc;
    use uuid::Uuid;

    use crate::helpers::TestApp;

    const TIMEOUT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn charge_and_refund_are_idempotent_by_key() {
        let app = TestApp::spawn().await;
        let naming = Naming::new(&app.settings.nats_prefix).expect("prefix");
        let client = async_nats::connect(&app.settings.nats_url)
            .await
            .expect("nats");
        let pool = app.pool("payments").await;
        let order_id = Uuid::now_v7();
        let request = |token: &str, key: &str| ChargeRequest {
            order_id: order_id.to_string(),
            amount: 2500,
            currency: "EUR".into(),
            token: token.into(),
            idempotency_key: key.into(),
            user_id: None,
        };
        let key = format!("{order_id}:charge");

        let visa = request("tok_visa", &key);
        let calls = (0..20).map(|_| rpc::call::<Charge>(&client, &naming, &visa, TIMEOUT));
        let answers: Vec<_> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|answer| answer.expect("answered"))
            .collect();
        let ChargeResponse::Succeeded { payment_id } = answers[0].clone() else {
            panic!("{:?}", answers[0]);
        };
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
        let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(payments, 1);

        // Another charge under the key is refused; a declined one is final and replayed.
        assert!(
            rpc::call::<Charge>(
                &client,
                &naming,
                &request("tok_chargeDeclined", &key),
                TIMEOUT
            )
            .await
            .is_err()
        );
        let declined = rpc::call::<Charge>(
            &client,
            &naming,
            &request("tok_insufficientFunds", "other:charge"),
            TIMEOUT,
        )
        .await
        .expect("answered");
        assert!(
            matches!(&declined, ChargeResponse::Declined { reason, .. } if reason == "insufficient_funds"),
            "{declined:?}"
        );
        // An outage is not a failure: unavailable every time, nothing failed.
        for _ in 0..2 {
            let outage = rpc::call::<Charge>(
                &client,
                &naming,
                &request("tok_processingError", "outage:charge"),
                TIMEOUT,
            )
            .await
            .expect("answered");
            assert!(
                matches!(outage, ChargeResponse::Unavailable { .. }),
                "{outage:?}"
            );
        }
        let status: String = sqlx::query_scalar(
            "SELECT status FROM payments WHERE idempotency_key = 'outage:charge'",
        )
        .fetch_one(&pool)
        .await
        .expect("pending row");
        assert_eq!(status, "pending");

        let refund = |amount: Option<i64>, key: &str| RefundRequest {
            payment_id: payment_id.clone(),
            amount,
            idempotency_key: key.into(),
        };
        let first = rpc::call::<Refund>(&client, &naming, &refund(Some(1000), "r:1"), TIMEOUT)
            .await
            .expect("answered");
        assert!(
            matches!(first, RefundResponse::Refunded { amount: 1000, .. }),
            "{first:?}"
        );
        let again = rpc::call::<Refund>(&client, &naming, &refund(Some(1000), "r:1"), TIMEOUT)
            .await
            .expect("answered");
        assert_eq!(again, first);
        let over = rpc::call::<Refund>(&client, &naming, &refund(Some(1501), "r:2"), TIMEOUT)
            .await
            .expect("answered");
        assert!(matches!(over, RefundResponse::Refused { .. }), "{over:?}");
        let rest = rpc::call::<Refund>(&client, &naming, &refund(None, "r:3"), TIMEOUT)
            .await
            .expect("answered");
        assert!(
            matches!(rest, RefundResponse::Refunded { amount: 1500, .. }),
            "{rest:?}"
        );
    }
}

mod stripe_provider {
    use std::{sync::Arc, time::Duration};

    use meridian_payments::{
        PaymentsState,
        charges::{self, Charged},
        domain::Charge,
        provider::{
            ChargeAttempt, ChargeOutcome, Provider, RefundAttempt, RefundOutcome,
            stripe::{StripeConfig, StripeProvider},
        },
        stripe_fake::FakeStripe,
    };
    use uuid::Uuid;

    use crate::helpers::isolated_settings;

    fn provider(fake: &FakeStripe, timeout: Duration) -> StripeProvider {
        StripeProvider::new(StripeConfig {
            base_url: fake.base_url(),
            secret_key: "sk_test_fake".into(),
            timeout,
        })
        .expect("provider")
    }

    fn attempt(token: &str) -> ChargeAttempt {
        let order_id = Uuid::now_v7();
        ChargeAttempt {
            idempotency_key: format!("{order_id}:charge"),
            order_id,
            amount: 1999,
            currency: "USD".into(),
            token: token.into(),
        }
    }

    #[tokio::test]
    async fn charges_declines_and_refunds_in_stripes_wire_format() {
        let fake = FakeStripe::start().await.expect("fake");
        let stripe = provider(&fake, Duration::from_secs(5));

        let visa = attempt("tok_visa");
        let outcome = stripe.charge(&visa).await.expect("answered");
        let ChargeOutcome::Succeeded { provider_ref } = outcome.clone() else {
            panic!("{outcome:?}");
        };
        assert!(provider_ref.starts_with("pi_"));
        // The same key again: Stripe replays, nothing more is charged.
        assert_eq!(stripe.charge(&visa).await, Ok(outcome.clone()));
        assert_eq!(stripe.lookup_charge(&visa).await, Ok(Some(outcome)));
        assert_eq!(fake.charges(), 1);

        for (token, reason) in [
            ("tok_chargeDeclined", "card_declined"),
            ("tok_insufficientFunds", "insufficient_funds"),
            ("tok_nonsense", "invalid_token"),
        ] {
            let outcome = stripe.charge(&attempt(token)).await;
            assert!(
                matches!(&outcome, Ok(ChargeOutcome::Declined { reason: r, .. }) if r == reason),
                "{token}: {outcome:?}"
            );
        }
        assert_eq!(fake.charges(), 1);

        let refund = |amount: i64, key: &str| RefundAttempt {
            idempotency_key: key.into(),
            charge_ref: provider_ref.clone(),
            amount,
            currency: "USD".into(),
        };
        let first = stripe.refund(&refund(500, "re-1")).await.expect("answered");
        assert!(matches!(first, RefundOutcome::Refunded { .. }), "{first:?}");
        assert_eq!(stripe.refund(&refund(500, "re-1")).await, Ok(first));
        assert_eq!(fake.refunded(&provider_ref), Some(500));
        let over = stripe.refund(&refund(1500, "re-2")).await;
        assert_eq!(
            over,
            Ok(RefundOutcome::Refused {
                reason: "amount_too_large".into()
            })
        );
        assert_eq!(fake.refunds(), 1);
    }

    #[tokio::test]
    async fn a_lost_answer_is_looked_up_under_the_same_key_and_charges_once() {
        let fake = FakeStripe::start().await.expect("fake");
        let stripe = provider(&fake, Duration::from_millis(300));

        // HTTP 500 the first time: unknown, not declined; the retry replays the charge.
        let flaky = attempt("tok_processingError");
        assert!(stripe.charge(&flaky).await.is_err());
        let found = stripe.lookup_charge(&flaky).await.expect("answered");
        assert!(
            matches!(found, Some(ChargeOutcome::Succeeded { .. })),
            "{found:?}"
        );
        assert_eq!(fake.charges(), 1);

        // The service's retry loop does the same on its own.
        let flaky = attempt("tok_processingError");
        let outcome = charges::attempt(&stripe, &flaky, false).await;
        assert!(
            matches!(outcome, Ok(ChargeOutcome::Succeeded { .. })),
            "{outcome:?}"
        );
        assert_eq!(fake.charges(), 2);

        // A timeout: the charge was made but the answer came too late; asking again under the
        // key finds it.
        fake.set_delay(Some(Duration::from_secs(1)));
        let slow = attempt("tok_visa");
        assert!(stripe.charge(&slow).await.is_err());
        fake.set_delay(None);
        let found = stripe.lookup_charge(&slow).await.expect("answered");
        assert!(
            matches!(found, Some(ChargeOutcome::Succeeded { .. })),
            "{found:?}"
        );
        assert_eq!(
            fake.charges(),
            3,
            "three keys, three charges, whatever the retries"
        );
    }

    #[tokio::test]
    async fn a_payment_whose_answers_were_lost_stays_pending_until_a_retry_finds_the_charge() {
        let settings = isolated_settings().await;
        let pool = meridian_platform::db::connect(&settings.database_url, "payments", 5)
            .await
            .expect("pool");
        meridian_payments::migrate(&pool).await.expect("migrate");
        let fake = FakeStripe::start().await.expect("fake");
        let state = PaymentsState {
            pool: pool.clone(),
            region: "local".into(),
            provider: Arc::new(provider(&fake, Duration::from_millis(200))),
        };
        let order_id = Uuid::now_v7();
        let charge = Charge::parse(order_id, 1999, "USD", "card", "tok_visa").expect("valid");
        let key = format!("{order_id}:charge");

        // Every answer, replays included, comes too late: the outcome is unknown.
        fake.set_delay(Some(Duration::from_secs(1)));
        let Charged::Unavailable(_) = charges::run(&state, &charge, &key, None)
            .await
            .expect("database")
        else {
            panic!("a lost answer must not settle the payment");
        };
        let (status, reason): (String, Option<String>) = sqlx::query_as(
            "SELECT status, failure_reason FROM payments WHERE idempotency_key = $1",
        )
        .bind(&key)
        .fetch_one(&pool)
        .await
        .expect("row");
        assert_eq!((status.as_str(), reason), ("pending", None));

        // The retry looks the charge up under the same key and settles it.
        fake.set_delay(None);
        let Charged::Settle { payment, outcome } = charges::run(&state, &charge, &key, None)
            .await
            .expect("database")
        else {
            panic!("the retry finds the charge");
        };
        let mut tx = pool.begin().await.expect("tx");
        let payment = charges::settle(&mut tx, "local", &payment, &outcome)
            .await
            .expect("settle");
        tx.commit().await.expect("commit");
        assert_eq!(payment.status, "succeeded");
        let Charged::Recorded(recorded) = charges::run(&state, &charge, &key, None)
            .await
            .expect("database")
        else {
            panic!("settled once");
        };
        assert_eq!(recorded.id, payment.id);
        assert_eq!(fake.charges(), 1, "one key, one charge");
    }
}
