//! The platform's backing services: Postgres, Redis, a JetStream-enabled NATS and, where mail is
//! wanted, an SMTP server.
//!
//! Each is taken from the environment (`DATABASE_URL`, `REDIS_URL`, `NATS_URL`,
//! `MERIDIAN_SMTP_URL`) when set, and otherwise provisioned on this machine: Postgres and Redis as
//! ordinary system services that outlive xtask, NATS and SMTP as children of xtask (stopped when
//! [`Services`] is dropped) with project-local data.

pub mod nats;
pub mod postgres;
pub mod redis;
pub mod smtp;
pub mod test_streams;

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

/// Where the platform's e-mail goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mail {
    /// To the local SMTP server ([`smtp`]), which xtask starts: tests read what it stored.
    Local,
    /// To `MERIDIAN_SMTP_URL` when set, else to the local server (`cargo xtask up`).
    PreferEnv,
    /// Nowhere: benchmarks measure the platform without a mail server to feed (notifications
    /// are retried and dead-lettered).
    Off,
}

/// The services, ready. Dropping it stops the NATS and SMTP servers that xtask started (if any).
pub struct Services {
    pub postgres: ServiceUrl,
    pub redis: ServiceUrl,
    pub nats: nats::Nats,
    /// The local SMTP server, when one is used.
    pub smtp: Option<smtp::Smtp>,
}

impl Services {
    /// Makes them all answer, provisioning what is missing.
    pub fn ensure(layout: &Layout, mail: Mail) -> Result<Self> {
        let postgres = postgres::ensure()?;
        shutdown::check()?;
        let redis = redis::ensure()?;
        shutdown::check()?;
        let nats = nats::ensure(layout)?;
        shutdown::check()?;
        let smtp = match mail {
            Mail::PreferEnv if ServiceUrl::from_env("MERIDIAN_SMTP_URL").is_some() => {
                println!("xtask: SMTP: using MERIDIAN_SMTP_URL");
                None
            }
            Mail::Local | Mail::PreferEnv => Some(smtp::ensure(layout)?),
            Mail::Off => None,
        };
        Ok(Self {
            postgres,
            redis,
            nats,
            smtp,
        })
    }

    /// Sets `DATABASE_URL`, `REDIS_URL` and `NATS_URL` on a command, and `MERIDIAN_SMTP_URL` and
    /// `MERIDIAN_TEST_MAILDIR` when the local SMTP server is used.
    pub fn export_to(&self, command: &mut Command) {
        command
            .env("DATABASE_URL", &self.postgres.url)
            .env("REDIS_URL", &self.redis.url)
            .env("NATS_URL", &self.nats.url.url);
        if let Some(smtp) = &self.smtp {
            smtp.export_to(command);
        }
    }

    /// Fails when a service that xtask started has died.
    pub fn ensure_running(&mut self) -> Result<()> {
        self.nats.ensure_running()?;
        match &mut self.smtp {
            Some(smtp) => smtp.ensure_running(),
            None => Ok(()),
        }
    }

    pub fn stop(&mut self) {
        if let Some(smtp) = &mut self.smtp {
            smtp.stop();
        }
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
