//! The `payments.charge` and `payments.refund` contracts, for the order saga: the same logic
//! as HTTP, idempotent by the request's `idempotency_key`.
//!
//! Invariant: the same key answers the recorded outcome and never charges twice; an unknown
//! outcome answers `Unavailable` and is never recorded as a failure, so the caller retries
//! with the same key.

use std::time::Duration;

use meridian_contracts::payments::{ChargeRequest, ChargeResponse, RefundRequest, RefundResponse};
use uuid::Uuid;

use crate::{
    PaymentsState,
    charges::{self, Charged},
    domain::{self, Charge},
    refunds::{self, Refunded},
    store::{Payment, Refund, Status},
};

/// How long a request waits for another attempt holding its key before it answers
/// `Unavailable` (callers wait 2 s by default).
const WAIT_FOR_HOLDER: Duration = Duration::from_millis(1500);
const POLL_EVERY: Duration = Duration::from_millis(50);

fn database_down(error: sqlx::Error) -> String {
    tracing::warn!(%error, "payments database unavailable");
    "the payments database is unavailable".to_owned()
}

fn charge_answer(payment: &Payment) -> ChargeResponse {
    match payment.status() {
        Status::Succeeded => ChargeResponse::Succeeded {
            payment_id: payment.id.to_string(),
        },
        Status::Failed => ChargeResponse::Declined {
            payment_id: payment.id.to_string(),
            reason: payment.failure_reason.clone().unwrap_or_default(),
        },
        Status::Pending => ChargeResponse::Unavailable {
            reason: "the charge's outcome is not known yet".into(),
        },
    }
}

/// Answers `payments.charge`. A malformed request is an error reply (a bug of the caller).
pub async fn charge(
    state: &PaymentsState,
    request: ChargeRequest,
) -> Result<ChargeResponse, String> {
    domain::check_key(&request.idempotency_key)?;
    let order_id =
        Uuid::parse_str(&request.order_id).map_err(|_| "order_id must be a UUID".to_owned())?;
    let charge = Charge::parse(
        order_id,
        request.amount,
        &request.currency,
        "card",
        &request.token,
    )
    .map_err(|error| domain::describe(&error))?;
    let user_id = match request.user_id.as_deref().map(Uuid::parse_str) {
        None => None,
        Some(Ok(user_id)) => Some(user_id),
        Some(Err(_)) => return Err("user_id must be a UUID".into()),
    };
    let waited_since = tokio::time::Instant::now();
    loop {
        let charged = charges::run(state, &charge, &request.idempotency_key, user_id).await;
        match charged {
            Ok(Charged::Settle { payment, outcome }) => {
                let settled = async {
                    let mut conn = state.pool.acquire().await?;
                    let settled =
                        charges::settle(&mut conn, &state.region, &payment, &outcome).await?;
                    meridian_platform::outbox::wake(crate::SCHEMA);
                    Ok::<_, sqlx::Error>(settled)
                };
                return Ok(match settled.await {
                    Ok(payment) => charge_answer(&payment),
                    Err(error) => ChargeResponse::Unavailable {
                        reason: database_down(error),
                    },
                });
            }
            Ok(Charged::Recorded(payment)) => return Ok(charge_answer(&payment)),
            Ok(Charged::Unavailable(reason)) => return Ok(ChargeResponse::Unavailable { reason }),
            Ok(Charged::Mismatch) => {
                return Err("the idempotency_key was used for another charge".into());
            }
            Ok(Charged::InFlight) if waited_since.elapsed() < WAIT_FOR_HOLDER => {
                tokio::time::sleep(POLL_EVERY).await;
            }
            Ok(Charged::InFlight) => {
                return Ok(ChargeResponse::Unavailable {
                    reason: "a charge with this key is in progress; retry with the same key".into(),
                });
            }
            Err(error) => {
                return Ok(ChargeResponse::Unavailable {
                    reason: database_down(error),
                });
            }
        }
    }
}

fn refund_answer(refund: &Refund) -> RefundResponse {
    match refund.status() {
        Status::Succeeded => RefundResponse::Refunded {
            refund_id: refund.id.to_string(),
            amount: refund.amount,
        },
        Status::Failed => RefundResponse::Refused {
            reason: refund.failure_reason.clone().unwrap_or_default(),
        },
        Status::Pending => RefundResponse::Unavailable {
            reason: "the refund's outcome is not known yet".into(),
        },
    }
}

/// Answers `payments.refund`.
pub async fn refund(
    state: &PaymentsState,
    request: RefundRequest,
) -> Result<RefundResponse, String> {
    domain::check_key(&request.idempotency_key)?;
    let Ok(payment_id) = Uuid::parse_str(&request.payment_id) else {
        return Ok(RefundResponse::Refused {
            reason: refunds::Refusal::NoSuchPayment.describe(),
        });
    };
    let waited_since = tokio::time::Instant::now();
    loop {
        let refunded =
            refunds::run(state, payment_id, request.amount, &request.idempotency_key).await;
        match refunded {
            Ok(Refunded::Settle { refund, outcome }) => {
                let settled = async {
                    let mut tx = state.pool.begin().await?;
                    let refund =
                        refunds::settle(&mut tx, &state.region, refund.id, &outcome).await?;
                    tx.commit().await?;
                    Ok::<_, sqlx::Error>(refund)
                };
                return Ok(match settled.await {
                    Ok(refund) => refund_answer(&refund),
                    Err(error) => RefundResponse::Unavailable {
                        reason: database_down(error),
                    },
                });
            }
            Ok(Refunded::Recorded(refund)) => return Ok(refund_answer(&refund)),
            Ok(Refunded::Refused(refunds::Refusal::ChargePending)) => {
                return Ok(RefundResponse::Unavailable {
                    reason: refunds::Refusal::ChargePending.describe(),
                });
            }
            Ok(Refunded::Refused(refusal)) => {
                return Ok(RefundResponse::Refused {
                    reason: refusal.describe(),
                });
            }
            Ok(Refunded::Unavailable(reason)) => return Ok(RefundResponse::Unavailable { reason }),
            Ok(Refunded::Mismatch) => {
                return Err("the idempotency_key was used for another refund".into());
            }
            Ok(Refunded::InFlight) if waited_since.elapsed() < WAIT_FOR_HOLDER => {
                tokio::time::sleep(POLL_EVERY).await;
            }
            Ok(Refunded::InFlight) => {
                return Ok(RefundResponse::Unavailable {
                    reason: "a refund with this key is in progress; retry with the same key".into(),
                });
            }
            Err(error) => {
                return Ok(RefundResponse::Unavailable {
                    reason: database_down(error),
                });
            }
        }
    }
}
