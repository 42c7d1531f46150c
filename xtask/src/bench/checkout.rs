//! `checkout`: the full checkout saga under 32 concurrent buyers, beside `pgbench` on the same
//! Postgres in the same invocation.
//!
//! 1. k6 (`loadtests/bench-checkout.js`, 32 VUs, straight at the core): each VU is its own buyer with
//!    an address and loops add-to-cart + `POST /orders` (tok_visa) on one product stocked with plenty
//!    of units. Orders/s, p50 and p99 of `POST /orders` (goal p99 < 150 ms).
//! 2. `pgbench` tpcb-like, scale 10, 32 clients, 2 threads, in the scratch database
//!    `meridian_pgbench` (dropped afterwards). The ratio orders/s ÷ pgbench tps (goal >= 0.25).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::cpu::{Sampler, Samples, Usage};
use super::harness::Harness;
use super::measurement_seconds;
use crate::admin;
use crate::apt::{self, Need};
use crate::cmd;
use crate::layout::Layout;
use crate::load;
use crate::services::postgres::psql;
use crate::shutdown;

const BUYERS: u32 = 32;
const RATIO_GOAL: f64 = 0.25;
const P99_GOAL_MS: f64 = 150.0;
const PGBENCH_DATABASE: &str = "meridian_pgbench";

pub fn run(layout: &Layout) -> Result<()> {
    let seconds = measurement_seconds()?;
    apt::ensure(&[Need::new("pgbench", "postgresql-client")])?;
    let k6 = load::ensure_k6(layout)?;
    let mut harness = Harness::start(layout)?;
    let admin = admin::resolve(layout)?;

    let summary = layout.bench().join("checkout-summary.json");
    let buyers = BUYERS.to_string();
    let duration = format!("{seconds}s");
    let sampler = Sampler::start();
    let status = load::run_k6(
        layout,
        &k6,
        &layout.root().join("loadtests").join("bench-checkout.js"),
        &[
            ("BASE_URL", harness.core()),
            ("ADMIN_EMAIL", &admin.email),
            ("ADMIN_PASSWORD", &admin.password),
            ("VUS", &buyers),
            ("DURATION", &duration),
            ("SUMMARY", &summary.to_string_lossy()),
        ],
        &summary,
        &["--quiet".to_owned()],
    )?;
    let k6_ended = Instant::now();
    harness.ensure_running()?;
    shutdown::check()?;
    match status {
        0 => {}
        // 99: a threshold failed, here `orders_failed`; the numbers are still worth printing.
        99 => println!("xtask: warning: some orders failed (k6 output above)"),
        _ => bail!("k6 failed (exit {status}) before measuring; see its output above"),
    }
    let checkout = read_summary(&summary, seconds)?;

    let (pgbench_tps, pgbench_ended) = run_pgbench(&harness.services.postgres.url, seconds)?;
    let samples = sampler.stop();
    harness.ensure_running()?;
    print_results(seconds, &checkout, pgbench_tps);
    print_cpu(
        &samples,
        seconds,
        // k6 ends a second or so after its scenario (the last iterations, the summary).
        (k6_ended - Duration::from_secs(1), checkout.orders_per_sec),
        (pgbench_ended, pgbench_tps),
    );
    ensure!(checkout.orders > 0, "no order was confirmed");
    Ok(())
}

#[derive(Debug, PartialEq)]
struct Checkout {
    orders: u64,
    failed: u64,
    orders_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn read_summary(path: &Path, seconds: u64) -> Result<Checkout> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("k6 wrote no summary to {}", path.display()))?;
    parse_summary(&text, seconds).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads k6's `handleSummary` JSON. Orders/s is over the measured duration (setup, which registers
/// the buyers, is not part of it).
fn parse_summary(text: &str, seconds: u64) -> Result<Checkout> {
    let data: serde_json::Value = serde_json::from_str(text)?;
    let metric = |name: &str, value: &str| data["metrics"][name]["values"][value].as_f64();
    let orders = metric("orders_confirmed", "count").unwrap_or(0.0);
    let failed = metric("orders_failed", "count").unwrap_or(0.0);
    let (p50_ms, p99_ms) = if orders > 0.0 {
        (
            metric("checkout_duration", "med").context("no checkout_duration median")?,
            metric("checkout_duration", "p(99)").context("no checkout_duration p(99)")?,
        )
    } else {
        (0.0, 0.0)
    };
    // Counts are whole numbers in f64.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(Checkout {
        orders: orders as u64,
        failed: failed as u64,
        orders_per_sec: orders / seconds as f64,
        p50_ms,
        p99_ms,
    })
}

