//! The errors the edge answers by itself, as RFC 9457 `application/problem+json`.
//!
//! A closed set with fixed detail texts: internal causes (upstream addresses, error chains) never
//! reach a body, only the log. Problem types share the cores' `https://meridian.dev/problems/`
//! namespace so a client handles an error the same way whichever side produced it.

use http::StatusCode;
use pingora::{Error, ErrorSource, ErrorType};
use serde::Serialize;

/// Raised by the proxy when no address of the plan could even be resolved.
pub const NO_UPSTREAM: ErrorType = ErrorType::Custom("NoUpstreamAvailable");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeProblem {
    BadRequest,
    /// No valid access token where the route needs one, or an invalid one anywhere.
    Unauthorized,
    /// A valid token whose role the route does not admit.
    Forbidden,
    /// Over a rate limit; the reply says when to come back.
    TooManyRequests,
    NotFound,
    MethodNotAllowed,
    /// The web application firewall judged the request an attack.
    Blocked,
    /// A body over the edge's inspection limit (the cores' limit too).
    PayloadTooLarge,
    Internal,
    BadGateway,
    /// The home region's cores cannot be reached; the client may retry shortly.
    Unavailable,
    GatewayTimeout,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'static str,
    status: u16,
    detail: &'static str,
    /// The id under which the edge logged the request, for a client to quote.
    request_id: &'a str,
}

impl EdgeProblem {
    pub fn status(self) -> StatusCode {
        match self {
            EdgeProblem::BadRequest => StatusCode::BAD_REQUEST,
            EdgeProblem::Unauthorized => StatusCode::UNAUTHORIZED,
            EdgeProblem::Forbidden => StatusCode::FORBIDDEN,
            EdgeProblem::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            EdgeProblem::NotFound => StatusCode::NOT_FOUND,
            EdgeProblem::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            EdgeProblem::Blocked => StatusCode::FORBIDDEN,
            EdgeProblem::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            EdgeProblem::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            EdgeProblem::BadGateway => StatusCode::BAD_GATEWAY,
            EdgeProblem::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            EdgeProblem::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn slug_and_detail(self) -> (&'static str, &'static str) {
        match self {
            EdgeProblem::BadRequest => ("bad-request", "the request could not be understood"),
            EdgeProblem::Unauthorized => (
                "unauthorized",
                "a valid access token is required; sign in again",
            ),
            EdgeProblem::Forbidden => ("forbidden", "your role does not allow this request"),
            EdgeProblem::TooManyRequests => (
                "rate-limited",
                "too many requests; retry after the number of seconds in Retry-After",
            ),
            EdgeProblem::NotFound => ("not-found", "no such resource"),
            EdgeProblem::MethodNotAllowed => (
                "method-not-allowed",
                "this resource does not support the request method",
            ),
            EdgeProblem::Blocked => (
                "blocked",
                "the request was refused by the web application firewall; quote its request_id if you believe this is a mistake",
            ),
            EdgeProblem::PayloadTooLarge => (
                "payload-too-large",
                "the request body is over the 64 KiB limit",
            ),
            EdgeProblem::Internal => (
                "internal",
                "an unexpected error occurred; it has been logged",
            ),
            EdgeProblem::BadGateway => (
                "bad-gateway",
                "the service behind the edge answered incorrectly",
            ),
            EdgeProblem::Unavailable => (
                "unavailable",
                "the service is temporarily unavailable; retry shortly",
            ),
            EdgeProblem::GatewayTimeout => (
                "gateway-timeout",
                "the service behind the edge did not answer in time",
            ),
        }
    }

    /// Seconds a client should wait before retrying, when retrying makes sense.
    pub fn retry_after_s(self) -> Option<u32> {
        (self == EdgeProblem::Unavailable).then_some(1)
    }

    pub fn body(self, request_id: &str) -> Vec<u8> {
        let (slug, detail) = self.slug_and_detail();
        let status = self.status();
        let body = ProblemBody {
            problem_type: format!("https://meridian.dev/problems/{slug}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            request_id,
        };
        serde_json::to_vec(&body).expect("a problem body always serializes")
    }

    /// What to tell the client about a failed proxy attempt; `None` when the client is gone.
    pub fn for_proxy_error(error: &Error) -> Option<EdgeProblem> {
        use ErrorType::*;
        let problem = match (error.esource(), error.etype()) {
            (_, HTTPStatus(status)) => Self::for_status(*status),
            (ErrorSource::Downstream, ReadError | WriteError | ConnectionClosed) => return None,
            (ErrorSource::Downstream, _) => EdgeProblem::BadRequest,
            (ErrorSource::Upstream, etype) if *etype == NO_UPSTREAM => EdgeProblem::Unavailable,
            (
                ErrorSource::Upstream,
                ConnectTimedout | ConnectRefused | ConnectNoRoute | ConnectError,
            ) => EdgeProblem::Unavailable,
            (ErrorSource::Upstream, ReadTimedout | WriteTimedout) => EdgeProblem::GatewayTimeout,
            (ErrorSource::Upstream, _) => EdgeProblem::BadGateway,
            (ErrorSource::Internal | ErrorSource::Unset, _) => EdgeProblem::Internal,
        };
        Some(problem)
    }

    fn for_status(status: u16) -> EdgeProblem {
        match status {
            404 => EdgeProblem::NotFound,
            405 => EdgeProblem::MethodNotAllowed,
            413 => EdgeProblem::PayloadTooLarge,
            400..=499 => EdgeProblem::BadRequest,
            502 => EdgeProblem::BadGateway,
            503 => EdgeProblem::Unavailable,
            504 => EdgeProblem::GatewayTimeout,
            _ => EdgeProblem::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_rfc_9457() {
        let body: serde_json::Value =
            serde_json::from_slice(&EdgeProblem::Unavailable.body("r-1")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "type": "https://meridian.dev/problems/unavailable",
                "title": "Service Unavailable",
                "status": 503,
                "detail": "the service is temporarily unavailable; retry shortly",
                "request_id": "r-1",
            })
        );
    }

    #[test]
    fn proxy_errors_map_to_problems() {
        let refused = Error::new_up(ErrorType::ConnectRefused);
        assert_eq!(
            EdgeProblem::for_proxy_error(&refused),
            Some(EdgeProblem::Unavailable)
        );
        let no_upstream = Error::new_up(NO_UPSTREAM);
        assert_eq!(
            EdgeProblem::for_proxy_error(&no_upstream),
            Some(EdgeProblem::Unavailable)
        );
        let bad_response = Error::new_up(ErrorType::InvalidHTTPHeader);
        assert_eq!(
            EdgeProblem::for_proxy_error(&bad_response),
            Some(EdgeProblem::BadGateway)
        );
        let client_gone = Error::new_down(ErrorType::ConnectionClosed);
        assert_eq!(EdgeProblem::for_proxy_error(&client_gone), None);
    }
}
