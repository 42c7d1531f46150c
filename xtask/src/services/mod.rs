//! The platform's backing services: Postgres, Redis and a JetStream-enabled NATS.
//!
//! Each is taken from the environment (`DATABASE_URL`, `REDIS_URL`, `NATS_URL`) when set, and
//! otherwise provisioned on this machine: Postgres and Redis as ordinary system services that outlive
//! xtask, NATS as a child of xtask (stopped when [`Services`] is dropped) with project-local data.

pub mod nats;
pub mod postgres;
pub mod redis;

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::cmd;
use crate::layout::Layout;
use crate::shutdown;

/// A service URL and whether it came from the environment (then it is printed redacted).
#[derive(Debug, Clone)]
pub struct ServiceUrl {
    pub url: String,
    pub from_env: bool,
}

impl ServiceUrl {
    pub fn from_env(variable: &str) -> Option<Self> {
        std::env::var(variable)
            .ok()
            .filter(|url| !url.trim().is_empty())
            .map(|url| Self {
                url,
                from_env: true,
            })
    }

    pub fn local(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            from_env: false,
        }
    }

    /// The URL for printing: a password from the environment is replaced by `***`; the fixed dev
    /// password of the local services is shown, it is handy for `psql`.
    pub fn display(&self) -> String {
        let note = if self.from_env { "  (from env)" } else { "" };
        let url = if self.from_env {
            cmd::redact_url(&self.url)
        } else {
            self.url.clone()
        };
        format!("{url}{note}")
    }
}

/// The three services, ready. Dropping it stops the NATS server that xtask started (if any).
pub struct Services {
    pub postgres: ServiceUrl,
    pub redis: ServiceUrl,
    pub nats: nats::Nats,
}

impl Services {
    /// Makes all three answer, provisioning what is missing.
    pub fn ensure(layout: &Layout) -> Result<Self> {
        let postgres = postgres::ensure()?;
        shutdown::check()?;
        let redis = redis::ensure()?;
        shutdown::check()?;
        let nats = nats::ensure(layout)?;
        Ok(Self {
            postgres,
            redis,
            nats,
        })
    }

    /// Sets `DATABASE_URL`, `REDIS_URL` and `NATS_URL` on a command.
    pub fn export_to(&self, command: &mut Command) {
        command
            .env("DATABASE_URL", &self.postgres.url)
            .env("REDIS_URL", &self.redis.url)
            .env("NATS_URL", &self.nats.url.url);
    }

    /// Fails when a service that xtask started has died.
    pub fn ensure_running(&mut self) -> Result<()> {
        self.nats.ensure_running()
    }

    pub fn stop(&mut self) {
        self.nats.stop();
    }
}

/// Whether something accepts TCP connections on `127.0.0.1:port`.
pub fn port_open(port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok()
}

/// Polls `ready` every 200 ms until it holds, `timeout` passes (error naming `what`) or a stop is
/// requested.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{what} did not come up within {} s", timeout.as_secs());
        }
        if shutdown::sleep(Duration::from_millis(200)) {
            bail!("interrupted while waiting for {what}");
        }
    }
}
