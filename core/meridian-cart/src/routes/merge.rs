use axum::extract::State;
use meridian_platform::{ApiError, ApiResult, auth::Caller, extract::Json};
use serde::Deserialize;

use super::show;
use crate::{
    CartState,
    domain::{Cart, GuestToken, MAX_LINES, Owner},
    store::Merged,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MergeRequest {
    /// The guest cart's token, as `X-Cart-Token` carried it.
    pub cart_token: String,
}

/// Moves a guest cart into the signed-in caller's: a product in both gets the sum of the
/// quantities (at most 99), the others move with their prices, and the guest cart is deleted.
/// All or nothing; merging again (or a token with no cart) changes nothing.
#[utoipa::path(
    post, path = "/cart/merge", tag = "cart",
    request_body = MergeRequest,
    responses(
        (status = 200, body = Cart),
        (status = 401, body = meridian_platform::error::Problem),
        (status = 422, description = "A malformed token, or carts that cannot be merged (another currency, more than 50 products)", body = meridian_platform::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn merge(
    State(state): State<CartState>,
    caller: Caller,
    Json(request): Json<MergeRequest>,
) -> ApiResult<Json<Cart>> {
    let guest = GuestToken::parse(request.cart_token.trim())
        .map(Owner::Guest)
        .ok_or_else(|| ApiError::field("cart_token", "is not a cart token"))?;
    let user = Owner::User(caller.user_id);
    match state.store.merge(&user, &guest).await? {
        Merged::Done => {}
        Merged::Full => {
            return Err(ApiError::field(
                "cart_token",
                format!("together the carts would hold more than {MAX_LINES} products"),
            ));
        }
        Merged::OtherCurrency { user, guest } => {
            return Err(ApiError::field(
                "cart_token",
                format!("the guest cart is priced in {guest}, your cart in {user}"),
            ));
        }
    }
    Ok(Json(show(&state, Some(&user)).await?))
}
