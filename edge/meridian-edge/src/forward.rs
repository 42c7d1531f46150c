//! Forwarding to a core over the edge's own HTTP/1.1 keep-alive connections.
//!
//! Every request the response cache does not take is forwarded from `request_filter`, once
//! every phase has let it through, inside the request's own task: the request goes out on an
//! idle pooled connection (or a new one), the response head is read and checked, and the body
//! is relayed as it arrives. Pingora's connector would cost more than twice the rest of the
//! edge for such a request on this path (a task spawned to watch each pooled connection, more
//! wake-ups across tasks, a read per request to find the connection still open). The cached
//! routes keep Pingora's proxy and cache state machine, and so do upgrades.
//!
//! The rules are those of `proxy`'s Pingora hooks: each address of the request's
//! [`UpstreamPlan`] is tried at most once; a failure to connect moves on to the next address
//! for every method; a failure after the request went out moves on only for GET, HEAD and
//! OPTIONS, and only before any of the response reached the client; a pooled connection that
//! the core closed before answering is retried once on a new connection, as Pingora does.
//!
//! **Invariant:** the core sees one well-framed HTTP/1.1 request: the method, the target, the
//! headers left by the phases minus the hop-by-hop ones, the `Host`, and the body that the
//! edge read and inspected, always by `Content-Length`. A response is relayed only if its
//! framing is unambiguous; anything else is a 502.

use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::context::RequestCtx;
use crate::per_thread::PerThread;
use crate::phases::{self, Asserted, X_REQUEST_ID, is_asserted};
use crate::problem::NO_UPSTREAM;
use crate::reply;
use crate::upstreams::Upstreams;

/// A core that does not accept a connection within this time is treated as down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a core may go silent mid-exchange: above the slowest legitimate answer (a
/// checkout queues up to 30 s for a slot, then waits up to 8 s for its saga), so a hung core
/// costs a client a 504, not a connection held forever.
pub const READ_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections kept per core address, by each proxy thread.
const MAX_IDLE_PER_CORE: usize = 256;
/// An idle connection older than this is closed rather than reused.
const MAX_IDLE_AGE: Duration = Duration::from_secs(30);
/// The longest response head relayed, and the most header fields in it.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
const MAX_RESPONSE_HEADERS: usize = 128;
/// The longest chunk-size line (with its extensions) or trailer field accepted.
const MAX_CHUNK_LINE: usize = 4096;
const READ_SIZE: usize = 16 * 1024;

/// Request headers that belong to one hop, never forwarded (RFC 9110, 7.6.1), and the framing
/// the edge writes itself.
const HOP_BY_HOP: [&str; 12] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
    "content-length",
    "expect",
];

/// The edge's idle connections to the cores, by address, one pool per proxy thread
/// ([`PerThread`]: the lock is only ever taken by its own thread). Each
/// thread runs its own runtime (no work stealing, see `server`), and a connection is watched by
/// the reactor of the thread that opened it: kept in that thread's pool, its readiness never
/// has to wake another thread.
pub struct Forwarder {
    pools: PerThread<Mutex<Pool>>,
}

type Pool = HashMap<SocketAddr, Vec<Idle>>;

struct Idle {
    stream: TcpStream,
    since: Instant,
}

/// A request that went wrong before its response started.
struct Failure {
    error: Box<Error>,
    /// Whether the core may have seen the request: it answered part of it, or went silent.
    maybe_seen: bool,
}

/// The response head and what followed it on the connection.
struct Answer {
    header: ResponseHeader,
    framing: Framing,
    keep_alive: bool,
    rest: BytesMut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

impl Forwarder {
    pub fn new() -> Self {
        Self {
            pools: PerThread::new(Mutex::default),
        }
    }

    /// The calling thread's pool.
    fn pool(&self) -> &Mutex<Pool> {
        self.pools.mine()
    }

