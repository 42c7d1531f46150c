use axum::extract::State;
use meridian_platform::{ApiError, ApiResult, extract::Json};
use serde::Deserialize;

use crate::{
    UsersState,
    routes::TokenPair,
    sessions::{self, Spent},
    store,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

fn refused() -> ApiError {
    ApiError::Unauthorized("the refresh token is invalid, expired or already used".into())
}

/// Exchanges a refresh token for a new pair. Each refresh token works once; presenting a spent
/// one revokes every token of its family.
#[utoipa::path(
    post, path = "/users/token/refresh", tag = "users",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair", body = TokenPair),
        (status = 401, description = "Invalid, expired or reused token", body = meridian_platform::error::Problem),
    )
)]
pub async fn refresh(
    State(state): State<UsersState>,
    Json(request): Json<RefreshRequest>,
) -> ApiResult<Json<TokenPair>> {
    if request.refresh_token.is_empty() || request.refresh_token.len() > 128 {
        return Err(refused());
    }
    let mut tx = state.pool.begin().await?;
    match sessions::spend(&mut tx, &request.refresh_token).await? {
        Spent::Ok { user_id, family_id } => {
            let user = store::by_id(&mut tx, user_id).await?.ok_or_else(refused)?;
            let pair = state.token_pair(&mut tx, user, family_id).await?;
            tx.commit().await?;
            Ok(Json(pair))
        }
        Spent::Reused => {
            // The revocation must stick even though the caller is refused.
            tx.commit().await?;
            tracing::warn!("a spent refresh token was presented; its family is revoked");
            Err(refused())
        }
        Spent::Invalid => Err(refused()),
    }
}
