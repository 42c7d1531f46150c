//! The core binary's configuration, read once from the environment.
//!
//! Every knob has a default that works with `cargo xtask up`; nothing of the dev profile is
//! active unless `MERIDIAN_PROFILE=dev` is set.

use std::{fmt, net::SocketAddr, str::FromStr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Dev,
    Prod,
}

#[derive(Clone)]
pub struct Settings {
    pub profile: Profile,
    /// The region this process serves (`local` by default).
    pub region: String,
    /// Every region of the deployment (`MERIDIAN_REGIONS`, this region by default); each owns
    /// its own stock quota.
    pub regions: Vec<String>,
    /// The services this process hosts, as named on the command line (`all` by default).
    pub services: Vec<String>,
    pub http_addr: SocketAddr,
    pub ops_addr: SocketAddr,
    pub database_url: String,
    pub redis_url: String,
    pub nats_url: String,
    /// Prefix of every subject and stream name.
    pub nats_prefix: String,
    /// Prefix of every Redis key.
    pub redis_prefix: String,
    /// Connections per service pool.
    pub db_pool_size: u32,
    /// Where services keep local state that can be rebuilt (the search index):
    /// `MERIDIAN_DATA_DIR`, `.meridian/data` by default.
    pub data_dir: std::path::PathBuf,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs may carry passwords: show only their scheme and host.
        f.debug_struct("Settings")
            .field("profile", &self.profile)
            .field("region", &self.region)
            .field("services", &self.services)
            .field("http_addr", &self.http_addr)
            .field("ops_addr", &self.ops_addr)
            .field("database", &redact(&self.database_url))
            .field("redis", &redact(&self.redis_url))
            .field("nats", &redact(&self.nats_url))
            .field("nats_prefix", &self.nats_prefix)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{host}")
        }
        None => "<unparsable url>".into(),
    }
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |key: &str, default: &str| lookup(key).unwrap_or_else(|| default.to_owned());
        let parse = |key: &str, default: &str| -> anyhow::Result<SocketAddr> {
            let raw = get(key, default);
            SocketAddr::from_str(&raw)
                .map_err(|e| anyhow::anyhow!("{key}={raw:?} is not a socket address: {e}"))
        };
        let profile = match get("MERIDIAN_PROFILE", "prod").as_str() {
            "dev" => Profile::Dev,
            "prod" => Profile::Prod,
            other => anyhow::bail!("MERIDIAN_PROFILE={other:?}: expected `dev` or `prod`"),
        };
        let region = get("MERIDIAN_REGION", "local");
        anyhow::ensure!(
            !region.is_empty()
                && region.len() <= 32
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "MERIDIAN_REGION={region:?}: expected 1 to 32 of [a-z0-9-]"
        );
        let mut regions: Vec<String> = get("MERIDIAN_REGIONS", &region)
            .split(',')
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect();
        if !regions.contains(&region) {
            regions.push(region.clone());
        }
        let db_pool_size = get("MERIDIAN_DB_POOL_SIZE", "10");
        Ok(Self {
            profile,
            region,
            regions,
            services: get("MERIDIAN_SERVICES", "all")
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            http_addr: parse("MERIDIAN_HTTP_ADDR", "127.0.0.1:8081")?,
            ops_addr: parse("MERIDIAN_OPS_ADDR", "127.0.0.1:9181")?,
            database_url: get(
                "DATABASE_URL",
                "postgres://meridian:meridian@127.0.0.1:5432/meridian?sslmode=disable",
            ),
            redis_url: get("REDIS_URL", "redis://127.0.0.1:6379"),
            nats_url: get("NATS_URL", "nats://127.0.0.1:14222"),
            nats_prefix: get("MERIDIAN_NATS_PREFIX", "meridian"),
            redis_prefix: get("MERIDIAN_REDIS_PREFIX", "meridian"),
            db_pool_size: db_pool_size.parse().map_err(|_| {
                anyhow::anyhow!("MERIDIAN_DB_POOL_SIZE={db_pool_size:?} is not a number")
            })?,
            data_dir: get("MERIDIAN_DATA_DIR", ".meridian/data").into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_environment() {
        let settings = Settings::from_lookup(|_| None).expect("defaults are valid");
        assert_eq!(settings.profile, Profile::Prod);
        assert_eq!(settings.region, "local");
        assert_eq!(settings.regions, ["local"]);
        assert_eq!(settings.services, ["all"]);
        assert_eq!(settings.http_addr.port(), 8081);
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        let error = Settings::from_lookup(|key| {
            (key == "MERIDIAN_HTTP_ADDR").then(|| "not-an-address".to_owned())
        })
        .expect_err("invalid address");
        assert!(error.to_string().contains("MERIDIAN_HTTP_ADDR"));
    }

    #[test]
    fn debug_output_hides_passwords() {
        let settings = Settings::from_lookup(|key| {
            (key == "DATABASE_URL").then(|| "postgres://u:secret@db:5432/x".to_owned())
        })
        .expect("valid");
        let shown = format!("{settings:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("postgres://db:5432/x"));
    }
}
