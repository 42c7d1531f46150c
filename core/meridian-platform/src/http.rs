//! The middleware every core router gets, applied once by the composition root.
//!
//! - `X-Request-Id`: kept from the request when sane, else a new UUID v7; echoed on the response
//!   and recorded on the request's tracing span.
//! - `X-Region`: the region that served the response.
//! - a body limit (routes may lower it), a panic guard and problem+json for unknown routes and
//!   methods, request metrics by matched route.

use std::time::Instant;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{HeaderName, HeaderValue},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const REGION: HeaderName = HeaderName::from_static("x-region");

/// The largest body any endpoint accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request id is kept only if it is short and made of characters that are safe in logs.
pub fn sane_request_id(raw: &str) -> bool {
    (1..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The request id of the current request, for handlers that want to log or echo it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Wraps `router` in the platform's middleware.
pub fn layer(router: Router, region: &str) -> Router {
    let region =
        HeaderValue::from_str(region).unwrap_or_else(|_| HeaderValue::from_static("unknown"));
    router
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("this method is not allowed on this route".into())
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(|_panic| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .layer(middleware::from_fn(move |request, next| {
            annotate(request, next, region.clone())
        }))
}

async fn annotate(mut request: Request, next: Next, region: HeaderValue) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let span = tracing::info_span!("request", %method, %route, request_id = %request_id);
    let mut response = {
        let _entered = span.enter();
        drop(_entered);
        tracing::Instrument::instrument(next.run(request), span.clone()).await
    };
    let status = response.status();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), duration_ms, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), duration_ms, "request");
        }
    });
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(duration_ms / 1000.0);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID, value);
    }
    headers.insert(REGION, region);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        assert!(sane_request_id("0192f6a0-7b3c-7cc1-9d2e-1a2b3c4d5e6f"));
        assert!(sane_request_id("edge:abc.123_x"));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id("has space"));
        assert!(!sane_request_id("new\nline"));
        assert!(!sane_request_id(&"a".repeat(129)));
    }
}
