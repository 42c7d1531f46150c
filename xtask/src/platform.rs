//! The Meridian processes: `meridian-core migrate` / `seed-dev`, one `meridian-core serve` per region
//! and one `meridian-edge` in front of them, started as children of xtask and stopped in reverse
//! order (edge first) when [`Platform`] is stopped or dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::admin::AdminLogin;
use crate::cargo::{self, Profile};
use crate::cmd;
use crate::http;
use crate::layout::Layout;
use crate::process::{self, ManagedChild};
use crate::services::Services;

const CORE_BINARY: &str = "meridian-core";
const EDGE_BINARY: &str = "meridian-edge";
const CORE_READY_TIMEOUT: Duration = Duration::from_secs(90);
const EDGE_READY_TIMEOUT: Duration = Duration::from_secs(60);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Regions from `MERIDIAN_REGIONS` (comma-separated, default `local`). Region `i` gets the core
/// ports 8081+i / 9181+i; the first region is the edge's home region.
pub fn regions() -> Result<Vec<String>> {
    parse_regions(&std::env::var("MERIDIAN_REGIONS").unwrap_or_default())
}

fn parse_regions(text: &str) -> Result<Vec<String>> {
    let mut regions: Vec<String> = Vec::new();
    for region in text
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        ensure!(
            region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "MERIDIAN_REGIONS: region `{region}` may only use a-z, 0-9 and `-`"
        );
        ensure!(
            !regions.iter().any(|known| known == region),
            "MERIDIAN_REGIONS names `{region}` twice"
        );
        regions.push(region.to_owned());
    }
    if regions.is_empty() {
        regions.push("local".to_owned());
    }
    Ok(regions)
}

/// The ports of one platform: a core (HTTP, ops) per region, and the edge.
#[derive(Debug, Clone)]
pub struct Ports {
    pub core_http: Vec<u16>,
    pub core_ops: Vec<u16>,
    pub edge_http: u16,
    pub edge_https: u16,
    pub edge_ops: u16,
}

impl Ports {
    /// The documented local ports: edge 8080/8443/9180, region `i`'s core 8081+i and 9181+i.
    pub fn standard(regions: usize) -> Result<Self> {
        ensure!(
            regions <= 99,
            "{regions} regions do not fit the local port plan"
        );
        let offsets = 0..u16::try_from(regions)?;
        Ok(Self {
            core_http: offsets.clone().map(|i| 8081 + i).collect(),
            core_ops: offsets.map(|i| 9181 + i).collect(),
            edge_http: 8080,
            edge_https: 8443,
            edge_ops: 9180,
        })
    }

    /// Ports the kernel reports free right now (for benchmarks next to a running `up`).
    pub fn free(regions: usize) -> Result<Self> {
        let take = || -> Result<u16> {
            let listener = TcpListener::bind(("127.0.0.1", 0)).context("no free local port")?;
            Ok(listener.local_addr()?.port())
        };
        // Hold no listener: ports are picked one after another; a clash is very unlikely.
        let mut core_http = Vec::new();
        let mut core_ops = Vec::new();
        for _ in 0..regions {
            core_http.push(take()?);
            core_ops.push(take()?);
        }
        Ok(Self {
            core_http,
            core_ops,
            edge_http: take()?,
            edge_https: take()?,
            edge_ops: take()?,
        })
    }

    /// Fails, naming the port, when one is already taken.
    pub fn ensure_free(&self) -> Result<()> {
        let named = self
            .core_http
            .iter()
            .map(|port| (*port, "core HTTP"))
            .chain(self.core_ops.iter().map(|port| (*port, "core ops")))
            .chain([
                (self.edge_http, "edge HTTP"),
                (self.edge_https, "edge HTTPS"),
                (self.edge_ops, "edge ops"),
            ]);
        for (port, what) in named {
            if TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).is_err() {
                bail!(
                    "port {port} ({what}) is already in use; is another `cargo xtask up` running? \
                     (`ss -ltnp 'sport = :{port}'` shows who holds it)"
                );
            }
        }
        Ok(())
    }
}

pub struct Binaries {
    core: PathBuf,
    edge: PathBuf,
}

impl Binaries {
    pub fn locate(layout: &Layout, profile: Profile) -> Result<Self> {
        Ok(Self {
            core: cargo::binary(layout, profile, CORE_BINARY)?,
            edge: cargo::binary(layout, profile, EDGE_BINARY)?,
        })
    }

