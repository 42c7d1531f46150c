//! `MERIDIAN_EDGE_HTTPS_REDIRECT=on`: plain-HTTP requests are sent to HTTPS with a 308 (which
//! keeps the method and body), after the local endpoints, so load balancers may still probe
//! `/healthz` and `/readyz` over plain HTTP.

use http::header;
use pingora::proxy::Session;

use super::{Outcome, Phase};
use crate::context::RequestCtx;
use crate::problem::EdgeProblem;
use crate::reply::Reply;

pub struct RedirectToHttps {
    /// The public HTTPS port (omitted from the URL when 443).
    pub port: u16,
}

impl Phase for RedirectToHttps {
    async fn run(&self, session: &mut Session, _ctx: &mut RequestCtx) -> Outcome {
        if super::is_tls(session) {
            return Outcome::Continue;
        }
        let request = session.req_header();
        let host = request
            .headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| request.uri.host());
        let target = request
            .uri
            .path_and_query()
            .map_or("/", |path| path.as_str());
        match host.and_then(|host| location(host, self.port, target)) {
            Some(url) => Outcome::Respond(Reply::Redirect(url)),
            None => Outcome::Respond(Reply::Problem(EdgeProblem::BadRequest)),
        }
    }
}

/// `https://<host>[:port]<target>`, or `None` for a Host that is not a name or an address (so
/// the redirect can never point anywhere a Host header smuggles in).
fn location(host: &str, port: u16, target: &str) -> Option<String> {
    let name = match host.rsplit_once(':') {
        // `[v6]:port`, `name:port`
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => {
            name
        }
        _ => host,
    };
    let bracketed_v6 = name.starts_with('[')
        && name.ends_with(']')
        && name[1..name.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .is_ok();
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !(bracketed_v6 || plain) || !target.starts_with('/') {
        return None;
    }
    Some(if port == 443 {
        format!("https://{name}{target}")
    } else {
        format!("https://{name}:{port}{target}")
    })
}

#[cfg(test)]
mod tests {
    use super::location;

    #[test]
    fn the_location_keeps_host_path_and_query_and_swaps_the_port() {
        assert_eq!(
            location("shop.example:8080", 8443, "/products?limit=2").as_deref(),
            Some("https://shop.example:8443/products?limit=2")
        );
        assert_eq!(
            location("shop.example", 443, "/").as_deref(),
            Some("https://shop.example/")
        );
        assert_eq!(
            location("[::1]:8080", 8443, "/cart").as_deref(),
            Some("https://[::1]:8443/cart")
        );
        for bad in [
            "evil.example/@x",
            "a b",
            "",
            "shop.example\\r\\nx: y",
            "[nope]:1",
        ] {
            assert_eq!(location(bad, 8443, "/"), None, "{bad:?}");
        }
        assert_eq!(
            location("shop.example", 8443, "//evil.example"),
            Some("https://shop.example:8443//evil.example".into())
        );
    }
}
