//! The internal contracts the cart answers over NATS, for checkout: plain functions, so the
//! serving loop (`meridian_platform::rpc::serve`) stays apart from what they do.

use meridian_contracts::cart::{CartLine, CartSnapshot, ClearCartRequest, GetCartRequest};
use uuid::Uuid;

use crate::{domain::Owner, store::CartStore};

fn user(user_id: &str) -> Result<Owner, String> {
    Uuid::parse_str(user_id)
        .map(Owner::User)
        .map_err(|_| format!("malformed user id {user_id:?}"))
}

fn unavailable(endpoint: &str, error: impl std::fmt::Display) -> String {
    tracing::warn!(%error, endpoint, "answering a cart contract");
    "the cart store is unavailable".to_owned()
}

/// `cart.get`: the user's lines in the order they were added (none if there is no cart).
pub async fn get_cart(store: &CartStore, request: GetCartRequest) -> Result<CartSnapshot, String> {
    let mut lines = store
        .lines(&user(&request.user_id)?)
        .await
        .map_err(|error| unavailable("cart.get", error))?;
    lines.sort_by_key(|line| line.id);
    Ok(CartSnapshot {
        lines: lines
            .into_iter()
            .map(|line| CartLine {
                product_id: line.product_id.to_string(),
                sku: line.sku,
                name: line.name,
                quantity: line.quantity,
                unit_price_amount: line.unit_price_amount,
                unit_price_currency: line.currency,
            })
            .collect(),
    })
}

/// `cart.clear`: deletes the user's cart. Idempotent.
pub async fn clear_cart(store: &CartStore, request: ClearCartRequest) -> Result<(), String> {
    store
        .clear(&user(&request.user_id)?)
        .await
        .map_err(|error| unavailable("cart.clear", error))
}
