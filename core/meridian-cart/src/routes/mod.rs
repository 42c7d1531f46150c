//! The cart's HTTP routes, one file per action.
//!
//! A request's cart is the caller's if it sends an access token, else the guest cart named by
//! its `X-Cart-Token` header. A guest's token that is malformed or names no cart reads as an
//! empty cart, so a response never tells whether some token has a cart.

mod add_item;
mod clear_cart;
mod get_cart;
mod merge;
mod remove_item;
mod update_item;

use axum::{
    Router,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use meridian_platform::{ApiError, ApiResult, auth::Caller, extract::Json};
use utoipa::OpenApi;

use crate::{
    CartState,
    domain::{CART_TOKEN_HEADER, Cart, GuestToken, Owner},
};

pub fn router(state: CartState) -> Router {
    Router::new()
        .route(
            "/cart",
            get(get_cart::get_cart).delete(clear_cart::clear_cart),
        )
        .route("/cart/items", post(add_item::add_item))
        .route(
            "/cart/items/{id}",
            put(update_item::update_item).delete(remove_item::remove_item),
        )
        .route("/cart/merge", post(merge::merge))
        .with_state(state)
}

/// The guest token the request sends, if it is well-formed.
fn guest_token(headers: &HeaderMap) -> Option<GuestToken> {
    headers
        .get(CART_TOKEN_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|raw| GuestToken::parse(raw.trim()))
}

/// The cart a request names: the caller's, or the guest's; `None` for a guest without a
/// well-formed token, who has no cart.
fn owner(caller: Option<Caller>, headers: &HeaderMap) -> Option<Owner> {
    match caller {
        Some(caller) => Some(Owner::User(caller.user_id)),
        None => guest_token(headers).map(Owner::Guest),
    }
}

/// Reads `owner`'s cart as the API shows it.
async fn show(state: &CartState, owner: Option<&Owner>) -> ApiResult<Cart> {
    let Some(owner) = owner else {
        return Ok(Cart::of(None, Vec::new()));
    };
    let lines = state.store.lines(owner).await?;
    Ok(Cart::of(Some(owner.cart_id()), lines))
}

/// The cart, with the guest's token in `X-Cart-Token` when the cart is a guest's.
fn respond(status: StatusCode, owner: &Owner, cart: Cart) -> ApiResult<Response> {
    let mut response = (status, Json(cart)).into_response();
    if let Owner::Guest(token) = owner {
        let value = HeaderValue::from_str(token.as_str()).map_err(ApiError::internal)?;
        response.headers_mut().insert(CART_TOKEN_HEADER, value);
    }
    Ok(response)
}

fn no_such_line() -> ApiError {
    ApiError::NotFound("the cart has no such line".into())
}

#[derive(OpenApi)]
#[openapi(
    paths(
        get_cart::get_cart,
        add_item::add_item,
        update_item::update_item,
        remove_item::remove_item,
        clear_cart::clear_cart,
        merge::merge,
    ),
    tags((name = "cart", description = "A cart per signed-in user or guest token"))
)]
struct CartApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    CartApi::openapi()
}
