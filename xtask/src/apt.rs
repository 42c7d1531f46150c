//! Installing Debian packages that are missing, non-interactively, with one `apt-get update` per run.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};

use crate::cmd;

/// A program we need and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub program: &'static str,
    pub package: &'static str,
}

impl Need {
    pub const fn new(program: &'static str, package: &'static str) -> Self {
        Self { program, package }
    }
}

/// What building the workspace needs beyond the Rust toolchain (pingora's zlib-ng needs cmake).
pub const BUILD_TOOLS: &[Need] = &[
    Need::new("cmake", "cmake"),
    Need::new("make", "make"),
    Need::new("c++", "g++"),
];

static UPDATED: AtomicBool = AtomicBool::new(false);

/// Installs the packages of the programs that are not on `PATH`; does nothing when all are there.
pub fn ensure(needs: &[Need]) -> Result<()> {
    let mut missing: Vec<&str> = needs
        .iter()
        .filter(|need| cmd::find_program(need.program).is_none())
        .map(|need| need.package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    install(&missing)
}

/// `apt-get install -y` the packages (after one `apt-get update` per xtask run).
pub fn install(packages: &[&str]) -> Result<()> {
    let Some(apt_get) = cmd::find_program("apt-get") else {
        bail!(
            "missing packages {packages:?} and no apt-get here: install them with your package manager"
        );
    };
    let sudo = if cmd::is_root() {
        None
    } else {
        match cmd::find_program("sudo") {
            Some(sudo) => Some(sudo),
            None => bail!(
                "missing packages {packages:?}: run `apt-get install -y {}` as root",
                packages.join(" ")
            ),
        }
    };
    let apt = |args: &[&str]| {
        let mut command = match &sudo {
            // -n: fail instead of asking for a password (CI has no terminal).
            Some(sudo) => {
                let mut command = cmd::command(sudo);
                command.arg("-n").arg(&apt_get);
                command
            }
            None => cmd::command(&apt_get),
        };
        command
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["-q", "-o", "Dpkg::Use-Pty=0"])
            .args(args);
        command
    };
    println!("xtask: installing {} (apt-get)", packages.join(", "));
    if !UPDATED.swap(true, Ordering::SeqCst) {
        cmd::run(&mut apt(&["update"]))?;
    }
    let mut install_args = vec!["install", "-y", "--no-install-recommends"];
    install_args.extend_from_slice(packages);
    cmd::run(&mut apt(&install_args))
}
