//! Keeping cached catalog answers honest: catalog events on JetStream purge what they change.
//!
//! Every key carries generations ([`Generations::for_path`]), and purging bumps them, so nothing
//! cached before a change is served after it (the old entries age out of the store unread):
//!
//! - a product's own page (`/products/{id}`, any query) carries its product's slot: an update
//!   or deletion of that product bumps it, and other products stay cached. Products share
//!   [`PRODUCT_SLOTS`] slots by hash, so memory stays bounded whatever the catalog's size; a
//!   change then also purges the few products sharing its slot, never too little.
//! - every other cached route (lists, search, categories) carries the listing generation,
//!   bumped by every catalog event: any product can appear on any page.
//! - everything carries the epoch, bumped when the edge cannot know what it missed (it lost the
//!   stream, or an event it could not read).
//!
//! The edge follows the catalog stream with an ordered consumer from the moment it connects
//! (`DeliverPolicy::New`).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures::StreamExt;
use meridian_jetstream::{Naming, StreamKind};
use serde::Deserialize;

/// Slots shared by product pages.
pub const PRODUCT_SLOTS: usize = 4096;

/// The cache's generations; one set per process ([`generations`]).
pub struct Generations {
    epoch: AtomicU64,
    listings: AtomicU64,
    products: Box<[AtomicU64]>,
}

/// What a cache key carries for a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGenerations {
    pub epoch: u64,
    /// The product slot's generation for a product page, the listing generation otherwise.
    pub scope: u64,
    /// Whether `scope` is a product slot's (so a listing and a page never share a key).
    pub product_page: bool,
}

impl Generations {
    fn new() -> Self {
        Generations {
            epoch: AtomicU64::new(0),
            listings: AtomicU64::new(0),
            products: (0..PRODUCT_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn slot(&self, product_id: &str) -> &AtomicU64 {
        // `DefaultHasher::new` has fixed keys: a product keeps its slot.
        let mut hasher = DefaultHasher::new();
        for byte in product_id.bytes() {
            byte.to_ascii_lowercase().hash(&mut hasher);
        }
        let hash = hasher.finish();
        // PRODUCT_SLOTS is a power of two: the low bits pick the slot.
        &self.products[usize::try_from(hash).unwrap_or_default() & (PRODUCT_SLOTS - 1)]
    }

    /// The generations a key for `path` carries.
    pub fn for_path(&self, path: &str) -> KeyGenerations {
        let epoch = self.epoch.load(Ordering::Acquire);
        match product_page(path) {
            Some(id) => KeyGenerations {
                epoch,
                scope: self.slot(id).load(Ordering::Acquire),
                product_page: true,
            },
            None => KeyGenerations {
                epoch,
                scope: self.listings.load(Ordering::Acquire),
                product_page: false,
            },
        }
    }

    /// A product changed or went: its page and every listing.
    pub fn product_changed(&self, product_id: &str) {
        self.slot(product_id).fetch_add(1, Ordering::AcqRel);
        self.listings.fetch_add(1, Ordering::AcqRel);
    }

    /// Something was added that listings may show.
    pub fn listing_changed(&self) {
        self.listings.fetch_add(1, Ordering::AcqRel);
    }

    /// Makes everything cached so far unreachable.
    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Applies one catalog event (its JSON envelope).
    fn apply(&self, payload: &[u8]) {
        #[derive(Deserialize)]
        struct Head<'a> {
            #[serde(rename = "type", borrow)]
            event_type: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            aggregate_id: Option<std::borrow::Cow<'a, str>>,
        }
        let Ok(head) = serde_json::from_slice::<Head<'_>>(payload) else {
            tracing::warn!("a catalog event the edge cannot read; purging the whole cache");
            self.invalidate_all();
            return;
        };
        match (head.event_type.as_ref(), head.aggregate_id) {
            ("catalog.product_created.v1", _) => self.listing_changed(),
            ("catalog.product_updated.v1" | "catalog.product_deleted.v1", Some(product_id)) => {
                self.product_changed(&product_id)
            }
            // A type this edge does not know yet (or one without its product): it may change
            // anything.
            _ => self.invalidate_all(),
        }
    }
}

/// The product id of a product page (`/products/{id}`), if `path` is one.
fn product_page(path: &str) -> Option<&str> {
    let id = path.strip_prefix("/products/")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

static GENERATIONS: LazyLock<Generations> = LazyLock::new(Generations::new);

/// The process's generations.
pub fn generations() -> &'static Generations {
    &GENERATIONS
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
        generations().invalidate_all();
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
        let message = message.map_err(|e| format!("reading the catalog stream: {e}"))?;
        generations().apply(&message.payload);
    }
    Err("the catalog stream ended".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0190c2a4-0000-7000-8000-000000000001";

    fn event(kind: &str, id: &str) -> Vec<u8> {
        format!(r#"{{"id":"x","type":"catalog.{kind}.v1","aggregate_id":"{id}","data":{{}}}}"#)
            .into_bytes()
    }

    /// A product other than `A` that does not share its slot.
    fn other_product(generations: &Generations) -> String {
        (0..)
            .map(|n| format!("0190c2a4-0000-7000-8000-{n:012}"))
            .find(|id| !std::ptr::eq(generations.slot(id), generations.slot(A)))
            .unwrap()
    }

    #[test]
    fn an_update_purges_its_product_and_every_listing_but_not_other_products() {
        let generations = Generations::new();
        let other = other_product(&generations);
        let page = format!("/products/{A}");
        let other_page = format!("/products/{other}");
        let before = (
            generations.for_path(&page),
            generations.for_path(&other_page),
            generations.for_path("/products"),
            generations.for_path("/search"),
        );
        generations.apply(&event("product_updated", A));
        assert_ne!(generations.for_path(&page), before.0);
        assert_eq!(generations.for_path(&other_page), before.1);
        assert_ne!(generations.for_path("/products"), before.2);
        assert_ne!(generations.for_path("/search"), before.3);

        let listing = generations.for_path("/categories");
        let other_before = generations.for_path(&other_page);
        generations.apply(&event("product_created", &other));
        assert_ne!(generations.for_path("/categories"), listing);
        assert_eq!(generations.for_path(&other_page), other_before);

        let page_before = generations.for_path(&page);
        generations.apply(&event("product_deleted", &A.to_uppercase()));
        assert_ne!(generations.for_path(&page), page_before, "ids ignore case");
    }

    #[test]
    fn unreadable_or_unknown_events_purge_everything() {
        let generations = Generations::new();
        let page = format!("/products/{A}");
        for payload in [
            b"not json".to_vec(),
            event("category_renamed", A),
            br#"{"type":"catalog.product_updated.v1"}"#.to_vec(),
        ] {
            let before = generations.for_path(&page);
            generations.apply(&payload);
            assert_ne!(generations.for_path(&page), before);
        }
    }

    #[test]
    fn only_single_segments_are_product_pages() {
        assert_eq!(product_page(&format!("/products/{A}")), Some(A));
        assert_eq!(product_page("/products/"), None);
        assert_eq!(product_page("/products"), None);
        assert_eq!(product_page(&format!("/products/{A}/reviews")), None);
    }
}
