//! The two consumers: product events become embeddings, confirmed orders become statistics.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, RwLock},
    time::Duration,
};

use meridian_contracts::catalog::ListCategories;
use meridian_embed::Embedder;
use meridian_jetstream::{
    Naming, RawEnvelope,
    events::{
        catalog::{ProductCreatedV1, ProductDeletedV1, ProductSnapshotV1, ProductUpdatedV1},
        orders::{OrderCancelledV1, OrderConfirmedV1},
    },
};
use meridian_platform::consume::Failure;
use sqlx::PgPool;
use uuid::Uuid;

use crate::vectors::{Entry, Vectors};

/// The most characters of a product's text that are embedded (the model reads 256 word
/// pieces at most anyway).
const MAX_TEXT_CHARS: usize = 2000;

/// The most product events embedded in one call of the model.
pub const EMBED_BATCH: usize = 32;

/// What a product event changes.
struct Change {
    id: Uuid,
    version: i64,
    category_id: Option<Uuid>,
    active: bool,
    /// What to embed: `None` for a product deleted or not active (its vector is kept).
    text: Option<String>,
}

#[derive(sqlx::FromRow)]
struct StoredEmbedding {
    product_id: Uuid,
    version: i64,
    category_id: Option<Uuid>,
    active: bool,
    vector: Vec<f32>,
}

#[derive(Clone)]
pub struct Worker {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub naming: Naming,
    pub embedder: Arc<Embedder>,
    pub vectors: Arc<Vectors>,
    pub categories: Arc<RwLock<HashMap<Uuid, String>>>,
}

fn retry(cause: impl std::fmt::Display) -> Failure {
    Failure::Retry {
        delay: Duration::from_secs(1),
        cause: cause.to_string(),
    }
}

/// What is embedded of a product: its name, category, description and attribute values.
pub fn product_text(product: &ProductSnapshotV1, category: Option<&str>) -> String {
    let mut text = product.name.clone();
    if let Some(category) = category {
        text.push_str(". ");
        text.push_str(category);
    }
    if !product.description.is_empty() {
        text.push_str(". ");
        text.push_str(&product.description);
    }
    let mut attributes = Vec::new();
    collect_strings(&product.attributes, &mut attributes);
    if !attributes.is_empty() {
        text.push_str(". ");
        text.push_str(&attributes.join(", "));
    }
    text.chars().take(MAX_TEXT_CHARS).collect()
}

fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Number(n) => out.push(n.to_string()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                let before = out.len();
                collect_strings(v, out);
                if out.len() > before {
                    out[before] = format!("{key} {}", out[before]);
                }
            }
        }
        serde_json::Value::Bool(_) | serde_json::Value::Null => {}
    }
}

impl Worker {
    /// Loads every stored embedding of the current model into memory.
    pub async fn load(&self) -> anyhow::Result<usize> {
        let rows: Vec<StoredEmbedding> = sqlx::query_as(
            "SELECT product_id, version, category_id, active, vector FROM embeddings \
             WHERE model = $1",
        )
        .bind(self.embedder.name())
        .fetch_all(&self.pool)
        .await?;
        let count = rows.len();
        for StoredEmbedding {
            product_id: id,
            version,
            category_id,
            active,
            vector,
        } in rows
        {
            self.vectors.upsert(
                id,
                Entry {
                    version,
                    category_id,
                    active,
                    vector,
                },
            );
        }
        Ok(count)
    }

    async fn category_name(&self, id: Uuid) -> Result<Option<String>, Failure> {
        if let Some(name) = self.read_category(id) {
            return Ok(Some(name));
        }
        let categories = meridian_platform::rpc::call::<ListCategories>(
            &self.nats,
            &self.naming,
            &(),
            Duration::from_secs(5),
        )
        .await
        .map_err(retry)?;
        let mut cache = self.categories.write().unwrap_or_else(|e| e.into_inner());
        for category in categories {
            cache.insert(category.id, category.name);
        }
        Ok(cache.get(&id).cloned())
    }

    fn read_category(&self, id: Uuid) -> Option<String> {
        let cache = self.categories.read().unwrap_or_else(|e| e.into_inner());
        cache.get(&id).cloned()
    }

