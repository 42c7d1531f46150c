//! The payments' SQL, as plain functions over a connection.
//!
//! Invariant: a payment or refund leaves `pending` exactly once (`UPDATE ... WHERE status =
//! 'pending'`); the caller enqueues the matching event only when its update did that.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// How long a charge or refund attempt holds its pending row: longer than the slowest attempt
/// (three provider calls of at most 15 s and the pauses between them). A row whose holder died
/// is taken over after it.
pub const ATTEMPT_LEASE_S: f64 = 60.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pending,
    Succeeded,
    Failed,
}

impl Status {
    pub fn parse(raw: &str) -> Status {
        match raw {
            "succeeded" => Status::Succeeded,
            "failed" => Status::Failed,
            _ => Status::Pending,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Payment {
    pub id: Uuid,
    pub order_id: Uuid,
    pub user_id: Option<Uuid>,
    pub amount: i64,
    pub currency: String,
    pub provider: String,
    pub status: String,
    pub failure_reason: Option<String>,
    pub provider_ref: Option<String>,
    pub idempotency_key: String,
    pub request_fingerprint: Vec<u8>,
    pub refunded_amount: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Payment {
    pub fn status(&self) -> Status {
        Status::parse(&self.status)
    }
}

/// A charge to record before the provider is asked.
pub struct NewPayment<'a> {
    pub order_id: Uuid,
    pub user_id: Option<Uuid>,
    pub amount: i64,
    pub currency: &'a str,
    pub provider: &'a str,
    pub idempotency_key: &'a str,
    pub request_fingerprint: &'a [u8],
}

/// Inserts a pending payment held by this attempt; `None` when the key exists already.
pub async fn insert_pending_payment(
    conn: &mut PgConnection,
    new: &NewPayment<'_>,
) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO payments (id, order_id, user_id, amount, currency, provider, status, \
         idempotency_key, request_fingerprint, attempt_expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, now() + make_interval(secs => $9)) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(new.order_id)
    .bind(new.user_id)
    .bind(new.amount)
    .bind(new.currency)
    .bind(new.provider)
    .bind(new.idempotency_key)
    .bind(new.request_fingerprint)
    .bind(ATTEMPT_LEASE_S)
    .fetch_optional(conn)
    .await
}

/// Takes a pending payment over whose last attempt ended without an outcome (or died), for a
/// request with the same fingerprint through the same provider; `None` when it is not free.
pub async fn take_over_payment(
    conn: &mut PgConnection,
    idempotency_key: &str,
    request_fingerprint: &[u8],
    provider: &str,
) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE payments SET attempt_expires_at = now() + make_interval(secs => $4), \
         updated_at = now() \
         WHERE idempotency_key = $1 AND request_fingerprint = $2 AND provider = $3 \
           AND status = 'pending' \
           AND (attempt_expires_at IS NULL OR attempt_expires_at < now()) \
         RETURNING *",
    )
    .bind(idempotency_key)
    .bind(request_fingerprint)
    .bind(provider)
    .bind(ATTEMPT_LEASE_S)
    .fetch_optional(conn)
    .await
}

pub async fn payment_by_key(
    conn: &mut PgConnection,
    idempotency_key: &str,
) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM payments WHERE idempotency_key = $1")
        .bind(idempotency_key)
        .fetch_optional(conn)
        .await
}

/// The payment; locked until the transaction ends when `for_update`.
pub async fn payment(
    conn: &mut PgConnection,
    id: Uuid,
    for_update: bool,
) -> Result<Option<Payment>, sqlx::Error> {
    let sql = if for_update {
        "SELECT * FROM payments WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT * FROM payments WHERE id = $1"
    };
    sqlx::query_as(sql).bind(id).fetch_optional(conn).await
}

/// Moves a pending payment to `succeeded` (with the provider's reference) or `failed` (with
/// the reason); `None` when it had already left `pending`.
pub async fn settle_payment(
    conn: &mut PgConnection,
    id: Uuid,
    failure_reason: Option<&str>,
    provider_ref: Option<&str>,
) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE payments SET status = CASE WHEN $2::text IS NULL THEN 'succeeded' ELSE 'failed' END, \
         failure_reason = $2, provider_ref = $3, version = version + 1, \
         attempt_expires_at = NULL, updated_at = now() \
         WHERE id = $1 AND status = 'pending' RETURNING *",
    )
    .bind(id)
    .bind(failure_reason)
    .bind(provider_ref)
    .fetch_optional(conn)
    .await
}

