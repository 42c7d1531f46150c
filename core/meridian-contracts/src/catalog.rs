//! Contracts the catalog service answers.

use serde::{Deserialize, Serialize};

use crate::Contract;

/// Who sells a product, whether it is for sale and at what price: what another service needs
/// to authorise a change about a product (a seller may change only its own products' stock) or
/// to price it (a cart line, a checkout's re-check).
pub struct GetProductSummary;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductSummaryRequest {
    pub product_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductSummary {
    pub product_id: String,
    pub seller_id: String,
    /// `active`, `draft` or `archived`.
    pub status: String,
    pub sku: String,
    pub name: String,
    /// The current price in minor units, and its ISO 4217 currency.
    pub price_amount: i64,
    pub price_currency: String,
}

impl Contract for GetProductSummary {
    type Request = ProductSummaryRequest;
    /// `None` when there is no such product (or it was deleted).
    type Response = Option<ProductSummary>;
    const ENDPOINT: &'static str = "catalog.product_summary";
}
