//! Contracts the payments service answers, for the order saga.

use serde::{Deserialize, Serialize};

use crate::Contract;

/// Charges a card for an order. Idempotent by `idempotency_key`: the same key charges once and
/// answers the same outcome, also after a provider timeout (the service looks the payment up
/// by the key before it would charge again).
pub struct Charge;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChargeRequest {
    pub order_id: String,
    pub amount: i64,
    pub currency: String,
    /// The card token (`tok_visa`, ... for the test provider).
    pub token: String,
    /// Built from the saga id and step, e.g. `<order id>:charge`.
    pub idempotency_key: String,
    /// The buyer, recorded with the payment (absent from callers that predate it).
    #[serde(default)]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ChargeResponse {
    Succeeded {
        payment_id: String,
    },
    /// The card was declined: final, do not retry.
    Declined {
        payment_id: String,
        reason: String,
    },
    /// The provider could not be reached or failed: the outcome is unknown, retry the same
    /// request (same key) later.
    Unavailable {
        reason: String,
    },
}

impl Contract for Charge {
    type Request = ChargeRequest;
    type Response = ChargeResponse;
    const ENDPOINT: &'static str = "payments.charge";
}

/// Refunds (part of) a succeeded payment. Idempotent by `idempotency_key`.
pub struct Refund;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundRequest {
    pub payment_id: String,
    /// `None` refunds what remains.
    pub amount: Option<i64>,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RefundResponse {
    Refunded {
        refund_id: String,
        amount: i64,
    },
    /// Refused for good (more than was paid, unknown payment).
    Refused {
        reason: String,
    },
    Unavailable {
        reason: String,
    },
}

impl Contract for Refund {
    type Request = RefundRequest;
    type Response = RefundResponse;
    const ENDPOINT: &'static str = "payments.refund";
}
