//! What the edge answers itself: its health endpoints, and a refusal for `/metrics`.
//!
//! `/healthz` and `/readyz` describe the edge, so forwarding them would let a healthy edge look
//! dead (or a dead core look healthy) to the load balancer in front. `/healthz` says the process
//! serves; `/readyz` also says that some core, in any region, passed its last health probes
//! (503 otherwise, so the load balancer sends shoppers to an edge that can serve them). `/metrics` is served only on
//! the ops listener; on the public listeners it is a 404, so neither the edge's nor a core's
//! metrics can be scraped from outside.

use std::sync::Arc;

use http::{Method, StatusCode};
use pingora::proxy::Session;

use super::{Outcome, Phase};
use crate::context::RequestCtx;
use crate::problem::EdgeProblem;
use crate::reply::Reply;
use crate::upstreams::Upstreams;

pub struct LocalEndpoints {
    pub upstreams: Arc<Upstreams>,
}

impl Phase for LocalEndpoints {
    async fn run(&self, session: &mut Session, _ctx: &mut RequestCtx) -> Outcome {
        let request = session.req_header();
        let ready = || self.upstreams.any_healthy();
        match route(&request.method, request.uri.path(), ready) {
            Some(reply) => Outcome::Respond(reply),
            None => Outcome::Continue,
        }
    }
}

/// The local answer for `method path`, or `None` to forward the request.
fn route(method: &Method, path: &str, ready: impl Fn() -> bool) -> Option<Reply> {
    let body = match path {
        "/healthz" => r#"{"status":"ok"}"#,
        "/readyz" if !ready() => return Some(Reply::Problem(EdgeProblem::Unavailable)),
        "/readyz" => r#"{"status":"ready"}"#,
        _ if path == "/metrics" || path.starts_with("/metrics/") => {
            return Some(Reply::Problem(EdgeProblem::NotFound));
        }
        _ => return None,
    };
    Some(if method == Method::GET || method == Method::HEAD {
        Reply::Json {
            status: StatusCode::OK,
            body,
        }
    } else {
        Reply::Problem(EdgeProblem::MethodNotAllowed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(method: Method, path: &str) -> Option<StatusCode> {
        route(&method, path, || true).map(|reply| match reply {
            Reply::Json { status, .. } => status,
            Reply::Problem(problem) => problem.status(),
            Reply::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            Reply::Redirect(_) => StatusCode::PERMANENT_REDIRECT,
        })
    }

    #[test]
    fn health_endpoints_are_answered_locally() {
        assert_eq!(status(Method::GET, "/healthz"), Some(StatusCode::OK));
        assert_eq!(status(Method::HEAD, "/readyz"), Some(StatusCode::OK));
        assert_eq!(
            status(Method::POST, "/healthz"),
            Some(StatusCode::METHOD_NOT_ALLOWED)
        );
    }

    #[test]
    fn metrics_is_refused_on_every_method() {
        for path in ["/metrics", "/metrics/", "/metrics/core"] {
            assert_eq!(status(Method::GET, path), Some(StatusCode::NOT_FOUND));
            assert_eq!(status(Method::POST, path), Some(StatusCode::NOT_FOUND));
        }
    }

    #[test]
    fn everything_else_is_forwarded() {
        for path in ["/", "/healthz/deep", "/metricsx", "/api/v1/products"] {
            assert!(route(&Method::GET, path, || true).is_none(), "{path}");
        }
    }
}
