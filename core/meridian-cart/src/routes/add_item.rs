use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use meridian_contracts::catalog::{GetProductSummary, ProductSummary, ProductSummaryRequest};
use meridian_platform::{ApiError, ApiResult, auth::MaybeCaller, extract::Json, rpc};
use serde::Deserialize;
use uuid::Uuid;

use super::{guest_token, respond, show};
use crate::{
    CartState,
    domain::{GuestToken, MAX_LINES, MAX_QUANTITY, Owner, QUANTITY_MESSAGE, Quantity, StoredLine},
    store::Added,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddItemRequest {
    pub product_id: Uuid,
    /// 1 to 99; added to the line if the product is already in the cart.
    pub quantity: i64,
}

/// The product, if it exists and is for sale.
async fn active_product(state: &CartState, product_id: Uuid) -> ApiResult<ProductSummary> {
    let request = ProductSummaryRequest {
        product_id: product_id.to_string(),
    };
    let summary =
        rpc::call::<GetProductSummary>(&state.nats, &state.naming, &request, rpc::DEFAULT_TIMEOUT)
            .await
            .map_err(|error| ApiError::unavailable("catalog", error))?;
    summary
        .filter(|product| product.status == "active")
        .ok_or_else(|| ApiError::field("product_id", "unknown or unavailable product"))
}

/// Adds units of a product to the cart. A guest without a cart gets one, and its token in
/// `X-Cart-Token`; a token that names no cart is replaced by a new one. The line's price is
/// the product's price now.
#[utoipa::path(
    post, path = "/cart/items", tag = "cart",
    params(("X-Cart-Token" = Option<String>, Header, description = "A guest's cart token; ignored with an access token")),
    request_body = AddItemRequest,
    responses(
        (status = 201, body = crate::domain::Cart,
         headers(("X-Cart-Token" = String, description = "For a guest: the token of the cart, to send back"))),
        (status = 401, body = meridian_platform::error::Problem),
        (status = 422, description = "A bad quantity, an unknown or unavailable product, another currency, or a full cart", body = meridian_platform::error::Problem),
        (status = 503, description = "The catalog or the cart store is unavailable", body = meridian_platform::error::Problem),
    ),
    security((), ("bearer" = []))
)]
pub async fn add_item(
    State(state): State<CartState>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
    Json(request): Json<AddItemRequest>,
) -> ApiResult<Response> {
    let quantity = Quantity::parse(request.quantity)
        .ok_or_else(|| ApiError::field("quantity", QUANTITY_MESSAGE))?;
    let product = active_product(&state, request.product_id).await?;
    let line = StoredLine {
        id: Uuid::now_v7(),
        product_id: request.product_id,
        sku: product.sku,
        name: product.name,
        quantity: quantity.get(),
        unit_price_amount: product.price_amount,
        currency: product.price_currency,
    };
    // A guest's token must name a cart we made: one it chose is replaced, never adopted.
    let (mut owner, must_exist) = match (caller, guest_token(&headers)) {
        (Some(caller), _) => (Owner::User(caller.user_id), false),
        (None, Some(token)) => (Owner::Guest(token), true),
        (None, None) => (Owner::Guest(GuestToken::generate()), false),
    };
    let mut added = state.store.add(&owner, &line, must_exist).await?;
    if added == Added::Missing {
        owner = Owner::Guest(GuestToken::generate());
        added = state.store.add(&owner, &line, false).await?;
    }
    match added {
        Added::Done => {}
        Added::Missing => return Err(ApiError::internal("a new guest cart was missing")),
        Added::TooMany { in_cart } => {
            return Err(ApiError::field(
                "quantity",
                format!(
                    "the cart holds {in_cart} of this product; a line holds at most {MAX_QUANTITY}"
                ),
            ));
        }
        Added::Full => {
            return Err(ApiError::field(
                "product_id",
                format!("the cart is full: it holds at most {MAX_LINES} products"),
            ));
        }
        Added::OtherCurrency { cart_currency } => {
            return Err(ApiError::field(
                "product_id",
                format!(
                    "the product is priced in another currency than the cart ({cart_currency})"
                ),
            ));
        }
    }
    let cart = show(&state, Some(&owner)).await?;
    respond(StatusCode::CREATED, &owner, cart)
}
