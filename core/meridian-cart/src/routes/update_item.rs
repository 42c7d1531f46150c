use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use meridian_platform::{
    ApiError, ApiResult,
    auth::MaybeCaller,
    extract::{IdPath, Json},
};
use serde::Deserialize;

use super::{no_such_line, owner, respond, show};
use crate::{
    CartState,
    domain::{QUANTITY_MESSAGE, Quantity},
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdateItemRequest {
    /// 1 to 99; the line's new quantity (remove a line with `DELETE`).
    pub quantity: i64,
}

/// Sets a line's quantity; its price stays the one it was added at.
#[utoipa::path(
    put, path = "/cart/items/{id}", tag = "cart",
    params(
        ("id" = uuid::Uuid, Path, description = "The line id"),
        ("X-Cart-Token" = Option<String>, Header, description = "A guest's cart token; ignored with an access token"),
    ),
    request_body = UpdateItemRequest,
    responses(
        (status = 200, body = crate::domain::Cart),
        (status = 401, body = meridian_platform::error::Problem),
        (status = 404, body = meridian_platform::error::Problem),
        (status = 422, body = meridian_platform::error::Problem),
    ),
    security((), ("bearer" = []))
)]
pub async fn update_item(
    State(state): State<CartState>,
    MaybeCaller(caller): MaybeCaller,
    IdPath(line_id): IdPath,
    headers: HeaderMap,
    Json(request): Json<UpdateItemRequest>,
) -> ApiResult<Response> {
    let quantity = Quantity::parse(request.quantity)
        .ok_or_else(|| ApiError::field("quantity", QUANTITY_MESSAGE))?;
    let owner = owner(caller, &headers).ok_or_else(no_such_line)?;
    if !state.store.set_quantity(&owner, line_id, quantity).await? {
        return Err(no_such_line());
    }
    let cart = show(&state, Some(&owner)).await?;
    respond(StatusCode::OK, &owner, cart)
}
