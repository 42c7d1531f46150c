use axum::{extract::State, http::HeaderMap};
use meridian_platform::{ApiResult, auth::MaybeCaller, extract::Json};

use super::{owner, show};
use crate::{CartState, domain::Cart};

/// The caller's cart, or the guest cart named by `X-Cart-Token`. A guest without a token, or
/// with a malformed or unknown one, gets an empty cart.
#[utoipa::path(
    get, path = "/cart", tag = "cart",
    params(("X-Cart-Token" = Option<String>, Header, description = "A guest's cart token; ignored with an access token")),
    responses(
        (status = 200, body = Cart),
        (status = 401, body = meridian_platform::error::Problem),
    ),
    security((), ("bearer" = []))
)]
pub async fn get_cart(
    State(state): State<CartState>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
) -> ApiResult<Json<Cart>> {
    let owner = owner(caller, &headers);
    Ok(Json(show(&state, owner.as_ref()).await?))
}
