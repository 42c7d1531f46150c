//! Running external programs with useful errors: the command line and its stderr are always shown.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::shutdown;

/// A command that never waits for a terminal: stdin is closed, so nothing can prompt in CI.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command.stdin(Stdio::null());
    command
}

/// `cargo`, the same one that runs xtask (cargo sets `CARGO` for the programs it runs), in the
/// environment of the shell that ran `cargo xtask`: without the package variables that `cargo
/// run` gave xtask. Some build scripts track those (ring's reads `CARGO_MANIFEST_DIR`), so
/// inheriting them would make every build through xtask and every plain `cargo build` rebuild
/// most of the workspace after the other.
pub fn cargo() -> Command {
    let mut cargo = command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_set_by_cargo_run) {
            cargo.env_remove(name);
        }
    }
    cargo
}

/// The variables `cargo run` sets for the package it runs (`CARGO` itself aside).
fn is_set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

/// Runs to completion with inherited stdout/stderr; fails on a non-zero exit.
pub fn run(command: &mut Command) -> Result<()> {
    let status = status(command)?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(command));
    }
    Ok(())
}

/// Runs to completion with inherited stdout/stderr and returns the exit status. When xtask is told
/// to stop (SIGTERM from a supervisor reaches xtask alone), the command gets SIGTERM too.
pub fn status(command: &mut Command) -> Result<ExitStatus> {
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start `{}`", describe(command)))?;
    let mut forwarded = false;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if !forwarded && shutdown::requested() {
            forwarded = true;
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs to completion and returns stdout; fails on a non-zero exit, quoting stderr.
pub fn output(command: &mut Command) -> Result<String> {
    let output = command
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .with_context(|| format!("cannot start `{}`", describe(command)))?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            describe(command),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout).with_context(|| {
        format!(
            "`{}` printed something that is not UTF-8",
            describe(command)
        )
    })
}

/// `program arg arg` for messages.
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| redact_url(&part.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Looks a program up in `PATH`, plus the sbin folders that a non-login root shell may lack.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Whether this process runs as root (effective uid 0), read from `/proc` to stay free of `unsafe`.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|uids| uids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// `scheme://user:secret@host/…` → `scheme://user:***@host/…`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|index| index + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let Some(at) = rest.find('@') else {
        return url.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url as redact;

    #[test]
    fn nested_cargo_does_not_see_the_package_that_runs_xtask() {
        // Test binaries get the same package variables from cargo as `cargo run` gives xtask.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let cargo = super::cargo();
        let removed: Vec<_> = cargo
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        assert!(removed.iter().any(|name| name == "CARGO_MANIFEST_DIR"));
        assert!(removed.iter().any(|name| name == "CARGO_PKG_NAME"));
        assert!(
            !removed
                .iter()
                .any(|name| name == "PATH" || name == "CARGO_TARGET_DIR")
        );
        assert!(super::is_set_by_cargo_run("CARGO_PKG_VERSION_MAJOR"));
        assert!(!super::is_set_by_cargo_run("CARGO_HOME"));
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(redact("redis://cache:6379"), "redis://cache:6379");
        assert_eq!(redact("nats://user@h:4222"), "nats://user@h:4222");
        assert_eq!(redact("not a url"), "not a url");
    }
}
