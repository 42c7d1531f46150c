//! Events of the inventory service, on the inventory stream.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{envelope::Event, naming::StreamKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockLine {
    pub product_id: Uuid,
    pub quantity: i32,
}

/// Units of a region were held for a reservation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockReservedV1 {
    pub reservation_id: Uuid,
    pub region: String,
    pub items: Vec<StockLine>,
}

impl Event for StockReservedV1 {
    const STREAM: StreamKind = StreamKind::Inventory;
    const TYPE: &'static str = "inventory.stock_reserved.v1";
}

/// Held units went back on sale (released, or expired).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockReleasedV1 {
    pub reservation_id: Uuid,
    pub region: String,
    /// `released` or `expired`.
    pub reason: String,
    pub items: Vec<StockLine>,
}

impl Event for StockReleasedV1 {
    const STREAM: StreamKind = StreamKind::Inventory;
    const TYPE: &'static str = "inventory.stock_released.v1";
}

/// A product went on or off sale in a region: its sellable units there (held ones excluded)
/// became more than zero, or zero. Written by the stock table itself (a trigger), so every
/// path that changes stock reports it. `aggregate_id` is the product; `aggregate_version`
/// counts the product's transitions in the region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AvailabilityChangedV1 {
    pub product_id: Uuid,
    pub region: String,
    pub in_stock: bool,
}

impl Event for AvailabilityChangedV1 {
    const STREAM: StreamKind = StreamKind::Inventory;
    const TYPE: &'static str = "inventory.availability_changed.v1";
}
