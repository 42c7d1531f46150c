//! `recs`: the CPU part of a product recommendation at 100,000 products (exact top-k scan,
//! co-purchase candidates, blend), p50 and p99, beside scoring and sorting everything, in one
//! run; goal: p99 under 20 ms. The measuring is done by the release binary `recs-bench`
//! (`workers/meridian-recommendations/src/bin/recs-bench.rs`).

use anyhow::{Result, ensure};

use crate::cargo::{self, Profile};
use crate::cmd;
use crate::layout::Layout;

pub fn run(layout: &Layout) -> Result<()> {
    cargo::build_binaries(layout, Profile::Release)?;
    let bench = cargo::binary(layout, Profile::Release, "recs-bench")?;
    let status = cmd::status(&mut cmd::command(&bench))?;
    ensure!(status.success(), "recs-bench failed ({status})");
    Ok(())
}
