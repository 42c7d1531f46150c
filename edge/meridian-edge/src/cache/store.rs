//! Where cached responses live: memory, bounded by weight, with TinyUFO (TinyLFU admission,
//! S3-FIFO eviction) deciding what stays. Pingora's own `MemCache` is for tests only: it never
//! evicts.
//!
//! A response is stored whole once its body has been read to the end (no partial reads of an
//! object still being written: the cache lock makes concurrent misses wait for the writer
//! instead). Bodies larger than [`MAX_OBJECT_BYTES`] are not stored.

use std::any::Any;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::Result;
use pingora::http::ResponseHeader;
use pingora_cache::CacheMeta;
use pingora_cache::key::{CacheHashKey, CacheKey, HashBinary};
use pingora_cache::storage::{
    HandleHit, HandleMiss, HitHandler, MissFinishType, MissHandler, PurgeOutcome, PurgeTarget,
    PurgeType, Storage,
};
use pingora_cache::trace::SpanHandle;
use tinyufo::TinyUfo;

/// The largest body the cache keeps.
pub const MAX_OBJECT_BYTES: usize = 1 << 20;
/// Weights are KiB, as TinyUFO's weights are 16-bit.
const WEIGHT_UNIT: usize = 1024;

/// A stored response. The metadata is kept parsed, not as Pingora's serialized form: a hit then
/// costs a header-map clone instead of a decompression and a parse.
struct Entry {
    fresh_until: SystemTime,
    created: SystemTime,
    stale_while_revalidate_sec: u32,
    stale_if_error_sec: u32,
    /// Which variant of a response that varies this is (Pingora's vary handling reads it).
    variance: Option<HashBinary>,
    header: ResponseHeader,
    /// The status line and headers as HTTP/1.1 sends them (hop-by-hop headers left out), for
    /// the front door, which completes them with the per-request headers.
    wire_head: Bytes,
    body: Bytes,
}

impl Entry {
    fn new(meta: &CacheMeta, body: Bytes) -> Self {
        let header = meta.response_header_copy();
        Entry {
            wire_head: wire_head(&header),
            fresh_until: meta.fresh_until(),
            created: meta.created(),
            stale_while_revalidate_sec: meta.stale_while_revalidate_sec(),
            stale_if_error_sec: meta.stale_if_error_sec(),
            variance: meta.variance(),
            header,
            body,
        }
    }

    fn meta(&self) -> CacheMeta {
        let mut meta = CacheMeta::new(
            self.fresh_until,
            self.created,
            self.stale_while_revalidate_sec,
            self.stale_if_error_sec,
            self.header.clone(),
        );
        if let Some(variance) = self.variance {
            meta.set_variance_key(variance);
        }
        meta
    }

    fn weight(&self) -> u16 {
        // Headers weighed at a generous 128 bytes each.
        let bytes = self.body.len() + self.header.headers.len() * 128;
        u16::try_from(bytes / WEIGHT_UNIT + 1).unwrap_or(u16::MAX)
    }
}

/// A fresh answer, as [`MemoryStore::fresh`] finds it.
pub struct FreshHit {
    entry: Arc<Entry>,
    pub age_s: u64,
}

impl FreshHit {
    /// The stored response head, to be completed with `Age` and the edge's own headers.
    pub fn header(&self) -> &ResponseHeader {
        &self.entry.header
    }

    /// [`FreshHit::header`] as HTTP/1.1 sends it, without hop-by-hop headers and the final
    /// blank line.
    pub fn wire_head(&self) -> &[u8] {
        &self.entry.wire_head
    }

    pub fn body(&self) -> &Bytes {
        &self.entry.body
    }
}

/// Headers a stored response does not carry to the next hop (RFC 9110 section 7.6.1), and
/// the ones every hit sets anew.
pub const NOT_STORED: [&str; 10] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "age",
    "content-length",
    "x-request-id",
    "x-cache",
];

/// `header`'s status line and stored headers, each line ending in CRLF.
fn wire_head(header: &ResponseHeader) -> Bytes {
    let mut head = BytesMut::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(header.status.as_str().as_bytes());
    head.extend_from_slice(b" ");
    head.extend_from_slice(header.status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in &header.headers {
        if NOT_STORED.contains(&name.as_str()) {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.freeze()
}

pub struct MemoryStore {
    entries: TinyUfo<HashBinary, Arc<Entry>>,
}

impl MemoryStore {
    /// A store of at most `capacity_bytes`, sized for about `expected_objects`.
    pub fn new(capacity_bytes: usize, expected_objects: usize) -> Self {
        MemoryStore {
            entries: TinyUfo::new(capacity_bytes / WEIGHT_UNIT, expected_objects),
        }
    }

    fn put(&self, key: HashBinary, entry: Entry) {
        let weight = entry.weight();
        self.entries.put(key, Arc::new(entry), weight);
    }

    /// The entry under `key` if it is fresh at `now` and varies on nothing.
    pub fn fresh(&self, key: &CacheKey, now: SystemTime) -> Option<FreshHit> {
        let entry = self.entries.get(&key.combined_bin())?;
        let varies =
            entry.variance.is_some() || entry.header.headers.contains_key(http::header::VARY);
        if varies || now >= entry.fresh_until {
            return None;
        }
        let age_s = now
            .duration_since(entry.created)
            .map_or(0, |age| age.as_secs());
        Some(FreshHit { entry, age_s })
    }
}

#[async_trait]
impl Storage for MemoryStore {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let Some(entry) = self.entries.get(&key.combined_bin()) else {
            return Ok(None);
        };
        let meta = entry.meta();
        let hit = Hit {
            body: Some(entry.body.clone()),
            weight: entry.body.len(),
        };
        Ok(Some((meta, Box::new(hit))))
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        Ok(Box::new(Miss {
            store: self,
            key: key.combined_bin(),
            meta: Entry::new(meta, Bytes::new()),
            body: BytesMut::new(),
            too_large: false,
        }))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        _purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        Ok(match self.entries.remove(&target.key().combined_bin()) {
            Some(_) => PurgeOutcome::Purged(None),
            None => PurgeOutcome::NotFound,
        })
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        let combined = key.combined_bin();
        let Some(entry) = self.entries.get(&combined) else {
            return Ok(false);
        };
        let updated = Entry::new(meta, entry.body.clone());
        self.put(combined, updated);
        Ok(true)
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}

struct Hit {
    body: Option<Bytes>,
    weight: usize,
}

#[async_trait]
impl HandleHit for Hit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        Ok(self.body.take())
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn get_eviction_weight(&self) -> usize {
        self.weight
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

struct Miss {
    store: &'static MemoryStore,
    key: HashBinary,
    /// The response's metadata, with its body still to come.
    meta: Entry,
    body: BytesMut,
    too_large: bool,
}

#[async_trait]
impl HandleMiss for Miss {
    async fn write_body(&mut self, data: Bytes, _eof: bool) -> Result<()> {
        if self.body.len() + data.len() > MAX_OBJECT_BYTES {
            self.too_large = true;
            self.body = BytesMut::new();
        } else if !self.too_large {
            self.body.extend_from_slice(&data);
        }
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        let size = self.body.len();
        if !self.too_large {
            let entry = Entry {
                body: self.body.freeze(),
                ..self.meta
            };
            self.store.put(self.key, entry);
        }
        Ok(MissFinishType::Created(size))
    }
}
