//! Rate limits: GCRA (the generic cell rate algorithm) per key, in this process.
//!
//! A [`Quota`] is a sustained rate and a burst. For each key the limiter keeps one number, the
//! theoretical arrival time (TAT) of the next request at the sustained rate; a request is let
//! through when it does not push the TAT more than `burst` intervals past now. Over any window
//! `W` a key gets at most `burst + W × rate` requests, exactly, whatever the request pattern:
//! there are no window boundaries to game.
//!
//! Keys are hashed with a per-process random key (so clients cannot aim collisions at someone
//! else's bucket) into sharded maps. A key whose TAT has passed holds nothing worth keeping, so
//! when a shard reaches its share of [`MAX_KEYS`] those keys are dropped; the map stays bounded
//! however many addresses a flood rotates through.
//!
//! What is keyed on what ([`Limits`]): every request by client address (IPv6 by its /64, the
//! smallest block one subscriber gets), signed-in requests also by user, sign-in routes by
//! address with a much smaller quota, and checkout by account.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

const SHARDS: usize = 16;
/// Keys remembered at most, over all shards.
pub const MAX_KEYS: usize = 1 << 20;
const NANOS_PER_S: f64 = 1e9;

/// A sustained rate (requests per second) and how many may come at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub per_second: f64,
    pub burst: u32,
}

impl Quota {
    /// Reads `RATE:BURST`, e.g. `50:100` or `0.2:10`.
    pub fn parse(text: &str) -> Result<Quota, String> {
        let (rate, burst) = text.trim().split_once(':').ok_or_else(|| {
            format!("expected RATE:BURST (requests per second, burst), got {text:?}")
        })?;
        let per_second: f64 = rate
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r > 0.0 && *r <= 1e6)
            .ok_or_else(|| format!("the rate must be a number above 0, got {rate:?}"))?;
        let burst: u32 = burst
            .parse()
            .ok()
            .filter(|b| (1..=1_000_000).contains(b))
            .ok_or_else(|| format!("the burst must be 1 to 1000000, got {burst:?}"))?;
        Ok(Quota { per_second, burst })
    }

    pub fn interval_ns(self) -> u64 {
        // At most 1e6/s, so at least 1000 ns.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let interval = (NANOS_PER_S / self.per_second) as u64;
        interval.max(1)
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The burst (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests left right now (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Seconds until the bucket is full again (`RateLimit-Reset`).
    pub reset_s: u64,
    /// Seconds to wait before a retry can pass (`Retry-After`), when refused.
    pub retry_after_s: u64,
}

impl Decision {
    /// The tighter of two decisions: a refusal wins, then the fewer remaining.
    pub fn tighter(self, other: Decision) -> Decision {
        match (self.allowed, other.allowed) {
            (false, true) => self,
            (true, false) => other,
            _ if other.remaining < self.remaining => other,
            _ => self,
        }
    }
}

fn ceil_seconds(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000)
}

pub struct Limiter {
    quota: Quota,
    interval_ns: u64,
    /// `burst × interval`: how far past now the TAT may run.
    tolerance_ns: u64,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<u64, u64>>>,
}

impl Limiter {
    pub fn new(quota: Quota) -> Self {
        let interval_ns = quota.interval_ns();
        Limiter {
            quota,
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(u64::from(quota.burst)),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Counts a request of `key` at `now_ns` (nanoseconds on a monotonic clock).
    pub fn check(&self, key: &impl Hash, now_ns: u64) -> Decision {
        let hash = self.hasher.hash_one(key);
        #[allow(clippy::cast_possible_truncation)]
        let shard = &self.shards[(hash as usize) % SHARDS];
        let mut tats = shard.lock().unwrap_or_else(|p| p.into_inner());
        let tat = tats.get(&hash).copied().unwrap_or(now_ns).max(now_ns);
        let next = tat.saturating_add(self.interval_ns);
        let ahead = next - now_ns;
        if ahead > self.tolerance_ns {
            let waited = ahead - self.tolerance_ns;
            return Decision {
                allowed: false,
                limit: self.quota.burst,
                remaining: 0,
                reset_s: ceil_seconds(tat - now_ns),
                retry_after_s: ceil_seconds(waited).max(1),
            };
        }
        if tats.len() >= MAX_KEYS / SHARDS && !tats.contains_key(&hash) {
            tats.retain(|_, tat| *tat > now_ns);
        }
        tats.insert(hash, next);
        let left = (self.tolerance_ns - ahead) / self.interval_ns;
        Decision {
            allowed: true,
            limit: self.quota.burst,
            remaining: u32::try_from(left).unwrap_or(u32::MAX),
            reset_s: ceil_seconds(ahead),
            retry_after_s: 0,
        }
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

/// The bucket an address counts against: IPv4 as is, IPv6 by its /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
}

impl ClientKey {
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientKey::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let octets = v6.octets();
                let mut prefix = [0; 8];
                prefix.copy_from_slice(&octets[..8]);
                ClientKey::V6Prefix(prefix)
            }
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientKey::V4(octets) => write!(f, "{}", std::net::Ipv4Addr::from(*octets)),
            ClientKey::V6Prefix(prefix) => {
                for pair in prefix.chunks(2) {
                    write!(f, "{:02x}{:02x}:", pair[0], pair[1])?;
                }
                f.write_str(":/64")
            }
        }
    }
}

/// Route classes with their own, smaller quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// Sign-in, registration and token refresh: guessing passwords and minting accounts.
    SignIn,
    /// `POST /orders`: counted per account.
    Checkout,
    Other,
}

