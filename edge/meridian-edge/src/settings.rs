//! The edge's configuration: one [`Settings`] value, read once from the environment by `main`.
//!
//! Parsing is a pure function of a variable lookup ([`Settings::from_lookup`]) so the rules are
//! unit-tested without touching the process environment. Every error names the variable at fault:
//! the operator sees it on stderr and the process exits with code 2 instead of panicking later.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use crate::ratelimit::{Quota, Quotas};
use crate::upstreams::{RegionName, Upstreams};

const HTTP_ADDR: &str = "MERIDIAN_EDGE_HTTP_ADDR";
const HTTPS_ADDR: &str = "MERIDIAN_EDGE_HTTPS_ADDR";
const OPS_ADDR: &str = "MERIDIAN_EDGE_OPS_ADDR";
const TLS_CERT: &str = "MERIDIAN_EDGE_TLS_CERT";
const TLS_KEY: &str = "MERIDIAN_EDGE_TLS_KEY";
const TLS_DIR: &str = "MERIDIAN_EDGE_TLS_DIR";
const REGION: &str = "MERIDIAN_REGION";
const UPSTREAMS: &str = "MERIDIAN_EDGE_UPSTREAMS";
const THREADS: &str = "MERIDIAN_EDGE_THREADS";
const WORK_STEALING: &str = "MERIDIAN_EDGE_WORK_STEALING";
const GRACE_PERIOD: &str = "MERIDIAN_EDGE_GRACE_PERIOD_S";
const JWKS_URL: &str = "MERIDIAN_EDGE_JWKS_URL";
const TRUSTED_HOPS: &str = "MERIDIAN_EDGE_TRUSTED_HOPS";
const RATE_LIMITS: &str = "MERIDIAN_EDGE_RATE_LIMITS";
const RATE_CLIENT: &str = "MERIDIAN_EDGE_RATE_CLIENT";
const RATE_USER: &str = "MERIDIAN_EDGE_RATE_USER";
const RATE_SIGN_IN: &str = "MERIDIAN_EDGE_RATE_SIGN_IN";
const RATE_CHECKOUT: &str = "MERIDIAN_EDGE_RATE_CHECKOUT";
const REDIS_URL: &str = "MERIDIAN_EDGE_REDIS_URL";
const HTTPS_REDIRECT: &str = "MERIDIAN_EDGE_HTTPS_REDIRECT";
const CACHE: &str = "MERIDIAN_EDGE_CACHE";
const CACHE_MB: &str = "MERIDIAN_EDGE_CACHE_MB";
const NATS_URL: &str = "NATS_URL";
const NATS_PREFIX: &str = "MERIDIAN_NATS_PREFIX";
const REDIS_PREFIX: &str = "MERIDIAN_EDGE_REDIS_PREFIX";
const WAF: &str = "MERIDIAN_EDGE_WAF";
const WAF_RULES: &str = "MERIDIAN_EDGE_WAF_RULES";

/// After SIGTERM the listeners close at once; requests in flight get this long by default.
/// Pingora's own default (5 minutes) outlasts any orchestrator's patience (Kubernetes: 30 s).
const DEFAULT_GRACE_PERIOD_S: u64 = 10;

/// Everything the edge needs to start.
#[derive(Debug)]
pub struct Settings {
    /// The public plain-HTTP listener.
    pub http_addr: SocketAddr,
    /// The public HTTPS listener; `None` when `MERIDIAN_EDGE_HTTPS_ADDR` is set to "".
    pub https: Option<HttpsSettings>,
    /// The ops listener (Prometheus `/metrics`): kept off the public ports on purpose.
    pub ops_addr: SocketAddr,
    /// The cores of every region; requests go to the home region's.
    pub upstreams: Upstreams,
    /// Worker threads of the public proxy service.
    pub threads: NonZeroUsize,
    /// Whether those threads share one work-stealing runtime, rather than each running its own
    /// (the default: see `server`).
    pub work_stealing: bool,
    /// Seconds requests in flight get after SIGTERM (Pingora waits this long even when idle,
    /// so development runs set it low).
    pub grace_period_s: u64,
    /// Where the issuer's signing keys are fetched: by default the JWKS of the home region's
    /// first core.
    pub jwks_url: String,
    /// How many proxies of the operator's stand in front of the edge (0: clients connect
    /// directly, and `X-Forwarded-For` from them is ignored).
    pub trusted_hops: usize,
    /// The rate-limit quotas; `None` when `MERIDIAN_EDGE_RATE_LIMITS=off`.
    pub quotas: Option<Quotas>,
    /// The Redis that edge nodes share their rate-limit budgets in; `None`: each node alone.
    pub redis_url: Option<String>,
    /// The prefix of the edge's Redis keys.
    pub redis_prefix: String,
    /// Whether plain-HTTP requests are redirected to HTTPS (when HTTPS is on).
    pub https_redirect: bool,
    /// The response cache's capacity in bytes; `None` when the cache is off.
    pub cache_bytes: Option<usize>,
    /// The NATS server and subject prefix of the catalog events that purge the cache.
    pub nats_url: String,
    pub nats_prefix: String,
    /// The WAF's rule file, read and checked here so a mistake stops the start.
    pub waf: crate::waf::Config,
}

