//! Charging: claim the key, ask the provider, settle once.
//!
//! 1. [`begin`] inserts the payment `pending` under our idempotency key before anything else
//!    (the unique key is the claim), or takes over a pending one whose last attempt ended
//!    without an outcome, or finds the outcome recorded.
//! 2. [`attempt`] asks the provider; when the answer is lost (outage, timeout) it looks the
//!    charge up under the same key before trying again, so a charge is never made twice.
//! 3. [`settle`] records the outcome and its event in the caller's transaction, where an HTTP
//!    caller also records its response.
//!
//! Invariant: an unknown outcome is never recorded as a failure; the payment stays `pending`
//! until a retry under the same key learns the outcome from the provider.

use std::{sync::LazyLock, time::Duration};

use meridian_jetstream::{
    Envelope,
    events::payments::{PaymentFailedV1, PaymentSucceededV1},
};
use meridian_platform::outbox::Outgoing;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    PaymentsState,
    domain::Charge,
    provider::{ChargeAttempt, ChargeOutcome, Provider, ProviderResult},
    store::{self, NewPayment, Payment, Status, Table},
};

/// The pauses before the second and third try of a provider call whose answer was lost.
const RETRY_PAUSES: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(400)];

/// What the claim of a charge found.
pub enum Begun {
    /// This attempt holds the pending payment; `resumed` when an earlier attempt may have
    /// reached the provider.
    Claimed { payment: Payment, resumed: bool },
    /// The charge was settled before: its outcome.
    Recorded(Payment),
    /// Another attempt holds the payment now.
    InFlight,
    /// The key belongs to another charge.
    Mismatch,
}

/// What one call of [`run`] achieved.
pub enum Charged {
    /// The provider decided: settle `payment` (still pending) with `outcome`.
    Settle {
        payment: Payment,
        outcome: ChargeOutcome,
    },
    Recorded(Payment),
    /// The outcome is unknown; the payment stays pending, free for a retry.
    Unavailable(String),
    InFlight,
    Mismatch,
}

pub async fn begin(
    pool: &PgPool,
    provider: &str,
    charge: &Charge,
    idempotency_key: &str,
    user_id: Option<Uuid>,
) -> Result<Begun, sqlx::Error> {
    let fingerprint = charge.fingerprint();
    let mut conn = pool.acquire().await?;
    let new = NewPayment {
        order_id: charge.order_id,
        user_id,
        amount: charge.amount,
        currency: &charge.currency,
        provider,
        idempotency_key,
        request_fingerprint: &fingerprint,
    };
    if let Some(payment) = store::insert_pending_payment(&mut conn, &new).await? {
        return Ok(Begun::Claimed {
            payment,
            resumed: false,
        });
    }
    // A pending payment is taken over only through the provider that was asked before.
    if let Some(payment) =
        store::take_over_payment(&mut conn, idempotency_key, &fingerprint, provider).await?
    {
        return Ok(Begun::Claimed {
            payment,
            resumed: true,
        });
    }
    Ok(
        match store::payment_by_key(&mut conn, idempotency_key).await? {
            Some(payment) if payment.request_fingerprint != fingerprint => Begun::Mismatch,
            Some(payment) if payment.status() != Status::Pending => Begun::Recorded(payment),
            // Held by another attempt (or through another provider); rows are never deleted.
            Some(_) | None => Begun::InFlight,
        },
    )
}

/// Asks the provider, up to three times; after a lost answer, and first of all when
/// `resumed`, it looks the charge up under our key instead of charging blindly.
pub async fn attempt(
    provider: &dyn Provider,
    charge: &ChargeAttempt,
    resumed: bool,
) -> ProviderResult<ChargeOutcome> {
    let mut look_up_first = resumed;
    let mut last_error = None;
    for try_number in 0..=RETRY_PAUSES.len() {
        if try_number > 0 {
            tokio::time::sleep(RETRY_PAUSES[try_number - 1]).await;
        }
        if look_up_first {
            match provider.lookup_charge(charge).await {
                Ok(Some(outcome)) => return Ok(outcome),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, key = %charge.idempotency_key, "charge lookup failed");
                    last_error = Some(error);
                    continue;
                }
            }
        }
        match provider.charge(charge).await {
            Ok(outcome) => return Ok(outcome),
            Err(error) => {
                tracing::warn!(%error, key = %charge.idempotency_key, "charge answer lost");
                last_error = Some(error);
                look_up_first = true;
            }
        }
    }
    Err(last_error.expect("at least one try was made"))
}

