//! What to recommend: content similarity (the embeddings) blended with co-purchases, and for a
//! user without a history what sells in their region.

use std::collections::{HashMap, HashSet};

use sqlx::PgPool;
use uuid::Uuid;

use crate::vectors::{Scored, Vectors, dot};

/// Content candidates read per requested item, before blending.
const CANDIDATES_PER_ITEM: usize = 4;
/// The most recent purchases a user's profile is made of.
const HISTORY: i64 = 20;
/// Each older purchase counts this much less in the profile.
const RECENCY_DECAY: f32 = 0.8;

/// An answer: items best first, and which model produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendations {
    pub items: Vec<Scored>,
    pub model: String,
}

/// How much each signal counts in a blend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// The cosine of the candidate's embedding and the query's.
    pub content: f32,
    /// Orders that held the candidate with the product (or the user's products), relative to
    /// the most such orders among the candidates.
    pub co_purchase: f32,
    /// Units of the candidate sold in the region, on a log scale relative to the best seller
    /// among the candidates.
    pub sales: f32,
}

/// The weights answers use: the best of `cargo xtask eval recs -- --sweep` on its validation
/// split (content similarity still picks the candidates, and ranks products nobody bought yet).
pub const WEIGHTS: Weights = Weights {
    content: 0.2,
    co_purchase: 0.4,
    sales: 0.4,
};

/// What is known of the candidates besides their embeddings.
#[derive(Debug, Clone, Copy)]
pub struct Signals<'a> {
    pub co_purchases: &'a HashMap<Uuid, i64>,
    pub sales: &'a HashMap<Uuid, i64>,
}

/// Scores each candidate of `content` (id and cosine) by `weights` and keeps the best `limit`.
pub fn blend(
    content: &HashMap<Uuid, f32>,
    signals: Signals<'_>,
    weights: Weights,
    limit: usize,
) -> Vec<Scored> {
    let most_bought = signals
        .co_purchases
        .values()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f32;
    let most_sold = (signals.sales.values().copied().max().unwrap_or(0).max(1) as f32).ln_1p();
    let mut items: Vec<Scored> = content
        .iter()
        .map(|(id, cosine)| {
            let bought = signals.co_purchases.get(id).copied().unwrap_or(0) as f32 / most_bought;
            let sold = (signals.sales.get(id).copied().unwrap_or(0) as f32).ln_1p() / most_sold;
            Scored {
                id: *id,
                score: weights.content * cosine
                    + weights.co_purchase * bought
                    + weights.sales * sold,
            }
        })
        .collect();
    items.sort_by(|a, b| b.cmp(a));
    items.truncate(limit);
    items
}

fn model_name(embedder: &str, co_purchases: &HashMap<Uuid, i64>) -> String {
    if co_purchases.is_empty() {
        embedder.to_owned()
    } else {
        format!("{embedder}+co-purchase")
    }
}

/// Products like `product_id` (its nearest embeddings) and bought with it. `None`: the
/// product is not known or not for sale.
pub async fn for_product(
    pool: &PgPool,
    vectors: &Vectors,
    embedder: &str,
    product_id: Uuid,
    region: &str,
    limit: usize,
) -> Result<Option<Recommendations>, sqlx::Error> {
    let Some(entry) = vectors.get(product_id).filter(|e| e.active) else {
        return Ok(None);
    };
    let co_purchases: HashMap<Uuid, i64> = sqlx::query_as::<_, (Uuid, i32)>(
        "SELECT other_id, orders FROM co_purchases WHERE product_id = $1 \
         ORDER BY orders DESC LIMIT 200",
    )
    .bind(product_id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(id, orders)| (id, i64::from(orders)))
    .collect();
    let exclude = HashSet::from([product_id]);
    let found = candidates(vectors, &entry.vector, &co_purchases, &exclude, limit);
    let sales = sales_of(pool, region, &found).await?;
    let signals = Signals {
        co_purchases: &co_purchases,
        sales: &sales,
    };
    let items = blend(&found, signals, WEIGHTS, limit);
    Ok(Some(Recommendations {
        items,
        model: model_name(embedder, &co_purchases),
    }))
}

