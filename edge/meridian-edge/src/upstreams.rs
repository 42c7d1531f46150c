//! Where requests go: each region's core addresses, and the order one request tries them in.
//!
//! A request gets an [`UpstreamPlan`]: the home region's addresses, starting at the next
//! round-robin position, each tried at most once (a refused connection moves on to the next).
//! Failing over to other regions will append their addresses to the plan after the home
//! region's; that is why [`Upstreams`] keeps every configured region, not only the home one.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A region name such as `eu-west`: lowercase ASCII letters, digits and dashes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RegionName(String);

impl RegionName {
    pub fn parse(name: &str) -> Result<Self, String> {
        let name = name.trim();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(RegionName(name.to_owned()))
        } else {
            Err(format!(
                "region names are lowercase letters, digits and '-', got {name:?}"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One core address: an IP or DNS name and a port. Names are resolved per connection attempt,
/// so a core that moves is followed without restarting the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamAddr {
    host: String,
    port: u16,
}

impl UpstreamAddr {
    /// Parses `host:port`, `a.b.c.d:port` or `[v6]:port`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("expected host:port (IPv6 as [addr]:port), got {text:?}");
        // DNS names and IPv4 literals; IPv6 literals only in brackets, as in URLs.
        let is_name_or_ipv4 = |h: &str| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        };
        let (host, port) = text.trim().rsplit_once(':').ok_or_else(invalid)?;
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) if v6.parse::<Ipv6Addr>().is_ok() => v6,
            None if is_name_or_ipv4(host) => host,
            _ => return Err(invalid()),
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(invalid)?;
        Ok(UpstreamAddr {
            host: host.to_owned(),
            port,
        })
    }

    /// Resolves the address (an IP literal needs no lookup).
    pub async fn resolve(&self) -> io::Result<SocketAddr> {
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "name has no address"))
    }
}

impl fmt::Display for UpstreamAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The configured regions and the round-robin position in the home region.
#[derive(Debug)]
pub struct Upstreams {
    home: RegionName,
    regions: BTreeMap<RegionName, Arc<[UpstreamAddr]>>,
    next: AtomicUsize,
}

impl Upstreams {
    /// Parses `region=host:port[|host:port...]` entries separated by commas; the home region
    /// must be among them.
    pub fn parse(spec: &str, home: RegionName) -> Result<Self, String> {
        let mut regions = BTreeMap::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (region, addrs) = entry
                .split_once('=')
                .ok_or_else(|| format!("expected region=host:port, got {entry:?}"))?;
            let region = RegionName::parse(region)?;
            let addrs = addrs
                .split('|')
                .map(UpstreamAddr::parse)
                .collect::<Result<Arc<[_]>, _>>()?;
            if regions.insert(region.clone(), addrs).is_some() {
                return Err(format!("region {:?} is listed twice", region.as_str()));
            }
        }
        if !regions.contains_key(&home) {
            return Err(format!(
                "no upstream for the home region {:?} (MERIDIAN_REGION)",
                home.as_str()
            ));
        }
        Ok(Upstreams {
            home,
            regions,
            next: AtomicUsize::new(0),
        })
    }

    pub fn home(&self) -> &RegionName {
        &self.home
    }

    /// The home region's first core address.
    pub fn home_addr(&self) -> &UpstreamAddr {
        &self.regions[&self.home][0]
    }

    /// The addresses one request may try, in order.
    pub fn plan(&self) -> UpstreamPlan {
        let addrs = Arc::clone(&self.regions[&self.home]);
        let start = self.next.fetch_add(1, Ordering::Relaxed) % addrs.len();
        UpstreamPlan {
            addrs,
            start,
            tried: 0,
        }
    }
}

/// The candidates for one request: every home address once, starting at the round-robin position.
#[derive(Debug)]
pub struct UpstreamPlan {
    addrs: Arc<[UpstreamAddr]>,
    start: usize,
    tried: usize,
}

impl UpstreamPlan {
    pub fn has_more(&self) -> bool {
        self.tried < self.addrs.len()
    }
}

impl Iterator for UpstreamPlan {
    type Item = UpstreamAddr;

    fn next(&mut self) -> Option<UpstreamAddr> {
        if !self.has_more() {
            return None;
        }
        let addr = self.addrs[(self.start + self.tried) % self.addrs.len()].clone();
        self.tried += 1;
        Some(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(name: &str) -> RegionName {
        RegionName::parse(name).unwrap()
    }

    #[test]
    fn addresses_parse_names_ipv4_and_bracketed_ipv6() {
        for text in [
            "127.0.0.1:8081",
            "core.eu.internal:80",
            "[::1]:8081",
            " a-b:1 ",
        ] {
            let addr = UpstreamAddr::parse(text).unwrap();
            assert_eq!(addr.to_string(), text.trim());
        }
        for text in [
            "127.0.0.1",
            ":80",
            "host:0",
            "host:65536",
            "::1:80",
            "[nope]:1",
            "a b:1",
        ] {
            assert!(UpstreamAddr::parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn the_list_parses_regions_with_several_addresses() {
        let upstreams =
            Upstreams::parse("eu=10.0.0.1:80|10.0.0.2:80, us=10.1.0.1:80,", region("eu")).unwrap();
        assert_eq!(upstreams.regions.len(), 2);
        assert_eq!(upstreams.regions[&region("eu")].len(), 2);
    }

    #[test]
    fn malformed_lists_are_rejected() {
        for spec in [
            "local",
            "=1.2.3.4:5",
            "local=",
            "local=a:1|",
            "local=a:1,local=b:1",
        ] {
            assert!(Upstreams::parse(spec, region("local")).is_err(), "{spec:?}");
        }
        let error = Upstreams::parse("us=a:1", region("eu")).unwrap_err();
        assert!(error.contains("\"eu\""), "{error}");
    }

    #[test]
    fn plans_rotate_and_try_each_address_once() {
        let upstreams = Upstreams::parse("local=a:1|b:1|c:1", region("local")).unwrap();
        let firsts: Vec<String> = (0..4)
            .map(|_| upstreams.plan().next().unwrap().to_string())
            .collect();
        assert_eq!(firsts, ["a:1", "b:1", "c:1", "a:1"]);

        let mut plan = upstreams.plan();
        let tried: Vec<String> = plan.by_ref().map(|a| a.to_string()).collect();
        assert_eq!(tried, ["b:1", "c:1", "a:1"]);
        assert!(!plan.has_more());
    }
}
