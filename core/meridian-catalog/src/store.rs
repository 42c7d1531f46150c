//! The catalog's SQL, as plain functions over a connection.
//!
//! Invariant: every function that changes a product also enqueues the matching event in the
//! same transaction, with the product's new version.

use chrono::{DateTime, Utc};
use meridian_jetstream::{
    Envelope, Event,
    events::catalog::{ProductCreatedV1, ProductDeletedV1, ProductSnapshotV1, ProductUpdatedV1},
};
use meridian_platform::{money::Money, outbox};
use serde::Serialize;
use sqlx::{PgConnection, Postgres, postgres::PgArguments, query::QueryAs};
use uuid::Uuid;

use crate::{
    SCHEMA,
    domain::{CategoryInput, ProductInput, ProductStatus},
};

/// A product as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Product {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: Money,
    pub category_id: Option<Uuid>,
    pub seller_id: Uuid,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    pub images: Vec<String>,
    #[schema(value_type = String, example = "active")]
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(sqlx::FromRow)]
struct ProductRow {
    id: Uuid,
    sku: String,
    name: String,
    description: String,
    price_amount: i64,
    price_currency: String,
    category_id: Option<Uuid>,
    seller_id: Uuid,
    attributes: sqlx::types::Json<serde_json::Value>,
    images: Vec<String>,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl From<ProductRow> for Product {
    fn from(row: ProductRow) -> Self {
        Product {
            id: row.id,
            sku: row.sku,
            name: row.name,
            description: row.description,
            price: Money {
                amount: row.price_amount,
                currency: row.price_currency,
            },
            category_id: row.category_id,
            seller_id: row.seller_id,
            attributes: row.attributes.0,
            images: row.images,
            status: row.status,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
        }
    }
}

impl Product {
    pub fn is_active(&self) -> bool {
        self.status == ProductStatus::Active.as_str()
    }

    fn snapshot(&self) -> ProductSnapshotV1 {
        ProductSnapshotV1 {
            id: self.id,
            sku: self.sku.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            price_amount: self.price.amount,
            price_currency: self.price.currency.clone(),
            category_id: self.category_id,
            seller_id: self.seller_id,
            attributes: self.attributes.clone(),
            images: self.images.clone(),
            status: self.status.clone(),
            version: self.version,
        }
    }
}

pub async fn insert_product(
    tx: &mut PgConnection,
    region: &str,
    seller_id: Uuid,
    input: &ProductInput,
) -> Result<Product, sqlx::Error> {
    let insert = sqlx::query_as(
        "INSERT INTO products (id, sku, name, description, price_amount, price_currency, \
         category_id, seller_id, attributes, images, status) \
         VALUES ($10, $1, $2, $3, $4, $5, $6, $11, $7, $8, $9) RETURNING *",
    );
    let row: ProductRow = bind_fields(insert, input)
        .bind(Uuid::now_v7())
        .bind(seller_id)
        .fetch_one(&mut *tx)
        .await?;
    let product = Product::from(row);
    let event = ProductCreatedV1 {
        product: product.snapshot(),
    };
    emit(tx, region, &product, event).await?;
    Ok(product)
}

/// Binds the writable fields as `$1` to `$9`, in `ProductInput` order.
fn bind_fields<'q>(
    query: QueryAs<'q, Postgres, ProductRow, PgArguments>,
    input: &'q ProductInput,
) -> QueryAs<'q, Postgres, ProductRow, PgArguments> {
    query
        .bind(&input.sku)
        .bind(&input.name)
        .bind(&input.description)
        .bind(input.price.amount)
        .bind(&input.price.currency)
        .bind(input.category_id)
        .bind(sqlx::types::Json(&input.attributes))
        .bind(&input.images)
        .bind(input.status.as_str())
}

/// Enqueues `event` about `product` at its current version, in the caller's transaction.
async fn emit<E: Event>(
    tx: &mut PgConnection,
    region: &str,
    product: &Product,
    event: E,
) -> Result<(), sqlx::Error> {
    let envelope = Envelope::new(region, product.id, product.version, event);
    outbox::enqueue(tx, SCHEMA, envelope).await.map(drop)
}

