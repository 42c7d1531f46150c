//! E-mail through a real SMTP server (aiosmtpd, started by `cargo xtask test`, writing every
//! message it accepts to the Maildir named by `MERIDIAN_TEST_MAILDIR`).

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use meridian_jetstream::{Envelope, Naming, StreamKind, events};
use meridian_platform::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    self, CoreProcess, PASSWORD, TestApp, assert_problem, fast_user, isolated_settings, republish,
    wait_for_published,
};
use crate::orders::{buyer_with_cart, place, stocked_product};

/// A message as the SMTP server stored it: its headers, lower-cased names.
type Mail = HashMap<String, String>;

fn maildir() -> PathBuf {
    PathBuf::from(
        std::env::var("MERIDIAN_TEST_MAILDIR")
            .expect("MERIDIAN_TEST_MAILDIR names the test SMTP server's Maildir (run through `cargo xtask test`)"),
    )
    .join("new")
}

/// Every message delivered to `to` (tests' addresses are unique, and only messages of the last
/// ten minutes are read: the Maildir may hold a day of earlier runs).
fn mails_to(to: &str) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(maildir()) else {
        return Vec::new();
    };
    let recent = |entry: &std::fs::DirEntry| {
        entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|at| at.elapsed().is_ok_and(|age| age < Duration::from_secs(600)))
    };
    let mut found = Vec::new();
    for entry in entries.flatten().filter(recent) {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let head = text.split("\n\n").next().unwrap_or_default();
        let mut headers = Mail::new();
        for line in head.lines() {
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        headers.insert("body".into(), text.clone());
        if headers.get("x-rcptto").is_some_and(|r| r.contains(to)) {
            found.push(headers);
        }
    }
    found
}

