//! Contracts the inventory service answers, for the order saga.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Contract;

/// Holds stock of one region, all items or none. Idempotent by `idempotency_key`.
pub struct Reserve;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReserveItem {
    pub product_id: String,
    pub quantity: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReserveRequest {
    pub region: String,
    pub items: Vec<ReserveItem>,
    pub ttl_seconds: i64,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReserveResponse {
    Reserved {
        reservation_id: String,
        expires_at: String,
    },
    /// These products are short; nothing was held.
    Short { product_ids: Vec<String> },
}

impl Contract for Reserve {
    type Request = ReserveRequest;
    type Response = ReserveResponse;
    const ENDPOINT: &'static str = "inventory.reserve";
}

/// Moves a reservation on: `confirm` sells a held reservation's units, `release` returns them,
/// `restock` returns a confirmed one's. All are idempotent; the answer is the reservation's
/// state afterwards.
pub struct Settle;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettleAction {
    Confirm,
    Release,
    /// Puts a confirmed reservation's units back on sale (an order cancelled before shipping).
    Restock,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettleRequest {
    pub reservation_id: String,
    pub action: SettleAction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettleResponse {
    /// `held`, `confirmed`, `released`, `expired`, `returned`, or `not_found`.
    pub status: String,
}

impl Contract for Settle {
    type Request = SettleRequest;
    type Response = SettleResponse;
    const ENDPOINT: &'static str = "inventory.settle";
}

/// Whether each product is on sale in a region, a page at a time in product-id order: what a
/// search index is built from (afterwards it follows `inventory.availability_changed.v1`).
pub struct ListAvailability;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AvailabilityPageRequest {
    pub region: String,
    /// The last product of the previous page.
    pub after: Option<Uuid>,
    /// At most 5,000.
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    pub product_id: Uuid,
    pub in_stock: bool,
    /// The `aggregate_version` of the product's last availability event in the region.
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AvailabilityPage {
    pub items: Vec<Availability>,
    /// Where the next page starts (`after`); `None` on the last page.
    pub next: Option<Uuid>,
}

impl Contract for ListAvailability {
    type Request = AvailabilityPageRequest;
    type Response = AvailabilityPage;
    const ENDPOINT: &'static str = "inventory.availability";
}