/// Ends this attempt's hold on a pending payment or refund (its outcome is unknown), so that a
/// retry may ask the provider again at once.
pub async fn release_attempt(
    conn: &mut PgConnection,
    table: Table,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    let sql = match table {
        Table::Payments => {
            "UPDATE payments SET attempt_expires_at = NULL WHERE id = $1 AND status = 'pending'"
        }
        Table::Refunds => {
            "UPDATE refunds SET attempt_expires_at = NULL WHERE id = $1 AND status = 'pending'"
        }
    };
    sqlx::query(sql).bind(id).execute(conn).await?;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub enum Table {
    Payments,
    Refunds,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Refund {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub failure_reason: Option<String>,
    pub provider_ref: Option<String>,
    pub idempotency_key: String,
    pub request_fingerprint: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Refund {
    pub fn status(&self) -> Status {
        Status::parse(&self.status)
    }
}

pub async fn refund_by_key(
    conn: &mut PgConnection,
    idempotency_key: &str,
) -> Result<Option<Refund>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM refunds WHERE idempotency_key = $1")
        .bind(idempotency_key)
        .fetch_optional(conn)
        .await
}

/// Inserts a pending refund held by this attempt and adds its amount to the payment's
/// `refunded_amount` (whose CHECK refuses more than was paid); `None` when the key exists.
/// The caller holds the payment's row lock and has checked what remains.
pub async fn insert_pending_refund(
    conn: &mut PgConnection,
    payment: &Payment,
    amount: i64,
    idempotency_key: &str,
    request_fingerprint: &[u8],
) -> Result<Option<Refund>, sqlx::Error> {
    let refund: Option<Refund> = sqlx::query_as(
        "INSERT INTO refunds (id, payment_id, amount, currency, status, idempotency_key, \
         request_fingerprint, attempt_expires_at) \
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, now() + make_interval(secs => $7)) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(payment.id)
    .bind(amount)
    .bind(&payment.currency)
    .bind(idempotency_key)
    .bind(request_fingerprint)
    .bind(ATTEMPT_LEASE_S)
    .fetch_optional(&mut *conn)
    .await?;
    if refund.is_some() {
        sqlx::query(
            "UPDATE payments SET refunded_amount = refunded_amount + $2, updated_at = now() \
             WHERE id = $1",
        )
        .bind(payment.id)
        .bind(amount)
        .execute(&mut *conn)
        .await?;
    }
    Ok(refund)
}

/// [`take_over_payment`] for refunds.
pub async fn take_over_refund(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<Refund>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE refunds SET attempt_expires_at = now() + make_interval(secs => $2), \
         updated_at = now() \
         WHERE id = $1 AND status = 'pending' \
           AND (attempt_expires_at IS NULL OR attempt_expires_at < now()) \
         RETURNING *",
    )
    .bind(id)
    .bind(ATTEMPT_LEASE_S)
    .fetch_optional(conn)
    .await
}

/// Moves a pending refund to `succeeded`, bumping the payment's version; `None` when the
/// refund had already left `pending`. Returns the refund and the payment after it.
pub async fn complete_refund(
    conn: &mut PgConnection,
    id: Uuid,
    provider_ref: &str,
) -> Result<Option<(Refund, Payment)>, sqlx::Error> {
    let refund: Option<Refund> = sqlx::query_as(
        "UPDATE refunds SET status = 'succeeded', provider_ref = $2, attempt_expires_at = NULL, \
         updated_at = now() WHERE id = $1 AND status = 'pending' RETURNING *",
    )
    .bind(id)
    .bind(provider_ref)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(refund) = refund else {
        return Ok(None);
    };
    let payment: Payment = sqlx::query_as(
        "UPDATE payments SET version = version + 1, updated_at = now() WHERE id = $1 RETURNING *",
    )
    .bind(refund.payment_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some((refund, payment)))
}

/// Moves a pending refund to `failed` and gives its amount back to the payment; `None` when
/// the refund had already left `pending`.
pub async fn fail_refund(
    conn: &mut PgConnection,
    id: Uuid,
    reason: &str,
) -> Result<Option<Refund>, sqlx::Error> {
    let refund: Option<Refund> = sqlx::query_as(
        "UPDATE refunds SET status = 'failed', failure_reason = $2, attempt_expires_at = NULL, \
         updated_at = now() WHERE id = $1 AND status = 'pending' RETURNING *",
    )
    .bind(id)
    .bind(reason)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(refund) = &refund {
        sqlx::query(
            "UPDATE payments SET refunded_amount = refunded_amount - $2, updated_at = now() \
             WHERE id = $1",
        )
        .bind(refund.payment_id)
        .bind(refund.amount)
        .execute(&mut *conn)
        .await?;
    }
    Ok(refund)
}

pub async fn refund(conn: &mut PgConnection, id: Uuid) -> Result<Option<Refund>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM refunds WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}
