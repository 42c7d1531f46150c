//! `search`: the search index against Postgres full-text search (tsvector + GIN) on the same
//! generated catalog of 100,000 products and the same 1- to 3-word queries with facets, in one
//! run; goals: at least 5x Postgres' throughput, p99 under 20 ms. The measuring is done by the
//! release binary `search-bench` (`core/meridian-search/src/bin/search-bench.rs`), which also
//! times both builds.

use anyhow::{Result, ensure};

use super::measurement_seconds;
use crate::cargo::{self, Profile};
use crate::cmd;
use crate::layout::{Layout, create_dir};
use crate::services::postgres;

pub fn run(layout: &Layout) -> Result<()> {
    let seconds = measurement_seconds()?;
    let postgres = postgres::ensure()?;
    cargo::build_binaries(layout, Profile::Release)?;
    let bench = cargo::binary(layout, Profile::Release, "search-bench")?;
    create_dir(&layout.bench())?;
    let mut command = cmd::command(&bench);
    command
        .arg(&postgres.url)
        .arg(layout.bench())
        .env("MERIDIAN_BENCH_SECONDS", seconds.to_string());
    let status = cmd::status(&mut command)?;
    ensure!(status.success(), "search-bench failed ({status})");
    Ok(())
}