async fn wait_for_mails(to: &str, count: usize, within: Duration) -> Vec<Mail> {
    let started = Instant::now();
    loop {
        let mails = mails_to(to);
        if mails.len() >= count || started.elapsed() > within {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn subjects(mails: &[Mail]) -> Vec<String> {
    let mut subjects: Vec<String> = mails
        .iter()
        .map(|m| m.get("subject").cloned().unwrap_or_default())
        .collect();
    subjects.sort();
    subjects
}

/// Waits until the notifications consumers have nothing pending or unacknowledged.
async fn drained(js: &async_nats::jetstream::Context, naming: &Naming) {
    let streams = [
        StreamKind::Users,
        StreamKind::Orders,
        StreamKind::Payments,
        StreamKind::Notifications,
    ];
    helpers::drained(js, naming, &streams, "notifications-", 1).await;
}

#[tokio::test]
async fn a_registration_and_a_checkout_each_send_their_emails_once() {
    let app = TestApp::spawn().await;
    let product = stocked_product(&app, 5, 2599).await;
    let (buyer, address) = buyer_with_cart(&app, &product, 2).await;
    let (status, order) = place(&app, &buyer, &address, "tok_visa", "mail-1").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let admin = fast_user(&app.pool("users").await, Role::Admin).await;
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/orders/{}/ship", order["id"].as_str().expect("id")),
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let mails = wait_for_mails(&buyer.email, 5, Duration::from_secs(20)).await;
    let reference = order["id"].as_str().expect("id").replace('-', "")[..12].to_ascii_uppercase();
    assert_eq!(
        subjects(&mails),
        [
            format!("Payment received for order {reference}"),
            format!("We received your order {reference}"),
            "Welcome to Meridian, Test User".to_owned(),
            format!("Your order {reference} is confirmed"),
            format!("Your order {reference} is on its way"),
        ],
        "{mails:?}"
    );
    let placed = mails
        .iter()
        .find(|m| m["subject"].starts_with("We received"))
        .expect("order placed");
    assert!(placed["body"].contains("51.98 USD"), "{}", placed["body"]);
    assert!(placed["body"].contains("multipart/alternative"));
    assert!(placed["body"].contains("text/html"));
}

#[tokio::test]
async fn every_event_twice_and_a_killed_worker_send_each_email_once() {
    let settings = isolated_settings().await;
    let (naming, js) = helpers::jetstream(&settings).await;
    let client = reqwest::Client::new();

    // Twenty registrations, each a welcome e-mail, while no notifications worker runs.
    const USERS: u64 = 20;
    let users_only = CoreProcess::start(&settings, &[("MERIDIAN_SERVICES", "users")]).await;
    let run = Uuid::now_v7().simple().to_string();
    let emails: Vec<String> = (0..USERS)
        .map(|n| format!("twice-{n}-{run}@example.com"))
        .collect();
    for email in &emails {
        let response = client
            .post(format!("{}/users/register", users_only.base))
            .json(&json!({"email": email, "password": PASSWORD, "name": "Twice"}))
            .send()
            .await
            .expect("register");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let stream = js
        .get_stream(naming.stream_name(StreamKind::Users))
        .await
        .expect("users stream");
    let published = wait_for_published(&stream, USERS).await;
    assert_eq!(published, USERS);

    // Each event again as a new message: a duplicate must send nothing.
    for sequence in 1..=published {
        republish(&js, &stream, sequence).await;
    }
    drop(users_only);

    // The worker starts on the forty events, is killed (SIGKILL) mid-batch as soon as the first
    // mail is out, and is started again.
    let core = CoreProcess::start(&settings, &[]).await;
    let started = Instant::now();
    while emails.iter().all(|e| mails_to(e).is_empty()) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no mail was sent"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(core);
    let sent_before_kill = emails.iter().filter(|e| !mails_to(e).is_empty()).count();
    assert!(
        sent_before_kill < emails.len(),
        "the batch was over before the kill"
    );
    let _core = CoreProcess::start(&settings, &[]).await;
    drained(&js, &naming).await;

    // Every address has its welcome. SMTP cannot take back a message: if the kill fell between
    // the server accepting one and the inbox recording it, that one message (the worker sends
    // one at a time) comes again, under the same Message-ID. Nothing else may repeat.
    let mut repeated = 0;
    for email in &emails {
        let mails = wait_for_mails(email, 1, Duration::from_secs(5)).await;
        assert!(!mails.is_empty(), "{email} got no mail");
        assert!(
            subjects(&mails)
                .iter()
                .all(|s| s == "Welcome to Meridian, Twice"),
            "{mails:?}"
        );
        let first = &mails[0]["message-id"];
        assert!(mails.iter().all(|m| &m["message-id"] == first), "{mails:?}");
        repeated += mails.len() - 1;
    }
    assert!(repeated <= 1, "{repeated} messages were sent again");
}

#[tokio::test]
async fn admins_send_messages_and_replay_dead_letters() {
    let app = TestApp::spawn().await;
    let users = app.pool("users").await;
    let admin = fast_user(&users, Role::Admin).await;
    let buyer = fast_user(&users, Role::Buyer).await;
    let to = format!("{}@example.com", Uuid::now_v7().simple());
    let request = json!({"channel": "email", "to": to, "template": "message",
        "data": {"subject": "Sale <today>", "body": "Everything is <b>10%</b> off."}});

    let send = |token: &str, body: &Value| {
        let (token, body) = (token.to_owned(), body.clone());
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/notifications/send",
                Some(&token),
                Some(body),
            )
            .await
        }
    };
    let (status, body) = send(&buyer.access_token, &request).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    for bad in [
        json!({"channel": "pigeon", "to": to, "template": "message"}),
        json!({"channel": "email", "to": "not an address", "template": "message"}),
        json!({"channel": "email", "to": to, "template": "nope"}),
        json!({"channel": "email", "to": to, "template": "message", "data": [1]}),
        json!({"channel": "sms", "to": "+15551234567", "template": "message"}),
    ] {
        let (status, body) = send(&admin.access_token, &bad).await;
        assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (status, accepted) = send(&admin.access_token, &request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let mails = wait_for_mails(&to, 1, Duration::from_secs(10)).await;
    assert_eq!(subjects(&mails), ["Sale <today>"]);
    // The HTML part escapes what the data holds; the text part keeps it as written.
    let body = &mails[0]["body"];
    assert!(
        body.contains("<p>Everything is &lt;b&gt;10%&lt;/b&gt; off.</p>"),
        "{body}"
    );
    assert!(body.contains("\nEverything is <b>10%</b> off.\n"), "{body}");

    // An order confirmation for a user who does not exist (yet) is dead-lettered at once.
    let (naming, js) = helpers::jetstream(&app.settings).await;
    let ghost = Uuid::now_v7();
    let confirmed = events::orders::OrderConfirmedV1 {
        order_id: Uuid::now_v7(),
        user_id: ghost,
        region: "local".into(),
        lines: vec![],
    };
    let envelope = Envelope::new("local", confirmed.order_id, 5, confirmed);
    js.publish(
        naming.subject_of::<events::orders::OrderConfirmedV1>(),
        serde_json::to_vec(&envelope).expect("json").into(),
    )
    .await
    .expect("publish")
    .await
    .expect("ack");
    let mut dead = Value::Null;
    for _ in 0..200 {
        let (status, page) = app
            .call(
                Method::GET,
                "/notifications/dead-letters",
                Some(&admin.access_token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        if let Some(item) = page["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["event_id"] == json!(envelope.id)))
        {
            dead = item.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead["event_type"], "orders.order_confirmed.v1", "{dead}");
    assert_eq!(dead["consumer"], "notifications-orders");
    assert!(
        dead["error"]
            .as_str()
            .expect("error")
            .contains("no longer exists")
    );

    // The user appears; the replay sends the confirmation, once.
    let email = format!("{}@example.com", ghost.simple());
    sqlx::query("INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, $2, 'Ghost', 'x', 'buyer')")
        .bind(ghost)
        .bind(&email)
        .execute(&users)
        .await
        .expect("insert user");
    let replay = format!("/notifications/dead-letters/{}/replay", dead["sequence"]);
    let (status, body) = app
        .call(Method::POST, &replay, Some(&admin.access_token), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mails = wait_for_mails(&email, 1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0]["subject"].ends_with("is confirmed"));
    assert!(mails[0]["message-id"].contains(&envelope.id.to_string()));
    assert_eq!(dead["sent_since"], false, "{dead}");
    let (_, page) = app
        .call(
            Method::GET,
            "/notifications/dead-letters",
            Some(&admin.access_token),
            None,
        )
        .await;
    let item = page["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["event_id"] == json!(envelope.id)))
        .expect("still listed");
    assert_eq!(item["sent_since"], true, "{item}");
    let (status, body) = app
        .call(
            Method::POST,
            "/notifications/dead-letters/999999/replay",
            Some(&admin.access_token),
            None,
        )
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
}

/// What a fake provider was sent: the `Authorization` header and the body.
type Calls = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// Local fakes of Twilio's Messages API (the first call fails with a 503, as Twilio does when
/// overloaded) and FCM's HTTP v1 send API, on the paths and with the answers of the real ones.
async fn fake_providers() -> (String, Calls, Calls) {
    use axum::{extract::State, http::HeaderMap, routing::post};
    let twilio = Calls::default();
    let fcm = Calls::default();
    fn auth(headers: &HeaderMap) -> String {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
    let router = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            post(|State((calls, _)): State<(Calls, Calls)>, headers: HeaderMap, body: String| async move {
                let mut calls = calls.lock().expect("lock");
                calls.push((auth(&headers), body));
                if calls.len() == 1 {
                    return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"code": 20503, "message": "Service unavailable"})));
                }
                (StatusCode::CREATED, axum::Json(json!({"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"})))
            }),
        )
        .route(
            "/v1/projects/{project}/messages:send",
            post(|State((_, calls)): State<(Calls, Calls)>, headers: HeaderMap, body: String| async move {
                calls.lock().expect("lock").push((auth(&headers), body));
                axum::Json(json!({"name": "projects/meridian-test/messages/0:1"}))
            }),
        )
        .with_state((twilio.clone(), fcm.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, twilio, fcm)
}

#[tokio::test]
async fn sms_and_push_go_out_through_the_providers_http_apis_with_retries() {
    let (base, twilio, fcm) = fake_providers().await;
    let settings = isolated_settings().await;
    let core = CoreProcess::start(
        &settings,
        &[
            ("MERIDIAN_TWILIO_ACCOUNT_SID", "AC0123"),
            ("MERIDIAN_TWILIO_AUTH_TOKEN", "twilio-secret"),
            ("MERIDIAN_TWILIO_FROM", "+15550001111"),
            ("MERIDIAN_TWILIO_BASE_URL", &base),
            ("MERIDIAN_FCM_PROJECT", "meridian-test"),
            ("MERIDIAN_FCM_TOKEN", "fcm-token"),
            ("MERIDIAN_FCM_BASE_URL", &base),
        ],
    )
    .await;
    let users = meridian_platform::db::connect(&settings.database_url, "users", 2)
        .await
        .expect("pool");
    let admin = fast_user(&users, Role::Admin).await;
    let client = reqwest::Client::new();
    for (channel, to) in [("sms", "+15551234567"), ("push", "device-token-1")] {
        let response = client
            .post(format!("{}/notifications/send", core.base))
            .bearer_auth(&admin.access_token)
            .json(&json!({"channel": channel, "to": to, "template": "message",
                "data": {"subject": "Flash sale", "body": "Everything is 10% off."}}))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{channel}");
    }
    let started = Instant::now();
    while twilio.lock().expect("lock").len() < 2 || fcm.lock().expect("lock").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the providers were not called"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (naming, js) = helpers::jetstream(&settings).await;
    drained(&js, &naming).await;

    // Twilio: form fields and basic auth; the 503 was retried once, the 201 ended it.
    let twilio = twilio.lock().expect("lock").clone();
    assert_eq!(twilio.len(), 2, "{twilio:?}");
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "AC0123:twilio-secret"
        )
    );
    for (auth, body) in &twilio {
        assert_eq!(auth, &basic);
        let form: HashMap<String, String> = form_pairs(body);
        assert_eq!(form["To"], "+15551234567");
        assert_eq!(form["From"], "+15550001111");
        assert!(form["Body"].contains("Everything is 10% off."), "{body}");
    }
    // FCM: one message for the device, with a bearer token.
    let fcm = fcm.lock().expect("lock").clone();
    assert_eq!(fcm.len(), 1, "{fcm:?}");
    assert_eq!(fcm[0].0, "Bearer fcm-token");
    let body: Value = serde_json::from_str(&fcm[0].1).expect("json");
    assert_eq!(body["message"]["token"], "device-token-1");
    assert_eq!(body["message"]["notification"]["title"], "Flash sale");
}

/// `a=1&b=x%20y` as pairs.
fn form_pairs(body: &str) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{body}"))
        .expect("form")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
