//! The reviews' SQL, as plain functions.
//!
//! Invariant: `ratings` holds, for every product, the count and sum of its visible reviews;
//! every function that adds, changes, hides or removes a review updates it in the same
//! transaction, from the row it locked.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

/// A review as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Review {
    pub id: Uuid,
    pub product_id: Uuid,
    pub user_id: Uuid,
    pub rating: i16,
    pub title: String,
    pub body: String,
    /// The author has a confirmed order with this product that was not cancelled.
    pub verified_purchase: bool,
    pub hidden: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT_REVIEW: &str = "SELECT r.id, r.product_id, r.user_id, r.rating, r.title, r.body, \
    EXISTS (SELECT 1 FROM purchases p WHERE p.user_id = r.user_id AND p.product_id = r.product_id) \
    AS verified_purchase, r.hidden, r.created_at, r.updated_at FROM reviews r";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Rating {
    /// The mean rating, rounded to two decimals; 0 without reviews.
    pub average: f64,
    pub count: i64,
}

pub async fn rating(conn: &mut PgConnection, product_id: Uuid) -> Result<Rating, sqlx::Error> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT count, total FROM ratings WHERE product_id = $1")
            .bind(product_id)
            .fetch_optional(conn)
            .await?;
    let (count, total) = row.unwrap_or((0, 0));
    let average = if count == 0 {
        0.0
    } else {
        (total as f64 / count as f64 * 100.0).round() / 100.0
    };
    Ok(Rating { average, count })
}

/// Visible reviews of a product, newest first, `limit + 1` at most.
pub async fn list(
    conn: &mut PgConnection,
    product_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Review>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_REVIEW} WHERE r.product_id = $1 AND NOT r.hidden \
         AND ($2::uuid IS NULL OR r.id < $2) ORDER BY r.id DESC LIMIT $3"
    )))
    .bind(product_id)
    .bind(before)
    .bind(limit + 1)
    .fetch_all(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Review>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT_REVIEW} WHERE r.id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Adds `(count, total)` to the product's rating.
async fn adjust(
    conn: &mut PgConnection,
    product_id: Uuid,
    count: i64,
    total: i64,
) -> Result<(), sqlx::Error> {
    // A decrement always finds the row its review was counted in; an INSERT's proposed row
    // would fail the CHECKs before ON CONFLICT could turn it into an update.
    let sql = if count >= 0 && total >= 0 {
        "INSERT INTO ratings (product_id, count, total) VALUES ($1, $2, $3) \
         ON CONFLICT (product_id) DO UPDATE SET count = ratings.count + EXCLUDED.count, \
         total = ratings.total + EXCLUDED.total"
    } else {
        "UPDATE ratings SET count = count + $2, total = total + $3 WHERE product_id = $1"
    };
    sqlx::query(sql)
        .bind(product_id)
        .bind(count)
        .bind(total)
        .execute(conn)
        .await?;
    Ok(())
}

pub struct NewReview<'a> {
    pub product_id: Uuid,
    pub user_id: Uuid,
    pub rating: i16,
    pub title: &'a str,
    pub body: &'a str,
}

/// Inserts the review and counts it; the unique index `reviews_one_per_user` refuses a second
/// one by the same user.
pub async fn insert(tx: &mut PgConnection, review: &NewReview<'_>) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO reviews (id, product_id, user_id, rating, title, body) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(review.product_id)
    .bind(review.user_id)
    .bind(review.rating)
    .bind(review.title)
    .bind(review.body)
    .execute(&mut *tx)
    .await?;
    adjust(tx, review.product_id, 1, i64::from(review.rating)).await?;
    Ok(id)
}

/// A review's row, locked for the rest of the transaction: what a change needs to keep the
/// product's rating right.
#[derive(Debug, Clone, Copy)]
pub struct Locked {
    pub id: Uuid,
    pub product_id: Uuid,
    pub author: Uuid,
    pub rating: i16,
    pub hidden: bool,
}

pub async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<Option<Locked>, sqlx::Error> {
    let row: Option<(Uuid, Uuid, i16, bool)> = sqlx::query_as(
        "SELECT product_id, user_id, rating, hidden FROM reviews WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(tx)
    .await?;
    Ok(row.map(|(product_id, author, rating, hidden)| Locked {
        id,
        product_id,
        author,
        rating,
        hidden,
    }))
}

pub async fn update(
    tx: &mut PgConnection,
    review: Locked,
    rating: i16,
    title: &str,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE reviews SET rating = $2, title = $3, body = $4, updated_at = now() WHERE id = $1",
    )
    .bind(review.id)
    .bind(rating)
    .bind(title)
    .bind(body)
    .execute(&mut *tx)
    .await?;
    if !review.hidden {
        adjust(tx, review.product_id, 0, i64::from(rating - review.rating)).await?;
    }
    Ok(())
}

pub async fn set_hidden(
    tx: &mut PgConnection,
    review: Locked,
    hidden: bool,
) -> Result<(), sqlx::Error> {
    if review.hidden == hidden {
        return Ok(());
    }
    sqlx::query("UPDATE reviews SET hidden = $2, updated_at = now() WHERE id = $1")
        .bind(review.id)
        .bind(hidden)
        .execute(&mut *tx)
        .await?;
    let sign = if hidden { -1 } else { 1 };
    adjust(tx, review.product_id, sign, sign * i64::from(review.rating)).await
}

pub async fn delete(tx: &mut PgConnection, review: Locked) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM reviews WHERE id = $1")
        .bind(review.id)
        .execute(&mut *tx)
        .await?;
    if !review.hidden {
        adjust(tx, review.product_id, -1, -i64::from(review.rating)).await?;
    }
    Ok(())
}

/// Serializes the projection's writes about one order (two replicas may be handed its
/// confirmation and its cancellation at once).
async fn lock_order(tx: &mut PgConnection, order_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))")
        .bind(order_id)
        .execute(tx)
        .await?;
    Ok(())
}

/// Records the lines of a confirmed order, unless the order was cancelled.
pub async fn record_purchase(
    tx: &mut PgConnection,
    order_id: Uuid,
    user_id: Uuid,
    products: &[Uuid],
) -> Result<(), sqlx::Error> {
    lock_order(tx, order_id).await?;
    sqlx::query(
        "INSERT INTO purchases (order_id, product_id, user_id) \
         SELECT $1, product, $2 FROM unnest($3::uuid[]) AS product \
         WHERE NOT EXISTS (SELECT 1 FROM cancelled_orders WHERE order_id = $1) \
         ON CONFLICT DO NOTHING",
    )
    .bind(order_id)
    .bind(user_id)
    .bind(products)
    .execute(tx)
    .await?;
    Ok(())
}

/// Forgets a cancelled order's lines, and remembers the cancellation.
pub async fn record_cancellation(tx: &mut PgConnection, order_id: Uuid) -> Result<(), sqlx::Error> {
    lock_order(tx, order_id).await?;
    sqlx::query(
        "WITH cancelled AS (INSERT INTO cancelled_orders (order_id) VALUES ($1) \
         ON CONFLICT DO NOTHING) DELETE FROM purchases WHERE order_id = $1",
    )
    .bind(order_id)
    .execute(tx)
    .await?;
    Ok(())
}
