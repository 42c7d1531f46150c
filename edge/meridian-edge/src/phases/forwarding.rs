//! Forwarding headers, overwritten and never appended: the cores trust them, so nothing a client
//! sends may survive in them.
//!
//! `X-Forwarded-For` and `X-Real-IP` name the client: the TCP peer, unless the operator says
//! that `trusted_hops` proxies of their own stand in front of the edge
//! (`MERIDIAN_EDGE_TRUSTED_HOPS`); then the client is the address the outermost of them saw, the
//! `trusted_hops`-th entry from the right of `X-Forwarded-For` (entries further left were written
//! by the client and prove nothing). `X-Forwarded-Proto` is the listener's scheme and
//! `X-Forwarded-Host` is the Host the client asked for. The client address is kept for the rate
//! limits. `X-Meridian-*` is reserved for what the edge itself asserts (the
//! caller's identity, once JWT verification lands), so client-sent ones are dropped.
//! Hop-by-hop headers are stripped on the way out (`forward`, or Pingora's upstream request
//! policy on the cache's path).

use std::net::IpAddr;

use async_trait::async_trait;
use http::{HeaderValue, header};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::{ErrorType, OrErr};

use super::{Outcome, Phase};
use crate::context::RequestCtx;
use crate::problem::EdgeProblem;
use crate::reply::Reply;

const RESERVED_PREFIX: &str = "x-meridian-";

pub struct SanitizeForwarding {
    pub trusted_hops: usize,
}

#[async_trait]
impl Phase for SanitizeForwarding {
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx) -> Outcome {
        let peer = session
            .client_addr()
            .and_then(|addr| addr.as_inet())
            .map(|addr| addr.ip().to_canonical());
        let tls = super::is_tls(session);
        let request = session.req_header_mut();
        let client = client_address(&request.headers, peer, self.trusted_hops);
        ctx.client_ip = client;
        match rewrite(request, client, tls) {
            Ok(()) => Outcome::Continue,
            Err(_) => Outcome::Respond(Reply::Problem(EdgeProblem::BadRequest)),
        }
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

/// Rewrites the forwarding headers of `request`, from `client` over TLS or not.
fn rewrite(request: &mut RequestHeader, client: Option<IpAddr>, tls: bool) -> pingora::Result<()> {
    let reserved: Vec<_> = request
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with(RESERVED_PREFIX))
        .cloned()
        .collect();
    for name in &reserved {
        request.remove_header(name);
    }

    request.insert_header("x-forwarded-proto", if tls { "https" } else { "http" })?;
    // HTTP/2 requests carry the host in the `:authority` pseudo-header, which is the URI's.
    let host = request.headers.get(header::HOST).cloned().or_else(|| {
        let authority = request.uri.authority()?;
        HeaderValue::from_str(authority.as_str()).ok()
    });
    if let Some(host) = host {
        request.insert_header("x-forwarded-host", host)?;
    } else {
        request.remove_header("x-forwarded-host");
    }
    // Without an IP peer (a Unix socket), no value is better than the client's.
    if let Some(client) = client {
        // Written once, shared by both headers.
        let client = HeaderValue::try_from(client.to_string())
            .or_err(ErrorType::InvalidHTTPHeader, "client address")?;
        request.insert_header("x-forwarded-for", client.clone())?;
        request.insert_header("x-real-ip", client)?;
    } else {
        request.remove_header("x-forwarded-for");
        request.remove_header("x-real-ip");
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

    #[test]
    fn client_values_are_overwritten_not_appended() {
        let mut request = RequestHeader::build("GET", b"/cart", None).unwrap();
        request.insert_header("Host", "shop.example").unwrap();
        request.append_header("X-Forwarded-For", "6.6.6.6").unwrap();
        request.append_header("X-Forwarded-For", "7.7.7.7").unwrap();
        request.insert_header("X-Real-IP", "6.6.6.6").unwrap();
        request.insert_header("X-Forwarded-Proto", "https").unwrap();
        request
            .insert_header("X-Forwarded-Host", "evil.example")
            .unwrap();

        rewrite(&mut request, Some("203.0.113.9".parse().unwrap()), false).unwrap();

        assert_eq!(values(&request, "x-forwarded-for"), ["203.0.113.9"]);
        assert_eq!(values(&request, "x-real-ip"), ["203.0.113.9"]);
        assert_eq!(values(&request, "x-forwarded-proto"), ["http"]);
        assert_eq!(values(&request, "x-forwarded-host"), ["shop.example"]);
    }

    #[test]
    fn reserved_headers_are_dropped_and_others_kept() {
        let mut request = RequestHeader::build("GET", b"/", None).unwrap();
        request
            .insert_header("X-Meridian-User-Id", "admin")
            .unwrap();
        request.insert_header("x-meridian-roles", "root").unwrap();
        request.insert_header("X-Meridianish", "kept").unwrap();

        rewrite(&mut request, None, true).unwrap();

        assert!(request.headers.get("x-meridian-user-id").is_none());
        assert!(request.headers.get("x-meridian-roles").is_none());
        assert_eq!(values(&request, "x-meridianish"), ["kept"]);
        assert_eq!(values(&request, "x-forwarded-proto"), ["https"]);
        assert!(request.headers.get("x-forwarded-for").is_none());
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
        rewrite(&mut request, None, true).unwrap();
        assert_eq!(values(&request, "x-forwarded-host"), ["shop.example:8443"]);
    }
}
