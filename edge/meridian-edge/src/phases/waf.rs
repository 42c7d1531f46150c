//! The web application firewall, last of the phases: only requests the rate limits let through
//! cost a body read and an inspection.
//!
//! The body is read here, in full, before anything is forwarded (Pingora's retry buffer keeps it
//! and replays it to the core), so a blocked request never reaches a core at all. Bodies over
//! 64 KiB, the cores' own limit, are refused with a 413 instead of being inspected in part.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use http::header;
use pingora::proxy::Session;

use super::{Outcome, Phase};
use crate::context::RequestCtx;
use crate::problem::EdgeProblem;
use crate::reply::Reply;
use crate::waf::{Mode, Request, Waf};

/// The largest body the edge inspects and forwards: the cores' limit, and the size of Pingora's
/// retry buffer, which replays the body upstream.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a client may take to send its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Inspect {
    pub waf: Arc<Waf>,
}

impl Phase for Inspect {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Outcome {
        let body = match read_body(session).await {
            Ok(body) => body,
            Err(problem) => {
                session.set_keepalive(None);
                return Outcome::Respond(Reply::Problem(problem));
            }
        };
        let request = session.req_header();
        let verdict = self.waf.inspect(&Request {
            method: &request.method,
            path: request.uri.path(),
            query: request.uri.query(),
            headers: &request.headers,
            body: &body,
        });
        if !verdict.anomalous {
            ctx.body = Some(body.freeze());
            return Outcome::Continue;
        }
        let blocking = self.waf.mode() == Mode::Block;
        let request_id = ctx.request_id().clone();
        let targets: Vec<&str> = verdict.hits.iter().map(|h| h.target.as_str()).collect();
        tracing::warn!(
            request_id = %request_id.as_str(),
            client = ?ctx.client_ip,
            method = %request.method,
            path = request.uri.path(),
            score = verdict.score,
            rules = %verdict.rule_ids(),
            targets = %targets.join(" "),
            action = if blocking { "blocked" } else { "detected" },
            "waf"
        );
        if blocking {
            Outcome::Respond(Reply::Problem(EdgeProblem::Blocked))
        } else {
            ctx.body = Some(body.freeze());
            Outcome::Continue
        }
    }
}

/// Reads the whole request body (none for most GETs), keeping it for the upstream.
pub(crate) async fn read_body(session: &mut Session) -> Result<BytesMut, EdgeProblem> {
    let declared = session
        .req_header()
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(EdgeProblem::PayloadTooLarge);
    }
    let mut body = BytesMut::new();
    if session.is_body_empty() {
        return Ok(body);
    }
    session.enable_retry_buffering();
    let read = async {
        while let Some(chunk) = session
            .read_request_body()
            .await
            .map_err(|_| EdgeProblem::BadRequest)?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(EdgeProblem::PayloadTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Ok(Ok(())) => Ok(body),
        Ok(Err(problem)) => Err(problem),
        Err(_) => Err(EdgeProblem::BadRequest),
    }
}
