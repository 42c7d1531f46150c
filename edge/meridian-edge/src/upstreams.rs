//! Where requests go: each region's core addresses, their health, and the order one request
//! tries them in.
//!
//! A request gets an [`UpstreamPlan`]: the home region's healthy addresses, starting at the next
//! round-robin position (each proxy thread keeps its own, so no request writes a shared
//! counter); then the healthy addresses of the other regions (failover, when the
//! home region is down); then, as a last resort, the home addresses marked unhealthy (a health
//! verdict may be a few seconds old). Each address is tried at most once.
//!
//! Health comes from [`Upstreams::check_health`], run in the background: `GET /readyz` on every
//! address; [`DOWN_AFTER`] failures in a row mark it down, one success marks it up.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use crate::per_thread::PerThread;

/// Consecutive failed probes after which an address is taken out of plans.
pub const DOWN_AFTER: u32 = 2;
/// How often every address is probed, and how long a probe may take.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

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
    /// `host:port` as written in logs (`[v6]:port`).
    name: String,
    /// The address itself when the host is an IP literal, which needs no lookup.
    literal: Option<SocketAddr>,
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
        let name = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let literal = host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, port));
        Ok(UpstreamAddr {
            host: host.to_owned(),
            port,
            name,
            literal,
        })
    }

    /// `host:port`.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Resolves the address (an IP literal needs no lookup).
    pub async fn resolve(&self) -> io::Result<SocketAddr> {
        if let Some(socket) = self.literal {
            return Ok(socket);
        }
        tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "name has no address"))
    }
}

impl fmt::Display for UpstreamAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The configured regions and the round-robin positions in the home region.
pub struct Upstreams {
    home: RegionName,
    /// Every address, by region; a plan names them by their index here.
    targets: Vec<Target>,
    /// Each region's addresses in `targets`.
    regions: BTreeMap<RegionName, Range<usize>>,
    /// The next round-robin position in the home region, one per proxy thread.
    next: PerThread<AtomicUsize>,
}

/// One address and what the probes found.
#[derive(Debug)]
struct Target {
    addr: UpstreamAddr,
    healthy: AtomicBool,
    failures: AtomicU32,
}

impl Target {
    fn new(addr: UpstreamAddr) -> Self {
        // Up until a probe says otherwise: an edge that starts beside its cores serves at once.
        Target {
            addr,
            healthy: AtomicBool::new(true),
            failures: AtomicU32::new(0),
        }
    }

    fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn record(&self, ok: bool) {
        if ok {
            self.failures.store(0, Ordering::Relaxed);
            if !self.healthy.swap(true, Ordering::Relaxed) {
                tracing::info!(upstream = %self.addr, "upstream is up again");
            }
        } else {
            let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            if failures >= DOWN_AFTER && self.healthy.swap(false, Ordering::Relaxed) {
                tracing::warn!(upstream = %self.addr, failures, "upstream is down");
            }
        }
    }
}

impl fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstreams")
            .field("home", &self.home)
            .field("targets", &self.targets)
            .field("regions", &self.regions)
            .finish_non_exhaustive()
    }
}

impl Upstreams {
    /// Parses `region=host:port[|host:port...]` entries separated by commas; the home region
    /// must be among them.
    pub fn parse(spec: &str, home: RegionName) -> Result<Self, String> {
        let mut regions = BTreeMap::new();
        let mut targets = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (region, addrs) = entry
                .split_once('=')
                .ok_or_else(|| format!("expected region=host:port, got {entry:?}"))?;
            let region = RegionName::parse(region)?;
            let start = targets.len();
            for text in addrs.split('|') {
                targets.push(Target::new(UpstreamAddr::parse(text)?));
            }
            if regions
                .insert(region.clone(), start..targets.len())
                .is_some()
            {
                return Err(format!("region {:?} is listed twice", region.as_str()));
            }
        }
        if !regions.contains_key(&home) {
            return Err(format!(
                "no upstream for the home region {:?} (MERIDIAN_REGION)",
                home.as_str()
            ));
        }
        // Threads start at different positions, so that they do not all begin on one core.
        let mut slot = 0;
        let next = PerThread::new(|| {
            slot += 1;
            AtomicUsize::new(slot - 1)
        });
        Ok(Upstreams {
            home,
            targets,
            regions,
            next,
        })
    }

    pub fn home(&self) -> &RegionName {
        &self.home
    }

    /// The home region's first core address.
    pub fn home_addr(&self) -> &UpstreamAddr {
        &self.targets[self.regions[&self.home].start].addr
    }

    /// The address a plan names by `index`.
    pub fn addr(&self, index: usize) -> &UpstreamAddr {
        &self.targets[index].addr
    }

    /// The addresses one request may try, in order.
    pub fn plan(&self) -> UpstreamPlan {
        let home = self.regions[&self.home].clone();
        let start = self.next.mine().fetch_add(1, Ordering::Relaxed) % home.len();
        let rotated = || home.clone().cycle().skip(start).take(home.len());
        let healthy = |index: &usize| self.targets[*index].is_healthy();
        let mut order: Vec<usize> = Vec::with_capacity(self.targets.len());
        order.extend(rotated().filter(healthy));
        let elsewhere = self
            .regions
            .iter()
            .filter(|(region, _)| **region != self.home)
            .flat_map(|(_, targets)| targets.clone())
            .filter(healthy);
        order.extend(elsewhere);
        order.extend(rotated().filter(|index| !healthy(index)));
        UpstreamPlan { order, tried: 0 }
    }

    /// Whether any address of any region passed its last probes.
    pub fn any_healthy(&self) -> bool {
        self.targets.iter().any(Target::is_healthy)
    }

    /// Probes every address once, concurrently, and records the outcomes.
    pub async fn check_health(&self, client: &reqwest::Client) {
        let probes = self.targets.iter().map(|target| async move {
            let url = format!("http://{}/readyz", target.addr);
            let ok = match client.get(&url).timeout(PROBE_TIMEOUT).send().await {
                Ok(response) => response.status().is_success(),
                Err(_) => false,
            };
            target.record(ok);
        });
        futures::future::join_all(probes).await;
    }
}

