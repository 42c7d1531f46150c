//! The front door: the edge's connection handler, in front of Pingora's proxy.
//!
//! With the response cache on, it reads each HTTP/1.1 request head itself and answers the
//! requests that need nothing but the cache: a plain anonymous `GET` of a cached route whose
//! stored answer is fresh, that the route policy admits for guests, the rate limits let through
//! and the WAF finds clean. Pingora's request path (a session, the phases, the cache state
//! machine) costs more than the whole answer on this path; cache hits are most of what an edge
//! serves.
//!
//! Everything else goes to Pingora, one request at a time: the bytes read so far become the
//! session's pipelined prefix, and after a reusable response the connection comes back here for
//! its next request. So anything unusual about a request (a body, validators, a token, a
//! cookie, an upgrade, framing headers, a malformed head, an anomaly, a refusal by the rate
//! limits, a miss) is judged by the path that judges every request, with its answers and logs.
//! HTTP/2 connections go to Pingora whole.
//!
//! **Invariant:** the front door answers only what the phases and the cache would have
//! answered the same way (a fresh `X-Cache: HIT`); it never forwards anything and never
//! refuses anything itself.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Buf, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{ALPN, Stream};
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::policy;
use crate::cache;
use crate::logging::{self, AccessRecord};
use crate::metrics::Metrics;
use crate::phases::{RequestId, X_REQUEST_ID, client_address};
use crate::proxy::EdgeProxy;
use crate::ratelimit::{ClientKey, Limits, RouteClass};
use crate::waf::{self, Waf};

/// A head longer than this goes to Pingora (which applies its own limits).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// A head with more headers goes to Pingora.
const MAX_HEADERS: usize = 64;
/// How long an idle keep-alive connection is kept (Pingora's default too).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);

/// Request headers that make a request one for Pingora's path.
const NOT_FOR_THE_FRONT_DOOR: [HeaderName; 11] = [
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::AUTHORIZATION,
    header::COOKIE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::RANGE,
    header::IF_RANGE,
    header::UPGRADE,
    header::EXPECT,
    header::TE,
];

pub struct FrontDoor {
    proxy: Arc<HttpProxy<EdgeProxy>>,
    /// `None` when the cache is off: every connection goes to Pingora.
    hits: Option<CacheHits>,
}

/// What the front door needs to answer a hit as the phases would.
pub struct CacheHits {
    pub waf: Option<Arc<Waf>>,
    pub limits: Option<Arc<Limits>>,
    pub trusted_hops: usize,
    /// With the HTTPS redirect on, plain-HTTP requests are Pingora's (they are redirected).
    pub plain_http_redirected: bool,
    pub metrics: Metrics,
    pub clean: CleanHeads,
}

impl FrontDoor {
    pub fn new(proxy: HttpProxy<EdgeProxy>, hits: Option<CacheHits>) -> Self {
        FrontDoor {
            proxy: Arc::new(proxy),
            hits,
        }
    }

    /// Hands one request (its bytes read so far in `prefix`) to Pingora; the connection comes
    /// back if it can be reused.
    async fn to_pingora(
        &self,
        stream: Stream,
        prefix: BytesMut,
        settings: Option<HttpPersistentSettings>,
        shutdown: &ShutdownWatch,
    ) -> Option<(Stream, Option<HttpPersistentSettings>)> {
        let mut session = ServerSession::new_http1(stream);
        let idle = (!*shutdown.borrow()).then_some(KEEPALIVE_IDLE.as_secs());
        session.set_keepalive(idle);
        if let Some(settings) = settings {
            settings.apply_to_session(&mut session);
        }
        if !prefix.is_empty() {
            session.set_pipelined_prefix(prefix);
        }
        let reused = self.proxy.process_new_http(session, shutdown).await?;
        Some(reused.consume())
    }
}

#[async_trait]
impl ServerApp for FrontDoor {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let Some(hits) = &self.hits else {
            return self.proxy.process_new(stream, shutdown).await;
        };
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return self.proxy.process_new(stream, shutdown).await;
        }
        let tls = stream.get_ssl_digest().is_some();
        let peer = stream
            .get_socket_digest()
            .and_then(|digest| digest.peer_addr().and_then(|addr| addr.as_inet()).copied())
            .map(|addr| addr.ip().to_canonical());
        let mut buffer = BytesMut::with_capacity(4096);
        let mut settings = None;
        loop {
            let head = read_head(&mut stream, &mut buffer, shutdown).await?;
            let started = Instant::now();
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut slots);
            let parsed = head.and_then(|length| parse(&mut request, &buffer[..length]));
            let answer =
                parsed.and_then(|length| hits.answer(&request, &buffer[..length], tls, peer));
            let (Some(answer), Some(length)) = (answer, parsed) else {
                let own = pingoras_share(parsed, &request, buffer.len());
                let prefix = buffer.split_to(own);
                (stream, settings) = self.to_pingora(stream, prefix, settings, shutdown).await?;
                continue;
            };
            if stream.write_all(&answer.bytes).await.is_err() || stream.flush().await.is_err() {
                return None;
            }
            buffer.advance(length);
            let elapsed = started.elapsed();
            hits.metrics.observe(200, elapsed);
            logging::access(&AccessRecord {
                method: "GET",
                path: &answer.path,
                status: 200,
                duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                request_id: answer.request_id.as_str(),
                upstream: None,
            });
            if *shutdown.borrow() {
                return None;
            }
        }
    }

    async fn cleanup(&self) {
        self.proxy.cleanup().await;
    }
}