    /// Product events, in delivery order: each product's embedding, where the event is newer
    /// than the one held. The texts of a batch are embedded in one call (every core at work);
    /// one outcome per event.
    pub async fn catalog_events(&self, events: Vec<RawEnvelope>) -> Vec<Result<(), Failure>> {
        let mut changes = Vec::with_capacity(events.len());
        for event in events {
            changes.push(self.read_catalog_event(event).await);
        }
        let texts: Vec<&str> = changes
            .iter()
            .filter_map(|c| c.as_ref().ok()?.as_ref()?.text.as_deref())
            .collect();
        let mut vectors = self.embed(&texts).await.into_iter();
        let mut outcomes = Vec::with_capacity(changes.len());
        for change in changes {
            let outcome = match change {
                Ok(Some(change)) => {
                    let vector = match change.text {
                        Some(_) => vectors
                            .next()
                            .unwrap_or_else(|| Err(retry("no vector came back"))),
                        // Deleted or inactive: the vector held is kept, as it stands now.
                        None => Ok(self
                            .vectors
                            .get(change.id)
                            .map(|e| e.vector)
                            .unwrap_or_default()),
                    };
                    match vector {
                        Ok(vector) => self.store(change, vector).await,
                        Err(failure) => Err(failure),
                    }
                }
                Ok(None) => Ok(()),
                Err(failure) => Err(failure),
            };
            outcomes.push(outcome);
        }
        outcomes
    }

    /// What a product event changes: `None` for an event of another kind, or one no newer than
    /// the embedding held.
    async fn read_catalog_event(&self, event: RawEnvelope) -> Result<Option<Change>, Failure> {
        let unreadable = |e: serde_json::Error| Failure::Drop(format!("unreadable payload: {e}"));
        let (id, version, product) = if let Some(e) = event.decode::<ProductCreatedV1>() {
            let p = e.map_err(unreadable)?.product;
            (p.id, p.version, Some(p))
        } else if let Some(e) = event.decode::<ProductUpdatedV1>() {
            let p = e.map_err(unreadable)?.product;
            (p.id, p.version, Some(p))
        } else if let Some(e) = event.decode::<ProductDeletedV1>() {
            let e = e.map_err(unreadable)?;
            (e.product_id, e.version, None)
        } else {
            return Ok(None);
        };
        if self.vectors.version(id).is_some_and(|held| held >= version) {
            metrics::counter!("recommendations_events_total", "outcome" => "stale").increment(1);
            return Ok(None);
        }
        let active = product.as_ref().is_some_and(|p| p.status == "active");
        let category_id = product.as_ref().and_then(|p| p.category_id);
        let text = match product.filter(|_| active) {
            Some(product) => {
                let category = match product.category_id {
                    Some(c) => self.category_name(c).await?,
                    None => None,
                };
                Some(product_text(&product, category.as_deref()))
            }
            None => None,
        };
        Ok(Some(Change {
            id,
            version,
            category_id,
            active,
            text,
        }))
    }

    /// The embeddings of `texts`, in one call; should that fail, one by one, so that a text the
    /// model refuses fails alone.
    async fn embed(&self, texts: &[&str]) -> Vec<Result<Vec<f32>, Failure>> {
        if texts.is_empty() {
            return Vec::new();
        }
        let owned: Vec<String> = texts.iter().map(|t| (*t).to_owned()).collect();
        let embedder = self.embedder.clone();
        let together = tokio::task::spawn_blocking(move || {
            let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
            embedder.embed(&texts)
        })
        .await;
        match together {
            Err(join) => texts.iter().map(|_| Err(retry(&join))).collect(),
            Ok(Ok(vectors)) if vectors.len() == texts.len() => {
                vectors.into_iter().map(Ok).collect()
            }
            Ok(result) if texts.len() == 1 => {
                let cause = match result {
                    Err(e) => e.to_string(),
                    Ok(_) => "no vector came back".to_owned(),
                };
                vec![Err(Failure::Drop(format!("embedding failed: {cause}")))]
            }
            Ok(_) => {
                let mut out = Vec::with_capacity(texts.len());
                for text in texts {
                    let mut one = Box::pin(self.embed(&[*text])).await;
                    out.push(
                        one.pop()
                            .unwrap_or_else(|| Err(retry("no vector came back"))),
                    );
                }
                out
            }
        }
    }

    /// `change` with its `vector`, in Postgres (only over an older version) and in memory.
    async fn store(&self, change: Change, vector: Vec<f32>) -> Result<(), Failure> {
        let Change {
            id,
            version,
            category_id,
            active,
            ..
        } = change;
        sqlx::query(
            "INSERT INTO embeddings (product_id, version, model, category_id, active, vector) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (product_id) DO UPDATE SET version = EXCLUDED.version, \
               model = EXCLUDED.model, category_id = EXCLUDED.category_id, \
               active = EXCLUDED.active, vector = EXCLUDED.vector, updated_at = now() \
             WHERE embeddings.version < EXCLUDED.version",
        )
        .bind(id)
        .bind(version)
        .bind(self.embedder.name())
        .bind(category_id)
        .bind(active)
        .bind(&vector)
        .execute(&self.pool)
        .await
        .map_err(retry)?;
        self.vectors.upsert(
            id,
            Entry {
                version,
                category_id,
                active,
                vector,
            },
        );
        metrics::counter!("recommendations_events_total", "outcome" => "applied").increment(1);
        Ok(())
    }

