//! Stripe's PaymentIntents API: form-encoded requests, JSON answers, `Idempotency-Key`.
//!
//! A charge is one `POST /v1/payment_intents` with `confirm=true`; a refund one
//! `POST /v1/refunds`. Both carry our key as `Idempotency-Key`, and Stripe answers a repeated
//! key with the original result: that replay is how a charge whose answer was lost (5xx,
//! timeout) is looked up, so it can never be charged twice.

use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::{
    ChargeAttempt, ChargeOutcome, Provider, ProviderResult, ProviderUnavailable, RefundAttempt,
    RefundOutcome,
};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct StripeConfig {
    /// `https://api.stripe.com`, or a local fake's address.
    pub base_url: String,
    /// `sk_...`
    pub secret_key: String,
    /// How long one request may take before its outcome counts as unknown.
    pub timeout: Duration,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("base_url", &self.base_url)
            .field("secret_key", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

pub struct StripeProvider {
    client: reqwest::Client,
    payment_intents: Url,
    refunds: Url,
    secret_key: String,
}

impl StripeProvider {
    pub fn new(config: StripeConfig) -> anyhow::Result<Self> {
        let base = Url::parse(config.base_url.trim_end_matches('/'))
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "MERIDIAN_STRIPE_BASE_URL must be an http(s) URL, not {:?}",
                    config.base_url
                )
            })?;
        anyhow::ensure!(
            config.secret_key.starts_with("sk_"),
            "MERIDIAN_STRIPE_SECRET_KEY must be a secret key (sk_...)"
        );
        let join = |path: &str| {
            Url::parse(&format!("{}{path}", base.as_str().trim_end_matches('/')))
                .map_err(|e| anyhow::anyhow!("MERIDIAN_STRIPE_BASE_URL: {e}"))
        };
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| anyhow::anyhow!("building the Stripe HTTP client: {e}"))?;
        Ok(Self {
            client,
            payment_intents: join("/v1/payment_intents")?,
            refunds: join("/v1/refunds")?,
            secret_key: config.secret_key,
        })
    }

    /// Posts `form` with our key; a transport failure or a timeout is an unknown outcome.
    async fn post(
        &self,
        url: &Url,
        idempotency_key: &str,
        form: &[(&str, String)],
    ) -> ProviderResult<(StatusCode, Vec<u8>)> {
        let response = self
            .client
            .post(url.clone())
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", idempotency_key)
            .form(form)
            .send()
            .await
            .map_err(|e| ProviderUnavailable(format!("Stripe request failed: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ProviderUnavailable(format!("Stripe response unreadable: {e}")))?;
        Ok((status, body.to_vec()))
    }

    async fn create_intent(&self, attempt: &ChargeAttempt) -> ProviderResult<ChargeOutcome> {
        let form = [
            ("amount", attempt.amount.to_string()),
            ("currency", attempt.currency.to_ascii_lowercase()),
            ("payment_method", attempt.token.clone()),
            ("payment_method_types[]", "card".to_owned()),
            ("confirm", "true".to_owned()),
            ("metadata[order_id]", attempt.order_id.to_string()),
        ];
        let (status, body) = self
            .post(&self.payment_intents, &attempt.idempotency_key, &form)
            .await?;
        charge_outcome(status, &body)
    }
}

#[derive(Debug, Deserialize)]
struct Intent {
    id: String,
    status: String,
    last_payment_error: Option<StripeError>,
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: StripeError,
}

#[derive(Debug, Deserialize)]
struct StripeError {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    param: Option<String>,
    payment_intent: Option<IntentRef>,
}

#[derive(Debug, Deserialize)]
struct IntentRef {
    id: String,
}

#[derive(Debug, Deserialize)]
struct StripeRefund {
    id: String,
    status: String,
}

impl StripeError {
    /// The decline reason we record: the specific `decline_code` when Stripe gives one,
    /// else the error `code` (`generic_decline` says no more than `card_declined`).
    fn reason(&self) -> String {
        self.decline_code
            .as_deref()
            .filter(|code| *code != "generic_decline")
            .or(self.code.as_deref())
            .unwrap_or("card_declined")
            .to_owned()
    }

    fn describe(&self) -> String {
        format!(
            "{}/{}",
            self.kind.as_deref().unwrap_or("unknown"),
            self.code.as_deref().unwrap_or("none")
        )
    }
}

fn unavailable(status: StatusCode, detail: impl std::fmt::Display) -> ProviderUnavailable {
    ProviderUnavailable(format!("Stripe answered HTTP {status}: {detail}"))
}

/// Reads a PaymentIntents answer. Only `succeeded` and card errors are final; anything else
/// (5xx, 429, 409 `idempotency_key_in_use`, `processing`, an unexpected body) leaves the
/// outcome unknown.
fn charge_outcome(status: StatusCode, body: &[u8]) -> ProviderResult<ChargeOutcome> {
    if status.is_success() {
        let intent: Intent = serde_json::from_slice(body).map_err(|e| unavailable(status, e))?;
        return match intent.status.as_str() {
            "succeeded" => Ok(ChargeOutcome::Succeeded {
                provider_ref: intent.id,
            }),
            "requires_payment_method" | "canceled" => Ok(ChargeOutcome::Declined {
                reason: intent
                    .last_payment_error
                    .map(|error| error.reason())
                    .unwrap_or_else(|| intent.status.clone()),
                provider_ref: Some(intent.id),
            }),
            // 3-D Secure and the like: this API has no way to complete them.
            "requires_action" | "requires_confirmation" => Ok(ChargeOutcome::Declined {
                reason: "authentication_required".into(),
                provider_ref: Some(intent.id),
            }),
            other => Err(unavailable(status, format!("payment intent is {other}"))),
        };
    }
    let error = serde_json::from_slice::<ErrorEnvelope>(body).map(|e| e.error);
    match (status, error) {
        (StatusCode::PAYMENT_REQUIRED, Ok(error)) => Ok(ChargeOutcome::Declined {
            reason: error.reason(),
            provider_ref: error.payment_intent.map(|intent| intent.id),
        }),
        // An unknown token: Stripe cannot find the payment method.
        (StatusCode::BAD_REQUEST, Ok(error))
            if error.code.as_deref() == Some("resource_missing")
                && error.param.as_deref() == Some("payment_method") =>
        {
            Ok(ChargeOutcome::Declined {
                reason: "invalid_token".into(),
                provider_ref: None,
            })
        }
        (status, Ok(error)) => {
            if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
                tracing::error!(%status, error = %error.describe(), "Stripe refused a charge request");
            }
            Err(unavailable(status, error.describe()))
        }
        (status, Err(_)) => Err(unavailable(status, "no Stripe error object")),
    }
}

fn refund_outcome(status: StatusCode, body: &[u8]) -> ProviderResult<RefundOutcome> {
    if status.is_success() {
        let refund: StripeRefund =
            serde_json::from_slice(body).map_err(|e| unavailable(status, e))?;
        return match refund.status.as_str() {
            // A card refund may stay `pending` for a while; Stripe completes it.
            "succeeded" | "pending" => Ok(RefundOutcome::Refunded {
                provider_ref: refund.id,
            }),
            other => Ok(RefundOutcome::Refused {
                reason: format!("refund_{other}"),
            }),
        };
    }
    let error = serde_json::from_slice::<ErrorEnvelope>(body).map(|e| e.error);
    match (status, error) {
        (StatusCode::BAD_REQUEST, Ok(error))
            if error.kind.as_deref() == Some("invalid_request_error")
                && matches!(
                    error.code.as_deref(),
                    Some("charge_already_refunded" | "amount_too_large" | "charge_disputed")
                ) =>
        {
            Ok(RefundOutcome::Refused {
                reason: error.code.unwrap_or_default(),
            })
        }
        (status, Ok(error)) => {
            if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
                tracing::error!(%status, error = %error.describe(), "Stripe refused a refund request");
            }
            Err(unavailable(status, error.describe()))
        }
        (status, Err(_)) => Err(unavailable(status, "no Stripe error object")),
    }
}

