//! Where things live: the repository root and the git-ignored project-local state in `.meridian/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

/// Paths of the repository and of `.meridian/` (venv, NATS data, logs, dev secrets, TLS, bench files).
/// Everything in `.meridian/` is disposable, except that deleting `nats/data` loses the dev streams.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The workspace root is the parent of this crate's manifest directory; xtask always runs from a
    /// checkout (through `cargo xtask`), so the compile-time path is the checkout's path.
    pub fn discover() -> Result<Self> {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir
            .parent()
            .context("xtask's manifest directory has no parent")?
            .to_path_buf();
        ensure!(
            root.join("Cargo.toml").is_file(),
            "workspace root {} has no Cargo.toml; run xtask through `cargo xtask` inside the checkout",
            root.display()
        );
        // Two checkouts sharing one CARGO_TARGET_DIR can leave the other's xtask binary in
        // `target/debug/xtask` (cargo does not copy a unit it finds fresh): it would then build,
        // test and benchmark the other checkout.
        if let Ok(cwd) = std::env::current_dir()
            && let (Ok(cwd), Ok(canonical_root)) = (cwd.canonicalize(), root.canonicalize())
            && cwd.join("Cargo.toml").is_file()
            && !cwd.starts_with(&canonical_root)
        {
            anyhow::bail!(
                "this xtask binary belongs to the checkout at {} but runs in {}: another checkout \
                 shares CARGO_TARGET_DIR. Run `touch xtask/src/main.rs` here and retry",
                root.display(),
                cwd.display()
            );
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `.meridian/`: all project-local state (git-ignored).
    pub fn state(&self) -> PathBuf {
        self.root.join(".meridian")
    }

    pub fn venv(&self) -> PathBuf {
        self.state().join("venv")
    }

    pub fn nats(&self) -> PathBuf {
        self.state().join("nats")
    }

    pub fn logs(&self) -> PathBuf {
        self.state().join("logs")
    }

    /// Pid files of the processes xtask started, to find leftovers of a run that was killed.
    pub fn run(&self) -> PathBuf {
        self.state().join("run")
    }

    pub fn dev(&self) -> PathBuf {
        self.state().join("dev")
    }

    /// State the services can rebuild (the search index), `MERIDIAN_DATA_DIR` of the cores.
    pub fn data(&self) -> PathBuf {
        self.state().join("data")
    }

    pub fn bench(&self) -> PathBuf {
        self.state().join("bench")
    }

    pub fn edge_tls(&self) -> PathBuf {
        self.state().join("edge").join("tls")
    }

    pub fn nats_requirements(&self) -> PathBuf {
        self.root.join("xtask").join("requirements-nats.txt")
    }

    pub fn smtp_requirements(&self) -> PathBuf {
        self.root.join("xtask").join("requirements-smtp.txt")
    }

    /// The Maildir where the local SMTP server stores what it accepts.
    pub fn mail(&self) -> PathBuf {
        self.state().join("mail")
    }
}

/// `create_dir_all` with the path in the error.
pub fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))
}