/// The ids among the nearest products to `query` and the co-purchased ones: what a blend
/// scores, with each one's cosine. Only products for sale are kept.
pub fn candidates(
    vectors: &Vectors,
    query: &[f32],
    co_purchases: &HashMap<Uuid, i64>,
    exclude: &HashSet<Uuid>,
    limit: usize,
) -> HashMap<Uuid, f32> {
    let mut content: HashMap<Uuid, f32> = vectors
        .nearest(query, limit * CANDIDATES_PER_ITEM, exclude)
        .into_iter()
        .map(|s| (s.id, s.score))
        .collect();
    let bought: Vec<Uuid> = co_purchases
        .keys()
        .filter(|id| !exclude.contains(id) && !content.contains_key(id))
        .copied()
        .collect();
    // Co-purchased products not among the nearest still get their real cosine.
    content.extend(vectors.scores(query, &bought));
    content
}

/// Units sold in `region` of each candidate.
async fn sales_of(
    pool: &PgPool,
    region: &str,
    candidates: &HashMap<Uuid, f32>,
) -> Result<HashMap<Uuid, i64>, sqlx::Error> {
    let ids: Vec<Uuid> = candidates.keys().copied().collect();
    Ok(sqlx::query_as::<_, (Uuid, i64)>(
        "SELECT product_id, units FROM sales WHERE region = $1 AND product_id = ANY($2)",
    )
    .bind(region)
    .bind(&ids)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect())
}

/// For a user: products like what they bought lately, and bought with it; without a history,
/// what sells best in `region`.
pub async fn for_user(
    pool: &PgPool,
    vectors: &Vectors,
    embedder: &str,
    user_id: Uuid,
    region: &str,
    limit: usize,
) -> Result<Recommendations, sqlx::Error> {
    let history: Vec<Uuid> = sqlx::query_scalar(
        "SELECT product_id FROM purchases WHERE user_id = $1 ORDER BY last_at DESC, product_id \
         LIMIT $2",
    )
    .bind(user_id)
    .bind(HISTORY)
    .fetch_all(pool)
    .await?;
    let profile = profile(vectors, &history);
    let Some(profile) = profile else {
        return popular(pool, vectors, region, limit).await;
    };
    let co_purchases: HashMap<Uuid, i64> = sqlx::query_as::<_, (Uuid, i64)>(
        "SELECT other_id, sum(orders)::bigint FROM co_purchases WHERE product_id = ANY($1) \
         GROUP BY other_id ORDER BY 2 DESC LIMIT 200",
    )
    .bind(&history)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let exclude: HashSet<Uuid> = history.iter().copied().collect();
    let found = candidates(vectors, &profile, &co_purchases, &exclude, limit);
    let sales = sales_of(pool, region, &found).await?;
    let signals = Signals {
        co_purchases: &co_purchases,
        sales: &sales,
    };
    let items = blend(&found, signals, WEIGHTS, limit);
    Ok(Recommendations {
        items,
        model: model_name(embedder, &co_purchases),
    })
}

/// The recency-weighted mean of the history's embeddings (most recent first), unit length;
/// `None` without any.
pub fn profile(vectors: &Vectors, history: &[Uuid]) -> Option<Vec<f32>> {
    let mut sum = vec![0f32; vectors.dimension()];
    let mut weight = 1.0;
    let mut any = false;
    for id in history {
        if let Some(entry) = vectors.get(*id) {
            for (s, v) in sum.iter_mut().zip(&entry.vector) {
                *s += weight * v;
            }
            any = true;
        }
        weight *= RECENCY_DECAY;
    }
    let norm = dot(&sum, &sum).sqrt();
    (any && norm > 0.0).then(|| sum.iter().map(|v| v / norm).collect())
}

/// What sells best in `region` and is for sale, scored by units relative to the best seller.
async fn popular(
    pool: &PgPool,
    vectors: &Vectors,
    region: &str,
    limit: usize,
) -> Result<Recommendations, sqlx::Error> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT product_id, units FROM sales WHERE region = $1 ORDER BY units DESC, product_id \
         LIMIT $2",
    )
    .bind(region)
    .bind((limit * CANDIDATES_PER_ITEM) as i64)
    .fetch_all(pool)
    .await?;
    let most = rows.first().map_or(1, |r| r.1.max(1)) as f32;
    let items = rows
        .into_iter()
        .filter(|(id, _)| vectors.get(*id).is_some_and(|e| e.active))
        .take(limit)
        .map(|(id, units)| Scored {
            id,
            score: units as f32 / most,
        })
        .collect();
    Ok(Recommendations {
        items,
        model: format!("popularity/{region}"),
    })
}