impl Provider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn charge<'a>(
        &'a self,
        attempt: &'a ChargeAttempt,
    ) -> BoxFuture<'a, ProviderResult<ChargeOutcome>> {
        Box::pin(self.create_intent(attempt))
    }

    fn lookup_charge<'a>(
        &'a self,
        attempt: &'a ChargeAttempt,
    ) -> BoxFuture<'a, ProviderResult<Option<ChargeOutcome>>> {
        // The same request under the same key: Stripe replays the original result.
        Box::pin(async move { self.create_intent(attempt).await.map(Some) })
    }

    fn refund<'a>(
        &'a self,
        attempt: &'a RefundAttempt,
    ) -> BoxFuture<'a, ProviderResult<RefundOutcome>> {
        Box::pin(async move {
            let form = [
                ("payment_intent", attempt.charge_ref.clone()),
                ("amount", attempt.amount.to_string()),
            ];
            let (status, body) = self
                .post(&self.refunds, &attempt.idempotency_key, &form)
                .await?;
            refund_outcome(status, &body)
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(status: u16, body: serde_json::Value) -> ProviderResult<ChargeOutcome> {
        charge_outcome(
            StatusCode::from_u16(status).expect("status"),
            body.to_string().as_bytes(),
        )
    }

    #[test]
    fn wire_answers_map_to_outcomes() {
        assert_eq!(
            read(200, json!({"id": "pi_1", "status": "succeeded"})),
            Ok(ChargeOutcome::Succeeded {
                provider_ref: "pi_1".into()
            })
        );
        assert_eq!(
            read(
                402,
                json!({"error": {"type": "card_error", "code": "card_declined",
                    "decline_code": "insufficient_funds", "payment_intent": {"id": "pi_2"}}})
            ),
            Ok(ChargeOutcome::Declined {
                reason: "insufficient_funds".into(),
                provider_ref: Some("pi_2".into())
            })
        );
        assert_eq!(
            read(
                402,
                json!({"error": {"type": "card_error", "code": "card_declined",
                    "decline_code": "generic_decline"}})
            ),
            Ok(ChargeOutcome::Declined {
                reason: "card_declined".into(),
                provider_ref: None
            })
        );
        assert!(matches!(
            read(200, json!({"id": "pi_3", "status": "requires_payment_method",
                "last_payment_error": {"type": "card_error", "code": "expired_card"}})),
            Ok(ChargeOutcome::Declined { reason, .. }) if reason == "expired_card"
        ));
        // Unknown outcomes: never a decline.
        assert!(read(500, json!({"error": {"type": "api_error"}})).is_err());
        assert!(read(200, json!({"id": "pi_4", "status": "processing"})).is_err());
        assert!(read(409, json!({"error": {"type": "idempotency_error"}})).is_err());
        assert!(read(502, json!("<html>")).is_err());
    }
}
