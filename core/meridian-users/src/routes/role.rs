use axum::extract::State;
use meridian_platform::{
    ApiError, ApiResult,
    auth::{Caller, Role},
    extract::{IdPath, Json},
};
use serde::Deserialize;

use crate::{UsersState, store};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SetRoleRequest {
    /// `admin`, `seller` or `buyer`.
    pub role: String,
}

/// Changes a user's role (admin only). It shows in the user's next access token.
#[utoipa::path(
    put, path = "/users/{id}/role", tag = "users",
    params(("id" = uuid::Uuid, Path)),
    request_body = SetRoleRequest,
    responses(
        (status = 200, body = store::User),
        (status = 403, body = meridian_platform::error::Problem),
        (status = 404, body = meridian_platform::error::Problem),
        (status = 422, body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn set_role(
    State(state): State<UsersState>,
    caller: Caller,
    IdPath(id): IdPath,
    Json(request): Json<SetRoleRequest>,
) -> ApiResult<Json<store::User>> {
    caller.ensure_role(&[Role::Admin])?;
    let role = Role::parse(&request.role)
        .ok_or_else(|| ApiError::field("role", "must be one of admin, seller, buyer"))?;
    let mut conn = state.pool.acquire().await?;
    let user = store::update_role(&mut conn, id, role)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such user".into()))?;
    Ok(Json(user))
}
