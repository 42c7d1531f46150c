use axum::extract::State;
use meridian_platform::{
    ApiError, ApiResult,
    auth::Caller,
    extract::{IdPath, Json},
    validate::Validator,
};
use serde::Deserialize;

use crate::{UsersState, store};

fn not_found() -> ApiError {
    ApiError::NotFound("no such user".into())
}

/// A user's profile: the user themself or an admin.
#[utoipa::path(
    get, path = "/users/{id}", tag = "users",
    params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = store::User),
        (status = 403, body = meridian_platform::error::Problem),
        (status = 404, body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_user(
    State(state): State<UsersState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> ApiResult<Json<store::User>> {
    caller.ensure_self_or_admin(id)?;
    let mut conn = state.pool.acquire().await?;
    let user = store::by_id(&mut conn, id).await?.ok_or_else(not_found)?;
    Ok(Json(user))
}

/// Only the name can be changed here; other fields are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdateUserRequest {
    pub name: String,
}

#[utoipa::path(
    put, path = "/users/{id}", tag = "users",
    params(("id" = uuid::Uuid, Path)),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, body = store::User),
        (status = 403, body = meridian_platform::error::Problem),
        (status = 404, body = meridian_platform::error::Problem),
        (status = 422, body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn update_user(
    State(state): State<UsersState>,
    caller: Caller,
    IdPath(id): IdPath,
    Json(request): Json<UpdateUserRequest>,
) -> ApiResult<Json<store::User>> {
    caller.ensure_self_or_admin(id)?;
    Validator::new()
        .length("name", &request.name, 1, 100)
        .finish()?;
    let mut conn = state.pool.acquire().await?;
    let user = store::update_name(&mut conn, id, request.name.trim())
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(user))
}
