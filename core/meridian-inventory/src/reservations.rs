//! Reservations: stock of one region held for a while, all items or none.
//!
//! Invariant: every stock change is one conditional `UPDATE ... WHERE available >= n` (never a
//! read followed by a write), taken in product-id order so that two reservations can never
//! wait on each other; a reservation leaves `held` exactly once (`UPDATE ... WHERE status =
//! 'held'`), so a release racing an expiry or a confirmation returns the units only once.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SubsecRound, Utc};
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
            outbox::wake(SCHEMA);
            Ok(reservation)
        }
        Err(error) => {
            tx.rollback().await?;
            Err(error)
        }
    }
}

/// [`reserve`] inside the caller's transaction, which must be rolled back on an error.
pub async fn reserve_in(
    conn: &mut PgConnection,
    region: &str,
    items: &BTreeMap<Uuid, i32>,
    ttl: Duration,
) -> Result<Reservation, ReserveError> {
    let reservation = Reservation {
        reservation_id: Uuid::now_v7(),
        region: region.to_owned(),
        status: "held".into(),
        expires_at: Utc::now().trunc_subsecs(6) + ttl,
    };
    let short = hold(conn, &reservation, items, None).await?;
    if short.is_empty() {
        Ok(reservation)
    } else {
        Err(ReserveError::Short(short))
    }
}

/// An answer to record under an idempotency key in the reservation's own transaction.
pub struct Record<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub fingerprint: &'a [u8],
    pub body: &'a [u8],
}

/// Holds `items` for `reservation` with its event, and records `record` when given, in one
/// statement (`reserve_stock`); returns the products short of stock, having held nothing if
/// any is. A key recorded before fails with a unique violation, having done nothing. Once the
/// statement's transaction committed, the caller wakes the relay (`outbox::wake`).
pub async fn hold(
    conn: &mut PgConnection,
    reservation: &Reservation,
    items: &BTreeMap<Uuid, i32>,
    record: Option<&Record<'_>>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let event = StockReservedV1 {
        reservation_id: reservation.reservation_id,
        region: reservation.region.clone(),
        items: lines(items.iter().map(|(p, q)| (*p, *q))),
    };
    let raw = Envelope::new(&reservation.region, reservation.reservation_id, 1, event)
        .into_raw()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    // BTreeMap iterates in product-id order: the fixed lock order.
    let (products, quantities): (Vec<Uuid>, Vec<i32>) = items.iter().map(|(p, q)| (*p, *q)).unzip();
    sqlx::query_scalar("SELECT reserve_stock($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
        .bind(&reservation.region)
        .bind(products)
        .bind(quantities)
        .bind(reservation.reservation_id)
        .bind(reservation.expires_at)
        .bind(raw.id)
        .bind(&raw.event_type)
        .bind(sqlx::types::Json(&raw))
        .bind(record.map(|r| r.scope))
        .bind(record.map(|r| r.key))
        .bind(record.map(|r| r.fingerprint))
        .bind(record.map(|r| r.body))
        .fetch_one(&mut *conn)
        .await
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

/// What `move_reservation` answers.
#[derive(sqlx::FromRow)]
struct Moved {
    transition: String,
    status: String,
    region: Option<String>,
    products: Option<Vec<Uuid>>,
    quantities: Option<Vec<i32>>,
}

/// Moves a reservation from `from` to `to` and settles its units (`move_reservation`, one
/// statement): `held → confirmed` sells them (out of `reserved`), `held → released|expired`
/// returns them (`reserved` back to `available`), `confirmed → returned` puts sold units back
/// on sale. Every move but a confirmation emits `StockReleased`, in the caller's transaction.
async fn move_reservation(
    conn: &mut PgConnection,
    reservation_id: Uuid,
    from: &str,
    to: &str,
) -> Result<(Transition, String), sqlx::Error> {
    let Moved {
        transition,
        status,
        region,
        products,
        quantities,
    } = sqlx::query_as("SELECT * FROM move_reservation($1, $2, $3)")
        .bind(reservation_id)
        .bind(from)
        .bind(to)
        .fetch_one(&mut *conn)
        .await?;
    match transition.as_str() {
        "done" => {}
        "already_left" => return Ok((Transition::AlreadyLeft, status)),
        _ => return Ok((Transition::NotFound, String::new())),
    }
    if to != "confirmed" {
        let region = region.unwrap_or_default();
        let items = products
            .unwrap_or_default()
            .into_iter()
            .zip(quantities.unwrap_or_default());
        let event = StockReleasedV1 {
            reservation_id,
            region: region.clone(),
            reason: to.to_owned(),
            items: lines(items),
        };
        // held (1) → released/expired/confirmed (2) → returned (3).
        let version = if from == "held" { 2 } else { 3 };
        let envelope = Envelope::new(&region, reservation_id, version, event);
        outbox::enqueue(conn, SCHEMA, envelope).await?;
    }
    Ok((Transition::Done, status))
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

/// Sells a held reservation's units (after payment): one statement, no event.
pub async fn confirm(
    pool: &PgPool,
    reservation_id: Uuid,
) -> Result<(Transition, String), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    leave_held(&mut conn, reservation_id, "confirmed").await
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