/// Reads until `buffer` holds a whole request head: `Some(Some(length))`, or `Some(None)` when
/// the head is too long for the front door. `None`: the connection closed, failed, idled out
/// or the server is shutting down, with no request to answer.
async fn read_head(
    stream: &mut Stream,
    buffer: &mut BytesMut,
    shutdown: &ShutdownWatch,
) -> Option<Option<usize>> {
    let mut shutdown = shutdown.clone();
    loop {
        if let Some(length) = head_length(buffer) {
            return Some(Some(length));
        }
        if buffer.len() >= MAX_HEAD_BYTES {
            return Some(None);
        }
        let idle = buffer.is_empty();
        if idle && *shutdown.borrow() {
            return None;
        }
        let read = tokio::time::timeout(KEEPALIVE_IDLE, stream.read_buf(buffer));
        let read = tokio::select! {
            read = read => read,
            // Idle connections close at shutdown; a request under way is still read.
            _ = shutdown.changed(), if idle => return None,
        };
        match read {
            Ok(Ok(0) | Err(_)) | Err(_) => return None,
            Ok(Ok(_)) => {}
        }
    }
}

/// The length of the request head at the start of `buffer`, once it is all there.
fn head_length(buffer: &[u8]) -> Option<usize> {
    let end = buffer.windows(4).position(|window| window == b"\r\n\r\n")?;
    Some(end + 4)
}

/// Parses the head at the start of `head` into `request`; its length, if it is well formed.
fn parse<'b>(request: &mut httparse::Request<'_, 'b>, head: &'b [u8]) -> Option<usize> {
    match request.parse(head) {
        Ok(httparse::Status::Complete(length)) => Some(length),
        _ => None,
    }
}

/// How many of the `available` bytes read go to Pingora with a request it takes: a
/// well-formed head without framing headers has no body, and what follows it is the next
/// request (pipelined), read here again once Pingora is done; anything else takes them all.
fn pingoras_share(
    parsed: Option<usize>,
    request: &httparse::Request<'_, '_>,
    available: usize,
) -> usize {
    let framed = request.headers.iter().any(|header| {
        header.name.eq_ignore_ascii_case("content-length")
            || header.name.eq_ignore_ascii_case("transfer-encoding")
    });
    parsed.filter(|_| !framed).unwrap_or(available)
}

/// A hit, ready to write.
struct Answer {
    bytes: Vec<u8>,
    path: String,
    request_id: RequestId,
}

impl CacheHits {
    /// The answer to `request`, whose head is `head`, if the front door may give it.
    fn answer(
        &self,
        request: &httparse::Request<'_, '_>,
        head: &[u8],
        tls: bool,
        peer: Option<IpAddr>,
    ) -> Option<Answer> {
        if self.plain_http_redirected && !tls {
            return None;
        }
        if request.method != Some("GET") || request.version != Some(1) {
            return None;
        }
        let target = request.path?;
        // Pingora parses the target as a URI: whatever it would refuse is its to refuse.
        let target: http::uri::PathAndQuery = target.parse().ok()?;
        let (path, query) = (target.path(), target.query());
        if !path.starts_with('/')
            || !cache::cacheable_route(path)
            || !policy::required("GET", path).admits(None)
            || request.headers.iter().any(not_for_the_front_door)
        {
            return None;
        }
        let host = single(request.headers, "host")?;
        let host = std::str::from_utf8(host?).ok()?;

        let hit = cache::fresh_hit_of(host, tls, path, query)?;
        let judge = self.waf.as_ref().filter(|_| !self.clean.contains(head));
        let headers = if judge.is_some() || self.trusted_hops > 0 {
            header_map(request.headers)?
        } else {
            HeaderMap::new()
        };
        // The WAF reads the headers as the client sent them, as it does on Pingora's path
        // (no phase rewrites them). So whatever that path would block, this one does not
        // answer.
        if let Some(waf) = judge {
            let verdict = waf.inspect(&waf::Request {
                method: &Method::GET,
                path,
                query,
                headers: &headers,
                body: &[],
            });
            if verdict.anomalous {
                return None;
            }
            self.clean.insert(head);
        }
        // Charged last, once the front door will answer: a refusal leaves the bucket as it
        // was, and Pingora's path then refuses the request with its 429.
        let decision = match (
            &self.limits,
            client_address(&headers, peer, self.trusted_hops),
        ) {
            (Some(limits), Some(client)) => {
                let class = RouteClass::of("GET", path);
                let decision = limits.check(class, ClientKey::of(client), None);
                if !decision.allowed {
                    return None;
                }
                Some(decision)
            }
            _ => None,
        };
        let request_id = single(request.headers, X_REQUEST_ID)
            .flatten()
            .and_then(RequestId::from_client)
            .unwrap_or_else(RequestId::generate);
        Some(Answer {
            bytes: cache::hit_bytes(&hit, request_id.as_str(), decision.as_ref()),
            path: path.to_owned(),
            request_id,
        })
    }
}

