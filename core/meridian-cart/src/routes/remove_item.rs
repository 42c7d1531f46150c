use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use meridian_platform::{ApiResult, auth::MaybeCaller, extract::IdPath};

use super::{no_such_line, owner, respond, show};
use crate::CartState;

/// Removes a line and answers the cart without it.
#[utoipa::path(
    delete, path = "/cart/items/{id}", tag = "cart",
    params(
        ("id" = uuid::Uuid, Path, description = "The line id"),
        ("X-Cart-Token" = Option<String>, Header, description = "A guest's cart token; ignored with an access token"),
    ),
    responses(
        (status = 200, body = crate::domain::Cart),
        (status = 401, body = meridian_platform::error::Problem),
        (status = 404, body = meridian_platform::error::Problem),
    ),
    security((), ("bearer" = []))
)]
pub async fn remove_item(
    State(state): State<CartState>,
    MaybeCaller(caller): MaybeCaller,
    IdPath(line_id): IdPath,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let owner = owner(caller, &headers).ok_or_else(no_such_line)?;
    if !state.store.remove(&owner, line_id).await? {
        return Err(no_such_line());
    }
    let cart = show(&state, Some(&owner)).await?;
    respond(StatusCode::OK, &owner, cart)
}
