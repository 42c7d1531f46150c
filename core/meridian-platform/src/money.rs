//! Money: an amount in minor units and an ISO 4217 currency; never a float.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Money {
    /// Amount in minor units (cents for USD).
    pub amount: i64,
    /// ISO 4217 code, e.g. `USD`.
    pub currency: String,
}

/// The currencies the platform prices in, with their minor-unit exponent.
const CURRENCIES: &[&str] = &[
    "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK",
    "BRL", "MXN", "INR", "SGD", "HKD", "KRW", "ZAR",
];

/// The largest amount a single price may have (one hundred million major units).
pub const MAX_AMOUNT: i64 = 10_000_000_000;

impl Money {
    /// Checks the currency is known and the amount is in `0..=MAX_AMOUNT`.
    pub fn validate(&self) -> Result<(), &'static str> {
        if !CURRENCIES.contains(&self.currency.as_str()) {
            return Err("currency must be a supported ISO 4217 code such as USD or EUR");
        }
        if !(0..=MAX_AMOUNT).contains(&self.amount) {
            return Err("amount must be between 0 and 10000000000 minor units");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_validation() {
        let money = |amount, currency: &str| Money {
            amount,
            currency: currency.into(),
        };
        assert!(money(1999, "USD").validate().is_ok());
        assert!(money(0, "EUR").validate().is_ok());
        assert!(money(-1, "USD").validate().is_err());
        assert!(money(MAX_AMOUNT + 1, "USD").validate().is_err());
        assert!(money(100, "usd").validate().is_err());
        assert!(money(100, "XXX").validate().is_err());
    }
}
