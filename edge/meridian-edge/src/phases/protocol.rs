//! Protocol anomalies, refused before anything is forwarded: methods the shop does not serve
//! (`TRACE`, `CONNECT`, WebDAV's, made-up ones: 405), and message framing the edge and a core
//! could read differently (400, connection closed).
//!
//! Request smuggling needs two parsers to disagree on where a request ends. The edge removes
//! every ambiguity RFC 9112 leaves room for instead of resolving it: a request may carry
//! `Content-Length` (once) or `Transfer-Encoding: chunked` (once, nothing else), never both;
//! HTTP/1.0 has no chunked encoding at all. Anything else is a 400 and the connection is closed,
//! so the bytes after the headers are never read as a next request.

use http::{HeaderMap, Method, Version, header};
use pingora::proxy::Session;

use super::{Outcome, Phase};
use crate::context::RequestCtx;
use crate::problem::EdgeProblem;
use crate::reply::Reply;

pub struct CheckProtocol;

/// The methods the public API uses.
const SERVED_METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

impl Phase for CheckProtocol {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Outcome {
        let request = session.req_header();
        if !SERVED_METHODS.contains(&request.method) {
            return Outcome::Respond(Reply::Problem(EdgeProblem::MethodNotAllowed));
        }
        // HTTP/2 frames its own messages; these headers mean nothing there.
        if request.version == Version::HTTP_2 {
            return Outcome::Continue;
        }
        match ambiguity(request.version, &request.headers) {
            None => Outcome::Continue,
            Some(reason) => {
                let request_id = ctx.request_id().clone();
                tracing::warn!(request_id = %request_id.as_str(), reason, "ambiguous framing refused");
                session.set_keepalive(None);
                Outcome::Respond(Reply::Problem(EdgeProblem::BadRequest))
            }
        }
    }
}

/// Why the framing of a request with `version` and `headers` is ambiguous, if it is.
fn ambiguity(version: Version, headers: &HeaderMap) -> Option<&'static str> {
    let lengths = headers.get_all(header::CONTENT_LENGTH).iter().count();
    let encodings: Vec<_> = headers.get_all(header::TRANSFER_ENCODING).iter().collect();
    if lengths > 1 {
        return Some("more than one Content-Length");
    }
    if encodings.is_empty() {
        return None;
    }
    if version < Version::HTTP_11 {
        return Some("Transfer-Encoding in HTTP/1.0");
    }
    if lengths > 0 {
        return Some("both Content-Length and Transfer-Encoding");
    }
    let only_chunked = encodings.len() == 1
        && encodings[0]
            .to_str()
            .is_ok_and(|value| value.trim().eq_ignore_ascii_case("chunked"));
    if !only_chunked {
        return Some("a Transfer-Encoding other than chunked");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn one_framing_passes_and_every_mix_is_refused() {
        let v11 = Version::HTTP_11;
        assert_eq!(ambiguity(v11, &headers(&[])), None);
        assert_eq!(ambiguity(v11, &headers(&[("content-length", "5")])), None);
        assert_eq!(
            ambiguity(v11, &headers(&[("transfer-encoding", "chunked")])),
            None
        );
        assert_eq!(
            ambiguity(v11, &headers(&[("transfer-encoding", "Chunked ")])),
            None
        );
        let refused = [
            vec![("content-length", "5"), ("content-length", "5")],
            vec![("content-length", "5"), ("transfer-encoding", "chunked")],
            vec![
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
            vec![("transfer-encoding", "gzip, chunked")],
            vec![("transfer-encoding", "xchunked")],
            vec![("transfer-encoding", "chunked, identity")],
        ];
        for pairs in refused {
            assert!(ambiguity(v11, &headers(&pairs)).is_some(), "{pairs:?}");
        }
        let chunked = headers(&[("transfer-encoding", "chunked")]);
        assert!(ambiguity(Version::HTTP_10, &chunked).is_some());
    }
}
