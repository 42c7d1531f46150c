use std::time::Duration;

use axum::{extract::State, http::StatusCode};
use meridian_platform::{
    ApiError, ApiResult,
    auth::{Caller, Role},
    extract::Json,
};
use serde::{Deserialize, Serialize};

use crate::UsersState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RotateRequest {
    /// Seconds before the new key starts signing (0 to 86400, default 300): long enough for
    /// every verifier to have fetched the new JWKS.
    pub delay_seconds: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotateResponse {
    pub kid: String,
}

/// Starts a signing-key rotation (admin only): the new key is published at once, signs after
/// the delay, and the old key stays published until every token it signed has expired.
#[utoipa::path(
    post, path = "/users/signing-keys/rotate", tag = "users",
    request_body = RotateRequest,
    responses((status = 201, body = RotateResponse), (status = 403, body = meridian_platform::error::Problem)),
    security(("bearer" = []))
)]
pub async fn rotate_keys(
    State(state): State<UsersState>,
    caller: Caller,
    Json(request): Json<RotateRequest>,
) -> ApiResult<(StatusCode, Json<RotateResponse>)> {
    caller.ensure_role(&[Role::Admin])?;
    let delay = request.delay_seconds.unwrap_or(300);
    if delay > 86_400 {
        return Err(ApiError::field("delay_seconds", "must be at most 86400"));
    }
    let kid = state.keys.rotate(Duration::from_secs(delay)).await?;
    tracing::info!(%kid, delay_seconds = delay, "signing key rotation started");
    Ok((StatusCode::CREATED, Json(RotateResponse { kid })))
}
