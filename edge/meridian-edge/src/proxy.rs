//! The edge's `ProxyHttp` implementation: the one place that speaks Pingora's hooks.
//!
//! - `request_filter` runs the [`Phases`]; a phase's answer ends the request there. A request
//!   every phase let through that the cache holds fresh is answered there too
//!   ([`cache::fresh_hit`]); the other cached routes go through Pingora's cache hooks. Every
//!   other request (upgrades aside) is forwarded there by the edge's own [`Forwarder`].
//! - For the cached routes and upgrades, `upstream_peer` takes the next address of the
//!   request's [`UpstreamPlan`](crate::upstreams::UpstreamPlan), and `fail_to_connect` asks
//!   Pingora to retry while the plan has addresses left (the request has not reached any core
//!   yet, so this is safe for every method).
//! - `fail_to_proxy` turns any failure into problem+json; `logging` writes the access log and
//!   the metrics.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, Result};
use pingora_cache::key::{CacheKey, HashBinary};
use pingora_cache::{CacheMeta, CachePhase, RespCacheable};

use crate::cache;
use crate::context::RequestCtx;
use crate::forward::{CONNECT_TIMEOUT, Forwarder, READ_WRITE_TIMEOUT};
use crate::logging::{self, AccessRecord};
use crate::metrics::Metrics;
use crate::phases::{self, Outcome, Phases, X_REQUEST_ID};
use crate::problem::{EdgeProblem, NO_UPSTREAM};
use crate::reply;
use crate::upstreams::Upstreams;

pub struct EdgeProxy {
    phases: Phases,
    /// Whether public GETs go through the response cache.
    cache: bool,
    upstreams: Arc<Upstreams>,
    /// The edge's own connections to the cores, for every request the cache does not take.
    forwarder: Forwarder,
    metrics: Metrics,
    /// Named in `X-Region` on the responses the edge writes itself.
    home_region: String,
}

impl EdgeProxy {
    pub fn new(
        phases: Phases,
        upstreams: Arc<Upstreams>,
        metrics: Metrics,
        cache: bool,
        forwarder: Forwarder,
    ) -> Self {
        EdgeProxy {
            phases,
            cache,
            home_region: upstreams.home().as_str().to_owned(),
            upstreams,
            forwarder,
            metrics,
        }
    }
}

impl EdgeProxy {
    /// Answers from the cache when it holds a fresh copy that needs nothing of Pingora's cache
    /// state machine (the common hit); returns whether it answered.
    async fn answer_fresh_hit(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let Some(hit) = cache::fresh_hit(session.req_header(), phases::is_tls(session)) else {
            return Ok(false);
        };
        let request_id = ctx.request_id().clone();
        let header = cache::hit_header(&hit, request_id.as_str(), ctx.rate_limit.as_ref())?;
        session
            .write_response_header(Box::new(header), false)
            .await?;
        session
            .write_response_body(Some(hit.body().clone()), true)
            .await?;
        Ok(true)
    }
}

/// Whether the request asks to switch protocols (a WebSocket): Pingora's proxy relays those.
fn is_upgrade(request: &RequestHeader) -> bool {
    request.headers.contains_key(http::header::UPGRADE)
}

