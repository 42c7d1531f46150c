//! Child processes that xtask owns: logged to `.meridian/logs/NAME.log`, recorded in
//! `.meridian/run/NAME.pid`, and always stopped (SIGTERM, then SIGKILL after 10 s), also when xtask
//! returns early with an error (`Drop`).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::cmd;
use crate::layout::{Layout, create_dir};
use crate::shutdown;

/// How long a child gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(10);

/// Lines of a log quoted when a child fails.
const TAIL_LINES: usize = 40;

pub struct ManagedChild {
    name: String,
    child: Child,
    log: PathBuf,
    pid_file: PathBuf,
    stopped: bool,
}

impl ManagedChild {
    /// Starts `command` with stdout and stderr going to `.meridian/logs/{name}.log` (truncated) and
    /// in a process group of its own, so that a terminal's Ctrl-C reaches xtask only.
    pub fn spawn(layout: &Layout, name: &str, mut command: Command) -> Result<Self> {
        create_dir(&layout.logs())?;
        create_dir(&layout.run())?;
        let log = layout.logs().join(format!("{name}.log"));
        let stdout =
            File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let stderr = stdout.try_clone()?;
        command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name}: `{}`", cmd::describe(&command)))?;
        let pid_file = layout.run().join(format!("{name}.pid"));
        let record = format!("{} {}\n", child.id(), std::process::id());
        std::fs::write(&pid_file, record)
            .with_context(|| format!("cannot write {}", pid_file.display()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
            pid_file,
            stopped: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Fails, quoting the end of the log, when the child has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.exit_status() {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited unexpectedly ({status}); last lines of {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log)
            ),
        }
    }

    /// Polls `ready` every 200 ms until it holds. Fails, quoting the log, when the child exits first
    /// or `timeout` passes; fails when a stop is requested.
    pub fn wait_ready(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.ensure_running()?;
            if ready() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not become ready ({what}) within {} s; last lines of {}:\n{}",
                    self.name,
                    timeout.as_secs(),
                    self.log.display(),
                    log_tail(&self.log)
                );
            }
            if shutdown::sleep(Duration::from_millis(200)) {
                bail!("interrupted while waiting for {}", self.name);
            }
        }
    }

    /// SIGTERM to the child's process group, SIGKILL after [`GRACE`]. Idempotent.
    pub fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        if self.exit_status().is_none() {
            println!("xtask: stopping {}", self.name);
            match pid_of(self.child.id()) {
                Some(pid) => {
                    if !terminate_group(pid, || self.child.try_wait().ok().flatten().is_some()) {
                        eprintln!(
                            "xtask: {} did not stop within {} s, killed it",
                            self.name,
                            GRACE.as_secs()
                        );
                    }
                }
                None => {
                    let _ = self.child.kill();
                }
            }
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

impl Drop for ManagedChild {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGTERM to a process group, then SIGKILL once `GRACE` has passed without `has_exited()`.
/// Returns whether it stopped gracefully.
fn terminate_group(pid: Pid, mut has_exited: impl FnMut() -> bool) -> bool {
    if killpg(pid, Signal::SIGTERM).is_err() {
        return true; // already gone
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if has_exited() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = killpg(pid, Signal::SIGKILL);
    false
}

fn pid_of(id: u32) -> Option<Pid> {
    i32::try_from(id)
        .ok()
        .filter(|pid| *pid > 0)
        .map(Pid::from_raw)
}

/// A server that this xtask started (`Some`), or one it uses but does not own (another
/// xtask's, or one named by the environment): only an owned one is checked and stopped.
#[derive(Default)]
pub struct Owned(pub Option<ManagedChild>);

impl Owned {
    /// Fails when the server this xtask started has died.
    pub fn ensure_running(&mut self) -> Result<()> {
        match &mut self.0 {
            Some(process) => process.ensure_running(),
            None => Ok(()),
        }
    }

    pub fn stop(&mut self) {
        if let Some(process) = &mut self.0 {
            process.stop();
        }
    }
}

/// The last [`TAIL_LINES`] lines of a log file, indented, for error messages.
pub fn log_tail(path: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return format!("    (cannot read {})", path.display());
    };
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    if lines.is_empty() {
        return "    (log is empty)".to_owned();
    }
    lines[start..]
        .iter()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A process recorded in `.meridian/run/NAME.pid` by an earlier xtask that may still be running.
pub struct Recorded {
    pid: Pid,
    /// The xtask that started it is still alive (another `up` or `test` in a second terminal).
    pub owner_alive: bool,
}

/// The process recorded under `name`, when it is still alive and still runs `program`
/// (compared with `/proc/PID/comm`, so a recycled pid is not mistaken for it).
pub fn recorded(layout: &Layout, name: &str, program: &str) -> Option<Recorded> {
    let record = std::fs::read_to_string(layout.run().join(format!("{name}.pid"))).ok()?;
    let mut fields = record.split_whitespace().map(str::parse::<u32>);
    let child = fields.next()?.ok()?;
    let owner = fields.next()?.ok()?;
    if !runs(child, program) {
        return None;
    }
    Some(Recorded {
        pid: pid_of(child)?,
        owner_alive: runs(owner, "xtask"),
    })
}

impl Recorded {
    /// Stops a leftover of a killed xtask run (SIGTERM, SIGKILL after the grace period).
    pub fn terminate(&self, name: &str, program: &str) {
        println!(
            "xtask: stopping {name} (pid {}) left over from an earlier run",
            self.pid
        );
        let pid = self.pid.as_raw().unsigned_abs();
        terminate_group(self.pid, || !runs(pid, program));
    }
}

fn runs(pid: u32, program: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|comm| comm.trim() == program)
        .unwrap_or(false)
}
