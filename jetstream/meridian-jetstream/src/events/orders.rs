//! Events of the orders service, on the orders stream.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{envelope::Event, naming::StreamKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub quantity: i32,
    pub unit_price_amount: i64,
}

/// A checkout began: the order exists, nothing is charged yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPlacedV1 {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub region: String,
    pub currency: String,
    pub total_amount: i64,
    pub lines: Vec<OrderLine>,
}

impl Event for OrderPlacedV1 {
    const STREAM: StreamKind = StreamKind::Orders;
    const TYPE: &'static str = "orders.order_placed.v1";
}

/// Paid and its stock sold: the order will ship.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderConfirmedV1 {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub region: String,
    pub lines: Vec<OrderLine>,
}

impl Event for OrderConfirmedV1 {
    const STREAM: StreamKind = StreamKind::Orders;
    const TYPE: &'static str = "orders.order_confirmed.v1";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCancelledV1 {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub reason: String,
}

impl Event for OrderCancelledV1 {
    const STREAM: StreamKind = StreamKind::Orders;
    const TYPE: &'static str = "orders.order_cancelled.v1";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderShippedV1 {
    pub order_id: Uuid,
    pub user_id: Uuid,
}

impl Event for OrderShippedV1 {
    const STREAM: StreamKind = StreamKind::Orders;
    const TYPE: &'static str = "orders.order_shipped.v1";
}
