//! Charge and refund input, parsed and bounded; idempotency keys and request fingerprints.

use meridian_platform::{ApiError, money::Money, validate::Validator};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::provider::ChargeAttempt;

/// The longest card token accepted (Stripe's ids are far shorter).
pub const MAX_TOKEN_LEN: usize = 255;
/// The longest idempotency key, ours or a caller's (Stripe's limit too).
pub const MAX_KEY_LEN: usize = 255;

/// `POST /payments`, as the contract spells it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PaymentRequest {
    pub order_id: Uuid,
    /// Minor units, > 0.
    pub amount: i64,
    /// ISO 4217; must be the order's.
    pub currency: String,
    pub method: PaymentMethod,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PaymentMethod {
    /// Only `card`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The card token (`tok_visa`, ... with the test provider).
    pub token: String,
}

/// A charge whose fields are valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub order_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub token: String,
}

impl Charge {
    /// Checks every field and reports every failure at once (422).
    pub fn parse(
        order_id: Uuid,
        amount: i64,
        currency: &str,
        method_type: &str,
        token: &str,
    ) -> Result<Charge, ApiError> {
        let money = Money {
            amount,
            currency: currency.to_owned(),
        };
        let mut v = Validator::new();
        match money.validate() {
            Err(message) if message.starts_with("currency") => {
                v.check(false, "currency", message);
            }
            Err(message) => {
                v.check(false, "amount", message);
            }
            Ok(()) => {}
        }
        v.check(amount > 0, "amount", "must be more than 0 minor units");
        v.check(method_type == "card", "method.type", "must be `card`");
        v.check(
            !token.is_empty() && token.len() <= MAX_TOKEN_LEN && is_visible_ascii(token),
            "method.token",
            "must be 1 to 255 visible ASCII characters",
        );
        v.finish()?;
        Ok(Charge {
            order_id,
            amount,
            currency: currency.to_owned(),
            token: token.to_owned(),
        })
    }

    /// The charge as the provider sees it, under our `idempotency_key`.
    pub fn attempt(&self, idempotency_key: &str) -> ChargeAttempt {
        ChargeAttempt {
            idempotency_key: idempotency_key.to_owned(),
            order_id: self.order_id,
            amount: self.amount,
            currency: self.currency.clone(),
            token: self.token.clone(),
        }
    }

    /// Identifies the charge: another charge under the same key is refused.
    pub fn fingerprint(&self) -> Vec<u8> {
        meridian_platform::idempotency::fingerprint(&json!({
            "order_id": self.order_id,
            "amount": self.amount,
            "currency": self.currency,
            "token": self.token,
        }))
    }
}

impl TryFrom<PaymentRequest> for Charge {
    type Error = ApiError;

    fn try_from(request: PaymentRequest) -> Result<Self, Self::Error> {
        Charge::parse(
            request.order_id,
            request.amount,
            &request.currency,
            &request.method.kind,
            &request.method.token,
        )
    }
}

/// Identifies a refund request: another request under the same key is refused.
pub fn refund_fingerprint(payment_id: Uuid, amount: Option<i64>) -> Vec<u8> {
    meridian_platform::idempotency::fingerprint(&json!({
        "payment_id": payment_id,
        "amount": amount,
    }))
}

fn is_visible_ascii(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_graphic())
}

/// An internal caller's key (the saga's `<order id>:charge`): 1 to 255 visible ASCII characters.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !is_visible_ascii(key) {
        return Err("the idempotency_key must be 1 to 255 visible ASCII characters".into());
    }
    Ok(())
}

/// Our key at the provider for an HTTP request: derived from the route's idempotency scope
/// and the client's `Idempotency-Key`, so a retry of the request asks the provider under the
/// same key, and two callers' keys never meet.
pub fn provider_key(scope: &str, client_key: &str) -> String {
    let digest = Sha256::digest(format!("{scope}\n{client_key}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("http-{hex}")
}

/// A 422's field messages as one line, for internal callers.
pub fn describe(error: &ApiError) -> String {
    match error {
        ApiError::Unprocessable { errors, .. } => errors
            .iter()
            .map(|(field, message)| format!("{field}: {message}"))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_named() {
        let error = Charge::parse(Uuid::nil(), 0, "usd", "iban", "").expect_err("all bad");
        let described = describe(&error);
        for field in ["amount", "currency", "method.type", "method.token"] {
            assert!(described.contains(field), "{described}");
        }
        let charge = Charge::parse(Uuid::nil(), 1999, "USD", "card", "tok_visa").expect("valid");
        assert_eq!(charge.fingerprint(), charge.clone().fingerprint());
        let other = Charge {
            amount: 2000,
            ..charge.clone()
        };
        assert_ne!(charge.fingerprint(), other.fingerprint());
    }

    #[test]
    fn keys() {
        assert!(check_key("0192f6a0-7b3c-7cc1-9d2e-1a2b3c4d5e6f:charge").is_ok());
        for bad in ["", "with space", &"k".repeat(256)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            provider_key("u:payments", "k"),
            provider_key("u:payments", "k")
        );
        assert_ne!(
            provider_key("u:payments", "k"),
            provider_key("v:payments", "k")
        );
        assert!(provider_key("u", &"k".repeat(255)).len() <= MAX_KEY_LEN);
    }
}