    /// Forwards the request with `body` to the cores of the request's plan and relays the
    /// answer. An `Err` before anything was written goes to `fail_to_proxy`, as Pingora's own
    /// failures do.
    pub async fn forward(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        upstreams: &Upstreams,
        body: Bytes,
    ) -> Result<()> {
        let tls = phases::is_tls(session);
        let request = session.req_header();
        let method = request.method.clone();
        let head = request_head(request, &ctx.asserted(request, tls), body.len());
        let safe = matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
        let mut last_error = None;
        let plan = ctx.upstream_plan.get_or_insert_with(|| upstreams.plan());
        'plan: for index in plan.by_ref() {
            let addr = upstreams.addr(index);
            let socket = match addr.resolve().await {
                Ok(socket) => socket,
                Err(error) => {
                    tracing::warn!(upstream = %addr, %error, "cannot resolve upstream");
                    continue;
                }
            };
            ctx.upstream = Some(index);
            let mut pooled = self.take(socket);
            loop {
                let reused = pooled.is_some();
                let mut stream = match pooled.take() {
                    Some(stream) => stream,
                    None => match connect(socket).await {
                        Ok(stream) => stream,
                        Err(error) => {
                            last_error = Some(error);
                            continue 'plan;
                        }
                    },
                };
                match exchange(&mut stream, &head, &body, &method).await {
                    Ok(answer) => {
                        return self.relay(session, ctx, stream, socket, answer).await;
                    }
                    // The core closed an idle connection as it was taken: a new one.
                    Err(failure) if reused && !failure.maybe_seen => continue,
                    Err(failure) if safe => {
                        last_error = Some(failure.error);
                        continue 'plan;
                    }
                    Err(failure) => return Err(failure.error),
                }
            }
        }
        Err(last_error.unwrap_or_else(|| Error::new_up(NO_UPSTREAM)))
    }

    /// Writes the answer's head and relays its body; the connection goes back to the pool if
    /// the exchange ended cleanly and the core keeps it open.
    async fn relay(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        mut stream: TcpStream,
        socket: SocketAddr,
        answer: Answer,
    ) -> Result<()> {
        let Answer {
            mut header,
            framing,
            keep_alive,
            mut rest,
        } = answer;
        header.insert_header(X_REQUEST_ID, ctx.request_id().as_str())?;
        if let Some(decision) = &ctx.rate_limit {
            reply::rate_limit_headers(&mut header, decision)?;
        }
        // An answer that came whole with its head frees its connection before the client
        // hears of it, so the client's next request finds the connection idle.
        let whole = match framing {
            Framing::Empty => Some(Bytes::new()),
            Framing::Length(length) if rest.len() as u64 == length => Some(rest.split().freeze()),
            _ => None,
        };
        if let Some(body) = whole {
            if keep_alive && rest.is_empty() {
                self.put(socket, stream);
            }
            let empty = body.is_empty();
            session
                .write_response_header(Box::new(header), empty)
                .await?;
            if !empty {
                session.write_response_body(Some(body), true).await?;
            }
            return Ok(());
        }
        let clean = match framing {
            Framing::Length(length) => {
                session
                    .write_response_header(Box::new(header), false)
                    .await?;
                relay_length(session, &mut stream, &mut rest, length).await?
            }
            Framing::Chunked => {
                header.insert_header(header::TRANSFER_ENCODING, "chunked")?;
                session
                    .write_response_header(Box::new(header), false)
                    .await?;
                relay_chunked(session, &mut stream, &mut rest).await?
            }
            Framing::Empty | Framing::UntilClose => {
                header.insert_header(header::TRANSFER_ENCODING, "chunked")?;
                session
                    .write_response_header(Box::new(header), false)
                    .await?;
                relay_until_close(session, &mut stream, &mut rest).await?;
                false
            }
        };
        if clean && keep_alive {
            self.put(socket, stream);
        }
        Ok(())
    }

    /// An idle connection to `socket` that still looks open.
    fn take(&self, socket: SocketAddr) -> Option<TcpStream> {
        loop {
            let idle = {
                let mut pool = self.pool().lock().ok()?;
                pool.get_mut(&socket)?.pop()?
            };
            if idle.since.elapsed() < MAX_IDLE_AGE && still_open(&idle.stream) {
                return Some(idle.stream);
            }
        }
    }

    fn put(&self, socket: SocketAddr, stream: TcpStream) {
        let Ok(mut pool) = self.pool().lock() else {
            return;
        };
        let connections = pool.entry(socket).or_default();
        if connections.len() < MAX_IDLE_PER_CORE {
            connections.push(Idle {
                stream,
                since: Instant::now(),
            });
        }
    }
}

