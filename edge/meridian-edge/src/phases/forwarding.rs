//! What the edge asserts to the core, in headers no client can write.
//!
//! `X-Forwarded-For` and `X-Real-IP` name the client: the TCP peer, unless the operator says
//! that `trusted_hops` proxies of their own stand in front of the edge
//! (`MERIDIAN_EDGE_TRUSTED_HOPS`); then the client is the address the outermost of them saw, the
//! `trusted_hops`-th entry from the right of `X-Forwarded-For` (entries further left were written
//! by the client and prove nothing). `X-Forwarded-Proto` is the listener's scheme,
//! `X-Forwarded-Host` the Host the client asked for, `X-Request-Id` the request's id, and
//! `X-Meridian-User-Id` and `X-Meridian-Role` the verified caller (`X-Meridian-*` is reserved
//! for what the edge asserts).
//!
//! The phases only record these in the request's context ([`ResolveClient`] the client's
//! address); the request's own headers stay as the client sent them, which is what the WAF
//! reads, on Pingora's path as at the front door. [`Asserted`] is written where the request
//! leaves for a core (`forward`, or `upstream_request_filter` on Pingora's path), and there
//! every client-sent header of these names, and every `X-Meridian-*` one, is dropped: they are
//! overwritten, never appended. Hop-by-hop headers are stripped at the same point.

use std::io::Write as _;
use std::net::IpAddr;

use http::{HeaderName, HeaderValue, header};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorType};

use super::{Outcome, Phase, X_REQUEST_ID};
use crate::auth::token::Role;
use crate::context::RequestCtx;

const RESERVED_PREFIX: &str = "x-meridian-";
pub const X_USER_ID: &str = "x-meridian-user-id";
pub const X_ROLE: &str = "x-meridian-role";
/// The names of [`Asserted`] outside the reserved prefix.
const ASSERTED: [&str; 5] = [
    "x-forwarded-for",
    "x-real-ip",
    "x-forwarded-proto",
    "x-forwarded-host",
    X_REQUEST_ID,
];

/// Records the client's address for the rate limits, the log and [`Asserted`].
pub struct ResolveClient {
    pub trusted_hops: usize,
}

impl Phase for ResolveClient {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Outcome {
        let peer = session
            .client_addr()
            .and_then(|addr| addr.as_inet())
            .map(|addr| addr.ip().to_canonical());
        ctx.client_ip = client_address(&session.req_header().headers, peer, self.trusted_hops);
        Outcome::Continue
    }
}