    /// The edge binary, for benchmarks that start edges of their own.
    pub fn edge(&self) -> &std::path::Path {
        &self.edge
    }
}

/// `meridian-core` with the settings every subcommand shares. The dev profile is always explicit.
fn core_command(binaries: &Binaries, services: &Services, region: &str) -> Command {
    let mut command = cmd::command(&binaries.core);
    command
        .env("MERIDIAN_PROFILE", "dev")
        .env("MERIDIAN_REGION", region);
    services.export_to(&mut command);
    command
}

/// `meridian-core migrate` (schemas and JetStream streams), then `seed-dev` (admin and demo catalog).
/// Both are idempotent, so every `up` runs them.
pub fn migrate_and_seed(
    layout: &Layout,
    binaries: &Binaries,
    services: &Services,
    region: &str,
    admin: &AdminLogin,
) -> Result<()> {
    println!("xtask: migrating (meridian-core migrate)");
    cmd::run(
        core_command(binaries, services, region)
            .current_dir(layout.root())
            .arg("migrate"),
    )
    .context("migrations failed")?;
    println!("xtask: seeding the dev profile (meridian-core seed-dev)");
    cmd::run(
        core_command(binaries, services, region)
            .current_dir(layout.root())
            .env("MERIDIAN_ADMIN_EMAIL", &admin.email)
            .env("MERIDIAN_ADMIN_PASSWORD", &admin.password)
            .arg("seed-dev"),
    )
    .context("seeding the dev profile failed")
}

/// What to start.
pub struct Launch<'a> {
    pub layout: &'a Layout,
    pub binaries: &'a Binaries,
    pub services: &'a Services,
    pub regions: &'a [String],
    pub ports: &'a Ports,
    /// Prefix of log and pid names (`bench-` keeps benchmarks apart from `up`).
    pub name_prefix: &'a str,
    /// Whether the edge applies its rate limits. Benchmarks and load tests send everything
    /// from one address, at rates no shopper reaches: they measure with the limits off.
    pub rate_limits: bool,
    /// Whether the edge caches public GETs (purged by catalog events on the same NATS).
    pub edge_cache: bool,
    /// The embedding model's directory, for the recommendations service.
    pub embed_model: &'a std::path::Path,
}

pub struct CoreEndpoint {
    pub region: String,
    pub http: String,
    pub ops: String,
}

pub struct EdgeEndpoint {
    pub http: String,
    pub https: String,
    pub ops: String,
}

/// The running processes; stopped edge first, then the cores.
pub struct Platform {
    pub cores: Vec<CoreEndpoint>,
    pub edge: EdgeEndpoint,
    /// In start order.
    children: Vec<ManagedChild>,
}

