//! Ctrl-C (SIGINT), SIGTERM and SIGHUP: recorded once, then every waiting loop winds down and the
//! children are stopped by their owners' `Drop`. Children run in their own process groups
//! ([`crate::process`]), so a terminal's Ctrl-C reaches xtask alone and the shutdown stays ordered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

static REQUESTED: AtomicBool = AtomicBool::new(false);

pub fn install() -> Result<()> {
    ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            eprintln!("xtask: already stopping, please wait");
        } else {
            eprintln!("\nxtask: stop requested, shutting down");
        }
    })
    .context("cannot install the signal handler")
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Fails with "interrupted" once a stop was requested; sprinkle in long preparations.
pub fn check() -> Result<()> {
    if requested() {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps up to `duration`, waking early when a stop is requested. Returns whether one was.
pub fn sleep(duration: Duration) -> bool {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        if requested() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50).min(deadline - Instant::now()));
    }
    requested()
}
