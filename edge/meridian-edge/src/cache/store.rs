//! Where cached responses live: memory, bounded by weight, with TinyUFO (TinyLFU admission,
//! S3-FIFO eviction) deciding what stays. Pingora's own `MemCache` is for tests only: it never
//! evicts.
//!
//! A response is stored whole once its body has been read to the end (no partial reads of an
//! object still being written: the cache lock makes concurrent misses wait for the writer
//! instead). Bodies larger than [`MAX_OBJECT_BYTES`] are not stored.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::Result;
use pingora_cache::CacheMeta;
use pingora_cache::key::{CacheHashKey, CacheKey};
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

struct Entry {
    meta: (Vec<u8>, Vec<u8>),
    body: Bytes,
}

impl Entry {
    fn weight(&self) -> u16 {
        let bytes = self.body.len() + self.meta.0.len() + self.meta.1.len();
        u16::try_from(bytes / WEIGHT_UNIT + 1).unwrap_or(u16::MAX)
    }
}

pub struct MemoryStore {
    entries: TinyUfo<String, Arc<Entry>>,
}

impl MemoryStore {
    /// A store of at most `capacity_bytes`, sized for about `expected_objects`.
    pub fn new(capacity_bytes: usize, expected_objects: usize) -> Self {
        MemoryStore {
            entries: TinyUfo::new(capacity_bytes / WEIGHT_UNIT, expected_objects),
        }
    }

    fn put(&self, key: String, entry: Entry) {
        let weight = entry.weight();
        self.entries.put(key, Arc::new(entry), weight);
    }
}

#[async_trait]
impl Storage for MemoryStore {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let Some(entry) = self.entries.get(&key.combined()) else {
            return Ok(None);
        };
        let meta = CacheMeta::deserialize(&entry.meta.0, &entry.meta.1)?;
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
            key: key.combined(),
            meta: meta.serialize()?,
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
        Ok(match self.entries.remove(&target.key().combined()) {
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
        let combined = key.combined();
        let Some(entry) = self.entries.get(&combined) else {
            return Ok(false);
        };
        let updated = Entry {
            meta: meta.serialize()?,
            body: entry.body.clone(),
        };
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
    key: String,
    meta: (Vec<u8>, Vec<u8>),
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
                meta: self.meta,
                body: self.body.freeze(),
            };
            self.store.put(self.key, entry);
        }
        Ok(MissFinishType::Created(size))
    }
}