impl Platform {
    pub fn start(launch: &Launch<'_>) -> Result<Self> {
        let Launch {
            layout,
            binaries,
            services,
            regions,
            ports,
            name_prefix,
            rate_limits,
            edge_cache,
            embed_model,
        } = *launch;
        ensure!(
            ports.core_http.len() == regions.len() && ports.core_ops.len() == regions.len(),
            "one core port pair per region is needed"
        );
        let mut children = Vec::new();
        let mut cores = Vec::new();
        for (index, region) in regions.iter().enumerate() {
            let name = format!("{name_prefix}core-{region}");
            stop_leftover(layout, &name, CORE_BINARY)?;
            let http_addr = format!("127.0.0.1:{}", ports.core_http[index]);
            let ops_addr = format!("127.0.0.1:{}", ports.core_ops[index]);
            let mut command = core_command(binaries, services, region);
            command
                .current_dir(layout.root())
                .env("MERIDIAN_SERVICES", "all")
                .env("MERIDIAN_DATA_DIR", layout.data())
                .env("MERIDIAN_EMBED_MODEL_DIR", embed_model)
                .env(crate::model::SPIN_LIMIT.0, crate::model::SPIN_LIMIT.1)
                .env("MERIDIAN_HTTP_ADDR", &http_addr)
                .env("MERIDIAN_OPS_ADDR", &ops_addr)
                .arg("serve");
            let mut child = ManagedChild::spawn(layout, &name, command)?;
            let readyz = format!("http://{http_addr}/readyz");
            child.wait_ready(&format!("GET {readyz}"), CORE_READY_TIMEOUT, || {
                answers_ok(&readyz)
            })?;
            println!("xtask: {name} ready on {http_addr}");
            children.push(child);
            cores.push(CoreEndpoint {
                region: region.clone(),
                http: format!("http://{http_addr}"),
                ops: format!("http://{ops_addr}"),
            });
        }

        let name = format!("{name_prefix}edge");
        stop_leftover(layout, &name, EDGE_BINARY)?;
        let upstreams = regions
            .iter()
            .zip(&ports.core_http)
            .map(|(region, port)| format!("{region}=127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let edge = EdgeEndpoint {
            http: format!("http://127.0.0.1:{}", ports.edge_http),
            https: format!("https://127.0.0.1:{}", ports.edge_https),
            ops: format!("http://127.0.0.1:{}", ports.edge_ops),
        };
        let mut command = cmd::command(&binaries.edge);
        command
            .current_dir(layout.root())
            .env("MERIDIAN_REGION", &regions[0])
            .env("MERIDIAN_EDGE_UPSTREAMS", &upstreams)
            .env("MERIDIAN_EDGE_HTTP_ADDR", strip_scheme(&edge.http))
            .env("MERIDIAN_EDGE_HTTPS_ADDR", strip_scheme(&edge.https))
            .env("MERIDIAN_EDGE_OPS_ADDR", strip_scheme(&edge.ops))
            .env("MERIDIAN_EDGE_TLS_DIR", layout.edge_tls())
            // Nothing long-running goes through a development edge: stop within a second.
            .env("MERIDIAN_EDGE_GRACE_PERIOD_S", "1");
        if !rate_limits {
            command.env("MERIDIAN_EDGE_RATE_LIMITS", "off");
        }
        if edge_cache {
            // NATS_URL, for the catalog events that purge the cache.
            services.export_to(&mut command);
            command.env("MERIDIAN_EDGE_CACHE", "on");
        }
        let mut child = ManagedChild::spawn(layout, &name, command)?;
        let healthz = format!("{}/healthz", edge.http);
        child.wait_ready(&format!("GET {healthz}"), EDGE_READY_TIMEOUT, || {
            answers_ok(&healthz)
        })?;
        println!("xtask: {name} ready on {}", strip_scheme(&edge.http));
        children.push(child);

        Ok(Self {
            cores,
            edge,
            children,
        })
    }

    /// Fails, quoting its log, when a process has died.
    pub fn ensure_running(&mut self) -> Result<()> {
        self.children
            .iter_mut()
            .try_for_each(ManagedChild::ensure_running)
    }

    pub fn stop(&mut self) {
        self.children.iter_mut().rev().for_each(ManagedChild::stop);
    }

    /// Names and log files, for the summary.
    pub fn logs(&self) -> impl Iterator<Item = (&str, &std::path::Path)> {
        self.children
            .iter()
            .map(|child| (child.name(), child.log()))
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.stop();
    }
}

fn answers_ok(url: &str) -> bool {
    http::get(url, PROBE_TIMEOUT).is_ok_and(|response| response.is_success())
}

fn strip_scheme(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}

/// A process of the same name from an earlier run: stopped when its xtask is gone, an error while
/// that xtask still runs.
fn stop_leftover(layout: &Layout, name: &str, program: &str) -> Result<()> {
    if let Some(recorded) = process::recorded(layout, name, program) {
        if recorded.owner_alive {
            bail!("{name} is already running under another xtask; stop that one first (Ctrl-C)");
        }
        recorded.terminate(name, program);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_default_to_local_and_keep_order() {
        assert_eq!(parse_regions("").unwrap(), ["local"]);
        assert_eq!(
            parse_regions(" eu-west, us-east ,").unwrap(),
            ["eu-west", "us-east"]
        );
        assert!(parse_regions("EU").is_err());
        assert!(parse_regions("a,a").is_err());
    }

    #[test]
    fn standard_ports_follow_the_region_index() {
        let ports = Ports::standard(2).unwrap();
        assert_eq!(ports.core_http, [8081, 8082]);
        assert_eq!(ports.core_ops, [9181, 9182]);
        assert_eq!(
            (ports.edge_http, ports.edge_https, ports.edge_ops),
            (8080, 8443, 9180)
        );
    }
}
