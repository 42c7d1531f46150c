//! Keeps the index in step with the catalog and with the region's stock.
//!
//! An index *generation* is a directory holding a tantivy index and the names of its two
//! durable JetStream consumers: product events on the catalog stream, availability events on
//! the inventory stream. A generation is built by creating each consumer at its stream's next
//! sequence, then reading every product from the catalog (`catalog.product_snapshots`) and
//! whether each is in stock from the inventory (`inventory.availability`); from then on the
//! consumers' events are applied in batches, each batch committed before its messages are
//! acknowledged. So a crash loses nothing (unacknowledged events come back), and
//! events that the snapshot already reflects, or that arrive twice or out of order, are
//! recognised by their versions and skipped.
//!
//! `CURRENT` names the generation in use. A reindex builds a new generation beside it while
//! the old one keeps answering queries, then switches and deletes the old one and its
//! consumer. A generation whose consumer is gone (the stream was recreated, or it idled past
//! its threshold) is rebuilt the same way.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{PullConsumer, pull::MessagesErrorKind},
    context::ConsumerInfoErrorKind,
};
use futures::StreamExt;
use meridian_contracts::{
    catalog::{ListProductSnapshots, SnapshotPageRequest},
    inventory::{AvailabilityPageRequest, ListAvailability},
};
use meridian_jetstream::{
    Naming, RawEnvelope, StreamKind,
    events::{
        catalog::{ProductCreatedV1, ProductDeletedV1, ProductUpdatedV1},
        inventory::AvailabilityChangedV1,
    },
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    categories::Categories,
    index::{Applied, SearchIndex, Writer},
};

/// The index generation queries are answered from; `None` until the first one is built.
#[derive(Default)]
pub struct Engine {
    live: RwLock<Option<Arc<SearchIndex>>>,
}

impl Engine {
    pub fn current(&self) -> Option<Arc<SearchIndex>> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, index: Arc<SearchIndex>) {
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = Some(index);
    }
}

/// What a reindex did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Rebuilt {
    /// Searchable products in the new index.
    pub products: u64,
    pub duration_ms: u64,
}

pub type ReindexReply = oneshot::Sender<Result<Rebuilt, String>>;

/// Snapshot pages are this many products.
const PAGE: u32 = 500;
/// Availability pages are this many products (three small fields each).
const STOCK_PAGE: u32 = 5000;
/// A batch of events applied and committed together.
const BATCH: usize = 512;

pub struct Indexer {
    pub nats: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub naming: Naming,
    /// `<data dir>/search/<prefix>/<region>`.
    pub root: PathBuf,
    /// The region whose stock the index follows.
    pub region: String,
    pub engine: Arc<Engine>,
    pub categories: Arc<Categories>,
    pub reindex: mpsc::Receiver<ReindexReply>,
    pub shutdown: CancellationToken,
}

struct Generation {
    dir: PathBuf,
    consumers: Consumers,
    index: Arc<SearchIndex>,
    writer: Arc<Mutex<Writer>>,
}

/// A generation's durable consumers, named after it (the `consumers` file, one per line).
#[derive(Debug, Clone)]
struct Consumers {
    /// On the catalog stream.
    catalog: String,
    /// On the inventory stream.
    stock: String,
}

impl Consumers {
    fn both(&self) -> [(StreamKind, &str); 2] {
        [
            (StreamKind::Catalog, &self.catalog),
            (StreamKind::Inventory, &self.stock),
        ]
    }

    fn parse(text: &str) -> Option<Consumers> {
        let mut lines = text.lines().map(str::trim);
        let catalog = lines.next().filter(|l| !l.is_empty())?.to_owned();
        let stock = lines.next().filter(|l| !l.is_empty())?.to_owned();
        Some(Consumers { catalog, stock })
    }
}

enum Outcome {
    Shutdown,
    /// The consumer broke (NATS restarted, ...): consume again.
    Failed(Generation, String),
    /// The consumer no longer exists: rebuild.
    Lost(Generation),
    Reindex(Generation, ReindexReply),
}

