//! A real SMTP server on this machine: aiosmtpd 1.4.6 from PyPI (pinned by hash in
//! `xtask/requirements-smtp.txt`, installed into `.meridian/venv`), run by xtask on 127.0.0.1:14025,
//! storing every message it accepts in the Maildir `.meridian/mail` (each with an `X-RcptTo`
//! header naming its recipients).
//!
//! `cargo xtask test` points the notification tests at it (`MERIDIAN_SMTP_URL`) and tells them
//! where to read what was delivered (`MERIDIAN_TEST_MAILDIR`); `cargo xtask up` runs it as the dev
//! mail catcher unless `MERIDIAN_SMTP_URL` names another server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::port_open;
use crate::cmd;
use crate::layout::{Layout, create_dir};
use crate::process::{self, ManagedChild, Owned};
use crate::venv;

pub const VERSION: &str = "1.4.6";
pub const PORT: u16 = 14025;
const NAME: &str = "smtp";
const PROGRAM: &str = "python";
/// Mail older than this is deleted when the server starts.
const KEEP: Duration = Duration::from_secs(24 * 3600);

pub struct Smtp {
    pub url: String,
    pub maildir: PathBuf,
    /// The server when this xtask started it; stopped on drop.
    process: Owned,
}

impl Smtp {
    /// Sets `MERIDIAN_SMTP_URL` and `MERIDIAN_TEST_MAILDIR` on a command.
    pub fn export_to(&self, command: &mut Command) {
        command
            .env("MERIDIAN_SMTP_URL", &self.url)
            .env("MERIDIAN_TEST_MAILDIR", &self.maildir);
    }

    pub fn ensure_running(&mut self) -> Result<()> {
        self.process.ensure_running()
    }

    pub fn stop(&mut self) {
        self.process.stop();
    }
}

/// Starts the server (or shares the one another running xtask started).
pub fn ensure(layout: &Layout) -> Result<Smtp> {
    let maildir = layout.mail();
    let smtp = |process| Smtp {
        url: format!("smtp://127.0.0.1:{PORT}"),
        maildir: maildir.clone(),
        process: Owned(process),
    };
    if let Some(recorded) = process::recorded(layout, NAME, PROGRAM) {
        if recorded.owner_alive && port_open(PORT) {
            println!(
                "xtask: SMTP: sharing the server of another running xtask on 127.0.0.1:{PORT}"
            );
            return Ok(smtp(None));
        }
        recorded.terminate(NAME, PROGRAM);
    }
    if port_open(PORT) {
        bail!(
            "port {PORT} is taken by a process xtask did not start; stop it (`ss -ltnp`) or, for \
             `up`, set MERIDIAN_SMTP_URL"
        );
    }

    let python = ensure_installed(layout).context("cannot install aiosmtpd")?;
    // The Maildir handler creates `new/` lazily; create all three so readers never race it.
    for part in ["tmp", "new", "cur"] {
        create_dir(&maildir.join(part))?;
    }
    prune(&maildir.join("new"), KEEP);
    let mut command = cmd::command(&python);
    command
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{PORT}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir);
    let mut child = ManagedChild::spawn(layout, NAME, command)?;
    child.wait_ready("SMTP port open", Duration::from_secs(30), || {
        port_open(PORT)
    })?;
    println!(
        "xtask: SMTP (aiosmtpd {VERSION}) ready on 127.0.0.1:{PORT}, mail kept in {} (log {})",
        maildir.display(),
        child.log().display()
    );
    Ok(smtp(Some(child)))
}

/// Deletes the messages in `dir` older than `keep`, so the catcher (and the tests reading it)
/// never wades through months of mail.
fn prune(dir: &Path, keep: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|meta| meta.modified())
            .is_ok_and(|modified| modified.elapsed().is_ok_and(|age| age > keep));
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `.meridian/venv/bin/python` with aiosmtpd at [`VERSION`], installed from the hashed
/// requirements.
fn ensure_installed(layout: &Layout) -> Result<PathBuf> {
    let python = layout.venv().join("bin").join(PROGRAM);
    if installed_version(&python).as_deref() == Some(VERSION) {
        return Ok(python);
    }
    venv::install(
        layout,
        &layout.smtp_requirements(),
        &format!("aiosmtpd {VERSION}"),
    )?;
    match installed_version(&python) {
        Some(version) if version == VERSION => Ok(python),
        Some(version) => bail!("aiosmtpd reports version {version}, expected {VERSION}"),
        None => bail!(
            "pip installed aiosmtpd but {} cannot import it",
            python.display()
        ),
    }
}

fn installed_version(python: &Path) -> Option<String> {
    let output = cmd::output(
        cmd::command(python)
            .arg("-c")
            .arg("import aiosmtpd; print(aiosmtpd.__version__)"),
    )
    .ok()?;
    Some(output.trim().to_owned()).filter(|version| !version.is_empty())
}
