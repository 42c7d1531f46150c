//! Reservations: stock of one region held for a while, all items or none.
//!
//! Invariant: every stock change is one conditional `UPDATE ... WHERE available >= n` (never a
//! read followed by a write), taken in product-id order so that two reservations can never
//! wait on each other; a reservation leaves `held` exactly once (`UPDATE ... WHERE status =
//! 'held'`), so a release racing an expiry or a confirmation returns the units only once.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use meridian_jetstream::{
    Envelope,
    events::inventory::{StockLine, StockReleasedV1, StockReservedV1},
};
use meridian_platform::outbox;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::SCHEMA;

fn lines(items: impl Iterator<Item = (Uuid, i32)>) -> Vec<StockLine> {
    items
        .map(|(product_id, quantity)| StockLine {
            product_id,
            quantity,
        })
        .collect()
}

/// The most distinct products and units one reservation may hold.
pub const MAX_ITEMS: usize = 100;
pub const MAX_QUANTITY: i32 = 1000;
/// Reservation lifetimes callers may ask for.
pub const MIN_TTL_S: i64 = 10;
pub const MAX_TTL_S: i64 = 3600;
pub const DEFAULT_TTL_S: i64 = 600;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reservation {
    pub reservation_id: Uuid,
    pub region: String,
    pub status: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, PartialEq)]
pub enum ReserveError {
    /// These products have fewer units available than asked for; nothing was reserved.
    Short(Vec<Uuid>),
    Database(String),
}

impl From<sqlx::Error> for ReserveError {
    fn from(error: sqlx::Error) -> Self {
        ReserveError::Database(error.to_string())
    }
}

/// Holds `items` (product → units) in `region` for `ttl`, or nothing at all.
pub async fn reserve(
    pool: &PgPool,
    region: &str,
    items: &BTreeMap<Uuid, i32>,
    ttl: Duration,
) -> Result<Reservation, ReserveError> {
    let mut tx = pool.begin().await?;
    match reserve_in(&mut tx, region, items, ttl).await {
        Ok(reservation) => {
            tx.commit().await?;
            Ok(reservation)
        }
        Err(error) => {
            tx.rollback().await?;
            Err(error)
        }
    }
}

/// [`reserve`] inside the caller's transaction, which must be rolled back on an error (some
/// items may have been taken before a short one was found).
pub async fn reserve_in(
    tx: &mut PgConnection,
    region: &str,
    items: &BTreeMap<Uuid, i32>,
    ttl: Duration,
) -> Result<Reservation, ReserveError> {
    let mut short = Vec::new();
    // BTreeMap iterates in product-id order: the fixed lock order.
    for (product_id, quantity) in items {
        let taken = sqlx::query(
            "UPDATE stock SET available = available - $3, reserved = reserved + $3, \
             updated_at = now() WHERE product_id = $1 AND region = $2 AND available >= $3",
        )
        .bind(product_id)
        .bind(region)
        .bind(quantity)
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() == 0 {
            short.push(*product_id);
        }
    }
    if !short.is_empty() {
        return Err(ReserveError::Short(short));
    }
    let reservation = Reservation {
        reservation_id: Uuid::now_v7(),
        region: region.to_owned(),
        status: "held".into(),
        expires_at: Utc::now() + ttl,
    };
    sqlx::query(
        "INSERT INTO reservations (id, region, status, expires_at) VALUES ($1, $2, 'held', $3)",
    )
    .bind(reservation.reservation_id)
    .bind(region)
    .bind(reservation.expires_at)
    .execute(&mut *tx)
    .await?;
    for (product_id, quantity) in items {
        sqlx::query(
            "INSERT INTO reservation_items (reservation_id, product_id, quantity) VALUES ($1, $2, $3)",
        )
        .bind(reservation.reservation_id)
        .bind(product_id)
        .bind(quantity)
        .execute(&mut *tx)
        .await?;
    }
    let event = StockReservedV1 {
        reservation_id: reservation.reservation_id,
        region: region.to_owned(),
        items: lines(items.iter().map(|(p, q)| (*p, *q))),
    };
    let envelope = Envelope::new(region, reservation.reservation_id, 1, event);
    outbox::enqueue(tx, SCHEMA, envelope).await?;
    Ok(reservation)
}

/// What became of a reservation that was asked to leave `held`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// It was held and now is in the new state.
    Done,
    /// It had already left `held` (in this state); nothing changed.
    AlreadyLeft,
    NotFound,
}

/// Moves a held reservation to `to` (`released`, `expired` or `confirmed`) and settles its
/// units: back to `available`, or out of `reserved` as sold.
async fn leave_held(
    conn: &mut PgConnection,
    reservation_id: Uuid,
    to: &str,
) -> Result<(Transition, String), sqlx::Error> {
    move_reservation(conn, reservation_id, "held", to).await
}

