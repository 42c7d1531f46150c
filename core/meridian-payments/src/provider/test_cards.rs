//! The built-in `test` provider: the contract's test tokens, decided in process.
//!
//! It keeps no state: every outcome is a function of the token, and every reference a function
//! of our idempotency key, so a repeated key answers exactly as the first call did.

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::{
    ChargeAttempt, ChargeOutcome, Provider, ProviderResult, ProviderUnavailable, RefundAttempt,
    RefundOutcome,
};

/// Succeeds.
pub const TOKEN_VISA: &str = "tok_visa";
/// Declines with `card_declined`.
pub const TOKEN_DECLINED: &str = "tok_chargeDeclined";
/// Declines with `insufficient_funds`.
pub const TOKEN_INSUFFICIENT_FUNDS: &str = "tok_insufficientFunds";
/// Fails as a provider outage would: the provider never takes the charge.
pub const TOKEN_PROCESSING_ERROR: &str = "tok_processingError";

pub struct TestProvider;

/// A stable reference derived from our key.
fn reference(prefix: &str, key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_test_{hex}")
}

fn decide(attempt: &ChargeAttempt) -> ProviderResult<ChargeOutcome> {
    let declined = |reason: &str| ChargeOutcome::Declined {
        reason: reason.to_owned(),
        provider_ref: Some(reference("pi", &attempt.idempotency_key)),
    };
    match attempt.token.as_str() {
        TOKEN_VISA => Ok(ChargeOutcome::Succeeded {
            provider_ref: reference("pi", &attempt.idempotency_key),
        }),
        TOKEN_DECLINED => Ok(declined("card_declined")),
        TOKEN_INSUFFICIENT_FUNDS => Ok(declined("insufficient_funds")),
        TOKEN_PROCESSING_ERROR => Err(ProviderUnavailable(
            "the test provider simulates an outage for tok_processingError".into(),
        )),
        _ => Ok(declined("invalid_token")),
    }
}

impl Provider for TestProvider {
    fn name(&self) -> &'static str {
        "test"
    }

    fn charge<'a>(
        &'a self,
        attempt: &'a ChargeAttempt,
    ) -> BoxFuture<'a, ProviderResult<ChargeOutcome>> {
        Box::pin(async move { decide(attempt) })
    }

    fn lookup_charge<'a>(
        &'a self,
        attempt: &'a ChargeAttempt,
    ) -> BoxFuture<'a, ProviderResult<Option<ChargeOutcome>>> {
        // The outage token never reaches the ledger; every other token was decided at once.
        Box::pin(async move {
            match decide(attempt) {
                Ok(outcome) => Ok(Some(outcome)),
                Err(_) => Ok(None),
            }
        })
    }

    fn refund<'a>(
        &'a self,
        attempt: &'a RefundAttempt,
    ) -> BoxFuture<'a, ProviderResult<RefundOutcome>> {
        Box::pin(async move {
            Ok(RefundOutcome::Refunded {
                provider_ref: reference("re", &attempt.idempotency_key),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn attempt(token: &str, key: &str) -> ChargeAttempt {
        ChargeAttempt {
            idempotency_key: key.into(),
            order_id: Uuid::nil(),
            amount: 100,
            currency: "USD".into(),
            token: token.into(),
        }
    }

    #[tokio::test]
    async fn tokens_decide_and_keys_replay() {
        let provider = TestProvider;
        let first = provider.charge(&attempt(TOKEN_VISA, "k1")).await;
        assert_eq!(first, provider.charge(&attempt(TOKEN_VISA, "k1")).await);
        assert!(matches!(first, Ok(ChargeOutcome::Succeeded { .. })));
        assert_ne!(first, provider.charge(&attempt(TOKEN_VISA, "k2")).await);
        for (token, reason) in [
            (TOKEN_DECLINED, "card_declined"),
            (TOKEN_INSUFFICIENT_FUNDS, "insufficient_funds"),
            ("tok_unknown", "invalid_token"),
        ] {
            let outcome = provider.charge(&attempt(token, "k")).await;
            assert!(
                matches!(&outcome, Ok(ChargeOutcome::Declined { reason: r, .. }) if r == reason),
                "{token}: {outcome:?}"
            );
        }
        let outage = attempt(TOKEN_PROCESSING_ERROR, "k");
        assert!(provider.charge(&outage).await.is_err());
        assert_eq!(provider.lookup_charge(&outage).await, Ok(None));
    }
}
