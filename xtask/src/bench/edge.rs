//! `edge`: the edge against nginx, which the command installs (Debian's package) and starts
//! beside it, in front of the same core, measured in the same run.
//!
//! (a) a cached `GET /products/{id}` from the edge's cache vs nginx `proxy_cache` serving the
//!     same object: goal >= 1.0 of nginx's throughput;
//! (b) the same GET uncached (a `Cookie` keeps it out of the edge's cache; nginx `proxy_pass`
//!     without a cache), upstream keep-alive on both, 2 workers as the edge has 2 threads:
//!     goal >= 0.9 of nginx's throughput;
//! (d) the same GET with a verified access token vs anonymous (both uncached), through the
//!     edge: goal <= 10% cost.
//!
//! Every run also prints the CPU per request of the edge, nginx, the core, Postgres and wrk.
//!
//! (c) the WAF on vs off, and against nginx + ModSecurity + the OWASP CRS: see [`super::edge_waf`].
//!
//! The edge of (a), (b) and (d) runs with its WAF on, as shoppers meet it.
//! wrk (2 threads, 64 connections), the proxies, the core and Postgres share the machine.
//! Every comparison is measured in rounds (see [`super::rounds`]).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::json;

use super::cpu::{Sampler, Usage, micros_row};
use super::harness::Harness;
use super::measurement_seconds;
use super::rounds::{self, ROUNDS, round_seconds};
use super::wrk::{Load, Report};
use crate::admin;
use crate::apt::{self, Need};
use crate::cmd;
use crate::http;
use crate::layout::{Layout, create_dir};
use crate::process::ManagedChild;
use crate::shutdown;

const EDGE_VS_NGINX_GOAL: f64 = 0.9;
const JWT_COST_GOAL: f64 = 0.10;
const WARM_UP_SECONDS: u64 = 2;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(layout: &Layout) -> Result<()> {
    let seconds = measurement_seconds()?;
    apt::ensure(&[Need::new("nginx", "nginx")])?;
    let mut harness = Harness::start_with_cache(layout, true)?;
    let product = super::edge_overhead::first_product_id(harness.core())?;
    let path = format!("/products/{product}");
    let token = access_token(layout, harness.core())?;
    let nginx = Nginx::start(layout, harness.core())?;

    let cookie = "Cookie: bench=1".to_owned();
    let bearer = format!("Authorization: Bearer {token}");
    let targets = [
        ("nginx", nginx.url.clone(), Some(cookie.clone())),
        ("edge", harness.edge().to_owned(), Some(cookie)),
        ("edge+jwt", harness.edge().to_owned(), Some(bearer)),
        ("nginx-cache", nginx.cache_url.clone(), None),
        ("edge-cache", harness.edge().to_owned(), None),
    ];
    for (_, base, header) in &targets {
        load(base, &path, header.as_deref(), WARM_UP_SECONDS).run()?;
    }
    let each = round_seconds(seconds);
    let sampler = Sampler::start();
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let mut runs = Vec::new();
        for (name, base, header) in &targets {
            shutdown::check()?;
            let report = load(base, &path, header.as_deref(), each).run()?;
            runs.push((*name, report, Instant::now()));
            harness.ensure_running()?;
        }
        rounds.push(runs);
    }
    let samples = sampler.stop();
    // The first second of each run is left out (connections opening).
    let window = Duration::from_secs(each - 1);
    let rounds: Vec<Vec<Run<'_>>> = rounds
        .into_iter()
        .map(|runs| {
            runs.into_iter()
                .map(|(name, report, ended)| (name, report, samples.window(ended, window)))
                .collect()
        })
        .collect();
    drop(nginx);
    let binaries = crate::platform::Binaries::locate(layout, crate::cargo::Profile::Release)?;
    let waf = super::edge_waf::run(layout, binaries.edge(), seconds)?;
    print_results(&path, each, &rounds);
    super::edge_waf::print(&waf, seconds);
    Ok(())
}

fn load(base: &str, path: &str, header: Option<&str>, seconds: u64) -> Load {
    let load = Load::get(format!("{base}{path}"), 2, 64, seconds);
    match header {
        Some(header) => load.with_header(header.to_owned()),
        None => load,
    }
}