impl Indexer {
    pub async fn run(mut self) {
        let mut current: Option<Generation> = None;
        let mut backoff = Duration::from_millis(200);
        while !self.shutdown.is_cancelled() {
            let generation = match current.take() {
                Some(generation) => generation,
                None => match self.open_or_build().await {
                    Ok(generation) => generation,
                    Err(error) => {
                        tracing::warn!(%error, "building the search index; retrying");
                        self.pause(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                },
            };
            backoff = Duration::from_millis(200);
            self.engine.set(generation.index.clone());
            match self.consume(generation).await {
                Outcome::Shutdown => break,
                Outcome::Failed(generation, error) => {
                    tracing::warn!(%error, "search index consumer failed; resuming");
                    self.pause(Duration::from_secs(1)).await;
                    current = Some(generation);
                }
                Outcome::Lost(generation) => {
                    tracing::warn!(
                        consumers = ?generation.consumers,
                        "a consumer of the search index is gone; rebuilding"
                    );
                    // Queries keep the old index until the new one is ready.
                    match self.build().await {
                        Ok(new) => {
                            self.retire(generation).await;
                            current = Some(new);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "rebuilding the search index");
                            self.pause(backoff).await;
                        }
                    }
                }
                Outcome::Reindex(old, reply) => {
                    let started = Instant::now();
                    match self.build().await {
                        Ok(new) => {
                            self.retire(old).await;
                            let products = new.index.visible_count().unwrap_or(0);
                            let _ = reply.send(Ok(Rebuilt {
                                products,
                                duration_ms: started.elapsed().as_millis() as u64,
                            }));
                            current = Some(new);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "reindex failed; keeping the current index");
                            let _ = reply.send(Err(error.to_string()));
                            current = Some(old);
                        }
                    }
                }
            }
        }
    }

    async fn pause(&self, duration: Duration) {
        tokio::select! {
            () = self.shutdown.cancelled() => {}
            () = tokio::time::sleep(duration) => {}
        }
    }

    async fn stream(&self, kind: StreamKind) -> anyhow::Result<jetstream::stream::Stream> {
        Ok(self
            .jetstream
            .get_stream(self.naming.stream_name(kind))
            .await?)
    }

    /// Whether both consumers still exist.
    async fn consumers_exist(&self, consumers: &Consumers) -> anyhow::Result<bool> {
        for (kind, name) in consumers.both() {
            if !consumer_exists(&self.stream(kind).await?, name).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The generation `CURRENT` names, if it opens and its consumer exists; else a new one.
    async fn open_or_build(&self) -> anyhow::Result<Generation> {
        match self.open_current().await {
            Ok(Some(generation)) => return Ok(generation),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "the search index on disk is unusable; rebuilding")
            }
        }
        self.build().await
    }

    async fn open_current(&self) -> anyhow::Result<Option<Generation>> {
        let Ok(name) = std::fs::read_to_string(self.root.join("CURRENT")) else {
            return Ok(None);
        };
        let dir = self.root.join(name.trim());
        let Some(consumers) = Consumers::parse(&std::fs::read_to_string(dir.join("consumers"))?)
        else {
            return Ok(None);
        };
        if !self.consumers_exist(&consumers).await? {
            return Ok(None);
        }
        let index = SearchIndex::open(&dir.join("index"))?;
        let writer = index.writer()?;
        tracing::info!(generation = %dir.display(), "search index opened");
        Ok(Some(Generation {
            dir,
            consumers,
            index: Arc::new(index),
            writer: Arc::new(Mutex::new(writer)),
        }))
    }

    /// A new generation: its consumers first, then every product of the catalog and its stock.
    async fn build(&self) -> anyhow::Result<Generation> {
        let started = Instant::now();
        let id = Uuid::now_v7().simple().to_string();
        let name = format!("gen-{id}");
        let dir = self.root.join(&name);
        let consumers = Consumers {
            catalog: format!("search-{id}"),
            stock: format!("search-stock-{id}"),
        };
        std::fs::create_dir_all(&dir)?;
        let built = async {
            for (kind, name) in consumers.both() {
                let mut stream = self.stream(kind).await?;
                let next = stream.info().await?.state.last_sequence + 1;
                let config = match kind {
                    StreamKind::Catalog => {
                        meridian_jetstream::consumers::search_indexer(&self.naming, name, next)
                    }
                    _ => meridian_jetstream::consumers::search_stock(&self.naming, name, next),
                };
                stream.create_consumer(config).await?;
            }
            self.fill(&dir).await
        }
        .await;
        let (index, writer) = match built {
            Ok(built) => built,
            Err(error) => {
                self.delete_consumers(&consumers).await;
                let _ = std::fs::remove_dir_all(&dir);
                return Err(error);
            }
        };
        std::fs::write(
            dir.join("consumers"),
            format!("{}\n{}\n", consumers.catalog, consumers.stock),
        )?;
        write_atomically(&self.root.join("CURRENT"), &name)?;
        tracing::info!(
            generation = name,
            products = index.visible_count().unwrap_or(0),
            duration_ms = started.elapsed().as_millis() as u64,
            "search index built from the catalog"
        );
        Ok(Generation {
            dir,
            consumers,
            index,
            writer,
        })
    }

