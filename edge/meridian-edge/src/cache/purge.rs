//! Keeping cached catalog answers honest: every catalog event on JetStream (a product created,
//! changed or deleted, a category added) moves the cache to a new generation, which is part of
//! every key, so nothing cached before the change is served after it.
//!
//! A generation per change is coarse: one product's update also drops cached list pages and
//! other products. Lists must go anyway (any product can appear on any page), and catalog
//! writes are rare next to reads, so precision would buy little.
//!
//! The edge follows the catalog stream with an ordered consumer from the moment it connects
//! (`DeliverPolicy::New`); after a lost connection it moves to a new generation before following
//! again, since it cannot know what it missed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures::StreamExt;
use meridian_jetstream::{Naming, StreamKind};

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The cache generation, part of every key.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Makes everything cached so far unreachable (it ages out of the store).
pub fn invalidate_all() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// Follows the catalog stream until the process ends, reconnecting after failures.
pub async fn follow_catalog(nats_url: String, naming: Naming) {
    let mut pause = Duration::from_millis(200);
    loop {
        match follow_once(&nats_url, &naming).await {
            Ok(()) => pause = Duration::from_millis(200),
            Err(error) => {
                tracing::warn!(%error, "following catalog events failed; cached answers may be stale until it recovers");
            }
        }
        // Whatever happened while not following, nothing cached before can be trusted.
        invalidate_all();
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

async fn follow_once(nats_url: &str, naming: &Naming) -> Result<(), String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(3))
        .connect(nats_url)
        .await
        .map_err(|e| format!("connecting to NATS: {e}"))?;
    let context = jetstream::new(client);
    let stream = context
        .get_stream(naming.stream_name(StreamKind::Catalog))
        .await
        .map_err(|e| format!("finding the catalog stream: {e}"))?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::New,
            filter_subject: naming.stream_subjects(StreamKind::Catalog),
            ..OrderedConfig::default()
        })
        .await
        .map_err(|e| format!("creating the consumer: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("reading the catalog stream: {e}"))?;
    tracing::info!("following catalog events for the response cache");
    while let Some(message) = messages.next().await {
        message.map_err(|e| format!("reading the catalog stream: {e}"))?;
        invalidate_all();
    }
    Err("the catalog stream ended".into())
}
