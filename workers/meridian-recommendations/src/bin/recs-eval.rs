//! Offline evaluation of the recommendations (`cargo xtask eval recs`): a generated shop and
//! its purchase histories, the last order of every user held out, and hit-rate@10 and NDCG@10
//! of the blend against a popularity and a content-only baseline.
//!
//! The generated histories have the structure real ones have: shoppers keep to one or two
//! favourite departments, a few products sell far more than the rest (Zipf), and products
//! have complements in a partner department that are often bought with them or later (a
//! kettle and tea, boots and socks). Content similarity sees the departments, sales the
//! best sellers, and only co-purchases the complements.
//!
//! Usage: `recs-eval MODEL_DIR [--sweep]`. `--sweep` first scores a grid of blend weights on a
//! validation split (each user's second-to-last order held out): how `recommend::WEIGHTS` was
//! chosen, without looking at the test split.

use std::collections::{HashMap, HashSet};

use meridian_embed::Embedder;
use meridian_recommendations::{
    MODEL_NAME,
    recommend::{Signals, WEIGHTS, Weights, blend, candidates, profile},
    synthetic::Rng,
    vectors::{Entry, Vectors},
};
use uuid::Uuid;

const K: usize = 10;
const USERS: usize = 3000;
const SEED: u64 = 0x5eed_2026;

/// Departments as (name, adjectives, nouns, what a description says), in partner pairs: the
/// complements of department 2n are in 2n+1 and back.
const DEPARTMENTS: &[(&str, &[&str], &[&str], &str)] = &[
    (
        "Kitchen",
        &[
            "stainless steel",
            "ceramic",
            "cast iron",
            "compact",
            "enamel",
        ],
        &[
            "kettle",
            "saucepan",
            "frying pan",
            "teapot",
            "chef's knife",
            "cutting board",
            "toaster",
            "mixing bowl",
        ],
        "for cooking at home",
    ),
    (
        "Coffee and tea",
        &["organic", "single-origin", "smoky", "decaf", "jasmine"],
        &[
            "coffee beans",
            "green tea",
            "black tea",
            "espresso blend",
            "herbal infusion",
            "tea sampler",
            "ground coffee",
            "chai mix",
        ],
        "to brew every morning",
    ),
    (
        "Footwear",
        &["leather", "waterproof", "lightweight", "suede", "padded"],
        &[
            "hiking boots",
            "running shoes",
            "sandals",
            "loafers",
            "sneakers",
            "winter boots",
            "slippers",
            "trail shoes",
        ],
        "for comfortable walking",
    ),
    (
        "Outdoor",
        &["merino", "insulated", "packable", "reflective", "quick-dry"],
        &[
            "wool socks",
            "rain jacket",
            "backpack",
            "sleeping bag",
            "trekking poles",
            "headlamp",
            "water bottle",
            "fleece",
        ],
        "for days outside",
    ),
    (
        "Office",
        &[
            "ergonomic",
            "adjustable",
            "wireless",
            "minimalist",
            "bamboo",
        ],
        &[
            "desk lamp",
            "laptop stand",
            "keyboard",
            "mouse",
            "desk organiser",
            "monitor arm",
            "notebook",
            "office chair",
        ],
        "for a tidy workspace",
    ),
    (
        "Audio",
        &[
            "noise-cancelling",
            "bluetooth",
            "studio",
            "portable",
            "hi-fi",
        ],
        &[
            "headphones",
            "speaker",
            "earbuds",
            "microphone",
            "sound bar",
            "headphone stand",
            "audio interface",
            "turntable",
        ],
        "for clear sound",
    ),
    (
        "Garden",
        &["galvanised", "heavy-duty", "solar", "terracotta", "cedar"],
        &[
            "watering can",
            "pruning shears",
            "planter",
            "garden hose",
            "rake",
            "bird feeder",
            "seed tray",
            "garden lights",
        ],
        "for the garden",
    ),
    (
        "Tools",
        &["cordless", "magnetic", "precision", "folding", "steel"],
        &[
            "drill",
            "screwdriver set",
            "tape measure",
            "work gloves",
            "spirit level",
            "tool box",
            "utility knife",
            "hammer",
        ],
        "for repairs and projects",
    ),
];

struct Product {
    id: Uuid,
    department: usize,
    text: String,
}