#[async_trait]
impl ProxyHttp for EdgeProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let reply = match self.phases.run(session, ctx).await {
            Outcome::Respond(reply) => reply,
            Outcome::Continue => {
                if self.cache && cache::request_cacheable(session.req_header()) {
                    return self.answer_fresh_hit(session, ctx).await;
                }
                if is_upgrade(session.req_header()) {
                    return Ok(false);
                }
                let body = match ctx.body.take() {
                    Some(body) => body,
                    // Without the WAF, no phase has read the body.
                    None => match phases::read_body(session).await {
                        Ok(body) => body.freeze(),
                        Err(problem) => {
                            session.set_keepalive(None);
                            let reply = reply::Reply::Problem(problem);
                            reply::send(session, reply, ctx.request_id(), &self.home_region)
                                .await?;
                            return Ok(true);
                        }
                    },
                };
                self.forwarder
                    .forward(session, ctx, &self.upstreams, body)
                    .await?;
                return Ok(true);
            }
        };
        reply::send(session, reply, ctx.request_id(), &self.home_region).await?;
        Ok(true)
    }

    fn request_cache_filter(&self, session: &mut Session, _ctx: &mut RequestCtx) -> Result<()> {
        if !self.cache || !cache::request_cacheable(session.req_header()) {
            return Ok(());
        }
        if let Some(store) = cache::store() {
            session
                .cache
                .enable(store, None, None, Some(cache::lock()), None);
        }
        Ok(())
    }

    fn cache_key_callback(&self, session: &Session, _ctx: &mut RequestCtx) -> Result<CacheKey> {
        Ok(cache::key(session.req_header(), phases::is_tls(session)))
    }

    fn cache_vary_filter(
        &self,
        meta: &CacheMeta,
        _ctx: &mut RequestCtx,
        request: &RequestHeader,
    ) -> Option<HashBinary> {
        cache::variance(request, meta)
    }

    /// Stale answers as the core's `Cache-Control` allows them (Pingora checks the windows):
    /// within `stale-while-revalidate` while one request refreshes the entry, within
    /// `stale-if-error` when the core cannot be reached or answers 5xx.
    fn should_serve_stale(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
        error: Option<&Error>,
    ) -> bool {
        error.is_none_or(|error| error.esource() == &pingora::ErrorSource::Upstream)
    }

    fn response_cache_filter(
        &self,
        _session: &Session,
        response: &ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<RespCacheable> {
        Ok(cache::response_cacheable(response))
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let plan = ctx
            .upstream_plan
            .get_or_insert_with(|| self.upstreams.plan());
        for index in plan {
            let addr = self.upstreams.addr(index);
            match addr.resolve().await {
                Ok(socket) => {
                    ctx.upstream = Some(index);
                    let mut peer = HttpPeer::new(socket, false, String::new());
                    peer.options.connection_timeout = Some(CONNECT_TIMEOUT);
                    peer.options.read_timeout = Some(READ_WRITE_TIMEOUT);
                    peer.options.write_timeout = Some(READ_WRITE_TIMEOUT);
                    return Ok(Box::new(peer));
                }
                Err(error) => tracing::warn!(upstream = %addr, %error, "cannot resolve upstream"),
            }
        }
        Err(Error::new_up(NO_UPSTREAM))
    }

    /// The cache's path and upgrades: what the edge asserts replaces what the client sent, as
    /// on the forwarder's path.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let fields = ctx
            .asserted(upstream_request, phases::is_tls(session))
            .fields()?;
        phases::assert_on(upstream_request, fields)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut error: Box<Error>,
    ) -> Box<Error> {
        let untried = ctx.upstream_plan.as_ref().is_some_and(|p| p.has_more());
        error.set_retry(untried);
        error
    }

    /// A failure after the request went out: retried on the next address only for methods
    /// that are safe to repeat and carry no body (GET, HEAD, OPTIONS), and only before any of
    /// the response reached the client.
    fn error_while_proxy(
        &self,
        _peer: &HttpPeer,
        session: &mut Session,
        mut error: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let safe = matches!(
            session.req_header().method,
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
        );
        let untried = ctx.upstream_plan.as_ref().is_some_and(|p| p.has_more());
        if safe && untried && session.response_written().is_none() {
            error.set_retry(true);
        } else if client_reused {
            // A pooled connection the core had closed: Pingora's own rule.
            error.retry.decide_reuse(client_reused);
        }
        error
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        response.insert_header(X_REQUEST_ID, ctx.request_id().as_str())?;
        if session.cache.enabled() {
            let state = match session.cache.phase() {
                CachePhase::Hit => "HIT",
                CachePhase::Stale | CachePhase::StaleUpdating => "STALE",
                CachePhase::Revalidated => "REVALIDATED",
                _ => "MISS",
            };
            response.insert_header(cache::X_CACHE, state)?;
        }
        if let Some(decision) = &ctx.rate_limit {
            reply::rate_limit_headers(response, decision)?;
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        error: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let Some(problem) = EdgeProblem::for_proxy_error(error) else {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        };
        if let Err(write_error) =
            reply::send_problem_after_failure(session, problem, ctx.request_id(), &self.home_region)
                .await
        {
            tracing::debug!(%write_error, "cannot send the error response");
        }
        FailToProxy {
            error_code: problem.status().as_u16(),
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _error: Option<&Error>, ctx: &mut RequestCtx) {
        let duration = ctx.started.elapsed();
        let status = session
            .response_written()
            .map_or(0, |response| response.status.as_u16());
        self.metrics.observe(status, duration);
        let request_id = ctx.request_id().clone();
        let request = session.req_header();
        logging::access(&AccessRecord {
            method: request.method.as_str(),
            path: request.uri.path(),
            status,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            request_id: request_id.as_str(),
            upstream: ctx
                .upstream
                .map(|index| self.upstreams.addr(index).as_str()),
        });
    }
}