    async fn delete_consumers(&self, consumers: &Consumers) {
        for (kind, name) in consumers.both() {
            let deleted = match self.stream(kind).await {
                Ok(stream) => stream
                    .delete_consumer(name)
                    .await
                    .map(|_| ())
                    .map_err(anyhow::Error::from),
                Err(error) => Err(error),
            };
            if let Err(error) = deleted {
                tracing::warn!(%error, consumer = name, "deleting a search index consumer");
            }
        }
    }

    async fn fill(&self, dir: &Path) -> anyhow::Result<(Arc<SearchIndex>, Arc<Mutex<Writer>>)> {
        let index = SearchIndex::create(Some(&dir.join("index")))?;
        let mut writer = index.writer()?;
        self.categories.refresh().await?;
        // Stock first, so that each product's document is written once, with its stock.
        let mut stock = std::collections::HashMap::new();
        let mut after = None;
        loop {
            let page = meridian_platform::rpc::call::<ListAvailability>(
                &self.nats,
                &self.naming,
                &AvailabilityPageRequest {
                    region: self.region.clone(),
                    after,
                    limit: STOCK_PAGE,
                },
                Duration::from_secs(10),
            )
            .await?;
            stock.extend(
                page.items
                    .into_iter()
                    .map(|item| (item.product_id, (item.in_stock, item.version))),
            );
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut after = None;
        loop {
            let page = meridian_platform::rpc::call::<ListProductSnapshots>(
                &self.nats,
                &self.naming,
                &SnapshotPageRequest { after, limit: PAGE },
                Duration::from_secs(10),
            )
            .await?;
            for product in &page.products {
                if let Some((in_stock, version)) = stock.remove(&product.id) {
                    writer.preset_stock(product.id, in_stock, version);
                }
                let category = product.category_id.and_then(|c| self.categories.name(c));
                writer.upsert(product, category.as_deref())?;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        // Stock of products the catalog no longer has: tombstones that remember it.
        for (product_id, (in_stock, version)) in stock {
            writer.set_stock(product_id, in_stock, version, &index.reader)?;
        }
        let index = Arc::new(index);
        let writer = Arc::new(Mutex::new(writer));
        commit(&writer, &index).await?;
        Ok((index, writer))
    }

    /// Deletes a generation that is no longer in use, and its consumers.
    async fn retire(&self, generation: Generation) {
        self.delete_consumers(&generation.consumers).await;
        let dir = generation.dir.clone();
        drop(generation);
        if let Err(error) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(%error, dir = %dir.display(), "deleting an old search index");
        }
    }

    async fn consume(&mut self, generation: Generation) -> Outcome {
        match self.consumers_exist(&generation.consumers).await {
            Ok(true) => {}
            Ok(false) => return Outcome::Lost(generation),
            Err(error) => return Outcome::Failed(generation, error.to_string()),
        }
        let mut consumers: Vec<PullConsumer> = Vec::with_capacity(2);
        let mut streams = Vec::with_capacity(2);
        let names = generation.consumers.clone();
        for (kind, name) in names.both() {
            let opened = async {
                let consumer: PullConsumer = self
                    .stream(kind)
                    .await?
                    .get_consumer(name)
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
                let messages = consumer.messages().await?;
                anyhow::Ok((consumer, messages))
            }
            .await;
            match opened {
                Ok((consumer, messages)) => {
                    consumers.push(consumer);
                    streams.push(messages);
                }
                Err(error) => return Outcome::Failed(generation, error.to_string()),
            }
        }
        // Both consumers' messages, in batches: each message acknowledges to its own consumer.
        let mut messages = futures::stream::select_all(streams).ready_chunks(BATCH);
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return Outcome::Shutdown,
                Some(reply) = self.reindex.recv() => return Outcome::Reindex(generation, reply),
                _ = tick.tick() => {
                    let mut pending = 0;
                    for consumer in &mut consumers {
                        if let Ok(info) = consumer.info().await {
                            pending += info.num_pending;
                        }
                    }
                    metrics::gauge!("search_index_pending_events").set(pending as f64);
                    if let Ok(count) = generation.index.visible_count() {
                        metrics::gauge!("search_index_documents").set(count as f64);
                    }
                    // New categories without products yet, for completions.
                    if let Err(error) = self.categories.refresh().await {
                        tracing::debug!(%error, "refreshing categories");
                    }
                }
                batch = messages.next() => {
                    let Some(batch) = batch else {
                        return Outcome::Failed(generation, "the message stream ended".into());
                    };
                    let mut received = Vec::with_capacity(batch.len());
                    for message in batch {
                        match message {
                            Ok(message) => received.push(message),
                            Err(error) => {
                                if matches!(error.kind(), MessagesErrorKind::MissingHeartbeat) {
                                    return Outcome::Failed(generation, error.to_string());
                                }
                                tracing::debug!(%error, "search consumer");
                            }
                        }
                    }
                    if let Err(error) = self.apply(&generation, &received).await {
                        // Nothing acknowledged: the batch comes back after `ack_wait`.
                        return Outcome::Failed(generation, error.to_string());
                    }
                    for message in &received {
                        if let Err(error) = message.ack().await {
                            tracing::debug!(%error, "acknowledging a search event");
                        }
                    }
                }
            }
        }
    }