#[derive(Debug)]
pub struct HttpsSettings {
    pub addr: SocketAddr,
    pub certificate: CertificateSource,
}

/// Where the HTTPS certificate comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum CertificateSource {
    /// PEM files provided by the operator.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed development certificate kept in this directory, created on first start.
    DevDirectory(PathBuf),
}

/// A configuration value the edge cannot start with.
#[derive(Debug)]
pub struct ConfigError {
    variable: &'static str,
    message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Settings {
    /// Reads the process environment. A value that is not UTF-8 is read lossily, so it fails
    /// validation (or names a file that does not exist) rather than being silently ignored.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| {
            std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
        })
    }

    /// Builds the settings from `lookup(variable name)`, applying the documented defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // An empty value means "use the default", except for the HTTPS address where it disables TLS.
        let value = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let http_addr = parse_addr(HTTP_ADDR, value(HTTP_ADDR), "127.0.0.1:8080")?;
        let ops_addr = parse_addr(OPS_ADDR, value(OPS_ADDR), "127.0.0.1:9180")?;
        let https = match lookup(HTTPS_ADDR) {
            Some(addr) if addr.trim().is_empty() => None,
            addr => Some(HttpsSettings {
                addr: parse_addr(HTTPS_ADDR, addr, "127.0.0.1:8443")?,
                certificate: certificate_source(value(TLS_CERT), value(TLS_KEY), value(TLS_DIR))?,
            }),
        };

        // Two listeners on one port would take each other's connections, or one would not bind.
        if shares_port(ops_addr, http_addr) {
            return Err(ConfigError {
                variable: OPS_ADDR,
                message: format!("{ops_addr} is the public HTTP listener's address too"),
            });
        }
        if let Some(https) = &https
            && let Some(other) = [http_addr, ops_addr]
                .into_iter()
                .find(|other| shares_port(https.addr, *other))
        {
            return Err(ConfigError {
                variable: HTTPS_ADDR,
                message: format!("{} is another listener's address too ({other})", https.addr),
            });
        }

        let home = value(REGION).unwrap_or_else(|| "local".to_owned());
        let home = RegionName::parse(&home).map_err(|message| ConfigError {
            variable: REGION,
            message,
        })?;
        let spec = value(UPSTREAMS).unwrap_or_else(|| "local=127.0.0.1:8081".to_owned());
        let upstreams = Upstreams::parse(&spec, home).map_err(|message| ConfigError {
            variable: UPSTREAMS,
            message,
        })?;

        let threads = match value(THREADS) {
            None => std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            Some(threads) => threads.trim().parse().map_err(|_| ConfigError {
                variable: THREADS,
                message: format!("expected a positive number of threads, got {threads:?}"),
            })?,
        };

        let work_stealing = match value(WORK_STEALING).as_deref().map(str::trim) {
            None | Some("off") => false,
            Some("on") => true,
            Some(other) => {
                return Err(ConfigError {
                    variable: WORK_STEALING,
                    message: format!("expected on or off, got {other:?}"),
                });
            }
        };

        let grace_period_s = match value(GRACE_PERIOD) {
            None => DEFAULT_GRACE_PERIOD_S,
            Some(seconds) => seconds
                .trim()
                .parse()
                .ok()
                .filter(|s| *s <= 600)
                .ok_or_else(|| ConfigError {
                    variable: GRACE_PERIOD,
                    message: format!("expected 0 to 600 seconds, got {seconds:?}"),
                })?,
        };

        let jwks_url = match value(JWKS_URL) {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => url,
            Some(url) => {
                return Err(ConfigError {
                    variable: JWKS_URL,
                    message: format!("expected an http:// or https:// URL, got {url:?}"),
                });
            }
            None => format!("http://{}/.well-known/jwks.json", upstreams.home_addr()),
        };

        let trusted_hops = match value(TRUSTED_HOPS) {
            None => 0,
            Some(hops) => hops
                .trim()
                .parse()
                .ok()
                .filter(|h| *h <= 10)
                .ok_or_else(|| ConfigError {
                    variable: TRUSTED_HOPS,
                    message: format!("expected 0 to 10 proxies, got {hops:?}"),
                })?,
        };

        let quotas = match value(RATE_LIMITS).as_deref().map(str::trim) {
            None | Some("on") => {
                let defaults = Quotas::default();
                let quota = |variable: &'static str, default: Quota| match value(variable) {
                    None => Ok(default),
                    Some(text) => {
                        Quota::parse(&text).map_err(|message| ConfigError { variable, message })
                    }
                };
                Some(Quotas {
                    per_client: quota(RATE_CLIENT, defaults.per_client)?,
                    per_user: quota(RATE_USER, defaults.per_user)?,
                    sign_in: quota(RATE_SIGN_IN, defaults.sign_in)?,
                    checkout: quota(RATE_CHECKOUT, defaults.checkout)?,
                })
            }
            Some("off") => None,
            Some(other) => {
                return Err(ConfigError {
                    variable: RATE_LIMITS,
                    message: format!("expected on or off, got {other:?}"),
                });
            }
        };

        let redis_url = match value(REDIS_URL) {
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => Some(url),
            Some(url) => {
                return Err(ConfigError {
                    variable: REDIS_URL,
                    message: format!("expected a redis:// or rediss:// URL, got {url:?}"),
                });
            }
            None => None,
        };
        let redis_prefix = value(REDIS_PREFIX).unwrap_or_else(|| "meridian-edge".to_owned());
        let https_redirect = match value(HTTPS_REDIRECT).as_deref().map(str::trim) {
            None | Some("off") => false,
            Some("on") if https.is_some() => true,
            Some("on") => {
                return Err(ConfigError {
                    variable: HTTPS_REDIRECT,
                    message: "redirecting to HTTPS needs HTTPS (MERIDIAN_EDGE_HTTPS_ADDR is empty)"
                        .into(),
                });
            }
            Some(other) => {
                return Err(ConfigError {
                    variable: HTTPS_REDIRECT,
                    message: format!("expected on or off, got {other:?}"),
                });
            }
        };

        let cache_bytes = match value(CACHE).as_deref().map(str::trim) {
            None | Some("off") => None,
            Some("on") => {
                let megabytes: usize = match value(CACHE_MB) {
                    None => 256,
                    Some(text) => text
                        .trim()
                        .parse()
                        .ok()
                        .filter(|mb| (1..=65_536).contains(mb))
                        .ok_or_else(|| ConfigError {
                            variable: CACHE_MB,
                            message: format!("expected 1 to 65536 MiB, got {text:?}"),
                        })?,
                };
                Some(megabytes << 20)
            }
            Some(other) => {
                return Err(ConfigError {
                    variable: CACHE,
                    message: format!("expected on or off, got {other:?}"),
                });
            }
        };

        let waf_text = match value(WAF_RULES) {
            None => crate::waf::Config::default_file().to_owned(),
            Some(path) => std::fs::read_to_string(path.trim()).map_err(|error| ConfigError {
                variable: WAF_RULES,
                message: format!("cannot read {path:?}: {error}"),
            })?,
        };
        let mut waf = crate::waf::Config::parse(&waf_text).map_err(|message| ConfigError {
            variable: WAF_RULES,
            message,
        })?;
        match value(WAF).as_deref().map(str::trim) {
            None => {}
            Some("block") => waf.mode = crate::waf::Mode::Block,
            Some("detect") => waf.mode = crate::waf::Mode::Detect,
            Some("off") => waf.mode = crate::waf::Mode::Off,
            Some(other) => {
                return Err(ConfigError {
                    variable: WAF,
                    message: format!("expected block, detect or off, got {other:?}"),
                });
            }
        }

        Ok(Settings {
            http_addr,
            https,
            ops_addr,
            upstreams,
            threads,
            work_stealing,
            grace_period_s,
            jwks_url,
            trusted_hops,
            quotas,
            redis_url,
            redis_prefix,
            https_redirect,
            cache_bytes,
            nats_url: value(NATS_URL).unwrap_or_else(|| "nats://127.0.0.1:14222".to_owned()),
            nats_prefix: value(NATS_PREFIX).unwrap_or_else(|| "meridian".to_owned()),
            waf,
        })
    }
}