/// Whether an idle connection has nothing to read: no close, no reset, no stray bytes.
fn still_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(error) if error.kind() == io::ErrorKind::WouldBlock)
}

async fn connect(socket: SocketAddr) -> Result<TcpStream> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(socket)).await {
        Ok(Ok(stream)) => {
            // Heads and bodies go out in whole writes; don't let Nagle hold them back.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(error)) => {
            let etype = match error.kind() {
                io::ErrorKind::ConnectionRefused => ErrorType::ConnectRefused,
                _ => ErrorType::ConnectError,
            };
            Err(Error::because(etype, format!("connecting to {socket}"), error).into_up())
        }
        Err(_) => Err(Error::explain(
            ErrorType::ConnectTimedout,
            format!("connecting to {socket}"),
        )
        .into_up()),
    }
}

/// The request as the core receives it: what the edge asserts replaces whatever the client
/// sent under the same names.
fn request_head(request: &RequestHeader, asserted: &Asserted<'_>, body_length: usize) -> Vec<u8> {
    let mut head = Vec::with_capacity(1024);
    let target = request
        .uri
        .path_and_query()
        .map_or("/", |target| target.as_str());
    head.extend_from_slice(request.method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    let nominated: Vec<&str> = request
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let forwarded = |name: &HeaderName| {
        let name = name.as_str();
        !HOP_BY_HOP.contains(&name)
            && !is_asserted(name)
            && !nominated
                .iter()
                .any(|other| other.eq_ignore_ascii_case(name))
    };
    for (name, value) in &request.headers {
        if forwarded(name) {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
    }
    if !request.headers.contains_key(header::HOST) {
        // HTTP/2 carries the host as the URI's authority.
        if let Some(authority) = request.uri.authority() {
            head.extend_from_slice(b"host: ");
            head.extend_from_slice(authority.as_str().as_bytes());
            head.extend_from_slice(b"\r\n");
        }
    }
    asserted.write(&mut head);
    let bodied = matches!(request.method, Method::POST | Method::PUT | Method::PATCH);
    if body_length > 0 || bodied {
        head.extend_from_slice(format!("content-length: {body_length}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Sends the request and reads the response head.
async fn exchange(
    stream: &mut TcpStream,
    head: &[u8],
    body: &[u8],
    method: &Method,
) -> std::result::Result<Answer, Failure> {
    let unseen = |error: Box<Error>| Failure {
        error,
        maybe_seen: false,
    };
    let write = async {
        if body.is_empty() {
            stream.write_all(head).await
        } else {
            let mut whole = Vec::with_capacity(head.len() + body.len());
            whole.extend_from_slice(head);
            whole.extend_from_slice(body);
            stream.write_all(&whole).await
        }
    };
    match tokio::time::timeout(READ_WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            return Err(unseen(
                Error::because(ErrorType::WriteError, "sending the request", error).into_up(),
            ));
        }
        Err(_) => {
            return Err(Failure {
                error: Error::explain(ErrorType::WriteTimedout, "sending the request").into_up(),
                maybe_seen: true,
            });
        }
    }
    let mut buffer = BytesMut::with_capacity(READ_SIZE);
    loop {
        // Nothing to parse before the first read.
        if !buffer.is_empty()
            && let Some(answer) = parse_response(&mut buffer, method).map_err(|error| Failure {
                error,
                maybe_seen: true,
            })?
        {
            return Ok(answer);
        }
        if buffer.len() >= MAX_RESPONSE_HEAD {
            return Err(Failure {
                error: Error::explain(ErrorType::InvalidHTTPHeader, "response head too long")
                    .into_up(),
                maybe_seen: true,
            });
        }
        let nothing_yet = buffer.is_empty();
        match read_some(stream, &mut buffer).await {
            Ok(0) if nothing_yet => {
                return Err(unseen(
                    Error::explain(ErrorType::ConnectionClosed, "closed before answering")
                        .into_up(),
                ));
            }
            Ok(0) => {
                return Err(Failure {
                    error: Error::explain(ErrorType::ConnectionClosed, "closed mid-head").into_up(),
                    maybe_seen: true,
                });
            }
            Ok(_) => {}
            Err(error) => {
                let reset = *error.etype() == ErrorType::ReadError && nothing_yet;
                return Err(Failure {
                    error,
                    maybe_seen: !reset,
                });
            }
        }
    }
}

/// Reads more of the response into `buffer`: how much, 0 at the end of the stream.
async fn read_some(stream: &mut TcpStream, buffer: &mut BytesMut) -> Result<usize> {
    buffer.reserve(READ_SIZE);
    match tokio::time::timeout(READ_WRITE_TIMEOUT, stream.read_buf(buffer)).await {
        Ok(Ok(read)) => Ok(read),
        Ok(Err(error)) => {
            Err(Error::because(ErrorType::ReadError, "reading the response", error).into_up())
        }
        Err(_) => Err(Error::explain(ErrorType::ReadTimedout, "reading the response").into_up()),
    }
}

/// The response head at the start of `buffer` once it is whole (skipping `100 Continue`s),
/// with the bytes after it.
fn parse_response(buffer: &mut BytesMut, method: &Method) -> Result<Option<Answer>> {
    let invalid = |why: &'static str| Error::explain(ErrorType::InvalidHTTPHeader, why).into_up();
    loop {
        // Slots left uninitialised: the parser writes those it fills.
        let mut slots = [const { MaybeUninit::uninit() }; MAX_RESPONSE_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buffer,
            &mut slots,
        );
        let length = match parsed {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(invalid("malformed response head")),
        };
        let status = response
            .code
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or_else(|| invalid("bad status"))?;
        if status.is_informational() {
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(invalid("an upgrade nobody asked for"));
            }
            buffer.advance(length);
            continue;
        }
        // The fields go straight into the head's map, once each: without Pingora's map of each
        // name's case (the cores write lowercase names) and without parsing each name again.
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.status = status;
        parts.headers = HeaderMap::with_capacity(response.headers.len());
        let mut lengths = Vec::new();
        let mut chunked = None;
        let mut close = response.version == Some(0);
        for field in response.headers.iter() {
            let name = HeaderName::from_bytes(field.name.as_bytes())
                .map_err(|_| invalid("bad header name"))?;
            if name == header::CONTENT_LENGTH {
                lengths.push(field.value);
            } else if name == header::TRANSFER_ENCODING {
                let last = field
                    .value
                    .rsplit(|b| *b == b',')
                    .next()
                    .unwrap_or_default();
                chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name == header::CONNECTION {
                let tokens = field.value.split(|b| *b == b',').map(<[u8]>::trim_ascii);
                for token in tokens {
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        close = false;
                    }
                }
            }
            let hop = name == header::CONNECTION
                || name == header::TRANSFER_ENCODING
                || name == header::UPGRADE
                || name == header::TRAILER
                || matches!(name.as_str(), "keep-alive" | "proxy-connection");
            if !hop {
                let value = HeaderValue::from_bytes(field.value)
                    .map_err(|_| invalid("bad header value"))?;
                parts
                    .headers
                    .try_append(name, value)
                    .map_err(|_| invalid("too many header fields"))?;
            }
        }
        let mut header = ResponseHeader::from(parts);
        let no_body = *method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let framing = match (no_body, chunked, lengths.as_slice()) {
            (true, _, _) => Framing::Empty,
            // A body framed both ways is how responses get smuggled: refused.
            (false, Some(_), [_, ..]) => return Err(invalid("both Content-Length and chunked")),
            (false, Some(true), []) => Framing::Chunked,
            (false, Some(false), []) => Framing::UntilClose,
            (false, None, []) => Framing::UntilClose,
            (false, None, [first, others @ ..]) => {
                if others.iter().any(|other| other != first) {
                    return Err(invalid("conflicting Content-Length"));
                }
                let length = parse_length(first).ok_or_else(|| invalid("bad Content-Length"))?;
                Framing::Length(length)
            }
        };
        if framing == Framing::Empty {
            header.remove_header(&header::CONTENT_LENGTH);
            if let [first, ..] = lengths.as_slice() {
                // A HEAD answer names the length a GET would have had.
                if *method == Method::HEAD && parse_length(first).is_some() {
                    header.insert_header(header::CONTENT_LENGTH, *first)?;
                }
            }
        }
        buffer.advance(length);
        return Ok(Some(Answer {
            header,
            framing,
            keep_alive: !close && framing != Framing::UntilClose,
            rest: buffer.split(),
        }));
    }
}

fn parse_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Relays `length` bytes of body, the first of them in `rest`; whether the connection ended
/// clean (nothing after the body).
async fn relay_length(
    session: &mut Session,
    stream: &mut TcpStream,
    rest: &mut BytesMut,
    length: u64,
) -> Result<bool> {
    relay_exactly(session, stream, rest, length, true).await?;
    Ok(rest.is_empty())
}

/// Relays the next `length` bytes (the first of them in `rest`); with `last`, the final write
/// ends the response.
async fn relay_exactly(
    session: &mut Session,
    stream: &mut TcpStream,
    rest: &mut BytesMut,
    length: u64,
    last: bool,
) -> Result<()> {
    let mut left = length;
    while left > 0 {
        if rest.is_empty() && read_some(stream, rest).await? == 0 {
            return Err(Error::explain(ErrorType::ConnectionClosed, "closed mid-body").into_up());
        }
        let take = usize::try_from(left).map_or(rest.len(), |left| left.min(rest.len()));
        let data = rest.split_to(take).freeze();
        left -= data.len() as u64;
        session
            .write_response_body(Some(data), last && left == 0)
            .await?;
    }
    Ok(())
}

/// Decodes a chunked body and relays its data (the client gets it re-framed); trailers are
/// dropped. Whether the connection ended clean.
async fn relay_chunked(
    session: &mut Session,
    stream: &mut TcpStream,
    rest: &mut BytesMut,
) -> Result<bool> {
    let invalid = |why: &'static str| Error::explain(ErrorType::InvalidHTTPHeader, why).into_up();
    loop {
        let line = read_line(stream, rest).await?;
        let size = chunk_size(&line).ok_or_else(|| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailer fields, up to the blank line.
            while !read_line(stream, rest).await?.is_empty() {}
            session.write_response_body(None, true).await?;
            return Ok(rest.is_empty());
        }
        relay_exactly(session, stream, rest, size, false).await?;
        if !read_line(stream, rest).await?.is_empty() {
            return Err(invalid("chunk data longer than its size"));
        }
    }
}

/// Relays everything until the core closes the connection.
async fn relay_until_close(
    session: &mut Session,
    stream: &mut TcpStream,
    rest: &mut BytesMut,
) -> Result<()> {
    loop {
        if !rest.is_empty() {
            session
                .write_response_body(Some(rest.split().freeze()), false)
                .await?;
        }
        if read_some(stream, rest).await? == 0 {
            return session.write_response_body(None, true).await;
        }
    }
}

/// The next CRLF-terminated line of a chunked body, without its CRLF.
async fn read_line(stream: &mut TcpStream, rest: &mut BytesMut) -> Result<Bytes> {
    loop {
        if let Some(end) = rest.windows(2).position(|pair| pair == b"\r\n") {
            let line = rest.split_to(end).freeze();
            rest.advance(2);
            return Ok(line);
        }
        if rest.len() > MAX_CHUNK_LINE {
            return Err(
                Error::explain(ErrorType::InvalidHTTPHeader, "chunk line too long").into_up(),
            );
        }
        if read_some(stream, rest).await? == 0 {
            return Err(Error::explain(ErrorType::ConnectionClosed, "closed mid-chunk").into_up());
        }
    }
}

/// The size of a chunk from its line (`1a;ext=1`): hex digits, at most 15 of them.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii_end();
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str, method: Method) -> Result<Option<Answer>> {
        let mut buffer = BytesMut::from(text.as_bytes());
        parse_response(&mut buffer, &method)
    }

    fn framing(text: &str) -> Framing {
        parsed(text, Method::GET).unwrap().unwrap().framing
    }

    #[test]
    fn responses_are_framed_by_their_headers() {
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
            Framing::Length(5)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n"),
            Framing::Length(5)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Framing::Chunked
        );
        assert_eq!(framing("HTTP/1.1 200 OK\r\n\r\n"), Framing::UntilClose);
        assert_eq!(
            framing("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
            Framing::Empty
        );
        let head = parsed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::HEAD);
        let head = head.unwrap().unwrap();
        assert_eq!(head.framing, Framing::Empty);
        assert_eq!(head.header.headers[header::CONTENT_LENGTH], "5");
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        for text in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
        ] {
            assert!(parsed(text, Method::GET).is_err(), "{text:?}");
        }
    }

    #[test]
    fn continues_are_skipped_and_the_rest_kept() {
        let answer = parsed(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}GET",
            Method::POST,
        )
        .unwrap()
        .unwrap();
        assert_eq!(answer.header.status, StatusCode::CREATED);
        assert_eq!(&answer.rest[..], b"{}GET");
        assert!(answer.keep_alive);
    }

    #[test]
    fn hop_by_hop_headers_stay_on_their_hop() {
        let answer = parsed(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nKeep-Alive: timeout=5\r\n\
             Content-Length: 0\r\nX-Region: eu\r\n\r\n",
            Method::GET,
        )
        .unwrap()
        .unwrap();
        assert!(!answer.keep_alive);
        assert!(answer.header.headers.get("connection").is_none());
        assert!(answer.header.headers.get("keep-alive").is_none());
        assert_eq!(answer.header.headers["x-region"], "eu");
        let answer = parsed("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", Method::GET);
        assert!(!answer.unwrap().unwrap().keep_alive);
        assert!(
            parsed("HTTP/1.1 200 OK\r\nContent-Le", Method::GET)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_request_head_drops_hop_by_hop_headers_and_frames_the_body() {
        let mut request = RequestHeader::build("POST", b"/cart/items?x=1", None).unwrap();
        request.insert_header("Host", "shop.example").unwrap();
        request
            .insert_header("Connection", "keep-alive, X-Secret")
            .unwrap();
        request.insert_header("X-Secret", "1").unwrap();
        request
            .insert_header("Transfer-Encoding", "chunked")
            .unwrap();
        request.insert_header("Content-Length", "999").unwrap();
        request.insert_header("Expect", "100-continue").unwrap();
        request.insert_header("X-Request-Id", "forged").unwrap();
        request.insert_header("X-Real-IP", "6.6.6.6").unwrap();
        request.insert_header("X-Meridian-Role", "admin").unwrap();
        let client = Some("198.51.100.2".parse().unwrap());
        let asserted = Asserted::new(&request, false, client, "r-1", None);
        let head = String::from_utf8(request_head(&request, &asserted, 12)).unwrap();
        assert!(
            head.starts_with("POST /cart/items?x=1 HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(head.ends_with("content-length: 12\r\n\r\n"), "{head}");
        assert!(head.contains("host: shop.example\r\n"));
        assert!(head.contains("x-request-id: r-1\r\n"));
        assert!(head.contains("x-real-ip: 198.51.100.2\r\n"));
        assert!(head.contains("x-forwarded-host: shop.example\r\n"));
        for gone in [
            "connection",
            "x-secret",
            "transfer-encoding",
            "999",
            "expect",
            "forged",
            "6.6.6.6",
            "x-meridian-role",
        ] {
            assert!(
                !head.to_ascii_lowercase().contains(gone),
                "{gone} in {head}"
            );
        }
        let get = RequestHeader::build("GET", b"/products", None).unwrap();
        let asserted = Asserted::new(&get, false, None, "r-2", None);
        let head = String::from_utf8(request_head(&get, &asserted, 0)).unwrap();
        assert!(!head.contains("content-length"));
    }

    #[test]
    fn chunk_sizes_are_hex_with_optional_extensions() {
        assert_eq!(chunk_size(b"1a"), Some(26));
        assert_eq!(chunk_size(b"0"), Some(0));
        assert_eq!(chunk_size(b"ff;name=value"), Some(255));
        assert_eq!(chunk_size(b""), None);
        assert_eq!(chunk_size(b"-1"), None);
        assert_eq!(chunk_size(b"0x10"), None);
        assert_eq!(chunk_size(b"1000000000000000"), None);
    }
}