    /// A confirmed order: counted once into co-purchases, the buyer's history and the region's
    /// sales. A cancelled one: taken back once (or, cancelled before its confirmation arrives,
    /// never counted). Both under the order's advisory lock, so replicas handling the two at once
    /// cannot lose either.
    pub async fn order_event(&self, event: RawEnvelope) -> Result<(), Failure> {
        let unreadable = |e: serde_json::Error| Failure::Drop(format!("unreadable payload: {e}"));
        let (order_id, confirmed) = if let Some(order) = event.decode::<OrderConfirmedV1>() {
            let order = order.map_err(unreadable)?;
            (order.order_id, Some(order))
        } else if let Some(cancelled) = event.decode::<OrderCancelledV1>() {
            (cancelled.map_err(unreadable)?.order_id, None)
        } else {
            return Ok(());
        };
        let mut tx = self.pool.begin().await.map_err(retry)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
            .bind(order_id)
            .execute(&mut *tx)
            .await
            .map_err(retry)?;
        match confirmed {
            Some(order) => {
                let mut units: BTreeMap<Uuid, i32> = BTreeMap::new();
                for line in &order.lines {
                    *units.entry(line.product_id).or_default() += line.quantity.max(0);
                }
                let counted = Counted {
                    user_id: order.user_id,
                    region: order.region,
                    products: units.keys().copied().collect(),
                    units: units.values().copied().collect(),
                };
                let first = sqlx::query(
                    "INSERT INTO counted_orders (order_id, user_id, region, products, units) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(order_id)
                .bind(counted.user_id)
                .bind(&counted.region)
                .bind(&counted.products)
                .bind(&counted.units)
                .execute(&mut *tx)
                .await
                .map_err(retry)?
                .rows_affected()
                    == 1;
                // Counted before, or cancelled before it came: nothing to add.
                if first {
                    count(&mut tx, &counted, 1, event.occurred_at)
                        .await
                        .map_err(retry)?;
                }
            }
            None => {
                let taken_back: Option<Counted> = sqlx::query_as(
                    "UPDATE counted_orders SET cancelled = true \
                     WHERE order_id = $1 AND NOT cancelled AND products IS NOT NULL \
                     RETURNING user_id, region, products, units",
                )
                .bind(order_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(retry)?;
                match taken_back {
                    Some(counted) => count(&mut tx, &counted, -1, event.occurred_at)
                        .await
                        .map_err(retry)?,
                    None => {
                        sqlx::query(
                            "INSERT INTO counted_orders (order_id, cancelled) VALUES ($1, true) \
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(order_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(retry)?;
                    }
                }
            }
        }
        tx.commit().await.map_err(retry)?;
        metrics::counter!("recommendations_orders_total").increment(1);
        Ok(())
    }
}

/// What a counted order added.
#[derive(sqlx::FromRow)]
struct Counted {
    user_id: Uuid,
    region: String,
    products: Vec<Uuid>,
    units: Vec<i32>,
}

/// Adds (`sign` 1) or takes back (`sign` -1) an order's co-purchases, the buyer's units and the
/// region's sales.
async fn count(
    tx: &mut sqlx::PgConnection,
    order: &Counted,
    sign: i32,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO co_purchases (product_id, other_id, orders) \
         SELECT a, b, $2 FROM unnest($1::uuid[]) a, unnest($1::uuid[]) b WHERE a <> b \
         ON CONFLICT (product_id, other_id) DO UPDATE SET orders = co_purchases.orders + $2",
    )
    .bind(&order.products)
    .bind(sign)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO purchases (user_id, product_id, units, last_at) \
         SELECT $1, p, $5 * q, $4 FROM unnest($2::uuid[], $3::int[]) AS t(p, q) \
         ON CONFLICT (user_id, product_id) DO UPDATE SET \
           units = purchases.units + EXCLUDED.units, \
           last_at = CASE WHEN $5 > 0 THEN GREATEST(purchases.last_at, EXCLUDED.last_at) \
                          ELSE purchases.last_at END",
    )
    .bind(order.user_id)
    .bind(&order.products)
    .bind(&order.units)
    .bind(at)
    .bind(sign)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO sales (region, product_id, units) \
         SELECT $1, p, $4 * q FROM unnest($2::uuid[], $3::int[]) AS t(p, q) \
         ON CONFLICT (region, product_id) DO UPDATE SET units = sales.units + EXCLUDED.units",
    )
    .bind(&order.region)
    .bind(&order.products)
    .bind(&order.units)
    .bind(i64::from(sign))
    .execute(&mut *tx)
    .await?;
    if sign < 0 {
        // Nothing bought any more is no history (nor a co-purchase, nor a sale).
        sqlx::query("DELETE FROM purchases WHERE user_id = $1 AND units <= 0")
            .bind(order.user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM co_purchases WHERE product_id = ANY($1) AND orders <= 0")
            .bind(&order.products)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sales WHERE region = $1 AND product_id = ANY($2) AND units <= 0")
            .bind(&order.region)
            .bind(&order.products)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