    /// Applies a batch and commits it.
    async fn apply(
        &self,
        generation: &Generation,
        messages: &[jetstream::Message],
    ) -> anyhow::Result<()> {
        let mut events = Vec::with_capacity(messages.len());
        for message in messages {
            match serde_json::from_slice::<RawEnvelope>(&message.payload) {
                Ok(event) => events.push(event),
                Err(error) => {
                    metrics::counter!("search_events_total", "outcome" => "unreadable")
                        .increment(1);
                    tracing::warn!(%error, subject = %message.subject, "an unreadable event; dropped");
                    let _ = message.ack_with(AckKind::Term).await;
                }
            }
        }
        let unknown_category = events.iter().any(|event| {
            snapshot_of(event)
                .and_then(|p| p.category_id)
                .is_some_and(|c| self.categories.name(c).is_none())
        });
        if unknown_category && let Err(error) = self.categories.refresh().await {
            tracing::warn!(%error, "refreshing categories for the search index");
        }
        let newest = events.iter().map(|e| e.occurred_at).max();
        {
            let mut writer = generation.writer.lock().unwrap_or_else(|e| e.into_inner());
            for event in &events {
                let applied = if let Some(product) = snapshot_of(event) {
                    let category = product.category_id.and_then(|c| self.categories.name(c));
                    writer.upsert(&product, category.as_deref())?
                } else if let Some(Ok(deleted)) = event.decode::<ProductDeletedV1>() {
                    writer.delete(deleted.product_id, deleted.version)?
                } else if let Some(Ok(stock)) = event.decode::<AvailabilityChangedV1>() {
                    if stock.region != self.region {
                        continue;
                    }
                    writer.set_stock(
                        stock.product_id,
                        stock.in_stock,
                        event.aggregate_version,
                        &generation.index.reader,
                    )?
                } else {
                    continue;
                };
                let outcome = match applied {
                    Applied::Applied => "applied",
                    Applied::Stale => "stale",
                };
                metrics::counter!("search_events_total", "outcome" => outcome).increment(1);
            }
        }
        commit(&generation.writer, &generation.index).await?;
        if let Some(newest) = newest {
            let lag = (chrono::Utc::now() - newest).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::gauge!("search_index_lag_seconds").set(lag);
        }
        Ok(())
    }
}

fn snapshot_of(
    event: &RawEnvelope,
) -> Option<meridian_jetstream::events::catalog::ProductSnapshotV1> {
    if let Some(Ok(created)) = event.decode::<ProductCreatedV1>() {
        return Some(created.product);
    }
    if let Some(Ok(updated)) = event.decode::<ProductUpdatedV1>() {
        return Some(updated.product);
    }
    None
}

/// Commits on a blocking thread (the commit waits for the disk).
async fn commit(writer: &Arc<Mutex<Writer>>, index: &Arc<SearchIndex>) -> anyhow::Result<()> {
    let writer = writer.clone();
    let index = index.clone();
    tokio::task::spawn_blocking(move || {
        writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .commit(&index.reader)
    })
    .await??;
    Ok(())
}

async fn consumer_exists(stream: &jetstream::stream::Stream, name: &str) -> anyhow::Result<bool> {
    match stream.consumer_info(name).await {
        Ok(_) => Ok(true),
        Err(error) if matches!(error.kind(), ConsumerInfoErrorKind::NotFound) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, contents)?;
    std::fs::rename(temporary, path)
}
