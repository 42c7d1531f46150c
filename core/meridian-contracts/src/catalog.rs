//! Contracts the catalog service answers.

use meridian_jetstream::events::catalog::ProductSnapshotV1;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// Every product that is not deleted, whatever its status, a page at a time in id order:
/// what a projection (the search index) is rebuilt from.
pub struct ListProductSnapshots;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotPageRequest {
    /// The last product id of the previous page; `None` for the first page.
    pub after: Option<Uuid>,
    /// At most this many products (the catalog may answer fewer, to bound the reply's size).
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotPage {
    pub products: Vec<ProductSnapshotV1>,
    /// Where the next page starts; `None` after the last page.
    pub next: Option<Uuid>,
}

impl Contract for ListProductSnapshots {
    type Request = SnapshotPageRequest;
    type Response = SnapshotPage;
    const ENDPOINT: &'static str = "catalog.product_snapshots";
}

/// The whole category list (the catalog holds at most 1000).
pub struct ListCategories;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryInfo {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub parent_id: Option<Uuid>,
}

impl Contract for ListCategories {
    type Request = ();
    type Response = Vec<CategoryInfo>;
    const ENDPOINT: &'static str = "catalog.categories";
}