/// Claims the key and asks the provider; the caller settles.
pub async fn run(
    state: &PaymentsState,
    charge: &Charge,
    idempotency_key: &str,
    user_id: Option<Uuid>,
) -> Result<Charged, sqlx::Error> {
    let provider = state.provider.as_ref();
    let (payment, resumed) = match begin(
        &state.pool,
        provider.name(),
        charge,
        idempotency_key,
        user_id,
    )
    .await?
    {
        Begun::Claimed { payment, resumed } => (payment, resumed),
        Begun::Recorded(payment) => return Ok(Charged::Recorded(payment)),
        Begun::InFlight => return Ok(Charged::InFlight),
        Begun::Mismatch => return Ok(Charged::Mismatch),
    };
    match attempt(provider, &charge.attempt(idempotency_key), resumed).await {
        Ok(outcome) => Ok(Charged::Settle { payment, outcome }),
        Err(unavailable) => {
            let mut conn = state.pool.acquire().await?;
            store::release_attempt(&mut conn, Table::Payments, payment.id).await?;
            Ok(Charged::Unavailable(unavailable.0))
        }
    }
}

/// Records the provider's outcome with its event: one statement, in the caller's transaction
/// if one is open; once that committed, the caller wakes the relay (`outbox::wake`). Settling
/// a payment that already left `pending` changes nothing and returns it.
pub async fn settle(
    conn: &mut PgConnection,
    region: &str,
    pending: &Payment,
    outcome: &ChargeOutcome,
) -> Result<Payment, sqlx::Error> {
    static STATEMENT: LazyLock<String> = LazyLock::new(|| {
        let settled = "EXISTS (SELECT 1 FROM settled)";
        let outboxed = Outgoing::cte("outboxed", 4, settled);
        format!(
            "WITH settled AS ( \
                 UPDATE payments SET \
                     status = CASE WHEN $2::text IS NULL THEN 'succeeded' ELSE 'failed' END, \
                     failure_reason = $2, provider_ref = $3, version = version + 1, \
                     attempt_expires_at = NULL, updated_at = now() \
                 WHERE id = $1 AND status = 'pending' RETURNING *), \
             {outboxed} \
             SELECT * FROM settled"
        )
    });
    let (failure_reason, provider_ref) = match outcome {
        ChargeOutcome::Succeeded { provider_ref } => (None, Some(provider_ref.as_str())),
        ChargeOutcome::Declined {
            reason,
            provider_ref,
        } => (Some(reason.as_str()), provider_ref.as_deref()),
    };
    // The event of the version this settlement makes.
    let id = pending.id;
    let version = pending.version + 1;
    let mut events = Outgoing::default();
    match failure_reason {
        None => events.push(Envelope::new(
            region,
            id,
            version,
            PaymentSucceededV1 {
                payment_id: id,
                order_id: pending.order_id,
                amount: pending.amount,
                currency: pending.currency.clone(),
                provider: pending.provider.clone(),
            },
        ))?,
        Some(reason) => events.push(Envelope::new(
            region,
            id,
            version,
            PaymentFailedV1 {
                payment_id: id,
                order_id: pending.order_id,
                amount: pending.amount,
                currency: pending.currency.clone(),
                reason: reason.to_owned(),
            },
        ))?,
    };
    let query = sqlx::query_as(AssertSqlSafe(STATEMENT.as_str()))
        .bind(id)
        .bind(failure_reason)
        .bind(provider_ref);
    let settled: Option<Payment> = events.bind(query).fetch_optional(&mut *conn).await?;
    match settled {
        Some(payment) => Ok(payment),
        None => store::payment(conn, id, false)
            .await?
            .ok_or(sqlx::Error::RowNotFound),
    }
}