/// The product, unless deleted; locked for update when `for_update`.
pub async fn product(
    conn: &mut PgConnection,
    id: Uuid,
    for_update: bool,
) -> Result<Option<Product>, sqlx::Error> {
    let sql = if for_update {
        "SELECT * FROM products WHERE id = $1 AND deleted_at IS NULL FOR UPDATE"
    } else {
        "SELECT * FROM products WHERE id = $1 AND deleted_at IS NULL"
    };
    let row: Option<ProductRow> = sqlx::query_as(sql).bind(id).fetch_optional(conn).await?;
    Ok(row.map(Product::from))
}

/// Replaces the writable fields of a product locked by the caller.
pub async fn update_product(
    tx: &mut PgConnection,
    region: &str,
    id: Uuid,
    input: &ProductInput,
) -> Result<Product, sqlx::Error> {
    let update = sqlx::query_as(
        "UPDATE products SET sku = $1, name = $2, description = $3, price_amount = $4, \
         price_currency = $5, category_id = $6, attributes = $7, images = $8, status = $9, \
         version = version + 1, updated_at = now() \
         WHERE id = $10 AND deleted_at IS NULL RETURNING *",
    );
    let row: ProductRow = bind_fields(update, input)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let product = Product::from(row);
    let event = ProductUpdatedV1 {
        product: product.snapshot(),
    };
    emit(tx, region, &product, event).await?;
    Ok(product)
}

/// Marks a product locked by the caller deleted.
pub async fn delete_product(
    tx: &mut PgConnection,
    region: &str,
    product: &Product,
) -> Result<(), sqlx::Error> {
    let version: i64 = sqlx::query_scalar(
        "UPDATE products SET deleted_at = now(), version = version + 1, updated_at = now() \
         WHERE id = $1 RETURNING version",
    )
    .bind(product.id)
    .fetch_one(&mut *tx)
    .await?;
    let event = ProductDeletedV1 {
        product_id: product.id,
        sku: product.sku.clone(),
        version,
    };
    outbox::enqueue(
        tx,
        SCHEMA,
        Envelope::new(region, product.id, version, event),
    )
    .await?;
    Ok(())
}

/// Which products a listing may show.
pub struct ListFilter {
    pub category_id: Option<Uuid>,
    pub seller_id: Option<Uuid>,
    /// Drafts and archived products too (their seller, or an admin).
    pub all_statuses: bool,
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// Products in id order (ids are UUID v7, so that is creation order), `limit + 1` at most.
pub async fn list_products(
    conn: &mut PgConnection,
    filter: &ListFilter,
) -> Result<Vec<Product>, sqlx::Error> {
    let rows: Vec<ProductRow> = sqlx::query_as(
        "SELECT * FROM products WHERE deleted_at IS NULL \
         AND ($1::uuid IS NULL OR category_id = $1) \
         AND ($2::uuid IS NULL OR seller_id = $2) \
         AND ($3 OR status = 'active') \
         AND ($4::uuid IS NULL OR id > $4) \
         ORDER BY id LIMIT $5",
    )
    .bind(filter.category_id)
    .bind(filter.seller_id)
    .bind(filter.all_statuses)
    .bind(filter.after)
    .bind(filter.limit + 1)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Product::from).collect())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Category {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub parent_id: Option<Uuid>,
}

pub async fn categories(conn: &mut PgConnection) -> Result<Vec<Category>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, slug, parent_id FROM categories ORDER BY name, id")
        .fetch_all(conn)
        .await
}

pub async fn category_exists(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM categories WHERE id = $1)")
        .bind(id)
        .fetch_one(conn)
        .await
}

/// The most categories the tree may hold; the tree is answered whole.
pub const MAX_CATEGORIES: i64 = 1000;

pub async fn insert_category(
    conn: &mut PgConnection,
    input: &CategoryInput,
) -> Result<Category, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO categories (id, name, slug, parent_id) VALUES ($1, $2, $3, $4) \
         RETURNING id, name, slug, parent_id",
    )
    .bind(Uuid::now_v7())
    .bind(&input.name)
    .bind(input.slug.as_deref().unwrap_or_default())
    .bind(input.parent_id)
    .fetch_one(conn)
    .await
}

