//! The product embeddings in memory, and a nearest-neighbour search over them: exact up to
//! [`EXACT_LIMIT`] products, approximate beyond.
//!
//! Vectors are unit length, so the cosine is a dot product. Up to the limit a query scans every
//! product for sale, at 100k products of 384 dimensions about 38M multiply-adds. The scan is
//! memory-bound, so it reads a bfloat16 copy of the vectors (half the bytes), keeps the best
//! `k` of those rough scores, and then scores exactly, from the `f32` vectors, every product
//! whose rough score comes within twice the rounding bound of the `k`-th: the answer is the
//! exact top `k` (see [`Vectors::nearest_exact`]).
//! Beyond it, an inverted file bounds the work: the vectors are grouped around √n centroids
//! (k-means on a sample), and a query scans only the groups of its [`PROBE_FRACTION`] nearest
//! centroids. New and changed vectors join their nearest group; the groups are rebuilt when the
//! collection has doubled since the last build.

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
    exact_limit: usize,
    inner: RwLock<Inner>,
}

/// Up to this many products, searches are exact.
pub const EXACT_LIMIT: usize = 100_000;
/// The share of the inverted file's groups a query scans (at least [`MIN_PROBES`]).
pub const PROBE_FRACTION: f32 = 0.08;
const MIN_PROBES: usize = 8;
/// From this many products on, the exhaustive scan runs on every core (up to four).
const PARALLEL_SCAN: usize = 20_000;
/// Vectors the centroids are trained on, and training rounds.
const TRAINING_SAMPLE: usize = 20_000;
const TRAINING_ROUNDS: usize = 6;

#[derive(Default)]
struct Inner {
    ids: Vec<Uuid>,
    meta: Vec<(i64, Option<Uuid>, bool)>,
    /// `ids.len() * dimension` values; an inactive product's slot keeps its last vector.
    data: Vec<f32>,
    /// `data` rounded to bfloat16 (the upper half of each `f32`, rounded to nearest): what the
    /// exhaustive scan reads.
    narrow: Vec<u16>,
    /// The largest norm of any vector stored: with the query's, it bounds a rough score's error.
    max_norm: f32,
    slot: HashMap<Uuid, usize>,
    /// Beyond the exact limit: the groups.
    groups: Option<Groups>,
}

/// An inverted file: centroids, and the slots nearest to each, with copies of their vectors
/// side by side (a probe reads its group's vectors in one sweep, not scattered).
struct Groups {
    centroids: Vec<f32>,
    members: Vec<Vec<usize>>,
    /// `members[g].len() * dimension` values per group, in the members' order.
    vectors: Vec<Vec<f32>>,
    /// Each slot's group.
    group_of: Vec<usize>,
    /// The number of slots when the groups were built.
    built_for: usize,
}

impl Groups {
    fn count(&self) -> usize {
        self.members.len()
    }

    fn nearest(&self, vector: &[f32], dimension: usize) -> usize {
        let mut best = (0, f32::NEG_INFINITY);
        for (group, centroid) in self.centroids.chunks_exact(dimension).enumerate() {
            let score = dot(vector, centroid);
            if score > best.1 {
                best = (group, score);
            }
        }
        best.0
    }

    /// k-means (spherical: centroids renormalised) on an evenly spread sample of the slots.
    fn build(data: &[f32], dimension: usize) -> Groups {
        let n = data.len() / dimension;
        let count = (n as f64).sqrt().ceil() as usize;
        // A scattered sample (a stride coprime to n, not every k-th slot, which could follow
        // a pattern of the insertion order).
        let size = n.min(TRAINING_SAMPLE);
        let stride = (0..n)
            .map(|k| (2_654_435_761 + 2 * k) % n)
            .find(|s| *s > 0 && gcd(*s, n) == 1)
            .unwrap_or(1);
        let sample: Vec<usize> = (0..size).map(|i| i * stride % n).collect();
        let vector = |slot: usize| &data[slot * dimension..(slot + 1) * dimension];
        let mut groups = Groups {
            centroids: (0..count)
                .flat_map(|g| vector(sample[g * sample.len() / count]).to_vec())
                .collect(),
            members: Vec::new(),
            vectors: Vec::new(),
            group_of: Vec::new(),
            built_for: n,
        };
        for _ in 0..TRAINING_ROUNDS {
            let mut sums = vec![0f32; count * dimension];
            for &slot in &sample {
                let group = groups.nearest(vector(slot), dimension);
                for (s, v) in sums[group * dimension..(group + 1) * dimension]
                    .iter_mut()
                    .zip(vector(slot))
                {
                    *s += v;
                }
            }
            for (group, sum) in sums.chunks_exact_mut(dimension).enumerate() {
                let norm = dot(sum, sum).sqrt();
                // An empty group keeps its centroid.
                if norm > 0.0 {
                    let centroid =
                        &mut groups.centroids[group * dimension..(group + 1) * dimension];
                    for (c, s) in centroid.iter_mut().zip(sum.iter()) {
                        *c = s / norm;
                    }
                }
            }
        }
        groups.members = vec![Vec::new(); count];
        groups.vectors = vec![Vec::new(); count];
        groups.group_of = (0..n)
            .map(|slot| {
                let group = groups.nearest(vector(slot), dimension);
                groups.members[group].push(slot);
                groups.vectors[group].extend_from_slice(vector(slot));
                group
            })
            .collect();
        groups
    }

