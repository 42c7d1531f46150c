//! Field validation that reports every failure of a request at once, as a 422 whose `errors`
//! map names each field.

use std::collections::BTreeMap;

use crate::error::ApiError;

#[derive(Debug, Default)]
pub struct Validator {
    errors: BTreeMap<String, String>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` for `field` unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, message: impl Into<String>) -> &mut Self {
        if !ok {
            self.errors
                .entry(field.to_owned())
                .or_insert_with(|| message.into());
        }
        self
    }

    /// Checks that `value`, trimmed, has between `min` and `max` characters.
    pub fn length(&mut self, field: &str, value: &str, min: usize, max: usize) -> &mut Self {
        let count = value.trim().chars().count();
        self.check(
            (min..=max).contains(&count),
            field,
            format!("must be {min} to {max} characters"),
        )
    }

    pub fn finish(&mut self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Unprocessable {
                detail: "the request has invalid fields".into(),
                errors: std::mem::take(&mut self.errors),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_failure() {
        let error = Validator::new()
            .length("name", "", 1, 10)
            .length("city", "Lisbon", 1, 10)
            .check(false, "country", "must be an ISO 3166-1 alpha-2 code")
            .finish()
            .expect_err("two fields are invalid");
        let ApiError::Unprocessable { errors, .. } = error else {
            panic!("expected a 422");
        };
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["country", "name"]);
    }
}
