//! The consumer runner on a real JetStream stream: a burst of events reaches a batch handler
//! in batches, and each event is acknowledged, retried or dropped on its own.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use meridian_jetstream::{Envelope, RawEnvelope, StreamKind, events::catalog::ProductDeletedV1};
use meridian_platform::consume::{self, Failure};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{isolated_settings, jetstream};

const EVENTS: usize = 60;
const MAX_BATCH: usize = 16;

#[tokio::test]
async fn a_burst_arrives_in_batches_and_each_event_is_settled_alone() {
    let settings = isolated_settings().await;
    let (naming, js) = jetstream(&settings).await;
    meridian_jetstream::declare::declare_streams(&js, &naming)
        .await
        .expect("streams");
    // The whole burst is on the stream before the consumer starts.
    let mut ids = Vec::new();
    for n in 0..EVENTS {
        let product = Uuid::now_v7();
        let event = Envelope::new(
            "local",
            product,
            n as i64 + 1,
            ProductDeletedV1 {
                product_id: product,
                sku: format!("burst-{n}"),
                version: n as i64 + 1,
            },
        )
        .into_raw()
        .expect("raw");
        ids.push(event.id);
        js.publish(
            naming.subject_of::<ProductDeletedV1>(),
            serde_json::to_vec(&event).expect("json").into(),
        )
        .await
        .expect("publish")
        .await
        .expect("ack");
    }
    let (retried, dropped) = (ids[7], ids[9]);

    // Per event, the deliveries the handler saw; per call, the batch's size.
    let seen: Arc<Mutex<HashMap<Uuid, Vec<i64>>>> = Arc::default();
    let batches: Arc<Mutex<Vec<usize>>> = Arc::default();
    let shutdown = CancellationToken::new();
    let runner = tokio::spawn(consume::run_batched(
        js.clone(),
        naming.clone(),
        StreamKind::Catalog,
        meridian_jetstream::consumers::recommendations_catalog(&naming),
        MAX_BATCH,
        {
            let (seen, batches) = (seen.clone(), batches.clone());
            move |events: Vec<(RawEnvelope, i64)>| {
                batches.lock().unwrap().push(events.len());
                let outcomes = events
                    .iter()
                    .map(|(event, delivered)| {
                        seen.lock()
                            .unwrap()
                            .entry(event.id)
                            .or_default()
                            .push(*delivered);
                        if event.id == retried && *delivered == 1 {
                            Err(Failure::Retry {
                                delay: Duration::from_millis(100),
                                cause: "try again".into(),
                            })
                        } else if event.id == dropped {
                            Err(Failure::Drop("never applicable".into()))
                        } else {
                            Ok(())
                        }
                    })
                    .collect::<Vec<_>>();
                async move { outcomes }
            }
        },
        shutdown.clone(),
    ));

    let settled = || {
        let seen = seen.lock().unwrap();
        seen.len() == EVENTS && seen.get(&retried).is_some_and(|d| d.len() == 2)
    };
    for _ in 0..200 {
        if settled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Nothing more comes: every other event was acknowledged at its first delivery.
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    runner.await.expect("runner");

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), EVENTS, "every event handled");
    for id in &ids {
        let want: &[i64] = if *id == retried { &[1, 2] } else { &[1] };
        assert_eq!(seen[id], want, "deliveries of {id}");
    }
    let batches = batches.lock().unwrap();
    let largest = batches.iter().copied().max().unwrap_or(0);
    assert!(
        largest > 1 && largest <= MAX_BATCH,
        "batch sizes {batches:?}"
    );
    assert_eq!(batches.iter().sum::<usize>(), EVENTS + 1, "{batches:?}");
}