    /// Takes `slot` out of `group` (the last member takes its place).
    fn remove(&mut self, group: usize, slot: usize, dimension: usize) {
        let Some(at) = self.members[group].iter().position(|s| *s == slot) else {
            return;
        };
        self.members[group].swap_remove(at);
        let vectors = &mut self.vectors[group];
        let last = vectors.len() / dimension - 1;
        if at != last {
            let (head, tail) = vectors.split_at_mut(last * dimension);
            head[at * dimension..(at + 1) * dimension].copy_from_slice(&tail[..dimension]);
        }
        vectors.truncate(last * dimension);
    }

    /// Puts `slot` (new, or with a changed vector) in its nearest group.
    fn place(&mut self, slot: usize, vector: &[f32], dimension: usize) {
        let group = self.nearest(vector, dimension);
        match self.group_of.get(slot).copied() {
            Some(old) => {
                self.remove(old, slot, dimension);
                self.group_of[slot] = group;
            }
            None => self.group_of.push(group),
        }
        self.members[group].push(slot);
        self.vectors[group].extend_from_slice(vector);
    }
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

/// `x` rounded to the nearest bfloat16 (ties to even): the upper 16 bits of an `f32`.
fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    (bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// The dot product of `a` and the bfloat16 values `b`, summed as [`dot`] sums.
fn dot_bf16(a: &[f32], b: &[u16]) -> f32 {
    dot_with(a, b, |x| f32::from_bits(u32::from(x) << 16))
}

/// The dot product of two equally long slices.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_with(a, b, |x| x)
}

/// `a · widen(b)`, with eight running sums, which let the compiler keep the loop in vector
/// registers.
#[inline(always)]
fn dot_with<T: Copy>(a: &[f32], b: &[T], widen: impl Fn(T) -> f32) -> f32 {
    let mut sums = [0f32; 8];
    let chunks = a.len() / 8 * 8;
    for (x, y) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for i in 0..8 {
            sums[i] += x[i] * widen(y[i]);
        }
    }
    let tail: f32 = a[chunks..]
        .iter()
        .zip(&b[chunks..])
        .map(|(x, &y)| x * widen(y))
        .sum();
    sums.iter().sum::<f32>() + tail
}

impl Vectors {
    pub fn new(dimension: usize) -> Self {
        Self::with_exact_limit(dimension, EXACT_LIMIT)
    }

    /// Exact searches up to `exact_limit` products (tests and benchmarks move the limit).
    pub fn with_exact_limit(dimension: usize, exact_limit: usize) -> Self {
        Vectors {
            dimension,
            exact_limit,
            inner: RwLock::new(Inner::default()),
        }
    }

