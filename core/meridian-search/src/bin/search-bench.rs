//! `search-bench`: the search index against Postgres full-text search on the same generated
//! catalog and the same queries, in one run. `cargo xtask bench search` builds and runs it.
//!
//! 1. Generates `MERIDIAN_BENCH_PRODUCTS` products (default 100,000; a fixed seed, so every run
//!    sees the same catalog): names from a vocabulary of adjectives, materials and nouns, 40
//!    categories, descriptions of 12 to 40 words, prices from $1 to $2,000.
//! 2. Builds the index on disk (as the service does) and times it; loads the same rows into a
//!    scratch Postgres database with a weighted `tsvector` (name A, description B) and a GIN
//!    index, and times that.
//! 3. Runs 1- to 3-word queries drawn from the same vocabulary, each asking for the top 20 by
//!    relevance, the exact total and the category and price facets, from `MERIDIAN_BENCH_CLIENTS`
//!    concurrent clients (default 4) for `MERIDIAN_BENCH_SECONDS` each: QPS, p50, p99.
//!
//! Postgres answers with `websearch_to_tsquery` (no typo tolerance) and `ts_rank_cd`; the index
//! also runs its typo-tolerant expansion of every word of five letters or more, and loads each
//! hit's stored document. Usage: `search-bench <postgres url> <scratch dir>`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use meridian_jetstream::events::catalog::ProductSnapshotV1;
use meridian_search::{
    index::SearchIndex,
    query::{self, PRICE_BUCKETS, SearchRequest},
};
use sqlx::{Connection, Executor, PgConnection, postgres::PgPoolOptions};
use uuid::Uuid;

const ADJECTIVES: &[&str] = &[
    "wireless",
    "portable",
    "compact",
    "premium",
    "classic",
    "vintage",
    "modern",
    "rugged",
    "lightweight",
    "ergonomic",
    "waterproof",
    "foldable",
    "smart",
    "organic",
    "handmade",
    "adjustable",
    "insulated",
    "cordless",
    "magnetic",
    "heavy",
    "slim",
    "deluxe",
    "essential",
    "professional",
    "quiet",
    "rechargeable",
    "stackable",
    "reusable",
    "minimalist",
    "outdoor",
];
const MATERIALS: &[&str] = &[
    "bamboo",
    "leather",
    "steel",
    "ceramic",
    "cotton",
    "wool",
    "oak",
    "walnut",
    "glass",
    "copper",
    "aluminum",
    "linen",
    "silicone",
    "marble",
    "canvas",
    "titanium",
    "cedar",
    "velvet",
    "denim",
    "porcelain",
];
const NOUNS: &[&str] = &[
    "headphones",
    "speaker",
    "lamp",
    "kettle",
    "backpack",
    "jacket",
    "blender",
    "chair",
    "desk",
    "mug",
    "keyboard",
    "mouse",
    "monitor",
    "tent",
    "bottle",
    "blanket",
    "pillow",
    "wallet",
    "watch",
    "camera",
    "tripod",
    "notebook",
    "pen",
    "sneakers",
    "boots",
    "scarf",
    "gloves",
    "charger",
    "router",
    "drone",
    "skillet",
    "teapot",
    "cutting board",
    "knife set",
    "yoga mat",
    "dumbbell",
    "bicycle",
    "helmet",
    "sunglasses",
    "umbrella",
    "toaster",
    "grinder",
    "vase",
    "rug",
    "shelf",
    "stool",
    "planter",
    "candle",
    "frame",
    "clock",
];
const FILLER: &[&str] = &[
    "designed",
    "everyday",
    "use",
    "durable",
    "finish",
    "comfortable",
    "easy",
    "clean",
    "gift",
    "perfect",
    "home",
    "office",
    "travel",
    "built",
    "last",
    "quality",
    "crafted",
    "feature",
    "includes",
    "warranty",
    "size",
    "color",
    "fits",
    "most",
    "simple",
    "setup",
    "great",
    "value",
    "sound",
    "battery",
    "life",
    "hours",
    "soft",
    "touch",
    "strong",
    "grip",
    "natural",
    "texture",
];

/// A small, fast, seeded generator (xorshift64*): the same catalog and queries every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

