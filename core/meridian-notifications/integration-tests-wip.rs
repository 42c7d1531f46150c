//! E-mail through a real SMTP server (aiosmtpd, started by `cargo xtask test`, writing every
//! message it accepts to the Maildir named by `MERIDIAN_TEST_MAILDIR`).

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use futures::StreamExt;
use meridian_jetstream::{Envelope, Naming, StreamKind, events};
use meridian_platform::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    CoreProcess, PASSWORD, TestApp, assert_problem, fast_user, isolated_settings,
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

/// Every message delivered to `to`.
fn mails_to(to: &str) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(maildir()) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
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
    for _ in 0..1200 {
        let mut busy = false;
        for kind in [StreamKind::Users, StreamKind::Orders, StreamKind::Payments] {
            let stream = js.get_stream(naming.stream_name(kind)).await.expect("stream");
            let mut consumers = stream.consumers();
            while let Some(info) = consumers.next().await {
                let info = info.expect("consumer info");
                if info.name.starts_with("notifications-") {
                    busy |= info.num_pending > 0 || info.num_ack_pending > 0;
                }
            }
        }
        if !busy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the notifications consumers did not drain");
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
async fn every_event_twice_and_a_killed_worker_still_send_each_email_once() {
    let settings = isolated_settings().await;
    let naming = Naming::new(&settings.nats_prefix).expect("prefix");
    let nats = async_nats::connect(&settings.nats_url).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
    let client = reqwest::Client::new();
    let core = CoreProcess::start(&settings, &[]).await;

    // Ten registrations, each a welcome e-mail.
    let run = Uuid::now_v7().simple().to_string();
    let emails: Vec<String> = (0..10).map(|n| format!("twice-{n}-{run}@example.com")).collect();
    for email in &emails {
        let response = client
            .post(format!("{}/users/register", core.base))
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
    let mut published = 0;
    for _ in 0..200 {
        published = stream.get_info().await.expect("info").state.last_sequence;
        if published >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(published, 10);

    // Each event again as a new message, the core killed half-way, then started again.
    let mut core = Some(core);
    for sequence in 1..=published {
        let message = stream.get_raw_message(sequence).await.expect("message");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("again-{sequence}").as_str());
        js.publish_with_headers(message.subject.to_string(), headers, message.payload)
            .await
            .expect("publish")
            .await
            .expect("ack");
        if sequence == 5 {
            drop(core.take());
        }
    }
    let _core = CoreProcess::start(&settings, &[]).await;
    drained(&js, &naming).await;
    for email in &emails {
        let mails = wait_for_mails(email, 1, Duration::from_secs(5)).await;
        assert_eq!(subjects(&mails), ["Welcome to Meridian, Twice"], "{email}");
    }
}

#[tokio::test]
async fn admins_send_messages_and_replay_dead_letters() {
    let app = TestApp::spawn().await;
    let users = app.pool("users").await;
    let admin = fast_user(&users, Role::Admin).await;
    let buyer = fast_user(&users, Role::Buyer).await;
    let to = format!("{}@example.com", Uuid::now_v7().simple());
    let request = json!({"channel": "email", "to": to, "template": "message",
        "data": {"subject": "Sale <today>", "body": "Everything is 10% off."}});

    let (status, body) = app
        .call(Method::POST, "/notifications/send", Some(&buyer.access_token), Some(request.clone()))
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    for bad in [
        json!({"channel": "pigeon", "to": to, "template": "message"}),
        json!({"channel": "email", "to": "not an address", "template": "message"}),
        json!({"channel": "email", "to": to, "template": "nope"}),
        json!({"channel": "email", "to": to, "template": "message", "data": [1]}),
        json!({"channel": "sms", "to": "+15551234567", "template": "message"}),
    ] {
        let (status, body) = app
            .call(Method::POST, "/notifications/send", Some(&admin.access_token), Some(bad.clone()))
            .await;
        assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (status, accepted) = app
        .call(Method::POST, "/notifications/send", Some(&admin.access_token), Some(request))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let mails = wait_for_mails(&to, 1, Duration::from_secs(10)).await;
    assert_eq!(subjects(&mails), ["Sale <today>"]);
    assert!(mails[0]["body"].contains("Sale &lt;today&gt;") || mails[0]["body"].contains("Everything is 10% off."));

    // An order confirmation for a user who does not exist (yet) is dead-lettered at once.
    let naming = Naming::new(&app.settings.nats_prefix).expect("prefix");
    let nats = async_nats::connect(&app.settings.nats_url).await.expect("nats");
    let js = async_nats::jetstream::new(nats);
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
            .call(Method::GET, "/notifications/dead-letters", Some(&admin.access_token), None)
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
    assert!(dead["error"].as_str().expect("error").contains("no longer exists"));

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
    let (status, body) = app
        .call(Method::POST, "/notifications/dead-letters/999999/replay", Some(&admin.access_token), None)
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
}
