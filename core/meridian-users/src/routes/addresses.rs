use axum::{extract::State, http::StatusCode};
use meridian_platform::{
    ApiError, ApiResult,
    auth::Caller,
    extract::{IdPath, Json},
};
use serde::Serialize;

use crate::{UsersState, domain::AddressInput, store};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AddressList {
    pub items: Vec<store::Address>,
}

/// A user's addresses: the user themself or an admin.
#[utoipa::path(
    get, path = "/users/{id}/addresses", tag = "users",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = AddressList), (status = 403, body = meridian_platform::error::Problem)),
    security(("bearer" = []))
)]
pub async fn list_addresses(
    State(state): State<UsersState>,
    caller: Caller,
    IdPath(user_id): IdPath,
) -> ApiResult<Json<AddressList>> {
    caller.ensure_self_or_admin(user_id)?;
    let mut conn = state.pool.acquire().await?;
    let items = store::addresses(&mut conn, user_id).await?;
    Ok(Json(AddressList { items }))
}

/// Adds an address; at most 20 per user.
#[utoipa::path(
    post, path = "/users/{id}/addresses", tag = "users",
    params(("id" = uuid::Uuid, Path)),
    request_body = AddressInput,
    responses(
        (status = 201, body = store::Address),
        (status = 403, body = meridian_platform::error::Problem),
        (status = 404, body = meridian_platform::error::Problem),
        (status = 422, body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn add_address(
    State(state): State<UsersState>,
    caller: Caller,
    IdPath(user_id): IdPath,
    Json(input): Json<AddressInput>,
) -> ApiResult<(StatusCode, Json<store::Address>)> {
    caller.ensure_self_or_admin(user_id)?;
    let input = input.validate()?;
    let mut tx = state.pool.begin().await?;
    // Locks the user row, so concurrent additions cannot pass the cap together.
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(ApiError::NotFound("no such user".into()));
    }
    if store::count_addresses(&mut tx, user_id).await? >= store::MAX_ADDRESSES {
        return Err(ApiError::field(
            "addresses",
            "a user may keep at most 20 addresses",
        ));
    }
    let address = store::insert_address(&mut tx, user_id, &input).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(address)))
}
