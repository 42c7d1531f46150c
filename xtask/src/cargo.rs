//! Building the workspace binaries and finding them afterwards.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};

use crate::cmd;
use crate::layout::Layout;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

impl Profile {
    /// The folder under the target directory.
    fn directory(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Release => "release",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.directory())
    }
}

/// `cargo build --workspace --bins [--release]`, output shown as it comes.
pub fn build_binaries(layout: &Layout, profile: Profile) -> Result<()> {
    println!("xtask: building the workspace binaries ({profile})");
    let mut command = cmd::cargo();
    command
        .current_dir(layout.root())
        .args(["build", "--workspace", "--bins"]);
    if profile == Profile::Release {
        command.arg("--release");
    }
    cmd::run(&mut command).context("the workspace does not build")
}

/// The path of a workspace binary that [`build_binaries`] produced.
pub fn binary(layout: &Layout, profile: Profile, name: &str) -> Result<PathBuf> {
    let path = target_directory(layout)?
        .join(profile.directory())
        .join(name);
    ensure!(
        path.is_file(),
        "binary `{name}` not found at {}: the workspace build produced no such binary (is its \
         package a workspace member with a `{name}` bin target?)",
        path.display()
    );
    Ok(path)
}

/// The target directory as cargo sees it (honours `CARGO_TARGET_DIR` and cargo config).
fn target_directory(layout: &Layout) -> Result<PathBuf> {
    let metadata = cmd::output(cmd::cargo().current_dir(layout.root()).args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
    ]))?;
    let metadata: serde_json::Value =
        serde_json::from_str(&metadata).context("`cargo metadata` printed invalid JSON")?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("`cargo metadata` has no target_directory")
}
