use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use meridian_platform::{
    ApiError, ApiResult,
    auth::Caller,
    extract::Json,
    idempotency::{self, Claim},
};
use uuid::Uuid;

use super::payment_response;
use crate::{
    PaymentsState,
    charges::{self, Charged},
    domain::{self, Charge, PaymentRequest},
};

/// Charges a card for an order (signed in). Requires `Idempotency-Key`: a replay answers what
/// the first request got, and any number of concurrent requests with one key charge once.
/// A declined card is a 402 whose `payment` is recorded as `failed`; a provider outage is a
/// 503 that records nothing as failed (retry with the same key).
#[utoipa::path(
    post, path = "/payments", tag = "payments",
    request_body = PaymentRequest,
    params(("Idempotency-Key" = String, Header, description = "1 to 255 visible ASCII characters")),
    responses(
        (status = 201, body = super::PaymentBody),
        (status = 400, description = "No or a malformed Idempotency-Key", body = meridian_platform::error::Problem),
        (status = 401, body = meridian_platform::error::Problem),
        (status = 402, description = "Declined; the payment is recorded as failed", body = super::PaymentDeclined),
        (status = 409, description = "A request with this key is in flight", body = meridian_platform::error::Problem),
        (status = 422, description = "Invalid fields, or the key was used with another body", body = meridian_platform::error::Problem),
        (status = 503, description = "The provider is unavailable; nothing was recorded as failed", body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_payment(
    State(state): State<PaymentsState>,
    caller: Caller,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    let (key, fingerprint, request): (_, _, PaymentRequest) =
        idempotency::keyed_request(&headers, body)?;
    let charge = Charge::try_from(request)?;
    let scope = format!("{}:payments", caller.user_id);
    if let Claim::Replay(response) =
        idempotency::claim(&state.pool, &scope, &key, &fingerprint).await?
    {
        return Ok(response);
    }
    // Once the provider may be asked, the work finishes even if the client goes away.
    let user_id = caller.user_id;
    let (status, bytes) = tokio::spawn(async move {
        let recorded = charge_and_record(&state, &charge, &scope, &key, user_id).await;
        if recorded.is_err() {
            idempotency::abandon(&state.pool, &scope, &key).await;
        }
        recorded
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(idempotency::respond(status, bytes))
}

/// Charges under the key derived from the client's, and records the response with the
/// outcome in one transaction. An error leaves nothing recorded as failed.
async fn charge_and_record(
    state: &PaymentsState,
    charge: &Charge,
    scope: &str,
    key: &str,
    user_id: Uuid,
) -> ApiResult<(StatusCode, Vec<u8>)> {
    let provider_key = domain::provider_key(scope, key);
    let charged = charges::run(state, charge, &provider_key, Some(user_id)).await?;
    let mut tx = state.pool.begin().await?;
    let (status, bytes) = match charged {
        Charged::Settle { payment, outcome } => {
            let payment = charges::settle(&mut tx, &state.region, &payment, &outcome).await?;
            payment_response(&payment)?
        }
        Charged::Recorded(payment) => payment_response(&payment)?,
        Charged::Unavailable(reason) => {
            return Err(ApiError::unavailable("payment provider", reason));
        }
        Charged::InFlight => {
            return Err(idempotency::in_flight("charge"));
        }
        // The key's claim was given up after an outage and it came back with another body;
        // it stays bound to the first charge, which a retry may still settle.
        Charged::Mismatch => {
            return Err(idempotency::key_reused());
        }
    };
    idempotency::complete(&mut tx, scope, key, status, &bytes).await?;
    tx.commit().await?;
    meridian_platform::outbox::wake(crate::SCHEMA);
    Ok((status, bytes))
}
