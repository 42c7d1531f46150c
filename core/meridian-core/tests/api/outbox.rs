//! Every product write yields exactly one event on the stream, also when the relay dies.

use std::{collections::HashMap, process::Stdio, time::Duration};

use futures::StreamExt;
use meridian_jetstream::{RawEnvelope, StreamKind};
use meridian_platform::{auth::Role, money::Money, settings::Settings};
use reqwest::{Method, StatusCode};
use uuid::Uuid;

use crate::helpers::{self, TestApp, isolated_settings, product_body};

/// Every message on the catalog stream, keyed by event id, with how often each id appears.
async fn stream_events(settings: &Settings) -> HashMap<Uuid, (usize, RawEnvelope)> {
    let (naming, js) = helpers::jetstream(settings).await;
    let mut stream = js
        .get_stream(naming.stream_name(StreamKind::Catalog))
        .await
        .expect("stream");
    let count = stream.info().await.expect("info").state.messages as usize;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages").take(count);
    let mut events: HashMap<Uuid, (usize, RawEnvelope)> = HashMap::new();
    while let Some(message) = messages.next().await {
        let message = message.expect("message");
        let envelope: RawEnvelope = serde_json::from_slice(&message.payload).expect("envelope");
        events.entry(envelope.id).or_insert((0, envelope)).0 += 1;
    }
    events
}

async fn wait_for_outbox_drained(app_settings: &Settings) {
    let pool = meridian_platform::db::connect(&app_settings.database_url, "catalog", 1)
        .await
        .expect("pool");
    for _ in 0..200 {
        if meridian_platform::outbox::pending(&pool)
            .await
            .expect("pending")
            == 0
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the outbox was not drained within 10 s");
}

#[tokio::test]
async fn every_product_write_yields_exactly_one_event() {
    let app = TestApp::spawn().await;
    let seller = app.user(Role::Seller).await;
    let token = Some(seller.access_token.as_str());
    let mut ids = Vec::new();
    for n in 0..5 {
        let (status, product) = app
            .call(
                Method::POST,
                "/products",
                token,
                Some(product_body(&format!("EV-{n}"))),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        ids.push(product["id"].as_str().expect("id").to_owned());
    }
    for id in &ids[..3] {
        let (status, _) = app
            .call(
                Method::PUT,
                &format!("/products/{id}"),
                token,
                Some(product_body(&format!("EV-{id}"))),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/products/{}", ids[4]),
            token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A refused write (duplicate SKU) yields no event.
    let (status, _) = app
        .call(Method::POST, "/products", token, Some(product_body("EV-3")))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    wait_for_outbox_drained(&app.settings).await;
    let events = stream_events(&app.settings).await;
    assert!(
        events.values().all(|(n, _)| *n == 1),
        "an event appears twice"
    );
    let count = |t: &str| events.values().filter(|(_, e)| e.event_type == t).count();
    assert_eq!(count("catalog.product_created.v1"), 5);
    assert_eq!(count("catalog.product_updated.v1"), 3);
    assert_eq!(count("catalog.product_deleted.v1"), 1);
    let deleted = events
        .values()
        .find(|(_, e)| e.event_type == "catalog.product_deleted.v1")
        .expect("deletion");
    assert_eq!(deleted.1.aggregate_id.to_string(), ids[4]);
    assert_eq!(deleted.1.aggregate_version, 2);
}

/// Writes `count` products straight through the catalog's store (so their events wait in the
/// outbox), as one seller.
async fn fill_outbox(settings: &Settings, count: usize) {
    let pool = meridian_platform::db::connect(&settings.database_url, "catalog", 2)
        .await
        .expect("pool");
    meridian_catalog::migrate(&pool).await.expect("migrate");
    let seller = Uuid::now_v7();
    let mut tx = pool.begin().await.expect("tx");
    for n in 0..count {
        let input = meridian_catalog::domain::ProductInput {
            sku: format!("BULK-{n}"),
            name: format!("Bulk {n}"),
            description: String::new(),
            price: Money {
                amount: 100,
                currency: "USD".into(),
            },
            category_id: None,
            attributes: serde_json::json!({}),
            images: vec![],
            status: meridian_catalog::domain::ProductStatus::Active,
        };
        meridian_catalog::store::insert_product(&mut tx, "local", seller, &input)
            .await
            .expect("insert");
    }
    tx.commit().await.expect("commit");
}

fn spawn_core(settings: &Settings) -> std::process::Child {
    let http = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let ops = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let (http, ops) = (
        http.local_addr().expect("addr"),
        ops.local_addr().expect("addr"),
    );
    std::process::Command::new(env!("CARGO_BIN_EXE_meridian-core"))
        .arg("serve")
        .env("DATABASE_URL", &settings.database_url)
        .env("NATS_URL", &settings.nats_url)
        .env("REDIS_URL", &settings.redis_url)
        .env("MERIDIAN_NATS_PREFIX", &settings.nats_prefix)
        .env("MERIDIAN_REDIS_PREFIX", &settings.redis_prefix)
        .env("MERIDIAN_SERVICES", "catalog")
        .env("MERIDIAN_HTTP_ADDR", http.to_string())
        .env("MERIDIAN_OPS_ADDR", ops.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn meridian-core")
}

async fn stream_count(settings: &Settings) -> u64 {
    let (naming, js) = helpers::jetstream(settings).await;
    match js.get_stream(naming.stream_name(StreamKind::Catalog)).await {
        Ok(mut stream) => stream.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

#[tokio::test]
async fn a_relay_killed_mid_batch_publishes_each_event_exactly_once() {
    const EVENTS: usize = 3000;
    let settings = isolated_settings().await;
    fill_outbox(&settings, EVENTS).await;

    // A relay that died after publishing and before marking leaves published rows unmarked:
    // publish the first rows by hand, as it would have, with their event ids.
    let (naming, js) = helpers::jetstream(&settings).await;
    meridian_jetstream::declare::declare_streams(&js, &naming)
        .await
        .expect("declare");
    let pool = meridian_platform::db::connect(&settings.database_url, "catalog", 1)
        .await
        .expect("pool");
    let first: Vec<(Uuid, String, sqlx::types::Json<RawEnvelope>)> =
        sqlx::query_as("SELECT id, event_type, envelope FROM outbox ORDER BY seq LIMIT 100")
            .fetch_all(&pool)
            .await
            .expect("rows");
    for (id, event_type, envelope) in &first {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.to_string().as_str());
        js.publish_with_headers(
            naming.event_subject(event_type),
            headers,
            serde_json::to_vec(&envelope.0).expect("json").into(),
        )
        .await
        .expect("publish")
        .await
        .expect("ack");
    }

    // Kill the core with SIGKILL while it relays, twice.
    for _ in 0..2 {
        let before = stream_count(&settings).await;
        let mut core = spawn_core(&settings);
        let mut waited = 0;
        while stream_count(&settings).await <= before + 50 && waited < 600 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += 1;
        }
        core.kill().expect("SIGKILL");
        core.wait().expect("reaped");
    }
    let pending = meridian_platform::outbox::pending(&pool)
        .await
        .expect("pending");
    assert!(pending > 0, "the kill came too late to interrupt the relay");

    // A restarted relay finishes the job.
    let mut core = spawn_core(&settings);
    wait_for_outbox_drained(&settings).await;
    core.kill().expect("SIGKILL");
    core.wait().expect("reaped");

    let events = stream_events(&settings).await;
    assert_eq!(events.len(), EVENTS, "every outbox row reached the stream");
    assert!(
        events.values().all(|(n, _)| *n == 1),
        "no event is on the stream twice"
    );
}
