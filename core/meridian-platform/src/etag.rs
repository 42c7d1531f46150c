//! Entity tags from versions, and the `If-None-Match` / `If-Match` comparisons (RFC 9110).

use axum::http::{HeaderMap, HeaderValue, header};

use crate::error::ApiError;

/// The strong entity tag of a resource at `version`.
pub fn of_version(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"v{version}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// Whether a list header (`If-None-Match`/`If-Match`) names `etag` or is `*`. Weak
/// comparison: a `W/` prefix is ignored, as RFC 9110 prescribes for `If-None-Match`.
fn list_matches(value: &str, etag: &HeaderValue) -> bool {
    let etag = etag.to_str().unwrap_or_default();
    value.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.trim_start_matches("W/") == etag.trim_start_matches("W/")
    })
}

/// `If-None-Match` names the current representation: answer 304.
pub fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| list_matches(v, etag))
}

/// Fails with 412 when `If-Match` is present and does not name the current representation.
/// `If-Match` uses strong comparison, so a weak tag never matches.
pub fn check_if_match(headers: &HeaderMap, etag: &HeaderValue) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(());
    };
    let value = value.to_str().unwrap_or_default();
    let strong_match = value.split(',').map(str::trim).any(|candidate| {
        candidate == "*"
            || (!candidate.starts_with("W/") && candidate == etag.to_str().unwrap_or_default())
    });
    if strong_match {
        Ok(())
    } else {
        Err(ApiError::PreconditionFailed(
            "the resource has changed since you read it (If-Match)".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).expect("ascii"));
        map
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let etag = of_version(3);
        assert!(not_modified(
            &headers(header::IF_NONE_MATCH, "\"v3\""),
            &etag
        ));
        assert!(not_modified(
            &headers(header::IF_NONE_MATCH, "W/\"v3\""),
            &etag
        ));
        assert!(not_modified(
            &headers(header::IF_NONE_MATCH, "\"v1\", \"v3\""),
            &etag
        ));
        assert!(not_modified(&headers(header::IF_NONE_MATCH, "*"), &etag));
        assert!(!not_modified(
            &headers(header::IF_NONE_MATCH, "\"v2\""),
            &etag
        ));
        assert!(!not_modified(&HeaderMap::new(), &etag));
    }

    #[test]
    fn if_match_compares_strongly() {
        let etag = of_version(3);
        assert!(check_if_match(&HeaderMap::new(), &etag).is_ok());
        assert!(check_if_match(&headers(header::IF_MATCH, "\"v3\""), &etag).is_ok());
        assert!(check_if_match(&headers(header::IF_MATCH, "*"), &etag).is_ok());
        assert!(check_if_match(&headers(header::IF_MATCH, "\"v2\""), &etag).is_err());
        assert!(check_if_match(&headers(header::IF_MATCH, "W/\"v3\""), &etag).is_err());
    }
}
