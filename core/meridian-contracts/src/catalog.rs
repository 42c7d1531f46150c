//! Contracts the catalog service answers.

use serde::{Deserialize, Serialize};

use crate::Contract;

/// Who sells a product and whether it is for sale: what another service needs to authorise a
/// change about a product (a seller may change only its own products' stock).
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
}

impl Contract for GetProductSummary {
    type Request = ProductSummaryRequest;
    /// `None` when there is no such product (or it was deleted).
    type Response = Option<ProductSummary>;
    const ENDPOINT: &'static str = "catalog.product_summary";
}
