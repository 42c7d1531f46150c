use axum::{extract::State, http::StatusCode};
use meridian_platform::{ApiResult, extract::Json};
use serde::Deserialize;

use crate::{UsersState, sessions};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LogoutRequest {
    pub refresh_token: String,
}

/// Revokes the refresh token's family: every session descended from that sign-in ends.
/// Idempotent; an unknown token is not an error.
#[utoipa::path(
    post, path = "/users/logout", tag = "users",
    request_body = LogoutRequest,
    responses((status = 204, description = "Signed out"))
)]
pub async fn logout(
    State(state): State<UsersState>,
    Json(request): Json<LogoutRequest>,
) -> ApiResult<StatusCode> {
    if request.refresh_token.len() <= 128 {
        let mut conn = state.pool.acquire().await?;
        sessions::logout(&mut conn, &request.refresh_token).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