/// Signs the dev admin in at the core and returns the access token.
fn access_token(layout: &Layout, core: &str) -> Result<String> {
    let admin = admin::resolve(layout)?;
    let url = format!("{core}/users/login");
    let body = json!({"email": admin.email, "password": admin.password}).to_string();
    let response = http::post_json(&url, &body, CALL_TIMEOUT)?;
    ensure!(
        response.is_success(),
        "POST {url} answered {}",
        response.status
    );
    let login: serde_json::Value = serde_json::from_str(&response.body)?;
    login["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("the login answer has no access_token")
}

/// nginx in the foreground on two free ports (plain proxy, and proxy with a cache), stopped
/// when dropped.
struct Nginx {
    child: ManagedChild,
    url: String,
    cache_url: String,
}

impl Nginx {
    fn start(layout: &Layout, core: &str) -> Result<Nginx> {
        let dir = layout.bench().join("nginx");
        create_dir(&dir.join("tmp"))?;
        let free = || -> Result<u16> {
            Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
                .local_addr()?
                .port())
        };
        let (port, cache_port) = (free()?, free()?);
        let upstream = core.trim_start_matches("http://");
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config(&dir, upstream, port, cache_port))
            .with_context(|| format!("cannot write {}", conf.display()))?;
        let mut command = cmd::command("nginx");
        command.arg("-p").arg(&dir).arg("-c").arg(&conf);
        // Its own process group, stopped as a whole: killing the master alone would leave
        // its workers running.
        let child = ManagedChild::spawn(layout, "bench-nginx", command)?;
        let url = format!("http://127.0.0.1:{port}");
        let cache_url = format!("http://127.0.0.1:{cache_port}");
        let mut nginx = Nginx {
            child,
            url,
            cache_url,
        };
        for _ in 0..100 {
            if http::get(&format!("{}/healthz", nginx.url), CALL_TIMEOUT)
                .is_ok_and(|r| r.is_success())
            {
                println!("xtask: nginx ready on 127.0.0.1:{port} in front of {upstream}");
                return Ok(nginx);
            }
            ensure!(
                nginx.child.exit_status().is_none(),
                "nginx exited at start; see {}",
                nginx.child.log().display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!("nginx did not answer within 10 s")
    }
}

/// A plain reverse proxy, and one with a cache, tuned as one would for this: 2 workers,
/// upstream keep-alive, no access log, the cache in memory-backed pages with a lock against
/// stampedes, honouring the core's Cache-Control as the edge does.
fn config(dir: &Path, upstream: &str, port: u16, cache_port: u16) -> String {
    let dir = dir.display();
    format!(
        "# Generated by `cargo xtask bench edge`.\n\
         daemon off;\n\
         worker_processes 2;\n\
         pid {dir}/nginx.pid;\n\
         error_log {dir}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n\
         \x20 access_log off;\n\
         \x20 client_body_temp_path {dir}/tmp/body;\n\
         \x20 proxy_temp_path {dir}/tmp/proxy;\n\
         \x20 fastcgi_temp_path {dir}/tmp/fastcgi;\n\
         \x20 uwsgi_temp_path {dir}/tmp/uwsgi;\n\
         \x20 scgi_temp_path {dir}/tmp/scgi;\n\
         \x20 upstream core {{ server {upstream}; keepalive 128; }}\n\
         \x20 proxy_cache_path {dir}/cache levels=1:2 keys_zone=meridian:10m max_size=256m \
         inactive=10m use_temp_path=off;\n\
         \x20 proxy_http_version 1.1;\n\
         \x20 proxy_set_header Connection \"\";\n\
         \x20 proxy_set_header Host $host;\n\
         \x20 proxy_set_header X-Forwarded-For $remote_addr;\n\
         \x20 server {{\n\
         \x20   listen 127.0.0.1:{port};\n\
         \x20   location / {{ proxy_pass http://core; }}\n\
         \x20 }}\n\
         \x20 server {{\n\
         \x20   listen 127.0.0.1:{cache_port};\n\
         \x20   location / {{ proxy_pass http://core; proxy_cache meridian; proxy_cache_lock on; }}\n\
         \x20 }}\n\
         }}\n"
    )
}

/// A target's name, its load's report, and the CPU used while it ran.
type Run<'a> = (&'a str, Report, Option<Usage>);

