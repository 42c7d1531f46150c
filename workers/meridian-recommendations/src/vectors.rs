//! The product embeddings in memory, and an exact nearest-neighbour search over them.
//!
//! Vectors are unit length, so the cosine is a dot product; a query scans every product for
//! sale (one contiguous `f32` array, which the compiler vectorises) and keeps the best `k` in
//! a small heap. At 100k products of 384 dimensions a scan is about 38M multiply-adds.

use std::{
    cmp::Ordering,
    collections::{BinaryHeap, HashMap, HashSet},
    sync::RwLock,
};

use uuid::Uuid;

/// A product's embedding and what recommending it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub version: i64,
    pub category_id: Option<Uuid>,
    /// For sale: only such products are recommended.
    pub active: bool,
    pub vector: Vec<f32>,
}

pub struct Vectors {
    dimension: usize,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    ids: Vec<Uuid>,
    meta: Vec<(i64, Option<Uuid>, bool)>,
    /// `ids.len() * dimension` values; an inactive product's slot keeps its last vector.
    data: Vec<f32>,
    slot: HashMap<Uuid, usize>,
}

/// A scored candidate, ordered by score (then id, so ties break the same way every time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub id: Uuid,
    pub score: f32,
}

impl Eq for Scored {}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.id.cmp(&self.id))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The dot product of two equally long slices.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight running sums let the compiler keep the loop in vector registers.
    let mut sums = [0f32; 8];
    let chunks = a.len() / 8 * 8;
    for (x, y) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    let tail: f32 = a[chunks..]
        .iter()
        .zip(&b[chunks..])
        .map(|(x, y)| x * y)
        .sum();
    sums.iter().sum::<f32>() + tail
}

impl Vectors {
    pub fn new(dimension: usize) -> Self {
        Vectors {
            dimension,
            inner: RwLock::new(Inner::default()),
        }
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Stores `entry` unless the version held is as new; returns whether it did. A vector of
    /// the wrong length (an inactive product never embedded) keeps the one held, or zeros.
    pub fn upsert(&self, id: Uuid, entry: Entry) -> bool {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let dimension = self.dimension;
        let slot = match inner.slot.get(&id) {
            Some(&slot) => {
                if inner.meta[slot].0 >= entry.version {
                    return false;
                }
                slot
            }
            None => {
                let slot = inner.ids.len();
                inner.ids.push(id);
                inner.meta.push((0, None, false));
                inner.data.extend(std::iter::repeat_n(0.0, dimension));
                inner.slot.insert(id, slot);
                slot
            }
        };
        inner.meta[slot] = (entry.version, entry.category_id, entry.active);
        if entry.vector.len() == dimension {
            inner.data[slot * dimension..(slot + 1) * dimension].copy_from_slice(&entry.vector);
        }
        true
    }

    pub fn get(&self, id: Uuid) -> Option<Entry> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let slot = *inner.slot.get(&id)?;
        let (version, category_id, active) = inner.meta[slot];
        Some(Entry {
            version,
            category_id,
            active,
            vector: inner.data[slot * self.dimension..(slot + 1) * self.dimension].to_vec(),
        })
    }

    /// The version held for `id`.
    pub fn version(&self, id: Uuid) -> Option<i64> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.slot.get(&id).map(|&slot| inner.meta[slot].0)
    }

    /// Products for sale.
    pub fn active(&self) -> usize {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.meta.iter().filter(|m| m.2).count()
    }

    /// The `k` products for sale closest to `query`, best first, leaving out `exclude`.
    pub fn nearest(&self, query: &[f32], k: usize, exclude: &HashSet<Uuid>) -> Vec<Scored> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut heap = BinaryHeap::with_capacity(k + 1);
        for (slot, vector) in inner.data.chunks_exact(self.dimension).enumerate() {
            if !inner.meta[slot].2 {
                continue;
            }
            let score = dot(query, vector);
            let candidate = std::cmp::Reverse(Scored {
                id: inner.ids[slot],
                score,
            });
            if heap.len() < k {
                if !exclude.contains(&inner.ids[slot]) {
                    heap.push(candidate);
                }
            } else if heap.peek().is_some_and(|worst| candidate < *worst)
                && !exclude.contains(&inner.ids[slot])
            {
                heap.pop();
                heap.push(candidate);
            }
        }
        let mut best: Vec<Scored> = heap.into_iter().map(|r| r.0).collect();
        best.sort_by(|a, b| b.cmp(a));
        best
    }

    /// The cosine of `query` and each of `ids` held for sale.
    pub fn scores(&self, query: &[f32], ids: &[Uuid]) -> HashMap<Uuid, f32> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        ids.iter()
            .filter_map(|id| {
                let slot = *inner.slot.get(id)?;
                inner.meta[slot].2.then(|| {
                    let vector = &inner.data[slot * self.dimension..(slot + 1) * self.dimension];
                    (*id, dot(query, vector))
                })
            })
            .collect()
    }
}
