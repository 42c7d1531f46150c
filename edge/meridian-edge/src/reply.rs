//! Responses the edge writes itself, without going upstream: local endpoints and problems.
//!
//! Every one of them carries `X-Request-Id`, `X-Region` (the edge's home region, which answered)
//! and `Cache-Control: no-store` (they describe this edge at this instant, so no cache between
//! client and edge may keep them).

use bytes::Bytes;
use http::{StatusCode, header};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::phases::{RequestId, X_REQUEST_ID};
use crate::problem::EdgeProblem;
use crate::ratelimit::Decision;

/// The region that answered; a core sets it on what it serves, the edge on what it answers itself.
pub const X_REGION: &str = "x-region";

pub enum Reply {
    /// A fixed JSON document, such as the health check's.
    Json {
        status: StatusCode,
        body: &'static str,
    },
    Problem(EdgeProblem),
    /// A 429 problem, with the limit's headers.
    Limited(Decision),
    /// A 308 to this URL (plain HTTP to HTTPS).
    Redirect(String),
}

/// Writes the `RateLimit-*` headers of `decision` (and `Retry-After` on a refusal).
pub fn rate_limit_headers(header: &mut ResponseHeader, decision: &Decision) -> pingora::Result<()> {
    for (name, value) in rate_limit_fields(decision) {
        header.insert_header(name, value)?;
    }
    Ok(())
}

/// The `RateLimit-*` headers of `decision` (and `Retry-After` on a refusal).
pub fn rate_limit_fields(decision: &Decision) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("ratelimit-limit", decision.limit.to_string()),
        ("ratelimit-remaining", decision.remaining.to_string()),
        ("ratelimit-reset", decision.reset_s.to_string()),
    ];
    if !decision.allowed {
        fields.push(("retry-after", decision.retry_after_s.to_string()));
    }
    fields
}

impl Reply {
    fn into_parts(
        self,
        request_id: &RequestId,
        region: &str,
    ) -> pingora::Result<(ResponseHeader, Bytes)> {
        let limited = match &self {
            Reply::Limited(decision) => Some(*decision),
            _ => None,
        };
        let challenge = matches!(self, Reply::Problem(EdgeProblem::Unauthorized));
        let location = match &self {
            Reply::Redirect(url) => Some(url.clone()),
            _ => None,
        };
        let (status, content_type, body, retry_after_s) = match self {
            Reply::Json { status, body } => (
                status,
                "application/json",
                Bytes::from_static(body.as_bytes()),
                None,
            ),
            Reply::Problem(problem) => (
                problem.status(),
                "application/problem+json",
                Bytes::from(problem.body(request_id.as_str())),
                problem.retry_after_s(),
            ),
            Reply::Limited(_) => (
                EdgeProblem::TooManyRequests.status(),
                "application/problem+json",
                Bytes::from(EdgeProblem::TooManyRequests.body(request_id.as_str())),
                None,
            ),
            Reply::Redirect(_) => (
                StatusCode::PERMANENT_REDIRECT,
                "application/json",
                Bytes::from_static(br#"{"status":"moved to https"}"#),
                None,
            ),
        };
        let mut header = ResponseHeader::build(status, Some(5))?;
        header.insert_header(header::CONTENT_TYPE, content_type)?;
        header.insert_header(header::CONTENT_LENGTH, body.len())?;
        header.insert_header(header::CACHE_CONTROL, "no-store")?;
        header.insert_header(X_REQUEST_ID, request_id.as_str())?;
        header.insert_header(X_REGION, region)?;
        if let Some(seconds) = retry_after_s {
            header.insert_header(header::RETRY_AFTER, seconds)?;
        }
        if let Some(decision) = limited {
            rate_limit_headers(&mut header, &decision)?;
        }
        if let Some(location) = location {
            header.insert_header(header::LOCATION, location)?;
        }
        if challenge {
            // RFC 6750: a 401 names the scheme the client should authenticate with.
            header.insert_header(header::WWW_AUTHENTICATE, r#"Bearer realm="meridian""#)?;
        }
        Ok((header, body))
    }
}

/// Answers a request that is still healthy (the connection can be kept alive).
pub async fn send(
    session: &mut Session,
    reply: Reply,
    request_id: &RequestId,
    region: &str,
) -> pingora::Result<()> {
    let (header, body) = reply.into_parts(request_id, region)?;
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(body), true).await
}

/// Answers a request whose proxying failed. Pingora closes the connection afterwards, and writes
/// nothing if a response had already started.
pub async fn send_problem_after_failure(
    session: &mut Session,
    problem: EdgeProblem,
    request_id: &RequestId,
    region: &str,
) -> pingora::Result<()> {
    let (header, body) = Reply::Problem(problem).into_parts(request_id, region)?;
    session
        .as_downstream_mut()
        .write_error_response(header, body)
        .await
}