    /// Whether searches are approximate now.
    pub fn is_approximate(&self) -> bool {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.groups.is_some()
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
                inner.narrow.extend(std::iter::repeat_n(0, dimension));
                inner.slot.insert(id, slot);
                slot
            }
        };
        inner.meta[slot] = (entry.version, entry.category_id, entry.active);
        if entry.vector.len() == dimension {
            inner.data[slot * dimension..(slot + 1) * dimension].copy_from_slice(&entry.vector);
            for (narrow, &x) in inner.narrow[slot * dimension..(slot + 1) * dimension]
                .iter_mut()
                .zip(&entry.vector)
            {
                *narrow = to_bf16(x);
            }
            let norm = dot(&entry.vector, &entry.vector).sqrt();
            inner.max_norm = inner.max_norm.max(norm);
        }
        let total = inner.ids.len();
        let Inner { data, groups, .. } = &mut *inner;
        match groups {
            Some(groups) if total <= 2 * groups.built_for => {
                groups.place(
                    slot,
                    &data[slot * dimension..(slot + 1) * dimension],
                    dimension,
                );
            }
            _ if total > self.exact_limit => *groups = Some(Groups::build(data, dimension)),
            _ => {}
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

    /// The `k` products for sale closest to `query`, best first, leaving out `exclude`: all of
    /// them looked at up to the exact limit, the nearest groups' beyond.
    pub fn nearest(&self, query: &[f32], k: usize, exclude: &HashSet<Uuid>) -> Vec<Scored> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let Some(groups) = &inner.groups else {
            drop(inner);
            return self.nearest_exact(query, k, exclude);
        };
        let probes = ((groups.count() as f32 * PROBE_FRACTION).ceil() as usize)
            .max(MIN_PROBES)
            .min(groups.count());
        let mut order: Vec<(usize, f32)> = groups
            .centroids
            .chunks_exact(self.dimension)
            .map(|c| dot(query, c))
            .enumerate()
            .collect();
        order.select_nth_unstable_by(probes - 1, |a, b| b.1.total_cmp(&a.1));
        let mut best = Best::new(k);
        for &(group, _) in &order[..probes] {
            let vectors = groups.vectors[group].chunks_exact(self.dimension);
            for (&slot, vector) in groups.members[group].iter().zip(vectors) {
                if inner.meta[slot].2 {
                    best.offer(inner.ids[slot], dot(query, vector), exclude);
                }
            }
        }
        best.into_sorted()
    }

    /// The best `k` of `query` by an exhaustive scan, whatever the size: what the approximate
    /// search is measured against.
    ///
    /// Exact, in two passes. A bfloat16 value is within 2^-8 of its `f32` (relatively), so a
    /// rough score is within `e = (2^-8 + 2^-13) · |query| · max|v|` of the exact one (Cauchy-
    /// Schwarz, plus both sums' rounding). The `k` best rough scores are all at least the `k`-th,
    /// `t`, so the exact `k`-th is at least `t - e`, and every product of the exact top `k` has a
    /// rough score of at least `t - 2e`. Those are the ones scored again exactly.
    pub fn nearest_exact(&self, query: &[f32], k: usize, exclude: &HashSet<Uuid>) -> Vec<Scored> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let d = self.dimension;
        // The rough pass reads every vector: past a few thousand, every core takes a share.
        let n = inner.ids.len();
        let threads = if n < PARALLEL_SCAN {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |t| t.get().min(4))
        };
        let share = n.div_ceil(threads).max(1);
        let inner_ref = &*inner;
        let parts: Vec<(Vec<f32>, Best)> = std::thread::scope(|scope| {
            let others: Vec<_> = (1..threads)
                .map(|t| {
                    let slots = (t * share).min(n)..((t + 1) * share).min(n);
                    scope.spawn(move || inner_ref.rough(query, slots, d, k, exclude))
                })
                .collect();
            let mut parts = vec![inner_ref.rough(query, 0..share.min(n), d, k, exclude)];
            parts.extend(
                others
                    .into_iter()
                    .map(|h| h.join().expect("a scan thread panicked")),
            );
            parts
        });
        let mut best = Best::new(k);
        let mut rough = Vec::with_capacity(n);
        for (scores, part) in parts {
            rough.extend(scores);
            for candidate in part.heap {
                best.offer(candidate.0.id, candidate.0.score, exclude);
            }
        }
        let error = (2f32.powi(-8) + 2f32.powi(-13)) * dot(query, query).sqrt() * inner.max_norm;
        let cut = best.floor() - 2.0 * error;
        let mut exact = Best::new(k);
        for (slot, &score) in rough.iter().enumerate() {
            if score > f32::NEG_INFINITY && score >= cut {
                let vector = &inner.data[slot * d..(slot + 1) * d];
                exact.offer(inner.ids[slot], dot(query, vector), exclude);
            }
        }
        exact.into_sorted()
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

impl Inner {
    /// The bfloat16 scores of `slots` (minus infinity for products not for sale), and the
    /// best `k` of them.
    fn rough(
        &self,
        query: &[f32],
        slots: std::ops::Range<usize>,
        d: usize,
        k: usize,
        exclude: &HashSet<Uuid>,
    ) -> (Vec<f32>, Best) {
        let mut best = Best::new(k);
        let mut scores = Vec::with_capacity(slots.len());
        let vectors = self.narrow[slots.start * d..slots.end * d].chunks_exact(d);
        for (slot, narrow) in slots.zip(vectors) {
            if self.meta[slot].2 {
                let score = dot_bf16(query, narrow);
                best.offer(self.ids[slot], score, exclude);
                scores.push(score);
            } else {
                scores.push(f32::NEG_INFINITY);
            }
        }
        (scores, best)
    }
}

/// The best `k` candidates seen so far (a min-heap of them).
struct Best {
    k: usize,
    heap: BinaryHeap<std::cmp::Reverse<Scored>>,
}

impl Best {
    fn new(k: usize) -> Self {
        Best {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    fn offer(&mut self, id: Uuid, score: f32, exclude: &HashSet<Uuid>) {
        let candidate = std::cmp::Reverse(Scored { id, score });
        if self.heap.len() < self.k {
            if !exclude.contains(&id) {
                self.heap.push(candidate);
            }
        } else if self.heap.peek().is_some_and(|worst| candidate < *worst) && !exclude.contains(&id)
        {
            self.heap.pop();
            self.heap.push(candidate);
        }
    }

    /// The `k`-th best score so far; minus infinity while fewer than `k` are held.
    fn floor(&self) -> f32 {
        match self.heap.peek() {
            Some(worst) if self.heap.len() >= self.k => worst.0.score,
            _ => f32::NEG_INFINITY,
        }
    }

    fn into_sorted(self) -> Vec<Scored> {
        let mut best: Vec<Scored> = self.heap.into_iter().map(|r| r.0).collect();
        best.sort_by(|a, b| b.cmp(a));
        best
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}
