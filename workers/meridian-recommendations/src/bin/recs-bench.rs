//! `cargo xtask bench recs`: the CPU part of `GET /recommendations/product/{id}` at 100,000
//! products (the exact nearest-neighbour scan, the co-purchase candidates and the blend), p50
//! and p99 over 2,000 products, beside a plain baseline measured in the same run: score every
//! product and sort them all. Both must give the same answers. The endpoint adds two indexed
//! Postgres lookups (co-purchases, sales) and HTTP.
//!
//! The vectors are unit vectors around 200 "department" centroids in 384 dimensions, like
//! embeddings of a real catalog; no model is needed. A second part goes past the exact limit
//! (400,000 products): the inverted file's latency and recall@10 against an exhaustive scan.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use meridian_recommendations::{
    recommend::{Signals, WEIGHTS, blend, candidates},
    synthetic::Rng,
    vectors::{Entry, Scored, Vectors, dot},
};
use uuid::Uuid;

const PRODUCTS: usize = 100_000;
const DIMENSION: usize = 384;
const DEPARTMENTS: usize = 200;
const QUERIES: usize = 2_000;
const LIMIT: usize = 10;
/// Per-dimension noise around a department's centroid: two products of one department then
/// have a cosine of about 0.5, as embeddings of one category's products do.
const NOISE: f32 = 0.09;

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = dot(&v, &v).sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The baseline: every product scored, all of them sorted, the best candidates blended.
fn baseline(
    vectors: &Vectors,
    all: &[Uuid],
    query: &[f32],
    exclude: &HashSet<Uuid>,
    signals: Signals<'_>,
) -> Vec<Scored> {
    let scores = vectors.scores(query, all);
    let mut scored: Vec<Scored> = scores
        .into_iter()
        .filter(|(id, _)| !exclude.contains(id))
        .map(|(id, score)| Scored { id, score })
        .collect();
    scored.sort_by(|a, b| b.cmp(a));
    let mut content: HashMap<Uuid, f32> = scored
        .iter()
        .take(LIMIT * 4)
        .map(|s| (s.id, s.score))
        .collect();
    let bought: Vec<Uuid> = signals
        .co_purchases
        .keys()
        .filter(|id| !exclude.contains(id) && !content.contains_key(id))
        .copied()
        .collect();
    content.extend(vectors.scores(query, &bought));
    blend(&content, signals, WEIGHTS, LIMIT)
}

/// `count` products for sale around the department centroids, in turn.
fn shop(rng: &mut Rng, centroids: &[Vec<f32>], count: usize) -> (Vectors, Vec<Uuid>) {
    let vectors = Vectors::new(DIMENSION);
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let id = Uuid::from_u64_pair(rng.next_u64(), rng.next_u64());
        let centre = &centroids[n % centroids.len()];
        let vector = unit(centre.iter().map(|c| c + NOISE * rng.normal()).collect());
        let entry = Entry {
            version: 1,
            category_id: None,
            active: true,
            vector,
        };
        vectors.upsert(id, entry);
        ids.push(id);
    }
    (vectors, ids)
}