fn catalog(count: usize, categories: &[Uuid]) -> Vec<ProductSnapshotV1> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..count)
        .map(|n| {
            let noun = rng.pick(NOUNS);
            let name = format!(
                "{} {} {} {}",
                capitalise(rng.pick(ADJECTIVES)),
                rng.pick(MATERIALS),
                noun,
                n % 997
            );
            let words = 12 + rng.below(29);
            let description = (0..words)
                .map(|_| match rng.below(6) {
                    0 => rng.pick(ADJECTIVES),
                    1 => rng.pick(MATERIALS),
                    _ => rng.pick(FILLER),
                })
                .collect::<Vec<_>>()
                .join(" ");
            // Prices spread over four orders of magnitude, like a real catalog.
            let cents = (100.0 * 10f64.powf(rng.below(10_000) as f64 / 10_000.0 * 3.3)) as i64;
            // UUIDv7-shaped: a creation time one second apart per product, then random bits.
            let millis = 1_700_000_000_000 + n as u64 * 1000;
            let id = Uuid::from_u64_pair(
                millis << 16 | 0x7000 | (rng.next() & 0x0fff),
                0x8000_0000_0000_0000 | rng.next() >> 2,
            );
            ProductSnapshotV1 {
                id,
                sku: format!("BENCH-{n:06}"),
                name,
                description,
                price_amount: cents,
                price_currency: "USD".into(),
                category_id: Some(
                    categories
                        [NOUNS.iter().position(|x| *x == noun).unwrap_or(0) % categories.len()],
                ),
                seller_id: Uuid::nil(),
                attributes: serde_json::json!({"material": rng.pick(MATERIALS)}),
                images: vec![],
                status: "active".into(),
                version: 1,
            }
        })
        .collect()
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn queries(count: usize) -> Vec<String> {
    let mut rng = Rng(0x51_7cc1_b727_220a);
    (0..count)
        .map(|_| match rng.below(10) {
            0..=3 => rng.pick(NOUNS).to_owned(),
            4..=6 => format!("{} {}", rng.pick(ADJECTIVES), rng.pick(NOUNS)),
            7 => format!("{} {}", rng.pick(MATERIALS), rng.pick(NOUNS)),
            _ => format!(
                "{} {} {}",
                rng.pick(ADJECTIVES),
                rng.pick(MATERIALS),
                rng.pick(NOUNS)
            ),
        })
        .collect()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

struct Measured {
    qps: f64,
    p50_ms: f64,
    p99_ms: f64,
    queries: usize,
    hits: u64,
}

fn summarise(mut latencies: Vec<Duration>, hits: u64, elapsed: Duration) -> Measured {
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Measured {
        qps: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        queries: latencies.len(),
        hits,
    }
}

fn run_index(
    index: Arc<SearchIndex>,
    queries: Arc<Vec<String>>,
    clients: usize,
    seconds: u64,
) -> Measured {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let (index, queries, stop) = (index.clone(), queries.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut hits = 0;
                let mut n = client;
                while !stop.load(Ordering::Relaxed) {
                    let request = SearchRequest {
                        q: queries[n % queries.len()].clone(),
                        limit: 20,
                        ..Default::default()
                    };
                    let began = Instant::now();
                    let results = query::search(&index, &request).expect("search");
                    latencies.push(began.elapsed());
                    hits += results.total;
                    n += clients;
                }
                (latencies, hits)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut hits = 0;
    for worker in workers {
        let (l, h) = worker.join().expect("worker");
        latencies.extend(l);
        hits += h;
    }
    summarise(latencies, hits, started.elapsed())
}

const PG_QUERY: &str = "\
WITH hits AS ( \
  SELECT id, name, price, category_id, ts_rank_cd(tsv, q) AS rank \
  FROM products, websearch_to_tsquery('english', $1) AS q WHERE tsv @@ q) \
SELECT (SELECT count(*) FROM hits), \
  (SELECT coalesce(json_agg(t), '[]') FROM (SELECT id, name, price FROM hits ORDER BY rank DESC, id LIMIT 20) t)::text, \
  (SELECT coalesce(json_agg(c), '[]') FROM (SELECT category_id, count(*) FROM hits GROUP BY 1) c)::text, \
  (SELECT coalesce(json_agg(b), '[]') FROM (SELECT width_bucket(price, $2) AS bucket, count(*) FROM hits GROUP BY 1) b)::text";

async fn run_postgres(
    url: &str,
    queries: Arc<Vec<String>>,
    clients: usize,
    seconds: u64,
) -> Measured {
    let pool = PgPoolOptions::new()
        .max_connections(clients as u32)
        .connect(url)
        .await
        .expect("bench database");
    let buckets: Vec<i64> = PRICE_BUCKETS.to_vec();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let (pool, queries, stop, buckets) =
                (pool.clone(), queries.clone(), stop.clone(), buckets.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut hits = 0u64;
                let mut n = client;
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    let (total, _, _, _): (i64, String, String, String) = sqlx::query_as(PG_QUERY)
                        .bind(&queries[n % queries.len()])
                        .bind(&buckets)
                        .fetch_one(&pool)
                        .await
                        .expect("postgres query");
                    latencies.push(began.elapsed());
                    hits += total as u64;
                    n += clients;
                }
                (latencies, hits)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut hits = 0;
    for worker in workers {
        let (l, h) = worker.await.expect("worker");
        latencies.extend(l);
        hits += h;
    }
    summarise(latencies, hits, started.elapsed())
}

async fn load_postgres(admin_url: &str, products: &[ProductSnapshotV1]) -> (String, Duration) {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base.to_owned(), format!("?{query}")),
        None => (admin_url.to_owned(), String::new()),
    };
    let server = base
        .rsplit_once('/')
        .map_or(base.clone(), |(s, _)| s.to_owned());
    let url = format!("{server}/meridian_bench_search{query}");
    let mut admin = PgConnection::connect(admin_url).await.expect("postgres");
    admin
        .execute("DROP DATABASE IF EXISTS meridian_bench_search WITH (FORCE)")
        .await
        .expect("drop");
    admin
        .execute("CREATE DATABASE meridian_bench_search")
        .await
        .expect("create");
    let mut conn = PgConnection::connect(&url).await.expect("bench database");
    let started = Instant::now();
    conn.execute(
        "CREATE TABLE products (id uuid PRIMARY KEY, name text NOT NULL, description text NOT NULL, \
         category_id uuid, price bigint NOT NULL, tsv tsvector GENERATED ALWAYS AS ( \
         setweight(to_tsvector('english', name), 'A') || \
         setweight(to_tsvector('english', description), 'B')) STORED)",
    )
    .await
    .expect("table");
    for chunk in products.chunks(5000) {
        let ids: Vec<Uuid> = chunk.iter().map(|p| p.id).collect();
        let names: Vec<&str> = chunk.iter().map(|p| p.name.as_str()).collect();
        let descriptions: Vec<&str> = chunk.iter().map(|p| p.description.as_str()).collect();
        let categories: Vec<Option<Uuid>> = chunk.iter().map(|p| p.category_id).collect();
        let prices: Vec<i64> = chunk.iter().map(|p| p.price_amount).collect();
        sqlx::query(
            "INSERT INTO products (id, name, description, category_id, price) \
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::bigint[])",
        )
        .bind(&ids)
        .bind(&names)
        .bind(&descriptions)
        .bind(&categories)
        .bind(&prices)
        .execute(&mut conn)
        .await
        .expect("insert");
    }
    conn.execute("CREATE INDEX products_tsv ON products USING gin (tsv)")
        .await
        .expect("gin");
    conn.execute("ANALYZE products").await.expect("analyze");
    (url, started.elapsed())
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(postgres), Some(scratch)) = (args.next(), args.next()) else {
        eprintln!("usage: search-bench <postgres url> <scratch dir>");
        std::process::exit(2);
    };
    let count = env_number("MERIDIAN_BENCH_PRODUCTS", 100_000);
    let clients = env_number("MERIDIAN_BENCH_CLIENTS", 4);
    let seconds = env_number("MERIDIAN_BENCH_SECONDS", 10) as u64;
    let categories: Vec<Uuid> = (0..40).map(|_| Uuid::now_v7()).collect();
    let products = catalog(count, &categories);
    let queries = Arc::new(queries(1000));

    // The index, built on disk as the service builds it.
    let dir = std::path::Path::new(&scratch).join("search-bench-index");
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let index = SearchIndex::create(Some(&dir)).expect("index");
    let mut writer = index.writer().expect("writer");
    for product in &products {
        writer.upsert(product, Some("Category")).expect("upsert");
    }
    writer.commit(&index.reader).expect("commit");
    let index_build = started.elapsed();
    drop(writer);
    let index = Arc::new(index);

    let (pg_url, pg_build) = load_postgres(&postgres, &products).await;
    drop(products);

    println!(
        "search-bench: {count} products, {} queries of 1-3 words, {clients} clients, {seconds} s each",
        queries.len()
    );
    let ours = run_index(index.clone(), queries.clone(), clients, seconds);
    let theirs = run_postgres(&pg_url, queries.clone(), clients, seconds).await;

    let rate = |d: Duration| count as f64 / d.as_secs_f64();
    println!();
    println!("| | index (tantivy) | Postgres FTS (tsvector + GIN) | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| build | {:.1} s, {:.0} products/s | {:.1} s, {:.0} rows/s | {:.2}x |",
        index_build.as_secs_f64(),
        rate(index_build),
        pg_build.as_secs_f64(),
        rate(pg_build),
        pg_build.as_secs_f64() / index_build.as_secs_f64()
    );
    println!(
        "| queries/s | {:.0} | {:.0} | {:.2}x |",
        ours.qps,
        theirs.qps,
        ours.qps / theirs.qps
    );
    println!(
        "| p50 | {:.2} ms | {:.2} ms | |",
        ours.p50_ms, theirs.p50_ms
    );
    println!(
        "| p99 | {:.2} ms | {:.2} ms | |",
        ours.p99_ms, theirs.p99_ms
    );
    println!(
        "| hits per query (mean) | {:.0} | {:.0} | |",
        ours.hits as f64 / ours.queries.max(1) as f64,
        theirs.hits as f64 / theirs.queries.max(1) as f64
    );
    println!();
    let throughput = ours.qps / theirs.qps;
    println!(
        "search-bench: throughput {throughput:.2}x Postgres (goal >= 5x: {}); p99 {:.2} ms (goal < 20 ms: {})",
        if throughput >= 5.0 { "met" } else { "MISSED" },
        ours.p99_ms,
        if ours.p99_ms < 20.0 { "met" } else { "MISSED" }
    );
    let _ = std::fs::remove_dir_all(&dir);
    let mut admin = PgConnection::connect(&postgres).await.expect("postgres");
    let _ = admin
        .execute("DROP DATABASE IF EXISTS meridian_bench_search WITH (FORCE)")
        .await;
}