/// `pgbench -i -s 10` into a fresh `meridian_pgbench`, then `-c 32 -j 2 -T seconds`; returns tps
/// and when the run ended.
fn run_pgbench(url: &str, seconds: u64) -> Result<(f64, Instant)> {
    let scratch = with_database(url, PGBENCH_DATABASE)?;
    let drop = format!("DROP DATABASE IF EXISTS {PGBENCH_DATABASE}");
    cmd::output(psql(url).args(["-c", &drop]))?;
    cmd::output(psql(url).args(["-c", &format!("CREATE DATABASE {PGBENCH_DATABASE}")]))
        .context("cannot create the pgbench scratch database (does the role have CREATEDB?)")?;
    println!("xtask: pgbench -i -s 10 into {PGBENCH_DATABASE}");
    let result = (|| {
        cmd::output(cmd::command("pgbench").args(["-i", "-s", "10", "-q", &scratch]))?;
        shutdown::check()?;
        println!("xtask: pgbench -c {BUYERS} -j 2 -T {seconds} (tpcb-like)");
        let report = cmd::output(cmd::command("pgbench").args([
            "-c",
            &BUYERS.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            &scratch,
        ]))?;
        let ended = Instant::now();
        let tps =
            parse_tps(&report).with_context(|| format!("no tps in pgbench's report:\n{report}"))?;
        Ok((tps, ended))
    })();
    let _ = cmd::output(psql(url).args(["-c", &drop]));
    result
}