fn catalog(rng: &mut Rng) -> Vec<Product> {
    let mut products = Vec::new();
    for (department, (name, adjectives, nouns, purpose)) in DEPARTMENTS.iter().enumerate() {
        for noun in *nouns {
            for adjective in adjectives.iter() {
                let text = format!(
                    "{} {noun}. {name}. A {adjective} {noun} {purpose}.",
                    capitalise(adjective)
                );
                products.push(Product {
                    id: Uuid::from_u64_pair(rng.next_u64(), rng.next_u64()),
                    department,
                    text,
                });
            }
        }
    }
    products
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// One user's orders, oldest first, each a list of product indexes.
fn histories(rng: &mut Rng, products: &[Product]) -> Vec<Vec<Vec<usize>>> {
    let by_department: Vec<Vec<usize>> = (0..DEPARTMENTS.len())
        .map(|d| {
            (0..products.len())
                .filter(|&p| products[p].department == d)
                .collect()
        })
        .collect();
    // Each department's products in a fixed popularity order, and each product's complement:
    // the product at the same popularity rank in the partner department.
    let complement = |p: usize| {
        let d = products[p].department;
        let rank = by_department[d].iter().position(|&q| q == p).unwrap_or(0);
        by_department[d ^ 1][rank]
    };
    (0..USERS)
        .map(|_| {
            let favourite = rng.zipf(DEPARTMENTS.len());
            let second = rng.below(DEPARTMENTS.len());
            let orders = 2 + rng.below(5);
            let mut bought: Vec<usize> = Vec::new();
            (0..orders)
                .map(|_| {
                    // A follow-up: something for a product bought before (tea for the kettle).
                    if !bought.is_empty() && rng.unit() < 0.25 {
                        let earlier = bought[rng.below(bought.len())];
                        let order = vec![complement(earlier)];
                        bought.extend(&order);
                        return order;
                    }
                    let roll = rng.unit();
                    let department = if roll < 0.7 {
                        favourite
                    } else if roll < 0.9 {
                        second
                    } else {
                        rng.below(DEPARTMENTS.len())
                    };
                    let pool = &by_department[department];
                    let first = pool[rng.zipf(pool.len())];
                    let mut order = vec![first];
                    if rng.unit() < 0.4 {
                        order.push(complement(first));
                    }
                    bought.extend(&order);
                    order
                })
                .collect()
        })
        .collect()
}

/// The orders of every user but the last `held_out`, as statistics, and one test case per
/// user: their history before the held-out orders, and the first product of the first of them.
struct Split {
    cases: Vec<(Vec<Uuid>, Uuid)>,
    co: HashMap<Uuid, HashMap<Uuid, i64>>,
    sales: HashMap<Uuid, i64>,
    popular: Vec<Uuid>,
}

impl Split {
    fn new(users: &[Vec<Vec<usize>>], products: &[Product], held_out: usize) -> Split {
        let mut co: HashMap<Uuid, HashMap<Uuid, i64>> = HashMap::new();
        let mut sales: HashMap<Uuid, i64> = HashMap::new();
        let mut cases = Vec::new();
        for orders in users.iter().filter(|o| o.len() > held_out) {
            let (earlier, later) = orders.split_at(orders.len() - held_out);
            for order in earlier {
                let ids: HashSet<Uuid> = order.iter().map(|&p| products[p].id).collect();
                for a in &ids {
                    *sales.entry(*a).or_default() += 1;
                    for b in &ids {
                        if a != b {
                            *co.entry(*a).or_default().entry(*b).or_default() += 1;
                        }
                    }
                }
            }
            // Most recent first, each product once.
            let mut history: Vec<Uuid> = Vec::new();
            for order in earlier.iter().rev() {
                for &p in order {
                    if !history.contains(&products[p].id) {
                        history.push(products[p].id);
                    }
                }
            }
            cases.push((history, products[later[0][0]].id));
        }
        let mut popular: Vec<(Uuid, i64)> = sales.iter().map(|(id, n)| (*id, *n)).collect();
        popular.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Split {
            cases,
            co,
            sales,
            popular: popular.into_iter().map(|p| p.0).collect(),
        }
    }

    /// The best sellers the user has not bought.
    fn popularity(&self) -> Score {
        let mut score = Score::default();
        for (history, target) in &self.cases {
            let top: Vec<Uuid> = self
                .popular
                .iter()
                .filter(|id| !history.contains(id))
                .take(K)
                .copied()
                .collect();
            score.add(&top, *target);
        }
        score
    }

    /// What the service answers, with `weights`.
    fn blend(&self, vectors: &Vectors, weights: Weights) -> Score {
        let mut score = Score::default();
        for (history, target) in &self.cases {
            let exclude: HashSet<Uuid> = history.iter().copied().collect();
            let Some(query) = profile(vectors, history) else {
                score.add(&[], *target);
                continue;
            };
            let mut bought: HashMap<Uuid, i64> = HashMap::new();
            if weights.co_purchase > 0.0 {
                for id in history {
                    for (other, count) in self.co.get(id).into_iter().flatten() {
                        *bought.entry(*other).or_default() += count;
                    }
                }
            }
            let found = candidates(vectors, &query, &bought, &exclude, K);
            let signals = Signals {
                co_purchases: &bought,
                sales: &self.sales,
            };
            let ranked: Vec<Uuid> = blend(&found, signals, weights, K)
                .into_iter()
                .map(|s| s.id)
                .collect();
            score.add(&ranked, *target);
        }
        score
    }
}

#[derive(Default)]
struct Score {
    hits: usize,
    ndcg: f64,
    cases: usize,
}

impl Score {
    fn add(&mut self, recommended: &[Uuid], target: Uuid) {
        self.cases += 1;
        if let Some(rank) = recommended.iter().take(K).position(|id| *id == target) {
            self.hits += 1;
            self.ndcg += 1.0 / ((rank + 2) as f64).log2();
        }
    }

    fn hit_rate(&self) -> f64 {
        self.hits as f64 / self.cases.max(1) as f64
    }

    fn ndcg(&self) -> f64 {
        self.ndcg / self.cases.max(1) as f64
    }
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: recs-eval MODEL_DIR"))?;
    let mut rng = Rng(SEED);
    let products = catalog(&mut rng);
    let users = histories(&mut rng, &products);

    let device = meridian_embed::default_device()?;
    let embedder = Embedder::load(std::path::Path::new(&dir), MODEL_NAME, &device)?;
    let started = std::time::Instant::now();
    let vectors = Vectors::new(embedder.dimension());
    for chunk in products.chunks(32) {
        let texts: Vec<&str> = chunk.iter().map(|p| p.text.as_str()).collect();
        for (product, vector) in chunk.iter().zip(embedder.embed(&texts)?) {
            vectors.upsert(
                product.id,
                Entry {
                    version: 1,
                    category_id: None,
                    active: true,
                    vector,
                },
            );
        }
    }
    println!(
        "recs-eval: {} products in {} departments embedded in {:.1} s; {} users, {} orders",
        products.len(),
        DEPARTMENTS.len(),
        started.elapsed().as_secs_f64(),
        users.len(),
        users.iter().map(Vec::len).sum::<usize>()
    );

    let test = Split::new(&users, &products, 1);
    let validation = Split::new(&users, &products, 2);
    let only_content = Weights {
        content: 1.0,
        co_purchase: 0.0,
        sales: 0.0,
    };
    if std::env::args().any(|a| a == "--sweep") {
        println!();
        println!("Validation (each user's second-to-last order held out, trained on the rest):");
        println!("| content | co-purchase | sales | NDCG@{K} |");
        println!("| --- | --- | --- | --- |");
        for co_purchase in [0.0, 0.1, 0.2, 0.3, 0.4] {
            for sales in [0.0, 0.2, 0.3, 0.4, 0.5, 0.6] {
                let content = 1.0 - co_purchase - sales;
                let weights = Weights {
                    content,
                    co_purchase,
                    sales,
                };
                println!(
                    "| {content:.1} | {co_purchase:.1} | {sales:.1} | {:.3} |",
                    validation.blend(&vectors, weights).ndcg()
                );
            }
        }
    }
    let popularity = test.popularity();
    let content = test.blend(&vectors, only_content);
    let blended = test.blend(&vectors, WEIGHTS);

    println!();
    println!("Test (each user's last order held out, trained on the rest):");
    println!("| method | hit-rate@{K} | NDCG@{K} | held-out orders |");
    println!("| --- | --- | --- | --- |");
    let blend_name = format!(
        "blend ({} x embeddings + {} x co-purchases + {} x sales)",
        WEIGHTS.content, WEIGHTS.co_purchase, WEIGHTS.sales
    );
    for (name, score) in [
        ("popularity", &popularity),
        ("content only (embeddings)", &content),
        (blend_name.as_str(), &blended),
    ] {
        println!(
            "| {name} | {:.3} | {:.3} | {} |",
            score.hit_rate(),
            score.ndcg(),
            score.cases
        );
    }
    println!();
    println!(
        "recs-eval: the blend's NDCG@{K} is {:.2}x popularity's and {:.2}x content-only's",
        blended.ndcg() / popularity.ndcg().max(1e-9),
        blended.ndcg() / content.ndcg().max(1e-9)
    );
    Ok(())
}