pub async fn count_categories(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM categories")
        .fetch_one(conn)
        .await
}

/// Who sells a product, for other services (the `catalog.product_summary` contract); `None`
/// for an unknown or deleted product. The error is the reply's error text.
pub async fn summary(
    pool: &sqlx::PgPool,
    product_id: &str,
) -> Result<Option<meridian_contracts::catalog::ProductSummary>, String> {
    let Ok(id) = Uuid::parse_str(product_id) else {
        return Ok(None);
    };
    let row: Option<(Uuid, String, String, String, i64, String)> = sqlx::query_as(
        "SELECT seller_id, status, sku, name, price_amount, price_currency FROM products \
         WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(|error| {
        tracing::warn!(%error, "answering catalog.product_summary");
        "the catalog is unavailable".to_owned()
    })?;
    Ok(row.map(
        |(seller_id, status, sku, name, price_amount, price_currency)| {
            meridian_contracts::catalog::ProductSummary {
                product_id: id.to_string(),
                seller_id: seller_id.to_string(),
                status,
                sku,
                name,
                price_amount,
                price_currency,
            }
        },
    ))
}

/// A reply to `catalog.product_snapshots` stays under this many bytes of JSON (NATS' default
/// message limit is 1 MiB; a product is at most about 14 KiB).
const SNAPSHOT_PAGE_BYTES: usize = 512 * 1024;

/// Products that are not deleted, whatever their status, in id order after `after`: what a
/// projection is rebuilt from (the `catalog.product_snapshots` contract). The error is the
/// reply's error text.
pub async fn snapshot_page(
    pool: &sqlx::PgPool,
    request: &meridian_contracts::catalog::SnapshotPageRequest,
) -> Result<meridian_contracts::catalog::SnapshotPage, String> {
    let limit = i64::from(request.limit.clamp(1, 1000));
    let rows: Vec<ProductRow> = sqlx::query_as(
        "SELECT * FROM products WHERE deleted_at IS NULL AND ($1::uuid IS NULL OR id > $1) \
         ORDER BY id LIMIT $2",
    )
    .bind(request.after)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(|error| {
        tracing::warn!(%error, "answering catalog.product_snapshots");
        "the catalog is unavailable".to_owned()
    })?;
    let full = rows.len() as i64 == limit;
    let count = rows.len();
    let mut products = Vec::with_capacity(rows.len());
    let mut bytes = 0;
    for row in rows {
        let snapshot = Product::from(row).snapshot();
        bytes += snapshot.name.len()
            + snapshot.description.len()
            + snapshot.attributes.to_string().len()
            + snapshot.images.iter().map(|i| i.len() + 3).sum::<usize>()
            + 400;
        products.push(snapshot);
        if bytes > SNAPSHOT_PAGE_BYTES {
            break;
        }
    }
    // A page cut short by its size, or a full one, may have a successor.
    let next = if full || products.len() < count {
        products.last().map(|p| p.id)
    } else {
        None
    };
    Ok(meridian_contracts::catalog::SnapshotPage { products, next })
}

/// Every category, for other services (the `catalog.categories` contract).
pub async fn category_infos(
    pool: &sqlx::PgPool,
) -> Result<Vec<meridian_contracts::catalog::CategoryInfo>, String> {
    let mut conn = pool.acquire().await.map_err(|error| {
        tracing::warn!(%error, "answering catalog.categories");
        "the catalog is unavailable".to_owned()
    })?;
    let rows = categories(&mut conn).await.map_err(|error| {
        tracing::warn!(%error, "answering catalog.categories");
        "the catalog is unavailable".to_owned()
    })?;
    Ok(rows
        .into_iter()
        .map(|c| meridian_contracts::catalog::CategoryInfo {
            id: c.id,
            name: c.name,
            slug: c.slug,
            parent_id: c.parent_id,
        })
        .collect())
}
