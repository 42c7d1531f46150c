//! Events of the payments service, on the payments stream.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{envelope::Event, naming::StreamKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentSucceededV1 {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub provider: String,
}

impl Event for PaymentSucceededV1 {
    const STREAM: StreamKind = StreamKind::Payments;
    const TYPE: &'static str = "payments.payment_succeeded.v1";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentFailedV1 {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub reason: String,
}

impl Event for PaymentFailedV1 {
    const STREAM: StreamKind = StreamKind::Payments;
    const TYPE: &'static str = "payments.payment_failed.v1";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRefundedV1 {
    pub payment_id: Uuid,
    pub refund_id: Uuid,
    pub order_id: Uuid,
    pub amount: i64,
    pub currency: String,
}

impl Event for PaymentRefundedV1 {
    const STREAM: StreamKind = StreamKind::Payments;
    const TYPE: &'static str = "payments.payment_refunded.v1";
}
