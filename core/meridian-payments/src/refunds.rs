//! Refunding: reserve the amount, ask the provider, settle once.
//!
//! [`begin`] locks the payment, checks what remains, inserts the refund `pending` under our
//! key and adds its amount to the payment's `refunded_amount`, all in one transaction; so
//! refunds racing each other can never exceed what was paid (and the CHECK says so too).
//! [`settle`] completes the refund with its event, or gives the amount back on a refusal. An
//! outage leaves it pending, amount reserved, until a retry under the same key settles it.

use std::time::Duration;

use meridian_jetstream::{Envelope, events::payments::PaymentRefundedV1};
use meridian_platform::outbox;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    PaymentsState, SCHEMA,
    domain::refund_fingerprint,
    provider::{ProviderResult, RefundAttempt, RefundOutcome},
    store::{self, Refund, Status, Table},
};

const RETRY_PAUSES: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(400)];

/// Why a refund was refused before the provider was asked; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NoSuchPayment,
    /// Only a succeeded payment can be refunded; this one is `failed`.
    NotCharged,
    /// The charge's outcome is not known yet.
    ChargePending,
    /// The payment went through a provider this process does not use.
    OtherProvider(String),
    /// The amount asked for is more than what remains (which may be 0).
    Exceeds {
        remaining: i64,
    },
}

impl Refusal {
    pub fn describe(&self) -> String {
        match self {
            Refusal::NoSuchPayment => "no such payment".into(),
            Refusal::NotCharged => "the payment failed; nothing was charged to refund".into(),
            Refusal::ChargePending => {
                "the payment's outcome is not known yet; try again shortly".into()
            }
            Refusal::OtherProvider(provider) => {
                format!("the payment was made through the {provider} provider, which is not in use")
            }
            Refusal::Exceeds { remaining: 0 } => "nothing remains to refund".into(),
            Refusal::Exceeds { remaining } => {
                format!("must be at most {remaining}, what remains to refund")
            }
        }
    }
}

pub enum Begun {
    /// This attempt holds the pending refund of the charge the provider knows as `charge_ref`.
    Claimed {
        refund: Refund,
        charge_ref: Option<String>,
    },
    /// The refund was settled before.
    Recorded(Refund),
    Refused(Refusal),
    InFlight,
    Mismatch,
}

pub enum Refunded {
    Settle {
        refund: Refund,
        outcome: RefundOutcome,
    },
    Recorded(Refund),
    Refused(Refusal),
    Unavailable(String),
    InFlight,
    Mismatch,
}

pub async fn begin(
    pool: &PgPool,
    provider: &str,
    payment_id: Uuid,
    amount: Option<i64>,
    idempotency_key: &str,
) -> Result<Begun, sqlx::Error> {
    let fingerprint = refund_fingerprint(payment_id, amount);
    // Twice at most: a refund inserted concurrently under the same key is found the second time.
    for _ in 0..2 {
        let mut tx = pool.begin().await?;
        if let Some(existing) = store::refund_by_key(&mut tx, idempotency_key).await? {
            tx.rollback().await?;
            return resume(pool, existing, &fingerprint).await;
        }
        let Some(payment) = store::payment(&mut tx, payment_id, true).await? else {
            return Ok(Begun::Refused(Refusal::NoSuchPayment));
        };
        match payment.status() {
            Status::Succeeded => {}
            Status::Failed => return Ok(Begun::Refused(Refusal::NotCharged)),
            Status::Pending => return Ok(Begun::Refused(Refusal::ChargePending)),
        }
        if payment.provider != provider {
            return Ok(Begun::Refused(Refusal::OtherProvider(payment.provider)));
        }
        let remaining = payment.amount - payment.refunded_amount;
        let requested = amount.unwrap_or(remaining);
        if requested <= 0 || requested > remaining {
            return Ok(Begun::Refused(Refusal::Exceeds { remaining }));
        }
        let inserted = store::insert_pending_refund(
            &mut tx,
            &payment,
            requested,
            idempotency_key,
            &fingerprint,
        )
        .await?;
        match inserted {
            Some(refund) => {
                tx.commit().await?;
                return Ok(Begun::Claimed {
                    refund,
                    charge_ref: payment.provider_ref,
                });
            }
            None => tx.rollback().await?,
        }
    }
    Ok(Begun::InFlight)
}