/// The value of header `name` if the request has it once (`Some(None)`: not at all); `None`
/// when it has it more than once.
fn single<'h>(headers: &[httparse::Header<'h>], name: &str) -> Option<Option<&'h [u8]>> {
    let mut values = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value);
    match (values.next(), values.next()) {
        (value, None) => Some(value),
        _ => None,
    }
}

/// Whether `header` makes its request one for Pingora's path.
fn not_for_the_front_door(header: &httparse::Header<'_>) -> bool {
    let name = header.name;
    NOT_FOR_THE_FRONT_DOOR
        .iter()
        .any(|other| name.eq_ignore_ascii_case(other.as_str()))
        || (name.eq_ignore_ascii_case("connection")
            && !header.value.eq_ignore_ascii_case(b"keep-alive"))
}

/// The request's headers as the WAF and the forwarding rules read them.
fn header_map(parsed: &[httparse::Header<'_>]) -> Option<HeaderMap> {
    let mut headers = HeaderMap::with_capacity(parsed.len());
    for parsed in parsed {
        let name = HeaderName::from_bytes(parsed.name.as_bytes()).ok()?;
        headers.append(name, HeaderValue::from_bytes(parsed.value).ok()?);
    }
    Some(headers)
}

/// Request heads the WAF found clean, remembered by a keyed 128-bit digest of every byte: the
/// WAF reads nothing of a bodiless request but its head and its verdict depends on nothing
/// else, so the same head gets the same verdict. Shoppers' browsers send the same head for
/// the same page; a changed byte is judged afresh. Bounded: full, it starts over.
pub struct CleanHeads {
    keys: (std::hash::RandomState, std::hash::RandomState),
    heads: std::sync::Mutex<std::collections::HashSet<u128>>,
}

/// How many clean heads are remembered.
const CLEAN_HEADS: usize = 16_384;

impl CleanHeads {
    pub fn new() -> Self {
        CleanHeads {
            keys: Default::default(),
            heads: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    fn digest(&self, head: &[u8]) -> u128 {
        use std::hash::BuildHasher;
        (u128::from(self.keys.0.hash_one(head)) << 64) | u128::from(self.keys.1.hash_one(head))
    }

    fn contains(&self, head: &[u8]) -> bool {
        let digest = self.digest(head);
        self.heads.lock().is_ok_and(|heads| heads.contains(&digest))
    }

    fn insert(&self, head: &[u8]) {
        let digest = self.digest(head);
        if let Ok(mut heads) = self.heads.lock() {
            if heads.len() >= CLEAN_HEADS {
                heads.clear();
            }
            heads.insert(digest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_end_at_the_blank_line() {
        assert_eq!(
            head_length(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET"),
            Some(27)
        );
        assert_eq!(head_length(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        assert_eq!(head_length(b""), None);
    }

    #[test]
    fn only_requests_without_framing_headers_end_at_their_head() {
        let share = |head: &[u8]| {
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut slots);
            let parsed = parse(&mut request, head);
            pingoras_share(parsed, &request, 1000)
        };
        let get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(share(get), get.len());
        for framed in [
            &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(share(framed), 1000);
        }
    }

    #[test]
    fn requests_with_anything_unusual_are_pingoras() {
        let parse = |text: &'static str| {
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut slots);
            request.parse(text.as_bytes()).unwrap();
            !request.headers.iter().any(not_for_the_front_door)
        };
        assert!(parse("GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"));
        assert!(parse(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n"
        ));
        for unusual in [
            "Content-Length: 0",
            "Transfer-Encoding: chunked",
            "Authorization: Bearer x",
            "Cookie: a=1",
            "If-None-Match: \"1\"",
            "Range: bytes=0-1",
            "Connection: close",
            "Connection: upgrade",
            "Upgrade: websocket",
            "Expect: 100-continue",
        ] {
            let head: &'static str =
                Box::leak(format!("GET / HTTP/1.1\r\nHost: a\r\n{unusual}\r\n\r\n").into());
            assert!(!parse(head), "{unusual} was not handed over");
        }
    }

    #[test]
    fn clean_heads_are_remembered_byte_for_byte() {
        let clean = CleanHeads::new();
        let head = b"GET /products/1 HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(!clean.contains(head));
        clean.insert(head);
        assert!(clean.contains(head));
        assert!(!clean.contains(b"GET /products/1 HTTP/1.1\r\nHost: b\r\n\r\n"));
    }

    #[test]
    fn repeated_headers_are_not_single() {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut slots);
        request
            .parse(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\nX-Request-Id: 1\r\n\r\n")
            .unwrap();
        assert_eq!(single(request.headers, "host"), None);
        assert_eq!(
            single(request.headers, "x-request-id"),
            Some(Some(&b"1"[..]))
        );
        assert_eq!(single(request.headers, "cookie"), Some(None));
    }
}
