//! The request phases: what the edge does to a request, in order, before it picks an upstream.
//!
//! A [`Phase`] looks at the request and records what it found in the request's context, then
//! either lets it continue or answers it itself. No phase rewrites the request's headers: what
//! the edge tells the core goes out as the headers of [`forwarding::Asserted`], written where the
//! request leaves for a core, so the WAF reads the request as the client sent it. The order is
//! the contract:
//!
//! 1. [`AssignRequestId`]: first, so every later answer, log line and upstream call carries the id.
//!    Then [`CheckProtocol`]: a method we do not serve, or a request whose length two parsers
//!    could read differently, is refused (the latter with its connection closed) before
//!    anything else looks at it.
//! 2. [`ResolveClient`]: the client's address (the peer, or what trusted proxies vouch for).
//!    Client-sent `X-Forwarded-*`, `X-Real-IP`, `X-Request-Id` and `X-Meridian-*` headers are
//!    dropped when the request leaves, replaced by the edge's own.
//! 3. [`LocalEndpoints`]: `/healthz` and `/readyz` (503 while no core is healthy) answered
//!    here, `/metrics` refused.
//!    With `MERIDIAN_EDGE_HTTPS_REDIRECT=on`, [`RedirectToHttps`] then sends plain-HTTP requests
//!    to HTTPS (308).
//! 4. [`Authenticate`]: verifies the access token and records the caller, asserted to the core
//!    in the `X-Meridian-*` identity headers (health checks answered in step 3 need no token),
//!    then applies the route policy.
//!
//! 5. [`RateLimit`]: per client address, per user, sign-in routes and checkout by their own
//!    quotas (after step 4, so a signed-in caller counts as themself).
//! 6. [`Inspect`]: the WAF reads the body (bounded) and scores the request; last, so a flood
//!    the rate limits refuse costs no body read, and every blocked request has been counted.
//!
//! Caching is not a phase: it plugs into Pingora's cache hooks in `proxy`, and only sees
//! requests every phase let through. The front door (`front`) answers fresh hits before a
//! Pingora session exists; it checks what these phases would for such a request (no token, a
//! guest route, the per-client limit, the WAF) and hands everything else to them.

mod authenticate;
mod forwarding;
mod https_redirect;
mod local_endpoints;
mod protocol;
mod rate_limit;
mod request_id;
mod waf;

use std::sync::Arc;

use pingora::proxy::Session;

use crate::auth::Verifier;
use crate::context::RequestCtx;
use crate::global_limits::GlobalLimiter;
use crate::ratelimit::Limits;
use crate::reply::Reply;
use crate::upstreams::Upstreams;
use crate::waf::Waf;

use authenticate::Authenticate;
use forwarding::ResolveClient;
pub(crate) use forwarding::{Asserted, assert_on, client_address, is_asserted};
use https_redirect::RedirectToHttps;
use local_endpoints::LocalEndpoints;
use protocol::CheckProtocol;
use rate_limit::RateLimit;
use request_id::AssignRequestId;
pub use request_id::{RequestId, X_REQUEST_ID};
use waf::Inspect;
pub(crate) use waf::read_body;

/// Whether the request came over TLS.
pub(crate) fn is_tls(session: &Session) -> bool {
    session
        .digest()
        .is_some_and(|digest| digest.ssl_digest.is_some())
}

/// What a phase decided.
pub enum Outcome {
    /// Hand the request to the next phase, and after the last one, to the upstream.
    Continue,
    /// Answer now; later phases and the upstream never see the request.
    Respond(Reply),
}

/// One step of the list; each implementation writes `async fn run`.
pub trait Phase: Send + Sync {
    fn run(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> impl Future<Output = Outcome> + Send;
}

/// Every phase, by kind: the list is a `Vec` of these rather than of boxed trait objects, so
/// that running a phase is a plain call, not a boxed future allocated and freed per phase and
/// request.
enum Step {
    AssignRequestId(AssignRequestId),
    CheckProtocol(CheckProtocol),
    ResolveClient(ResolveClient),
    LocalEndpoints(LocalEndpoints),
    RedirectToHttps(RedirectToHttps),
    Authenticate(Authenticate),
    RateLimit(RateLimit),
    Inspect(Inspect),
}

impl Step {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Outcome {
        match self {
            Step::AssignRequestId(phase) => phase.run(session, ctx).await,
            Step::CheckProtocol(phase) => phase.run(session, ctx).await,
            Step::ResolveClient(phase) => phase.run(session, ctx).await,
            Step::LocalEndpoints(phase) => phase.run(session, ctx).await,
            Step::RedirectToHttps(phase) => phase.run(session, ctx).await,
            Step::Authenticate(phase) => phase.run(session, ctx).await,
            Step::RateLimit(phase) => phase.run(session, ctx).await,
            Step::Inspect(phase) => phase.run(session, ctx).await,
        }
    }
}

/// The phases in the order they run.
pub struct Phases(Vec<Step>);

impl Phases {
    /// The phases in their order; `limits` is `None` when rate limiting is off, `waf` when the
    /// WAF is.
    pub fn standard(
        trusted_hops: usize,
        https_redirect: Option<u16>,
        upstreams: Arc<Upstreams>,
        verifier: Arc<Verifier>,
        limits: Option<Arc<Limits>>,
        global: Option<Arc<GlobalLimiter>>,
        waf: Option<Arc<Waf>>,
    ) -> Self {
        let mut phases = vec![
            Step::AssignRequestId(AssignRequestId),
            Step::CheckProtocol(CheckProtocol),
            Step::ResolveClient(ResolveClient { trusted_hops }),
            Step::LocalEndpoints(LocalEndpoints { upstreams }),
        ];
        if let Some(port) = https_redirect {
            phases.push(Step::RedirectToHttps(RedirectToHttps { port }));
        }
        phases.push(Step::Authenticate(Authenticate { verifier }));
        if let Some(limits) = limits {
            phases.push(Step::RateLimit(RateLimit { limits, global }));
        }
        if let Some(waf) = waf {
            phases.push(Step::Inspect(Inspect { waf }));
        }
        Phases(phases)
    }

    /// Runs the phases until one answers the request.
    pub async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Outcome {
        for phase in &self.0 {
            if let Outcome::Respond(reply) = phase.run(session, ctx).await {
                return Outcome::Respond(reply);
            }
        }
        Outcome::Continue
    }
}