impl RouteClass {
    pub fn of(method: &str, path: &str) -> RouteClass {
        let path = path.trim_end_matches('/');
        match (method, path) {
            ("POST", "/users/login" | "/users/register" | "/users/token/refresh") => {
                RouteClass::SignIn
            }
            ("POST", "/orders") => RouteClass::Checkout,
            _ => RouteClass::Other,
        }
    }
}

/// The quotas of the edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quotas {
    /// Every request, per client address.
    pub per_client: Quota,
    /// Signed-in requests, per user.
    pub per_user: Quota,
    /// Sign-in routes, per client address.
    pub sign_in: Quota,
    /// Checkouts, per account.
    pub checkout: Quota,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            per_client: Quota {
                per_second: 50.0,
                burst: 100,
            },
            per_user: Quota {
                per_second: 20.0,
                burst: 40,
            },
            sign_in: Quota {
                per_second: 0.2,
                burst: 10,
            },
            checkout: Quota {
                per_second: 0.5,
                burst: 5,
            },
        }
    }
}

pub struct Limits {
    quotas: Quotas,
    per_client: Limiter,
    per_user: Limiter,
    sign_in: Limiter,
    checkout: Limiter,
    epoch: Instant,
}

impl Limits {
    pub fn new(quotas: Quotas) -> Self {
        Limits {
            quotas,
            per_client: Limiter::new(quotas.per_client),
            per_user: Limiter::new(quotas.per_user),
            sign_in: Limiter::new(quotas.sign_in),
            checkout: Limiter::new(quotas.checkout),
            epoch: Instant::now(),
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The buckets (named) and quotas one request is charged to: what the global limit keeps.
    pub fn buckets(
        &self,
        class: RouteClass,
        client: ClientKey,
        user: Option<&str>,
    ) -> Vec<(String, Quota)> {
        let mut buckets = vec![(format!("client:{client}"), self.quotas.per_client)];
        if let Some(user) = user {
            buckets.push((format!("user:{user}"), self.quotas.per_user));
        }
        match (class, user) {
            (RouteClass::SignIn, _) => {
                buckets.push((format!("sign-in:{client}"), self.quotas.sign_in));
            }
            (RouteClass::Checkout, Some(user)) => {
                buckets.push((format!("checkout:{user}"), self.quotas.checkout));
            }
            _ => {}
        }
        buckets
    }

    /// Counts one request of `class` from `client`, signed in as `user` (if so). Every quota
    /// that applies is charged; the answer is the tightest.
    pub fn check(&self, class: RouteClass, client: ClientKey, user: Option<&str>) -> Decision {
        let now = self.now_ns();
        let mut decision = self.per_client.check(&client, now);
        if let Some(user) = user {
            decision = decision.tighter(self.per_user.check(&user, now));
        }
        match (class, user) {
            (RouteClass::SignIn, _) => decision.tighter(self.sign_in.check(&client, now)),
            (RouteClass::Checkout, Some(user)) => decision.tighter(self.checkout.check(&user, now)),
            _ => decision,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    /// Sends to `limiter` every `gap_ns` for `window_ns`: (requests let through, requests sent).
    fn admitted(limiter: &Limiter, gap_ns: u64, window_ns: u64) -> (u64, u64) {
        let (mut now, mut passed, mut sent) = (0, 0, 0);
        while now < window_ns {
            sent += 1;
            if limiter.check(&"k", now).allowed {
                passed += 1;
            }
            now += gap_ns;
        }
        (passed, sent)
    }

    #[test]
    fn a_flood_gets_the_burst_plus_the_rate() {
        for (per_second, burst) in [(50.0, 100), (1.0, 5), (0.2, 10), (1000.0, 1)] {
            let limiter = Limiter::new(Quota { per_second, burst });
            // 10 seconds of a request every 100 µs.
            let (passed, _) = admitted(&limiter, 100_000, 10 * SECOND);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let expected = f64::from(burst) + 10.0 * per_second;
            let error = (passed as f64 - expected).abs() / expected;
            assert!(
                error <= 0.10,
                "{per_second}/s burst {burst}: {passed} passed, expected about {expected}"
            );
        }
    }

    #[test]
    fn a_steady_client_under_the_rate_is_never_refused() {
        let limiter = Limiter::new(Quota {
            per_second: 10.0,
            burst: 1,
        });
        // 9 per second for a minute.
        let (passed, sent) = admitted(&limiter, SECOND / 9, 60 * SECOND);
        assert_eq!(passed, sent);
        assert!(sent >= 9 * 60);
    }

    #[test]
    fn refusals_say_when_to_come_back() {
        let limiter = Limiter::new(Quota {
            per_second: 0.5,
            burst: 2,
        });
        let first = limiter.check(&"k", 0);
        assert!(first.allowed);
        assert_eq!((first.limit, first.remaining), (2, 1));
        assert!(limiter.check(&"k", 0).allowed);
        let refused = limiter.check(&"k", 0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_s, 2);
        assert!(!limiter.check(&"k", SECOND).allowed);
        assert!(limiter.check(&"k", 2 * SECOND).allowed);
        // Another key has its own bucket.
        assert!(limiter.check(&"other", 0).allowed);
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        let a = ClientKey::of("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ClientKey::of("2001:db8:1:2:ffff:1:2:3".parse().unwrap());
        let c = ClientKey::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            ClientKey::of("::ffff:198.51.100.7".parse().unwrap()),
            ClientKey::of("198.51.100.7".parse().unwrap())
        );
    }

    #[test]
    fn the_key_map_stays_bounded_under_a_rotating_flood() {
        let limiter = Limiter::new(Quota {
            per_second: 1000.0,
            burst: 1,
        });
        for n in 0..(MAX_KEYS as u64 + 50_000) {
            // One new key per microsecond: each bucket drains 1 ms later.
            limiter.check(&n, n * 1000);
        }
        assert!(limiter.keys() <= MAX_KEYS);
    }

    #[test]
    fn buckets_are_named_by_what_they_count() {
        let limits = Limits::new(Quotas::default());
        let v6 = ClientKey::of("2001:db8:1:2::9".parse().unwrap());
        assert_eq!(v6.to_string(), "2001:0db8:0001:0002::/64");
        let names: Vec<String> = limits
            .buckets(RouteClass::Checkout, v6, Some("u1"))
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            names,
            ["client:2001:0db8:0001:0002::/64", "user:u1", "checkout:u1"]
        );
        let v4 = ClientKey::of("192.0.2.1".parse().unwrap());
        assert_eq!(limits.buckets(RouteClass::SignIn, v4, None).len(), 2);
    }

    #[test]
    fn classes_and_quotas_parse() {
        assert_eq!(RouteClass::of("POST", "/users/login"), RouteClass::SignIn);
        assert_eq!(
            RouteClass::of("POST", "/users/register/"),
            RouteClass::SignIn
        );
        assert_eq!(RouteClass::of("POST", "/orders"), RouteClass::Checkout);
        assert_eq!(RouteClass::of("GET", "/orders"), RouteClass::Other);
        assert_eq!(
            Quota::parse("0.2:10"),
            Ok(Quota {
                per_second: 0.2,
                burst: 10
            })
        );
        for bad in ["10", "0:5", "-1:5", "5:0", "x:1", "NaN:3", "inf:3"] {
            assert!(Quota::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sign_in_is_stricter_and_checkout_is_per_account() {
        let limits = Limits::new(Quotas::default());
        let client = ClientKey::of("203.0.113.5".parse().unwrap());
        let logins = (0..20)
            .filter(|_| limits.check(RouteClass::SignIn, client, None).allowed)
            .count();
        assert_eq!(logins, 10);
        let other = ClientKey::of("203.0.113.6".parse().unwrap());
        let checkouts = (0..20)
            .filter(|_| {
                limits
                    .check(RouteClass::Checkout, other, Some("user-1"))
                    .allowed
            })
            .count();
        assert_eq!(checkouts, 5);
        assert!(
            limits
                .check(RouteClass::Checkout, other, Some("user-2"))
                .allowed
        );
    }
}