/// Moves a reservation from `from` to `to` and settles its units: `held → confirmed` sells
/// them (out of `reserved`), `held → released|expired` returns them (`reserved` back to
/// `available`), `confirmed → returned` puts sold units back on sale.
async fn move_reservation(
    conn: &mut PgConnection,
    reservation_id: Uuid,
    from: &str,
    to: &str,
) -> Result<(Transition, String), sqlx::Error> {
    let region: Option<String> = sqlx::query_scalar(
        "UPDATE reservations SET status = $2, updated_at = now() \
         WHERE id = $1 AND status = $3 RETURNING region",
    )
    .bind(reservation_id)
    .bind(to)
    .bind(from)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(region) = region else {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM reservations WHERE id = $1")
                .bind(reservation_id)
                .fetch_optional(&mut *conn)
                .await?;
        return Ok(match status {
            Some(status) => (Transition::AlreadyLeft, status),
            None => (Transition::NotFound, String::new()),
        });
    };
    let items: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT product_id, quantity FROM reservation_items WHERE reservation_id = $1 \
         ORDER BY product_id",
    )
    .bind(reservation_id)
    .fetch_all(&mut *conn)
    .await?;
    let settle = match to {
        "confirmed" => {
            "UPDATE stock SET reserved = reserved - $3, updated_at = now() \
             WHERE product_id = $1 AND region = $2"
        }
        "returned" => {
            "UPDATE stock SET available = available + $3, updated_at = now() \
             WHERE product_id = $1 AND region = $2"
        }
        _ => {
            "UPDATE stock SET reserved = reserved - $3, available = available + $3, \
             updated_at = now() WHERE product_id = $1 AND region = $2"
        }
    };
    if to != "confirmed" {
        let event = StockReleasedV1 {
            reservation_id,
            region: region.clone(),
            reason: to.to_owned(),
            items: lines(items.iter().copied()),
        };
        // held (1) → released/expired/confirmed (2) → returned (3).
        let version = if from == "held" { 2 } else { 3 };
        let envelope = Envelope::new(&region, reservation_id, version, event);
        outbox::enqueue(conn, SCHEMA, envelope).await?;
    }
    // One row at a time, in product-id order: the same lock order as `reserve`.
    for (product_id, quantity) in items {
        sqlx::query(settle)
            .bind(product_id)
            .bind(&region)
            .bind(quantity)
            .execute(&mut *conn)
            .await?;
    }
    Ok((Transition::Done, to.to_owned()))
}

/// Returns a held reservation's units to `available`.
pub async fn release(
    pool: &PgPool,
    reservation_id: Uuid,
) -> Result<(Transition, String), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let outcome = leave_held(&mut tx, reservation_id, "released").await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Puts a confirmed reservation's units back on sale (its order was cancelled before shipping).
pub async fn restock(
    pool: &PgPool,
    reservation_id: Uuid,
) -> Result<(Transition, String), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let outcome = move_reservation(&mut tx, reservation_id, "confirmed", "returned").await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Sells a held reservation's units (after payment).
pub async fn confirm(
    pool: &PgPool,
    reservation_id: Uuid,
) -> Result<(Transition, String), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let outcome = leave_held(&mut tx, reservation_id, "confirmed").await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Releases up to `batch` reservations whose time ran out, each in its own transaction (so
/// no lock is held across reservations); returns how many this call expired.
pub async fn expire_due(pool: &PgPool, batch: i64) -> Result<usize, sqlx::Error> {
    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM reservations WHERE status = 'held' AND expires_at <= now() \
         ORDER BY expires_at LIMIT $1",
    )
    .bind(batch)
    .fetch_all(pool)
    .await?;
    let mut expired = 0;
    for id in due {
        let mut tx = pool.begin().await?;
        // A release or confirmation that won the race leaves it alone.
        if leave_held(&mut tx, id, "expired").await?.0 == Transition::Done {
            expired += 1;
        }
        tx.commit().await?;
    }
    Ok(expired)
}

/// Reservations one sweep expires before it looks again.
const SWEEP_BATCH: i64 = 200;

/// How often the sweeper also deletes idempotency keys past their retention.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Expires due reservations every `every` (and purges old idempotency keys hourly) until
/// `shutdown` fires.
pub fn spawn_sweeper(
    pool: PgPool,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_purge = std::time::Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            if last_purge.elapsed() >= PURGE_EVERY {
                last_purge = std::time::Instant::now();
                match meridian_platform::idempotency::purge_expired(&pool).await {
                    Ok(purged) => tracing::debug!(purged, "old idempotency keys purged"),
                    Err(error) => tracing::warn!(%error, "purging idempotency keys failed"),
                }
            }
            loop {
                match expire_due(&pool, SWEEP_BATCH).await {
                    Ok(expired) if expired as i64 == SWEEP_BATCH => continue,
                    Ok(expired) => {
                        if expired > 0 {
                            tracing::info!(expired, "expired reservations released");
                        }
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "expiring reservations failed");
                        break;
                    }
                }
            }
        }
    })
}
