//! Rate limits, after authentication so a signed-in caller is also counted as themself.
//!
//! Every quota that applies is charged (see [`crate::ratelimit`]), then, when the local limits
//! let the request through and a Redis is configured, the shared budget of every edge node
//! ([`crate::global_limits`]); the tightest answer decides.
//! A refusal is a 429 problem with `Retry-After`; every answer, refused or forwarded, carries
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (the IETF draft's fields).

use std::sync::Arc;

use pingora::proxy::Session;

use super::{Outcome, Phase};
use crate::context::RequestCtx;
use crate::global_limits::GlobalLimiter;
use crate::ratelimit::{ClientKey, Limits, RouteClass};
use crate::reply::Reply;

pub struct RateLimit {
    pub limits: Arc<Limits>,
    /// Shared with the other edge nodes, when configured.
    pub global: Option<Arc<GlobalLimiter>>,
}

impl Phase for RateLimit {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Outcome {
        // Without an IP (a Unix socket peer) there is nobody to count.
        let Some(ip) = ctx.client_ip else {
            return Outcome::Continue;
        };
        let request = session.req_header();
        let class = RouteClass::of(request.method.as_str(), request.uri.path());
        let client = ClientKey::of(ip);
        let user = ctx.user_id.as_deref();
        let mut decision = self.limits.check(class, client, user);
        // The call to Redis is boxed: its future is kilobytes, which would otherwise be part of
        // every request's future (and copied with it) whether a Redis is configured or not.
        if decision.allowed
            && let Some(global) = &self.global
            && let Some(shared) =
                Box::pin(global.check(&self.limits.buckets(class, client, user))).await
        {
            decision = decision.tighter(shared);
        }
        ctx.rate_limit = Some(decision);
        if decision.allowed {
            Outcome::Continue
        } else {
            let request_id = ctx.request_id().clone();
            tracing::info!(
                request_id = %request_id.as_str(),
                client = %ip,
                user = ctx.user_id.as_deref().unwrap_or("-"),
                ?class,
                "rate limited"
            );
            Outcome::Respond(Reply::Limited(decision))
        }
    }
}
