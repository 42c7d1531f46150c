//! The inventory's SQL, as plain functions over a connection.

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// The most units one region may hold of one product.
pub const MAX_AVAILABLE: i32 = 1_000_000;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RegionStock {
    pub region: String,
    pub available: i32,
    pub reserved: i32,
}

/// The product's stock in every region that has a row, by region name.
pub async fn stock(
    conn: &mut PgConnection,
    product_id: Uuid,
) -> Result<Vec<RegionStock>, sqlx::Error> {
    sqlx::query_as(
        "SELECT region, available, reserved FROM stock WHERE product_id = $1 ORDER BY region",
    )
    .bind(product_id)
    .fetch_all(conn)
    .await
}

/// Sets how many units a region has available, creating the row if needed; reservations
/// already made stay as they are.
pub async fn set_available(
    conn: &mut PgConnection,
    product_id: Uuid,
    region: &str,
    available: i32,
) -> Result<RegionStock, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO stock (product_id, region, available) VALUES ($1, $2, $3) \
         ON CONFLICT (product_id, region) DO UPDATE SET available = EXCLUDED.available, \
         updated_at = now() RETURNING region, available, reserved",
    )
    .bind(product_id)
    .bind(region)
    .bind(available)
    .fetch_one(conn)
    .await
}

/// Creates the row unless it exists; returns whether it did.
pub async fn insert_if_absent(
    conn: &mut PgConnection,
    product_id: Uuid,
    region: &str,
    available: i32,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO stock (product_id, region, available) VALUES ($1, $2, $3) \
         ON CONFLICT (product_id, region) DO NOTHING",
    )
    .bind(product_id)
    .bind(region)
    .bind(available)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A page of `inventory.availability`: every stock row of the region after `request.after`.
pub async fn availability_page(
    pool: &sqlx::PgPool,
    request: &meridian_contracts::inventory::AvailabilityPageRequest,
) -> Result<meridian_contracts::inventory::AvailabilityPage, String> {
    use meridian_contracts::inventory::{Availability, AvailabilityPage};
    let limit = i64::from(request.limit.clamp(1, 5000));
    let rows: Vec<(Uuid, bool, i64)> = sqlx::query_as(
        "SELECT product_id, available > 0, availability_version FROM stock \
         WHERE region = $1 AND ($2::uuid IS NULL OR product_id > $2) \
         ORDER BY product_id LIMIT $3",
    )
    .bind(&request.region)
    .bind(request.after)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(|error| {
        tracing::warn!(%error, "answering inventory.availability");
        "the inventory is unavailable".to_owned()
    })?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|row| row.0))
        .flatten();
    let items = rows
        .into_iter()
        .map(|(product_id, in_stock, version)| Availability {
            product_id,
            in_stock,
            version,
        })
        .collect();
    Ok(AvailabilityPage { items, next })
}
