//! Contracts the cart service answers, for checkout.

use serde::{Deserialize, Serialize};

use crate::Contract;

/// The signed-in user's cart as checkout sees it.
pub struct GetCart;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetCartRequest {
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CartLine {
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub quantity: i32,
    /// The price snapshotted when the line was added (checkout re-checks it).
    pub unit_price_amount: i64,
    pub unit_price_currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CartSnapshot {
    pub lines: Vec<CartLine>,
}

impl Contract for GetCart {
    type Request = GetCartRequest;
    type Response = CartSnapshot;
    const ENDPOINT: &'static str = "cart.get";
}

/// Empties the user's cart after a confirmed checkout. Idempotent.
pub struct ClearCart;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClearCartRequest {
    pub user_id: String,
}

impl Contract for ClearCart {
    type Request = ClearCartRequest;
    type Response = ();
    const ENDPOINT: &'static str = "cart.clear";
}