/// Whether listeners on `a` and `b` would take the same connections: one port, and one
/// address or a wildcard.
fn shares_port(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn parse_addr(
    variable: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    value.trim().parse().map_err(|_| ConfigError {
        variable,
        message: format!("expected an IP address and port such as {default}, got {value:?}"),
    })
}

fn certificate_source(
    cert: Option<String>,
    key: Option<String>,
    dir: Option<String>,
) -> Result<CertificateSource, ConfigError> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(CertificateSource::Files {
            cert: cert.into(),
            key: key.into(),
        }),
        (None, None) => Ok(CertificateSource::DevDirectory(
            dir.unwrap_or_else(|| ".meridian/edge/tls".to_owned())
                .into(),
        )),
        (Some(_), None) => Err(ConfigError {
            variable: TLS_KEY,
            message: format!("must be set together with {TLS_CERT}"),
        }),
        (None, Some(_)) => Err(ConfigError {
            variable: TLS_CERT,
            message: format!("must be set together with {TLS_KEY}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let settings = settings(&[]).unwrap();
        assert_eq!(settings.http_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(settings.ops_addr, "127.0.0.1:9180".parse().unwrap());
        let https = settings.https.unwrap();
        assert_eq!(https.addr, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(
            https.certificate,
            CertificateSource::DevDirectory(".meridian/edge/tls".into())
        );
        assert_eq!(settings.upstreams.home().as_str(), "local");
    }

    #[test]
    fn threads_keep_their_own_runtimes_unless_told_to_steal_work() {
        assert!(!settings(&[]).unwrap().work_stealing);
        assert!(settings(&[(WORK_STEALING, "on")]).unwrap().work_stealing);
        assert!(!settings(&[(WORK_STEALING, " off ")]).unwrap().work_stealing);
        let error = settings(&[(WORK_STEALING, "yes")]).unwrap_err();
        assert_eq!(error.variable, WORK_STEALING);
    }

    #[test]
    fn an_empty_https_address_disables_tls() {
        assert!(settings(&[(HTTPS_ADDR, "")]).unwrap().https.is_none());
    }

    #[test]
    fn certificate_files_must_come_in_pairs() {
        let error = settings(&[(TLS_CERT, "/etc/edge/cert.pem")]).unwrap_err();
        assert_eq!(error.variable, TLS_KEY);
        let both = settings(&[(TLS_CERT, "c.pem"), (TLS_KEY, "k.pem")]).unwrap();
        assert_eq!(
            both.https.unwrap().certificate,
            CertificateSource::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            }
        );
    }

    #[test]
    fn errors_name_the_variable() {
        for (variable, value) in [
            (HTTP_ADDR, "localhost"),
            (OPS_ADDR, "127.0.0.1:99999"),
            (THREADS, "0"),
            (THREADS, "many"),
            (GRACE_PERIOD, "forever"),
            (GRACE_PERIOD, "601"),
            (REGION, "EU West"),
            (UPSTREAMS, "local"),
        ] {
            let error = settings(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable, "{value:?} gave {error}");
        }
    }

    #[test]
    fn every_listener_needs_a_port_of_its_own() {
        let error =
            settings(&[(HTTP_ADDR, "127.0.0.1:7000"), (OPS_ADDR, "127.0.0.1:7000")]).unwrap_err();
        assert_eq!(error.variable, OPS_ADDR);
        let error =
            settings(&[(OPS_ADDR, "0.0.0.0:7001"), (HTTPS_ADDR, "127.0.0.1:7001")]).unwrap_err();
        assert_eq!(error.variable, HTTPS_ADDR);
        assert!(error.to_string().contains("0.0.0.0:7001"), "{error}");
        settings(&[(HTTP_ADDR, "127.0.0.1:7000"), (OPS_ADDR, "127.0.0.2:7000")]).unwrap();
    }

    #[test]
    fn the_home_region_needs_upstreams() {
        let error = settings(&[(REGION, "eu"), (UPSTREAMS, "us=10.0.0.1:80")]).unwrap_err();
        assert_eq!(error.variable, UPSTREAMS);
        assert!(error.to_string().contains("eu"), "{error}");
    }
}
