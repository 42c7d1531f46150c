//! The per-request state shared by the phases and Pingora's hooks.

use std::time::Instant;

use bytes::Bytes;
use pingora::http::RequestHeader;

use std::net::IpAddr;

use crate::auth::token::Role;
use crate::phases::{Asserted, RequestId};
use crate::ratelimit::Decision;
use crate::upstreams::UpstreamPlan;

pub struct RequestCtx {
    /// When the edge started handling the request, for `duration_ms` and the latency histogram.
    pub started: Instant,
    /// Set by the request id phase; see [`RequestCtx::request_id`] for requests that fail earlier.
    request_id: Option<RequestId>,
    /// The addresses still to try, created on the first connection attempt.
    pub upstream_plan: Option<UpstreamPlan>,
    /// The last upstream tried (its index in the plan's `Upstreams`), for the access log.
    pub upstream: Option<usize>,
    /// The client's address: the TCP peer, or the one trusted proxies name (`ResolveClient`).
    pub client_ip: Option<IpAddr>,
    /// The verified caller (authenticate phase).
    pub user_id: Option<String>,
    /// The verified caller's role (authenticate phase).
    pub role: Option<Role>,
    /// The tightest rate-limit decision, reported in `RateLimit-*` headers.
    pub rate_limit: Option<Decision>,
    /// The request body, once a phase has read it whole (the WAF does).
    pub body: Option<Bytes>,
}

impl RequestCtx {
    pub fn new() -> Self {
        RequestCtx {
            started: Instant::now(),
            request_id: None,
            upstream_plan: None,
            upstream: None,
            client_ip: None,
            user_id: None,
            role: None,
            rate_limit: None,
            body: None,
        }
    }

    pub fn set_request_id(&mut self, id: RequestId) {
        self.request_id = Some(id);
    }

    /// The request's id. A request that failed before the request id phase ran still gets one,
    /// so every response and log line carries an id.
    pub fn request_id(&mut self) -> &RequestId {
        self.request_id.get_or_insert_with(RequestId::generate)
    }

    /// What the edge asserts to the core about `request` (over TLS or not).
    pub fn asserted<'a>(&'a mut self, request: &'a RequestHeader, tls: bool) -> Asserted<'a> {
        self.request_id();
        let this: &'a RequestCtx = self;
        let id = this.request_id.as_ref().map_or("", RequestId::as_str);
        let user = this.user_id.as_deref().zip(this.role);
        Asserted::new(request, tls, this.client_ip, id, user)
    }
}
