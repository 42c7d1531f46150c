//! Values the users service accepts, parsed once at the boundary.

use meridian_platform::{ApiError, validate::Validator};
use serde::Deserialize;

/// A lower-cased e-mail address of plausible shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let email = raw.trim().to_lowercase();
        let Some((local, domain)) = email.split_once('@') else {
            return Err("must be an e-mail address");
        };
        let plausible = email.len() <= 254
            && !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && email.chars().all(|c| c.is_ascii_graphic());
        if plausible {
            Ok(Email(email))
        } else {
            Err("must be an e-mail address")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Argon2 cost does not depend on length, but a bound keeps bodies and memory small.
pub const MAX_PASSWORD_CHARS: usize = 128;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddressInput {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. `PT`.
    pub country: String,
    pub phone: Option<String>,
}

impl AddressInput {
    /// Checks every field and normalises the country code to upper case.
    pub fn validate(mut self) -> Result<Self, ApiError> {
        self.country = self.country.trim().to_ascii_uppercase();
        let mut v = Validator::new();
        v.length("name", &self.name, 1, 200)
            .length("line1", &self.line1, 1, 200)
            .length("city", &self.city, 1, 100)
            .length("postal_code", &self.postal_code, 1, 20)
            .check(
                self.country.len() == 2 && self.country.chars().all(|c| c.is_ascii_uppercase()),
                "country",
                "must be an ISO 3166-1 alpha-2 code",
            );
        if let Some(line2) = &self.line2 {
            v.length("line2", line2, 0, 200);
        }
        if let Some(phone) = &self.phone {
            v.check(
                (4..=32).contains(&phone.len())
                    && phone
                        .chars()
                        .all(|c| c.is_ascii_digit() || " +-().".contains(c)),
                "phone",
                "must be a phone number of 4 to 32 digits and + - ( ) . characters",
            );
        }
        v.finish()?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_shapes_checked() {
        assert_eq!(
            Email::parse("  Ana@Example.COM ").map(|e| e.0),
            Ok("ana@example.com".into())
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a b@c.de",
            "a@b@c.de",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
