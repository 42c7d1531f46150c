//! Access tokens, verified here before anything reaches a core, and the route policy.
//!
//! A request without `Authorization` is a guest's. One with it must carry `Bearer <token>`
//! and the token must verify (see [`crate::auth::token`]), whatever the route: a bad token is a
//! 401 even where a guest would pass, so a client learns its session ended. The verified
//! identity is kept in the request's context and goes upstream as `X-Meridian-User-Id` and
//! `X-Meridian-Role` (see [`super::forwarding`]: client-sent `X-Meridian-*` headers never do).
//! Then the route's [`policy`](crate::auth::policy) decides: 401 for a guest where a token is
//! needed, 403 for a role the route does not admit.

use std::sync::Arc;

use http::header;
use pingora::proxy::Session;

use super::{Outcome, Phase, forwarding};
use crate::auth::{self, Verdict, Verifier, policy};
use crate::context::RequestCtx;
use crate::problem::EdgeProblem;
use crate::reply::Reply;

pub struct Authenticate {
    pub verifier: Arc<Verifier>,
}

impl Phase for Authenticate {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Outcome {
        let request = session.req_header();
        let required = policy::required(request.method.as_str(), request.uri.path());
        let role = match request.headers.get(header::AUTHORIZATION) {
            None => None,
            Some(value) => {
                let Some(token) = value.to_str().ok().and_then(bearer) else {
                    return refuse(ctx, "not a bearer token");
                };
                match self.verifier.verify(token, auth::unix_now()).await {
                    Verdict::Valid(identity) => {
                        let role = identity.role;
                        if !forwarding::header_safe(&identity.user_id) {
                            return refuse(ctx, "identity cannot be forwarded");
                        }
                        ctx.user_id = Some(identity.user_id);
                        ctx.role = Some(role);
                        Some(role)
                    }
                    Verdict::Refused(refusal) => return refuse(ctx, refusal.as_str()),
                    Verdict::KeysUnavailable => {
                        tracing::warn!(
                            request_id = %ctx.request_id().as_str(),
                            "no signing keys: the token issuer cannot be reached"
                        );
                        return Outcome::Respond(Reply::Problem(EdgeProblem::Unavailable));
                    }
                }
            }
        };
        if required.admits(role) {
            Outcome::Continue
        } else if role.is_none() {
            Outcome::Respond(Reply::Problem(EdgeProblem::Unauthorized))
        } else {
            Outcome::Respond(Reply::Problem(EdgeProblem::Forbidden))
        }
    }
}

fn refuse(ctx: &mut RequestCtx, reason: &str) -> Outcome {
    tracing::info!(request_id = %ctx.request_id().as_str(), reason, "access token refused");
    Outcome::Respond(Reply::Problem(EdgeProblem::Unauthorized))
}

/// The token of an `Authorization: Bearer <token>` value (the scheme in any case).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn only_bearer_values_carry_a_token() {
        assert_eq!(bearer("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