/// The same server URL with another database: `postgres://u:p@h:5432/meridian?x=y` → `.../name?x=y`.
fn with_database(url: &str, database: &str) -> Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let Some(scheme_end) = base.find("://") else {
        bail!("DATABASE_URL is not a postgres:// URL");
    };
    let authority_and_path = &base[scheme_end + 3..];
    let authority = authority_and_path
        .split_once('/')
        .map_or(authority_and_path, |(authority, _)| authority);
    let mut out = format!("{}{authority}/{database}", &base[..scheme_end + 3]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

/// `tps = 1234.567890 (without initial connection time)`.
fn parse_tps(report: &str) -> Option<f64> {
    report
        .lines()
        .filter_map(|line| line.trim().strip_prefix("tps = "))
        .find_map(|rest| rest.split_whitespace().next()?.parse().ok())
}

fn print_results(seconds: u64, checkout: &Checkout, pgbench_tps: f64) {
    let ratio = if pgbench_tps > 0.0 {
        checkout.orders_per_sec / pgbench_tps
    } else {
        0.0
    };
    let verdict = |ok: bool| {
        if ok {
            "meets the goal"
        } else {
            "MISSES THE GOAL"
        }
    };
    println!();
    println!(
        "Checkout (add-to-cart + POST /orders, tok_visa), {BUYERS} buyers straight at the core, {seconds} s"
    );
    println!(
        "  orders/s {:.1}   POST /orders p50 {:.2} ms   p99 {:.2} ms   ({} orders, {} failed)",
        checkout.orders_per_sec, checkout.p50_ms, checkout.p99_ms, checkout.orders, checkout.failed
    );
    println!(
        "pgbench tpcb-like, scale 10, {BUYERS} clients, 2 threads, {seconds} s, same Postgres"
    );
    println!("  tps {pgbench_tps:.1}");
    println!(
        "  ratio orders/s / pgbench tps: {ratio:.3} (goal >= {RATIO_GOAL}): {}",
        verdict(ratio >= RATIO_GOAL)
    );
    println!(
        "  checkout p99 {:.2} ms (goal < {P99_GOAL_MS} ms): {}",
        checkout.p99_ms,
        verdict(checkout.p99_ms < P99_GOAL_MS && checkout.orders > 0)
    );
    println!(
        "  what an order is: 2 HTTP requests, 8 NATS request/replies, 4 JetStream events and 11 \
         Postgres statements, 7 of them writes that commit (and flush) on their own; a pgbench \
         transaction is 7 statements and one commit (PRODUCTS=32 spreads the buyers over 32 \
         stock rows, to rule out the hot row)"
    );
}

/// The processes whose CPU the report names; the rest is summed as "everything else".
const NAMED: [&str; 6] = [
    "postgres",
    "meridian-core",
    "nats-server",
    "k6",
    "redis-server",
    "pgbench",
];

/// CPU per order and per pgbench transaction, by process, over the last half of each run (steady
/// by then: k6's setup, which registers the buyers, is over). `(end, rate)`: when the measured
/// work ended and its rate per second.
fn print_cpu(samples: &Samples, seconds: u64, checkout: (Instant, f64), pgbench: (Instant, f64)) {
    // Whole seconds in f64.
    #[allow(clippy::cast_precision_loss)]
    let half = Duration::from_secs_f64(seconds as f64 / 2.0);
    let (Some(orders), Some(transactions)) = (
        samples.window(checkout.0, half),
        samples.window(pgbench.0, half),
    ) else {
        println!("CPU per unit of work: the runs were too short to sample (1 s apart)");
        return;
    };
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!();
    println!(
        "CPU per unit of work, ms (last {:.0} s of each run; {cores} cores)",
        half.as_secs_f64()
    );
    println!("  {:<16} {:>10} {:>16}", "", "per order", "per pgbench tx");
    let row = |name: &str, order_cpu: f64, transaction_cpu: f64| {
        let cell = |ms: f64| {
            if ms >= 0.005 {
                format!("{ms:.2}")
            } else {
                "-".to_owned()
            }
        };
        println!(
            "  {name:<16} {:>10} {:>16}",
            cell(order_cpu),
            cell(transaction_cpu)
        );
    };
    let per_order = |used: f64| orders.per_unit(checkout.1, used) * 1000.0;
    let per_transaction = |used: f64| transactions.per_unit(pgbench.1, used) * 1000.0;
    for name in NAMED {
        row(
            name,
            per_order(orders.of(name)),
            per_transaction(transactions.of(name)),
        );
    }
    let rest = |usage: &Usage| {
        let named: f64 = NAMED.iter().map(|name| usage.of(name)).sum();
        (usage.busy - named).max(0.0)
    };
    row(
        "everything else",
        per_order(rest(&orders)),
        per_transaction(rest(&transactions)),
    );
    let order_cpu = per_order(orders.busy);
    let transaction_cpu = per_transaction(transactions.busy);
    row("machine", order_cpu, transaction_cpu);
    // Whole cores in f64.
    #[allow(clippy::cast_precision_loss)]
    let load = |usage: &Usage| 100.0 * usage.busy / (usage.seconds * cores as f64);
    println!(
        "  the machine was {:.0}% busy during the checkouts and {:.0}% during pgbench (steal and \
         iowait not counted)",
        load(&orders),
        load(&transactions)
    );
    if order_cpu > 0.0 && transaction_cpu > 0.0 {
        println!(
            "  bound: an order costs the CPU of {:.1} pgbench transactions; with both CPU-bound, \
             that caps the ratio at {:.3}",
            order_cpu / transaction_cpu,
            transaction_cpu / order_cpu
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_the_database_of_a_url() {
        assert_eq!(
            with_database(
                "postgres://meridian:meridian@127.0.0.1:5432/meridian",
                "meridian_pgbench"
            )
            .unwrap(),
            "postgres://meridian:meridian@127.0.0.1:5432/meridian_pgbench"
        );
        assert_eq!(
            with_database("postgres://u@db:5432/app?sslmode=require", "x").unwrap(),
            "postgres://u@db:5432/x?sslmode=require"
        );
        assert_eq!(
            with_database("postgresql://h:1", "x").unwrap(),
            "postgresql://h:1/x"
        );
        assert!(with_database("nonsense", "x").is_err());
    }

    #[test]
    fn reads_pgbench_tps() {
        let report = "latency average = 12.3 ms\ninitial connection time = 20.1 ms\n\
                      tps = 2601.445521 (without initial connection time)\n";
        assert!((parse_tps(report).unwrap() - 2601.445521).abs() < 1e-6);
        assert_eq!(parse_tps("nothing"), None);
    }

    #[test]
    fn reads_the_k6_summary() {
        let text = r#"{"metrics":{
            "orders_confirmed":{"type":"counter","values":{"count":500,"rate":45.0}},
            "checkout_duration":{"type":"trend","values":{"med":20.5,"p(99)":80.25}}}}"#;
        let checkout = parse_summary(text, 10).unwrap();
        assert_eq!(checkout.orders, 500);
        assert_eq!(checkout.failed, 0);
        assert!((checkout.orders_per_sec - 50.0).abs() < 1e-9);
        assert!((checkout.p99_ms - 80.25).abs() < 1e-9);
    }
}