/// The client's address: with `trusted_hops` proxies in front, the entry they vouch for;
/// without, or when their header is missing or garbled, the peer.
pub(crate) fn client_address(
    headers: &http::HeaderMap,
    peer: Option<IpAddr>,
    trusted_hops: usize,
) -> Option<IpAddr> {
    if trusted_hops == 0 {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let vouched = entries.len().checked_sub(trusted_hops).map(|i| entries[i]);
    vouched
        .and_then(|entry| entry.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .or(peer)
}

/// Whether a client-sent header of this (lowercase) name is dropped on the way to the core:
/// the edge alone writes it.
pub(crate) fn is_asserted(name: &str) -> bool {
    name.starts_with(RESERVED_PREFIX) || ASSERTED.contains(&name)
}

/// Whether `text` can go into a header value as it is: visible ASCII, spaces and tabs.
pub(crate) fn header_safe(text: &str) -> bool {
    text.bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// The headers the edge asserts about one request.
pub(crate) struct Asserted<'r> {
    tls: bool,
    /// The Host the client asked for (or, over HTTP/2, the authority).
    host: Option<&'r [u8]>,
    client: Option<IpAddr>,
    request_id: &'r str,
    /// The verified caller; its id was checked with [`header_safe`] by the authenticate phase.
    user: Option<(&'r str, Role)>,
}

impl<'r> Asserted<'r> {
    pub fn new(
        request: &'r RequestHeader,
        tls: bool,
        client: Option<IpAddr>,
        request_id: &'r str,
        user: Option<(&'r str, Role)>,
    ) -> Self {
        let host = match request.headers.get(header::HOST) {
            Some(host) => Some(host.as_bytes()),
            None => request.uri.authority().map(|a| a.as_str().as_bytes()),
        };
        Asserted {
            tls,
            host,
            client,
            request_id,
            user,
        }
    }

    /// Each header, in the order written.
    fn each(&self, mut header: impl FnMut(&'static str, &[u8])) {
        header(
            "x-forwarded-proto",
            if self.tls { b"https" } else { b"http" },
        );
        if let Some(host) = self.host {
            header("x-forwarded-host", host);
        }
        // Without an IP peer (a Unix socket), no value is better than the client's.
        if let Some(client) = self.client {
            let mut text = [0u8; 64];
            let mut out = &mut text[..];
            // An IPv6 address in text is at most 45 bytes.
            let _ = write!(out, "{client}");
            let written = 64 - out.len();
            header("x-forwarded-for", &text[..written]);
            header("x-real-ip", &text[..written]);
        }
        header(X_REQUEST_ID, self.request_id.as_bytes());
        if let Some((user_id, role)) = self.user {
            header(X_USER_ID, user_id.as_bytes());
            header(X_ROLE, role.as_str().as_bytes());
        }
    }

    /// Appends the headers, as `name: value` lines, to a request head being written.
    pub fn write(&self, head: &mut Vec<u8>) {
        self.each(|name, value| {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        });
    }

    /// The headers as name and value, for a request that Pingora writes.
    pub fn fields(&self) -> pingora::Result<Vec<(HeaderName, HeaderValue)>> {
        let mut fields = Vec::with_capacity(8);
        let mut invalid = false;
        self.each(|name, value| match HeaderValue::from_bytes(value) {
            Ok(value) => fields.push((HeaderName::from_static(name), value)),
            Err(_) => invalid = true,
        });
        if invalid {
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "asserted header");
        }
        Ok(fields)
    }
}

/// Replaces every client-sent header that the edge asserts with the edge's own, in a request
/// that Pingora writes to a core.
pub(crate) fn assert_on(
    request: &mut RequestHeader,
    fields: Vec<(HeaderName, HeaderValue)>,
) -> pingora::Result<()> {
    let sent: Vec<HeaderName> = request
        .headers
        .keys()
        .filter(|name| is_asserted(name.as_str()))
        .cloned()
        .collect();
    for name in &sent {
        request.remove_header(name);
    }
    for (name, value) in fields {
        request.append_header(name, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(request: &RequestHeader, name: &str) -> Vec<String> {
        let values = request.headers.get_all(name).iter();
        values.map(|v| v.to_str().unwrap().to_owned()).collect()
    }

    fn forged() -> RequestHeader {
        let mut request = RequestHeader::build("GET", b"/cart", None).unwrap();
        request.insert_header("Host", "shop.example").unwrap();
        request.append_header("X-Forwarded-For", "6.6.6.6").unwrap();
        request.append_header("X-Forwarded-For", "7.7.7.7").unwrap();
        request.insert_header("X-Real-IP", "6.6.6.6").unwrap();
        request.insert_header("X-Forwarded-Proto", "https").unwrap();
        request
            .insert_header("X-Forwarded-Host", "evil.example")
            .unwrap();
        request.insert_header("X-Request-Id", "forged").unwrap();
        request
            .insert_header("X-Meridian-User-Id", "admin")
            .unwrap();
        request.insert_header("x-meridian-roles", "root").unwrap();
        request.insert_header("X-Meridianish", "kept").unwrap();
        request
    }

    #[test]
    fn client_values_are_overwritten_not_appended() {
        let mut request = forged();
        let client = Some("203.0.113.9".parse().unwrap());
        let fields = Asserted::new(&request, false, client, "id-1", None)
            .fields()
            .unwrap();
        assert_on(&mut request, fields).unwrap();

        assert_eq!(values(&request, "x-forwarded-for"), ["203.0.113.9"]);
        assert_eq!(values(&request, "x-real-ip"), ["203.0.113.9"]);
        assert_eq!(values(&request, "x-forwarded-proto"), ["http"]);
        assert_eq!(values(&request, "x-forwarded-host"), ["shop.example"]);
        assert_eq!(values(&request, "x-request-id"), ["id-1"]);
        assert!(request.headers.get("x-meridian-user-id").is_none());
        assert!(request.headers.get("x-meridian-roles").is_none());
        assert_eq!(values(&request, "x-meridianish"), ["kept"]);
        assert_eq!(values(&request, "host"), ["shop.example"]);
    }

    #[test]
    fn the_verified_caller_is_asserted_and_no_peer_means_no_address() {
        let mut request = forged();
        let user = Some(("u-42", Role::Seller));
        let fields = Asserted::new(&request, true, None, "id-2", user)
            .fields()
            .unwrap();
        assert_on(&mut request, fields).unwrap();
        assert_eq!(values(&request, "x-meridian-user-id"), ["u-42"]);
        assert_eq!(values(&request, "x-meridian-role"), ["seller"]);
        assert!(request.headers.get("x-meridian-roles").is_none());
        assert_eq!(values(&request, "x-forwarded-proto"), ["https"]);
        assert!(request.headers.get("x-forwarded-for").is_none());
        assert!(request.headers.get("x-real-ip").is_none());
    }

    /// The lines written into a request head say what the fields say.
    #[test]
    fn written_lines_match_the_fields() {
        let request = forged();
        let client = Some("2001:db8::1".parse().unwrap());
        let asserted = Asserted::new(&request, true, client, "id-3", Some(("u", Role::Admin)));
        let mut head = Vec::new();
        asserted.write(&mut head);
        let expected: String = asserted
            .fields()
            .unwrap()
            .iter()
            .map(|(name, value)| format!("{name}: {}\r\n", value.to_str().unwrap()))
            .collect();
        assert_eq!(String::from_utf8(head).unwrap(), expected);
        assert!(expected.contains("x-forwarded-for: 2001:db8::1\r\n"));
        assert!(expected.contains("x-meridian-role: admin\r\n"));
    }

    #[test]
    fn asserted_names_are_recognised() {
        for name in [
            "x-forwarded-for",
            "x-real-ip",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-request-id",
            "x-meridian-user-id",
            "x-meridian-anything",
        ] {
            assert!(is_asserted(name), "{name}");
        }
        for name in [
            "x-meridianish",
            "x-forwarded",
            "host",
            "cookie",
            "forwarded",
        ] {
            assert!(!is_asserted(name), "{name}");
        }
        assert!(header_safe("user-1 \t ok"));
        assert!(!header_safe("a\r\nx-meridian-role: admin"));
        assert!(!header_safe("é"));
    }

    #[test]
    fn trusted_hops_pick_the_entry_they_vouch_for() {
        let mut request = RequestHeader::build("GET", b"/", None).unwrap();
        request
            .append_header("X-Forwarded-For", "6.6.6.6, 198.51.100.7")
            .unwrap();
        request
            .append_header("X-Forwarded-For", "10.0.0.2")
            .unwrap();
        let peer = Some("10.0.0.3".parse().unwrap());
        let ip = |text: &str| Some(text.parse::<IpAddr>().unwrap());
        assert_eq!(client_address(&request.headers, peer, 0), peer);
        assert_eq!(client_address(&request.headers, peer, 1), ip("10.0.0.2"));
        assert_eq!(
            client_address(&request.headers, peer, 2),
            ip("198.51.100.7")
        );
        assert_eq!(client_address(&request.headers, peer, 3), ip("6.6.6.6"));
        // Fewer entries than trusted proxies, or garbage where they vouch: the peer.
        assert_eq!(client_address(&request.headers, peer, 4), peer);
        let mut garbled = RequestHeader::build("GET", b"/", None).unwrap();
        garbled.append_header("X-Forwarded-For", "bogus").unwrap();
        assert_eq!(client_address(&garbled.headers, peer, 1), peer);
    }

    #[test]
    fn the_authority_stands_in_for_a_missing_host() {
        let mut request = RequestHeader::build("GET", b"/", None).unwrap();
        request.set_uri("https://shop.example:8443/".parse().unwrap());
        let fields = Asserted::new(&request, true, None, "id", None)
            .fields()
            .unwrap();
        assert_on(&mut request, fields).unwrap();
        assert_eq!(values(&request, "x-forwarded-host"), ["shop.example:8443"]);
    }
}