/// The processes whose CPU per request (a), (b) and (d) show.
const NAMED: [&str; 5] = ["meridian-edge", "nginx", "meridian-core", "postgres", "wrk"];

fn print_results(path: &str, seconds: u64, rounds: &[Vec<Run<'_>>]) {
    println!();
    println!(
        "GET {path}   (wrk: 2 threads, 64 connections, {seconds} s each; every target in turn, {} \
         rounds)",
        rounds.len()
    );
    for (index, reports) in rounds.iter().enumerate() {
        println!(
            "  {:<12} {:>12} {:>10} {:>10} {:>8}",
            format!("round {}", index + 1),
            "requests/s",
            "p50 ms",
            "p99 ms",
            "failed"
        );
        for (name, report, _) in reports {
            println!(
                "  {:<12} {:>12.1} {:>10.2} {:>10.2} {:>8}",
                name, report.requests_per_sec, report.p50_ms, report.p99_ms, report.failed
            );
        }
    }
    let verdict = |ok: bool| {
        if ok {
            "meets the goal"
        } else {
            "MISSES THE GOAL"
        }
    };
    let rate = |reports: &[Run<'_>], name: &str| {
        reports
            .iter()
            .find(|(n, _, _)| *n == name)
            .map_or(0.0, |(_, r, _)| r.requests_per_sec)
    };
    // The median over the rounds of a figure every round has, and each round's value.
    let by_round = |decimals, figure: &dyn Fn(&[Run<'_>]) -> f64| {
        rounds::median(rounds, decimals, |reports| Some(figure(reports)))
            .unwrap_or((0.0, String::new()))
    };
    let ratio_of = |a: &'static str, b: &'static str| {
        move |reports: &[Run<'_>]| {
            let (a, b) = (rate(reports, a), rate(reports, b));
            if b > 0.0 { a / b } else { 0.0 }
        }
    };
    let (cached, cached_rounds) = by_round(2, &ratio_of("edge-cache", "nginx-cache"));
    println!(
        "  (a) cached GET, edge cache / nginx proxy_cache, median of the rounds: {cached:.2} \
         ({cached_rounds}; goal >= 1.0): {}",
        verdict(cached >= 1.0)
    );
    let (ratio, ratio_rounds) = by_round(2, &ratio_of("edge", "nginx"));
    println!(
        "  (b) uncached GET, edge / nginx proxy_pass, median of the rounds: {ratio:.2} \
         ({ratio_rounds}; goal >= {EDGE_VS_NGINX_GOAL}): {}",
        verdict(ratio >= EDGE_VS_NGINX_GOAL)
    );
    let (cost, cost_rounds) = by_round(1, &|reports: &[Run<'_>]| {
        let (jwt, anonymous) = (rate(reports, "edge+jwt"), rate(reports, "edge"));
        if anonymous > 0.0 {
            (1.0 - jwt / anonymous) * 100.0
        } else {
            100.0
        }
    });
    println!(
        "  (d) JWT-verified vs anonymous GET through the edge, median of the rounds: {cost:.1}% \
         cost ({cost_rounds}; goal <= {:.0}%): {}",
        JWT_COST_GOAL * 100.0,
        verdict(cost <= JWT_COST_GOAL * 100.0)
    );
    if rounds.iter().flatten().any(|(_, r, _)| r.failed > 0) {
        println!("  warning: some requests failed; the numbers above include them");
    }
    for (index, reports) in rounds.iter().enumerate() {
        println!(
            "  CPU per request in round {}, µs: edge, nginx, core, Postgres, wrk, machine",
            index + 1
        );
        for (name, report, usage) in reports {
            let row = micros_row(usage.as_ref(), report.requests_per_sec, &NAMED);
            println!("  {name:<12}{row}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::config;

    #[test]
    fn the_nginx_config_proxies_to_the_core_with_keep_alive() {
        let text = config(std::path::Path::new("/x"), "127.0.0.1:8081", 9000, 9001);
        assert!(text.contains("upstream core { server 127.0.0.1:8081; keepalive 128; }"));
        assert!(text.contains("listen 127.0.0.1:9000;"));
        assert!(text.contains("listen 127.0.0.1:9001;"));
        assert!(text.contains("proxy_cache meridian;"));
        assert!(text.contains("proxy_http_version 1.1;"));
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }
}
