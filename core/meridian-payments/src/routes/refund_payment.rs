use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use meridian_platform::{
    ApiError, ApiResult,
    auth::{Caller, Role},
    extract::{IdPath, Json},
    idempotency::{self, Claim},
    money::MAX_AMOUNT,
    validate::Validator,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{RefundBody, json_bytes};
use crate::{
    PaymentsState, domain,
    refunds::{self, Refunded, Refusal},
    store::{self, Refund, Status},
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RefundRequest {
    /// Minor units, > 0; what remains to refund when absent.
    pub amount: Option<i64>,
}

/// Refunds (part of) a succeeded payment (admin). Requires `Idempotency-Key`. Refunds never add
/// up to more than was paid: asking for more than remains is a 422 that changes nothing.
#[utoipa::path(
    post, path = "/payments/{id}/refund", tag = "payments",
    request_body = RefundRequest,
    params(
        ("id" = uuid::Uuid, Path, description = "The payment id"),
        ("Idempotency-Key" = String, Header, description = "1 to 255 visible ASCII characters"),
    ),
    responses(
        (status = 201, body = RefundBody),
        (status = 400, description = "No or a malformed Idempotency-Key", body = meridian_platform::error::Problem),
        (status = 403, body = meridian_platform::error::Problem),
        (status = 404, body = meridian_platform::error::Problem),
        (status = 409, description = "The key, or the payment's charge, is in flight", body = meridian_platform::error::Problem),
        (status = 422, description = "More than remains, a payment that was not charged, or a refusal by the provider", body = meridian_platform::error::Problem),
        (status = 503, description = "The provider is unavailable; retry with the same key", body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn refund_payment(
    State(state): State<PaymentsState>,
    caller: Caller,
    IdPath(payment_id): IdPath,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    caller.ensure_role(&[Role::Admin])?;
    let (key, fingerprint, request): (_, _, RefundRequest) =
        idempotency::keyed_request(&headers, body)?;
    if let Some(amount) = request.amount {
        Validator::new()
            .check(
                (1..=MAX_AMOUNT).contains(&amount),
                "amount",
                "must be from 1 to 10000000000 minor units",
            )
            .finish()?;
    }
    let mut conn = state.pool.acquire().await?;
    if store::payment(&mut conn, payment_id, false)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("no such payment".into()));
    }
    drop(conn);
    let scope = format!("{}:refund:{payment_id}", caller.user_id);
    if let Claim::Replay(response) =
        idempotency::claim(&state.pool, &scope, &key, &fingerprint).await?
    {
        return Ok(response);
    }
    // Once the provider may be asked, the work finishes even if the client goes away.
    let (status, bytes) = tokio::spawn(async move {
        let recorded = refund_and_record(&state, payment_id, request.amount, &scope, &key).await;
        if recorded.is_err() {
            idempotency::abandon(&state.pool, &scope, &key).await;
        }
        recorded
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(idempotency::respond(status, bytes))
}

async fn refund_response(refund: &Refund) -> ApiResult<(StatusCode, Vec<u8>)> {
    match refund.status() {
        Status::Succeeded => json_bytes(StatusCode::CREATED, &RefundBody::from(refund)),
        Status::Failed => {
            let reason = refund.failure_reason.as_deref().unwrap_or("refused");
            idempotency::recordable(ApiError::field(
                "payment",
                format!("the provider refused the refund: {reason}"),
            ))
            .await
        }
        Status::Pending => Err(idempotency::in_flight("refund")),
    }
}

/// Refunds under the key derived from the client's, and records the response with the
/// outcome in one transaction.
async fn refund_and_record(
    state: &PaymentsState,
    payment_id: Uuid,
    amount: Option<i64>,
    scope: &str,
    key: &str,
) -> ApiResult<(StatusCode, Vec<u8>)> {
    let provider_key = domain::provider_key(scope, key);
    let refunded = refunds::run(state, payment_id, amount, &provider_key).await?;
    let mut tx = state.pool.begin().await?;
    let (status, bytes) = match refunded {
        Refunded::Settle { refund, outcome } => {
            let refund = refunds::settle(&mut tx, &state.region, refund.id, &outcome).await?;
            refund_response(&refund).await?
        }
        Refunded::Recorded(refund) => refund_response(&refund).await?,
        Refunded::Refused(Refusal::NoSuchPayment) => {
            return Err(ApiError::NotFound("no such payment".into()));
        }
        Refunded::Refused(Refusal::ChargePending) => {
            return Err(ApiError::Conflict(Refusal::ChargePending.describe()));
        }
        // Nothing changed; the answer is recorded like any other.
        Refunded::Refused(refusal @ Refusal::Exceeds { .. }) => {
            idempotency::recordable(ApiError::field("amount", refusal.describe())).await?
        }
        Refunded::Refused(refusal) => {
            idempotency::recordable(ApiError::field("payment", refusal.describe())).await?
        }
        Refunded::Unavailable(reason) => {
            return Err(ApiError::unavailable("payment provider", reason));
        }
        Refunded::InFlight => {
            return Err(idempotency::in_flight("refund"));
        }
        Refunded::Mismatch => {
            return Err(idempotency::key_reused());
        }
    };
    idempotency::complete(&mut tx, scope, key, status, &bytes).await?;
    tx.commit().await?;
    Ok((status, bytes))
}
