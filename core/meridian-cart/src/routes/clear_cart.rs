use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use meridian_platform::{ApiResult, auth::MaybeCaller};

use super::owner;
use crate::CartState;

/// Empties the cart; a guest's token then names no cart. Idempotent.
#[utoipa::path(
    delete, path = "/cart", tag = "cart",
    params(("X-Cart-Token" = Option<String>, Header, description = "A guest's cart token; ignored with an access token")),
    responses(
        (status = 204, description = "The cart is empty"),
        (status = 401, body = meridian_platform::error::Problem),
    ),
    security((), ("bearer" = []))
)]
pub async fn clear_cart(
    State(state): State<CartState>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    if let Some(owner) = owner(caller, &headers) {
        state.store.clear(&owner).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
