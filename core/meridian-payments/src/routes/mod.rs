//! The payments' HTTP routes, one file per action, and the bodies they answer with.

mod create_payment;
mod get_payment;
mod refund_payment;

use axum::{
    Router,
    http::StatusCode,
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use meridian_platform::{ApiError, ApiResult, error::Problem};
use serde::Serialize;
use utoipa::OpenApi;
use uuid::Uuid;

use crate::{
    PaymentsState,
    store::{Payment, Refund},
};

pub fn router(state: PaymentsState) -> Router {
    Router::new()
        .route("/payments", post(create_payment::create_payment))
        .route("/payments/{id}", get(get_payment::get_payment))
        .route(
            "/payments/{id}/refund",
            post(refund_payment::refund_payment),
        )
        .with_state(state)
}

/// A payment as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PaymentBody {
    pub id: Uuid,
    pub order_id: Uuid,
    /// `succeeded`, `failed`, or `pending` while the provider's answer is unknown.
    #[schema(example = "succeeded")]
    pub status: String,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
    /// `test` or `stripe`.
    pub provider: String,
    /// Why the provider declined (`card_declined`, `insufficient_funds`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Refunded so far, refunds awaiting the provider included.
    pub refunded_amount: i64,
    pub created_at: DateTime<Utc>,
}

impl From<&Payment> for PaymentBody {
    fn from(payment: &Payment) -> Self {
        PaymentBody {
            id: payment.id,
            order_id: payment.order_id,
            status: payment.status.clone(),
            amount: payment.amount,
            currency: payment.currency.clone(),
            provider: payment.provider.clone(),
            failure_reason: payment.failure_reason.clone(),
            refunded_amount: payment.refunded_amount,
            created_at: payment.created_at,
        }
    }
}

/// A 402: a problem (RFC 9457) whose `payment` member is the declined payment, as recorded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentDeclined {
    #[serde(flatten)]
    pub problem: Problem,
    pub payment: PaymentBody,
}

/// A refund as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RefundBody {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub amount: i64,
    pub currency: String,
    #[schema(example = "succeeded")]
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Refund> for RefundBody {
    fn from(refund: &Refund) -> Self {
        RefundBody {
            id: refund.id,
            payment_id: refund.payment_id,
            amount: refund.amount,
            currency: refund.currency.clone(),
            status: refund.status.clone(),
            created_at: refund.created_at,
        }
    }
}

/// The answer to a settled charge: 201 with the payment, or 402 with the declined payment.
fn payment_response(payment: &Payment) -> ApiResult<(StatusCode, Vec<u8>)> {
    let body = PaymentBody::from(payment);
    let Some(reason) = &payment.failure_reason else {
        return json_bytes(StatusCode::CREATED, &body);
    };
    let status = StatusCode::PAYMENT_REQUIRED;
    let declined = PaymentDeclined {
        problem: Problem {
            problem_type: "https://meridian.dev/problems/payment-declined".into(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: format!("the payment was declined: {reason}"),
            errors: None,
        },
        payment: body,
    };
    json_bytes(status, &declined)
}

fn json_bytes(status: StatusCode, body: &impl Serialize) -> ApiResult<(StatusCode, Vec<u8>)> {
    Ok((
        status,
        serde_json::to_vec(body).map_err(ApiError::internal)?,
    ))
}

#[derive(OpenApi)]
#[openapi(
    paths(
        create_payment::create_payment,
        get_payment::get_payment,
        refund_payment::refund_payment
    ),
    tags((name = "payments", description = "Charges and refunds"))
)]
struct PaymentsApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    PaymentsApi::openapi()
}
