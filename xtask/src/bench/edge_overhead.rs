//! `edge-overhead`: what the Pingora edge costs, and whether a login flood starves the core.
//!
//! 1. `GET /products/{id}` straight at the core and through the edge (wrk, 2 threads, 64
//!    connections): requests/s, p50, p99, and the throughput ratio edge/core (goal >= 0.7, aim 0.9).
//! 2. `POST /users/login` from 50 connections while a second wrk (1 thread, 2 connections) measures
//!    `GET /healthz` on the same core: logins/s, login p99, healthz p99 (goal < 10 ms).

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::json;

use super::harness::Harness;
use super::measurement_seconds;
use super::wrk::{Load, Report};
use crate::admin::random_token;
use crate::http;
use crate::layout::{Layout, create_dir};
use crate::shutdown;

const RATIO_GOAL: f64 = 0.7;
const RATIO_AIM: f64 = 0.9;
const HEALTHZ_P99_GOAL_MS: f64 = 10.0;
const WARM_UP_SECONDS: u64 = 2;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(layout: &Layout) -> Result<()> {
    let seconds = measurement_seconds()?;
    let mut harness = Harness::start(layout)?;
    let product = first_product_id(harness.core())?;
    let path = format!("/products/{product}");

    for base in [harness.core(), harness.edge()] {
        Load::get(format!("{base}{path}"), 2, 64, WARM_UP_SECONDS).run()?;
    }
    shutdown::check()?;
    let core = Load::get(format!("{}{path}", harness.core()), 2, 64, seconds).run()?;
    harness.ensure_running()?;
    shutdown::check()?;
    let edge = Load::get(format!("{}{path}", harness.edge()), 2, 64, seconds).run()?;
    harness.ensure_running()?;
    shutdown::check()?;
    print_proxy_table(&path, seconds, &core, &edge);

    let login = measure_login(layout, &harness, seconds)?;
    harness.ensure_running()?;
    print_login(seconds, &login);
    Ok(())
}

/// The id of any product: `GET /products?limit=1` → `{"items":[{"id":...}]}`.
pub(super) fn first_product_id(core: &str) -> Result<String> {
    let url = format!("{core}/products?limit=1");
    let response = http::get(&url, CALL_TIMEOUT)?;
    ensure!(
        response.is_success(),
        "GET {url} answered {}: {}",
        response.status,
        response.body
    );
    let page: serde_json::Value = serde_json::from_str(&response.body)
        .with_context(|| format!("GET {url} did not answer JSON: {}", response.body))?;
    match &page["items"][0]["id"] {
        serde_json::Value::String(id) => Ok(id.clone()),
        serde_json::Value::Number(id) => Ok(id.to_string()),
        serde_json::Value::Null => bail!("GET {url} returned no product; did seed-dev run?"),
        other => bail!("GET {url}: unexpected product id {other}"),
    }
}

fn print_proxy_table(path: &str, seconds: u64, core: &Report, edge: &Report) {
    println!();
    println!("GET {path}   (wrk: 2 threads, 64 connections, {seconds} s)");
    println!(
        "  {:<8} {:>12} {:>10} {:>10} {:>10}",
        "target", "requests/s", "p50", "p99", "failed"
    );
    for (name, report) in [("core", core), ("edge", edge)] {
        println!(
            "  {:<8} {:>12.1} {:>10} {:>10} {:>10}",
            name,
            report.requests_per_sec,
            ms(report.p50_ms),
            ms(report.p99_ms),
            report.failed
        );
    }
    let ratio = if core.requests_per_sec > 0.0 {
        edge.requests_per_sec / core.requests_per_sec
    } else {
        0.0
    };
    let verdict = if ratio >= RATIO_AIM {
        "meets the aim"
    } else if ratio >= RATIO_GOAL {
        "meets the goal"
    } else {
        "BELOW GOAL"
    };
    println!(
        "  throughput ratio edge/core: {ratio:.2}  (goal >= {RATIO_GOAL}, aim {RATIO_AIM}): {verdict}"
    );
    if core.failed + edge.failed > 0 {
        println!("  warning: some requests failed; the numbers above include them");
    }
}

struct LoginResults {
    login: Report,
    healthz: Report,
}

fn measure_login(layout: &Layout, harness: &Harness, seconds: u64) -> Result<LoginResults> {
    let core = harness.core();
    let email = format!("bench-{}@meridian.local", random_token(12)?.to_lowercase());
    let password = random_token(24)?;
    let register = json!({"email": email, "password": password, "name": "Bench User"});
    let url = format!("{core}/users/register");
    let response = http::post_json(&url, &register.to_string(), CALL_TIMEOUT)?;
    ensure!(
        response.is_success(),
        "POST {url} answered {}: {}",
        response.status,
        response.body
    );
    let credentials = json!({"email": email, "password": password}).to_string();
    let url = format!("{core}/users/login");
    let response = http::post_json(&url, &credentials, CALL_TIMEOUT)?;
    ensure!(
        response.is_success(),
        "POST {url} with the bench user answered {}: {}",
        response.status,
        response.body
    );

    create_dir(&layout.bench())?;
    let script = layout.bench().join("login.lua");
    std::fs::write(&script, login_script(&credentials))
        .with_context(|| format!("cannot write {}", script.display()))?;

    let login = Load::get(url, 2, 50, seconds).with_script(script).spawn()?;
    let healthz = Load::get(format!("{core}/healthz"), 1, 2, seconds).spawn()?;
    let login = login.finish()?;
    let healthz = healthz.finish()?;
    shutdown::check()?;
    Ok(LoginResults { login, healthz })
}

/// wrk script: every request is the same login. The body is JSON made by serde_json, inside a Lua
/// long string, so no escaping is involved.
fn login_script(credentials_json: &str) -> String {
    format!(
        "-- Generated by `cargo xtask bench edge-overhead`.\n\
         wrk.method = \"POST\"\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.body = [==[{credentials_json}]==]\n"
    )
}

fn print_login(seconds: u64, results: &LoginResults) {
    let LoginResults { login, healthz } = results;
    println!();
    println!(
        "POST /users/login   (wrk: 2 threads, 50 connections, {seconds} s) with GET /healthz alongside (1 thread, 2 connections)"
    );
    println!(
        "  logins/s {:.1}   login p50 {}   login p99 {}   failed {}",
        login.requests_per_sec,
        ms(login.p50_ms),
        ms(login.p99_ms),
        login.failed
    );
    let verdict = if healthz.p99_ms < HEALTHZ_P99_GOAL_MS {
        "meets the goal"
    } else {
        "ABOVE GOAL"
    };
    println!(
        "  healthz p99 {} (goal < {HEALTHZ_P99_GOAL_MS} ms): {verdict}   ({:.0} requests/s, failed {})",
        ms(healthz.p99_ms),
        healthz.requests_per_sec,
        healthz.failed
    );
    if login.failed > 0 {
        println!("  warning: some logins failed (non-2xx or socket errors)");
    }
}

fn ms(value: f64) -> String {
    format!("{value:.2} ms")
}

#[cfg(test)]
mod tests {
    use super::login_script;

    #[test]
    fn login_script_posts_the_json_verbatim() {
        let script = login_script(r#"{"email":"a@b.c","password":"x"}"#);
        assert!(script.contains("wrk.method = \"POST\""));
        assert!(script.contains(r#"wrk.body = [==[{"email":"a@b.c","password":"x"}]==]"#));
    }
}