/// The candidates for one request, in the order they are tried: indexes for
/// [`Upstreams::addr`].
#[derive(Debug)]
pub struct UpstreamPlan {
    order: Vec<usize>,
    tried: usize,
}

impl UpstreamPlan {
    pub fn has_more(&self) -> bool {
        self.tried < self.order.len()
    }
}

impl Iterator for UpstreamPlan {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let index = *self.order.get(self.tried)?;
        self.tried += 1;
        Some(index)
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
            let literal = !text.contains("core.") && !text.contains("a-b");
            assert_eq!(addr.literal.is_some(), literal, "{text}");
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
        assert_eq!(upstreams.home_addr().as_str(), "10.0.0.1:80");
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
        upstreams.next.mine().store(0, Ordering::Relaxed);
        let name = |index: usize| upstreams.addr(index).to_string();
        let firsts: Vec<String> = (0..4)
            .map(|_| name(upstreams.plan().next().unwrap()))
            .collect();
        assert_eq!(firsts, ["a:1", "b:1", "c:1", "a:1"]);

        let mut plan = upstreams.plan();
        let tried: Vec<String> = plan.by_ref().map(name).collect();
        assert_eq!(tried, ["b:1", "c:1", "a:1"]);
        assert!(!plan.has_more());
    }

    /// The plan of a request that starts at the first home address.
    fn plan_of(upstreams: &Upstreams) -> Vec<String> {
        upstreams.next.mine().store(0, Ordering::Relaxed);
        upstreams
            .plan()
            .map(|index| upstreams.addr(index).to_string())
            .collect()
    }

    fn target<'u>(upstreams: &'u Upstreams, region: &RegionName, index: usize) -> &'u Target {
        &upstreams.targets[upstreams.regions[region].start + index]
    }

    fn mark(upstreams: &Upstreams, region: &RegionName, index: usize, ok: bool) {
        for _ in 0..DOWN_AFTER {
            target(upstreams, region, index).record(ok);
        }
    }

    #[test]
    fn plans_fail_over_to_other_regions_and_keep_the_down_for_last() {
        let eu = region("eu");
        let upstreams = Upstreams::parse("eu=a:1|b:1, us=c:1, ap=d:1", eu.clone()).unwrap();
        assert_eq!(plan_of(&upstreams), ["a:1", "b:1", "d:1", "c:1"]);

        // One failed probe is not enough to take an address out.
        target(&upstreams, &eu, 0).record(false);
        assert_eq!(plan_of(&upstreams), ["a:1", "b:1", "d:1", "c:1"]);
        mark(&upstreams, &eu, 0, false);
        assert_eq!(plan_of(&upstreams), ["b:1", "d:1", "c:1", "a:1"]);

        // The whole home region down: other regions first, then the home ones anyway.
        mark(&upstreams, &eu, 1, false);
        let plan = plan_of(&upstreams);
        assert_eq!(&plan[..2], ["d:1", "c:1"]);
        assert_eq!(plan.len(), 4);

        // A region down elsewhere is skipped entirely; one success brings an address back.
        mark(&upstreams, &region("ap"), 0, false);
        target(&upstreams, &eu, 1).record(true);
        assert_eq!(plan_of(&upstreams)[..2], ["b:1", "c:1"]);
    }
}
