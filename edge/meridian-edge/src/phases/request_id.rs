//! `X-Request-Id`: the client's if it is sane, a fresh UUID v7 otherwise.
//!
//! The id ends up in log lines and upstream logs, so an arbitrary client value is not trusted:
//! only 1 to 128 characters of `[A-Za-z0-9._:-]` are kept (enough for UUIDs, trace ids and most
//! load balancers' ids; nothing that could break a log line or a header). UUID v7 ids sort by
//! time, which keeps them useful as an index key downstream (by the millisecond; within one,
//! the ids of one proxy thread are in order).

use pingora::proxy::Session;
use uuid::timestamp::context::ThreadLocalContext;
use uuid::{ContextV7, Timestamp, Uuid};

use super::{Outcome, Phase};
use crate::context::RequestCtx;

pub const X_REQUEST_ID: &str = "x-request-id";
const MAX_LEN: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// Accepts a client-sent id only if it is 1..=128 characters of `[A-Za-z0-9._:-]`.
    pub fn from_client(value: &[u8]) -> Option<Self> {
        let sane = (1..=MAX_LEN).contains(&value.len())
            && value
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if !sane {
            return None;
        }
        std::str::from_utf8(value)
            .ok()
            .map(|id| RequestId(id.to_owned()))
    }

    pub fn generate() -> Self {
        // A context per thread: `Uuid::now_v7`'s is one Mutex for the process, which every
        // request on every thread would take.
        thread_local! {
            static CONTEXT: ContextV7 = const { ContextV7::new() };
        }
        let id = Uuid::new_v7(Timestamp::now(ThreadLocalContext::new(&CONTEXT)));
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        RequestId(id.hyphenated().encode_lower(&mut text).to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Keeps or replaces the id. The core gets the same one, as an asserted header (see
/// [`super::forwarding`]).
pub struct AssignRequestId;

impl Phase for AssignRequestId {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Outcome {
        let request = session.req_header();
        let mut sent = request.headers.get_all(X_REQUEST_ID).iter();
        // Several ids are as untrustworthy as a malformed one.
        let id = match (sent.next(), sent.next()) {
            (Some(value), None) => RequestId::from_client(value.as_bytes()),
            _ => None,
        }
        .unwrap_or_else(RequestId::generate);
        ctx.set_request_id(id);
        Outcome::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_client_ids_are_kept() {
        for id in [
            "a",
            "0190f1c2-7d3e-7abc-8def-0123456789ab",
            "lb:1.2_3-4",
            &"x".repeat(128),
        ] {
            assert_eq!(RequestId::from_client(id.as_bytes()).unwrap().as_str(), id);
        }
    }

    #[test]
    fn insane_client_ids_are_refused() {
        let too_long = "x".repeat(129);
        for id in [
            "",
            "with space",
            "semi;colon",
            "é",
            "new\nline",
            too_long.as_str(),
        ] {
            assert_eq!(RequestId::from_client(id.as_bytes()), None, "{id:?}");
        }
    }

    #[test]
    fn generated_ids_are_uuid_v7_and_valid_client_ids() {
        let id = RequestId::generate();
        let uuid = uuid::Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        assert_eq!(RequestId::from_client(id.as_str().as_bytes()), Some(id));
    }

    /// Ids made at once on several threads are all different, and each thread's are in order.
    #[test]
    fn ids_from_many_threads_are_unique_and_each_threads_ascend() {
        let ids: Vec<Vec<String>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..2000)
                            .map(|_| RequestId::generate().as_str().to_owned())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for thread in &ids {
            assert!(thread.windows(2).all(|pair| pair[0] < pair[1]));
        }
        let all: std::collections::HashSet<&String> = ids.iter().flatten().collect();
        assert_eq!(all.len(), 8000);
    }
}
