//! The payment provider: who actually moves the money.
//!
//! - [`test_cards`]: the built-in `test` provider (the dev default), in process.
//! - [`stripe`]: Stripe's PaymentIntents API over HTTP, at a configurable base URL.
//!
//! Invariant: every call carries our idempotency key, and a provider answers a repeated key
//! with the first outcome; so asking again under the same key never charges twice. An error
//! ([`ProviderUnavailable`]) means the outcome is unknown, never that the payment failed.

pub mod stripe;
pub mod test_cards;

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use uuid::Uuid;

/// A charge as the provider sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeAttempt {
    /// Ours, stable across retries: the saga's `<order id>:charge`, or derived from the HTTP key.
    pub idempotency_key: String,
    pub order_id: Uuid,
    /// Minor units, > 0.
    pub amount: i64,
    /// ISO 4217, upper case.
    pub currency: String,
    /// The card token (`tok_visa`, ...).
    pub token: String,
}

/// What the provider decided about a charge; both are final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded {
        provider_ref: String,
    },
    Declined {
        /// `card_declined`, `insufficient_funds`, `invalid_token`, ...
        reason: String,
        provider_ref: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundAttempt {
    pub idempotency_key: String,
    /// The provider's reference of the charge (a PaymentIntent id for Stripe).
    pub charge_ref: String,
    pub amount: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    Refunded {
        provider_ref: String,
    },
    /// The provider will not refund (already refunded, disputed, ...): final.
    Refused {
        reason: String,
    },
}

/// The provider could not be reached, failed or timed out: the outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the payment provider is unavailable: {0}")]
pub struct ProviderUnavailable(pub String);

pub type ProviderResult<T> = Result<T, ProviderUnavailable>;

/// A payment provider. Every method is idempotent by the attempt's key.
pub trait Provider: Send + Sync + 'static {
    /// The name recorded with each payment (`test`, `stripe`).
    fn name(&self) -> &'static str;

    /// Charges the card once per key.
    fn charge<'a>(
        &'a self,
        attempt: &'a ChargeAttempt,
    ) -> BoxFuture<'a, ProviderResult<ChargeOutcome>>;

    /// What became of an earlier charge under `attempt.idempotency_key`, asked before anything
    /// is given up on: `None` when the provider never took it. May complete the charge (Stripe
    /// answers a replayed key with the original result, or runs it now), never twice.
    fn lookup_charge<'a>(
        &'a self,
        attempt: &'a ChargeAttempt,
    ) -> BoxFuture<'a, ProviderResult<Option<ChargeOutcome>>>;

    /// Refunds (part of) a charge once per key.
    fn refund<'a>(
        &'a self,
        attempt: &'a RefundAttempt,
    ) -> BoxFuture<'a, ProviderResult<RefundOutcome>>;
}

/// The provider chosen by `MERIDIAN_PAYMENTS_PROVIDER` (`test` by default, or `stripe`, which
/// then needs `MERIDIAN_STRIPE_BASE_URL` and `MERIDIAN_STRIPE_SECRET_KEY`, and takes
/// `MERIDIAN_STRIPE_TIMEOUT_MS`, 10000 by default, at most 15000 so that three tries fit in a
/// charge attempt's lease).
pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Arc<dyn Provider>> {
    let chosen = lookup("MERIDIAN_PAYMENTS_PROVIDER").unwrap_or_else(|| "test".into());
    match chosen.trim() {
        "" | "test" => Ok(Arc::new(test_cards::TestProvider)),
        "stripe" => {
            let required = |name: &str| {
                lookup(name)
                    .filter(|value| !value.trim().is_empty())
                    .ok_or_else(|| {
                        anyhow::anyhow!("MERIDIAN_PAYMENTS_PROVIDER=stripe needs {name}")
                    })
            };
            let timeout = match lookup("MERIDIAN_STRIPE_TIMEOUT_MS") {
                None => stripe::DEFAULT_TIMEOUT,
                Some(ms) => ms
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| (100..=15_000).contains(ms))
                    .map(Duration::from_millis)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "MERIDIAN_STRIPE_TIMEOUT_MS must be milliseconds from 100 to 15000, not {ms:?}"
                        )
                    })?,
            };
            let config = stripe::StripeConfig {
                base_url: required("MERIDIAN_STRIPE_BASE_URL")?,
                secret_key: required("MERIDIAN_STRIPE_SECRET_KEY")?,
                timeout,
            };
            Ok(Arc::new(stripe::StripeProvider::new(config)?))
        }
        other => Err(anyhow::anyhow!(
            "MERIDIAN_PAYMENTS_PROVIDER must be `test` or `stripe`, not {other:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_test_provider_is_the_default() {
        let provider = from_env(lookup(&[])).expect("default");
        assert_eq!(provider.name(), "test");
    }

    #[test]
    fn stripe_needs_its_settings_and_says_which() {
        let error = from_env(lookup(&[("MERIDIAN_PAYMENTS_PROVIDER", "stripe")]))
            .err()
            .expect("incomplete");
        assert!(
            error.to_string().contains("MERIDIAN_STRIPE_BASE_URL"),
            "{error}"
        );
        let error = from_env(lookup(&[
            ("MERIDIAN_PAYMENTS_PROVIDER", "stripe"),
            ("MERIDIAN_STRIPE_BASE_URL", "http://127.0.0.1:12111"),
        ]))
        .err()
        .expect("incomplete");
        assert!(
            error.to_string().contains("MERIDIAN_STRIPE_SECRET_KEY"),
            "{error}"
        );
        let error = from_env(lookup(&[
            ("MERIDIAN_PAYMENTS_PROVIDER", "stripe"),
            ("MERIDIAN_STRIPE_BASE_URL", "not a url"),
            ("MERIDIAN_STRIPE_SECRET_KEY", "sk_test_1"),
        ]))
        .err()
        .expect("bad url");
        assert!(
            error.to_string().contains("MERIDIAN_STRIPE_BASE_URL"),
            "{error}"
        );
        let provider = from_env(lookup(&[
            ("MERIDIAN_PAYMENTS_PROVIDER", "stripe"),
            ("MERIDIAN_STRIPE_BASE_URL", "http://127.0.0.1:12111/"),
            ("MERIDIAN_STRIPE_SECRET_KEY", "sk_test_1"),
        ]))
        .expect("complete");
        assert_eq!(provider.name(), "stripe");
    }

    #[test]
    fn unknown_providers_are_refused() {
        let error = from_env(lookup(&[("MERIDIAN_PAYMENTS_PROVIDER", "paypal")]))
            .err()
            .expect("unknown");
        assert!(error.to_string().contains("`test` or `stripe`"), "{error}");
    }
}