async fn resume(pool: &PgPool, existing: Refund, fingerprint: &[u8]) -> Result<Begun, sqlx::Error> {
    if existing.request_fingerprint != fingerprint {
        return Ok(Begun::Mismatch);
    }
    if existing.status() != Status::Pending {
        return Ok(Begun::Recorded(existing));
    }
    let mut conn = pool.acquire().await?;
    let Some(refund) = store::take_over_refund(&mut conn, existing.id).await? else {
        return Ok(Begun::InFlight);
    };
    let payment = store::payment(&mut conn, refund.payment_id, false)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    Ok(Begun::Claimed {
        refund,
        charge_ref: payment.provider_ref,
    })
}

/// Asks the provider up to three times under the same key (it replays a refund it made).
pub async fn attempt(
    state: &PaymentsState,
    refund: &RefundAttempt,
) -> ProviderResult<RefundOutcome> {
    let mut last_error = None;
    for try_number in 0..=RETRY_PAUSES.len() {
        if try_number > 0 {
            tokio::time::sleep(RETRY_PAUSES[try_number - 1]).await;
        }
        match state.provider.refund(refund).await {
            Ok(outcome) => return Ok(outcome),
            Err(error) => {
                tracing::warn!(%error, key = %refund.idempotency_key, "refund answer lost");
                last_error = Some(error);
            }
        }
    }
    Err(last_error.expect("at least one try was made"))
}

/// Claims the key, reserves the amount and asks the provider; the caller settles.
pub async fn run(
    state: &PaymentsState,
    payment_id: Uuid,
    amount: Option<i64>,
    idempotency_key: &str,
) -> Result<Refunded, sqlx::Error> {
    let begun = begin(
        &state.pool,
        state.provider.name(),
        payment_id,
        amount,
        idempotency_key,
    )
    .await?;
    let (refund, charge_ref) = match begun {
        Begun::Claimed { refund, charge_ref } => (refund, charge_ref),
        Begun::Recorded(refund) => return Ok(Refunded::Recorded(refund)),
        Begun::Refused(refusal) => return Ok(Refunded::Refused(refusal)),
        Begun::InFlight => return Ok(Refunded::InFlight),
        Begun::Mismatch => return Ok(Refunded::Mismatch),
    };
    let Some(charge_ref) = charge_ref else {
        // A succeeded payment always has one; refuse rather than guess.
        let mut tx = state.pool.begin().await?;
        let refund = settle(
            &mut tx,
            &state.region,
            refund.id,
            &RefundOutcome::Refused {
                reason: "no_provider_reference".into(),
            },
        )
        .await?;
        tx.commit().await?;
        return Ok(Refunded::Recorded(refund));
    };
    let request = RefundAttempt {
        idempotency_key: idempotency_key.to_owned(),
        charge_ref,
        amount: refund.amount,
        currency: refund.currency.clone(),
    };
    match attempt(state, &request).await {
        Ok(outcome) => Ok(Refunded::Settle { refund, outcome }),
        Err(unavailable) => {
            let mut conn = state.pool.acquire().await?;
            store::release_attempt(&mut conn, Table::Refunds, refund.id).await?;
            Ok(Refunded::Unavailable(unavailable.0))
        }
    }
}

/// Records the provider's answer in the caller's transaction: a completed refund with its
/// event, or a refusal that gives the amount back. A refund that already left `pending`
/// is returned as it is.
pub async fn settle(
    tx: &mut PgConnection,
    region: &str,
    refund_id: Uuid,
    outcome: &RefundOutcome,
) -> Result<Refund, sqlx::Error> {
    match outcome {
        RefundOutcome::Refunded { provider_ref } => {
            if let Some((refund, payment)) =
                store::complete_refund(tx, refund_id, provider_ref).await?
            {
                let event = PaymentRefundedV1 {
                    payment_id: payment.id,
                    refund_id: refund.id,
                    order_id: payment.order_id,
                    amount: refund.amount,
                    currency: refund.currency.clone(),
                };
                let envelope = Envelope::new(region, payment.id, payment.version, event);
                outbox::enqueue(tx, SCHEMA, envelope).await?;
                return Ok(refund);
            }
        }
        RefundOutcome::Refused { reason } => {
            if let Some(refund) = store::fail_refund(tx, refund_id, reason).await? {
                return Ok(refund);
            }
        }
    }
    store::refund(tx, refund_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}