fn main() {
    let mut rng = Rng(0xbe4c_2026);
    let centroids: Vec<Vec<f32>> = (0..DEPARTMENTS)
        .map(|_| unit((0..DIMENSION).map(|_| rng.normal()).collect()))
        .collect();
    let started = Instant::now();
    let (vectors, ids) = shop(&mut rng, &centroids, PRODUCTS);
    let sales: HashMap<Uuid, i64> = ids
        .iter()
        .map(|id| (*id, (rng.next_u64() % 1000) as i64))
        .collect();
    println!(
        "recs-bench: {PRODUCTS} products of {DIMENSION} dimensions in {DEPARTMENTS} departments \
         (built in {:.1} s); {QUERIES} products queried, {LIMIT} items each, one query at a time",
        started.elapsed().as_secs_f64()
    );

    let mut ours = Vec::with_capacity(QUERIES);
    let mut plain = Vec::with_capacity(QUERIES);
    for q in 0..QUERIES {
        let product = ids[(rng.next_u64() as usize) % PRODUCTS];
        let co_purchases: HashMap<Uuid, i64> = (0..20)
            .map(|_| {
                (
                    ids[(rng.next_u64() as usize) % PRODUCTS],
                    (rng.next_u64() % 50) as i64 + 1,
                )
            })
            .collect();
        let signals = Signals {
            co_purchases: &co_purchases,
            sales: &sales,
        };
        let exclude = HashSet::from([product]);
        // Alternate which goes first, so neither always finds the caches warm.
        let run_ours = || {
            let started = Instant::now();
            let query = vectors.get(product).expect("product").vector;
            let found = candidates(&vectors, &query, &co_purchases, &exclude, LIMIT);
            let items = blend(&found, signals, WEIGHTS, LIMIT);
            (started.elapsed(), items)
        };
        let run_plain = || {
            let started = Instant::now();
            let query = vectors.get(product).expect("product").vector;
            let items = baseline(&vectors, &ids, &query, &exclude, signals);
            (started.elapsed(), items)
        };
        let ((a, ours_items), (b, plain_items)) = if q % 2 == 0 {
            let a = run_ours();
            (a, run_plain())
        } else {
            let b = run_plain();
            (run_ours(), b)
        };
        let same = ours_items.iter().map(|s| s.id).collect::<Vec<_>>()
            == plain_items.iter().map(|s| s.id).collect::<Vec<_>>();
        assert!(same, "the two disagree for product {product}");
        ours.push(a);
        plain.push(b);
    }
    ours.sort();
    plain.sort();
    let mean = |d: &[Duration]| d.iter().sum::<Duration>() / d.len() as u32;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!();
    println!("| | top-k scan (the service) | score all, sort all | ratio |");
    println!("| --- | --- | --- | --- |");
    for (name, a, b) in [
        ("p50", percentile(&ours, 0.5), percentile(&plain, 0.5)),
        ("p99", percentile(&ours, 0.99), percentile(&plain, 0.99)),
        ("mean", mean(&ours), mean(&plain)),
    ] {
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2}x |",
            ms(a),
            ms(b),
            ms(b) / ms(a)
        );
    }
    let p99 = ms(percentile(&ours, 0.99));
    println!();
    println!(
        "recs-bench: p99 {p99:.2} ms at {PRODUCTS} products (goal < 20 ms: {})",
        if p99 < 20.0 { "met" } else { "missed" }
    );
    beyond_the_exact_limit(&mut rng, &centroids);
}

/// Past the exact limit: the inverted file's nearest 40 against an exhaustive scan of the same
/// vectors, latency and recall@10.
fn beyond_the_exact_limit(rng: &mut Rng, centroids: &[Vec<f32>]) {
    const LARGE: usize = 400_000;
    const LARGE_QUERIES: usize = 500;
    let started = Instant::now();
    let (vectors, ids) = shop(rng, centroids, LARGE);
    assert!(vectors.is_approximate());
    println!();
    println!(
        "recs-bench: {LARGE} products (inverted file built on the way, {:.1} s in all); \
         {LARGE_QUERIES} queries for the nearest {}",
        started.elapsed().as_secs_f64(),
        LIMIT * 4
    );
    let (mut approximate, mut exhaustive, mut found) = (Vec::new(), Vec::new(), 0);
    for _ in 0..LARGE_QUERIES {
        let product = ids[(rng.next_u64() as usize) % LARGE];
        let query = vectors.get(product).expect("product").vector;
        let exclude = HashSet::from([product]);
        let started = Instant::now();
        let near = vectors.nearest(&query, LIMIT * 4, &exclude);
        approximate.push(started.elapsed());
        let started = Instant::now();
        let exact = vectors.nearest_exact(&query, LIMIT * 4, &exclude);
        exhaustive.push(started.elapsed());
        let truth: HashSet<Uuid> = exact.iter().take(LIMIT).map(|s| s.id).collect();
        found += near
            .iter()
            .take(LIMIT)
            .filter(|s| truth.contains(&s.id))
            .count();
    }
    approximate.sort();
    exhaustive.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!();
    println!("| | inverted file (the service) | exhaustive scan | ratio |");
    println!("| --- | --- | --- | --- |");
    for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
        let (a, b) = (percentile(&approximate, p), percentile(&exhaustive, p));
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2}x |",
            ms(a),
            ms(b),
            ms(b) / ms(a)
        );
    }
    let recall = found as f64 / (LARGE_QUERIES * LIMIT) as f64;
    println!();
    println!(
        "recs-bench: at {LARGE} products, p99 {:.2} ms with recall@{LIMIT} {recall:.3} against \
         the exhaustive scan",
        ms(percentile(&approximate, 0.99))
    );
}
