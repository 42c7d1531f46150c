//! `cargo xtask`: every repository chore of Meridian, in Rust, with nothing to install first.
//!
//! - `up`: provision Postgres, Redis and a JetStream server, build, migrate, seed the dev profile, run
//!   the core(s) and the edge until Ctrl-C ([`up`]).
//! - `test`: the same services, then `cargo test --workspace` against them ([`test`]).
//! - `bench NAME`: benchmarks against a release build ([`bench`]).
//! - `eval recs`: offline evaluation of the recommendations ([`eval`]).
//! - `load SUITE`: a k6 suite from `loadtests/` ([`load`]).
//! - `reindex`: rebuild the search index of the running platform from its catalog ([`reindex`]).
//!
//! Module map:
//! - [`services`]: make Postgres, Redis and NATS answer (or take them from `DATABASE_URL`,
//!   `REDIS_URL`, `NATS_URL`).
//! - [`platform`]: the Meridian processes themselves (migrate, seed, core per region, edge).
//! - [`process`], [`shutdown`]: child processes that are always stopped, and Ctrl-C.
//! - [`apt`], [`cmd`], [`cargo`], [`http`], [`layout`], [`admin`]: small helpers.
//!
//! Repository rules (crate boundaries, lints, ARCHITECTURE.md) live in `tests/tidy.rs` and run with
//! every `cargo test --workspace`.

mod admin;
mod apt;
mod bench;
mod cargo;
mod cmd;
mod eval;
mod http;
mod layout;
mod load;
mod model;
mod platform;
mod process;
mod reindex;
mod services;
mod shutdown;
mod test;
mod up;
mod venv;

use std::process::ExitCode;

use anyhow::{Result, bail};

const USAGE: &str = "\
Usage: cargo xtask <command>

Commands:
  up [--release]                 provision services, build, migrate, seed (dev profile), run the
                                 core(s) and the edge until Ctrl-C
  test [-- <cargo test args>]    provision services and run `cargo test --workspace` against them
  bench <name>...                run benchmarks against a release build (`cargo xtask bench list`)
  eval recs [-- --sweep]         hit-rate@10 and NDCG@10 of the recommendations against baselines
  load <suite> [-- <k6 args>]    run loadtests/<suite>.js with k6 against BASE_URL, else against a
                                 platform it starts (release, dev seed); exits with k6's status
  reindex                        rebuild the search index of a running `up` from its catalog
  help                           this text

Environment:
  DATABASE_URL, REDIS_URL, NATS_URL   use these services instead of provisioning local ones
  MERIDIAN_REGIONS                    comma-separated regions (default `local`)
  MERIDIAN_ADMIN_EMAIL / _PASSWORD    dev admin login (default admin@meridian.local / generated)
  CARGO_TARGET_DIR                    build directory (CI uses ~/.cache/meridian-target)";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(error) if shutdown::requested() => {
            eprintln!("xtask: interrupted ({error:#})");
            ExitCode::from(130)
        }
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<ExitCode> {
    let Some((command, rest)) = args.split_first() else {
        println!("{USAGE}");
        return Ok(ExitCode::FAILURE);
    };
    let layout = layout::Layout::discover()?;
    match command.as_str() {
        "up" => {
            let options = up::Options::parse(rest)?;
            shutdown::install()?;
            up::run(&layout, &options)?;
            Ok(ExitCode::SUCCESS)
        }
        "test" => {
            shutdown::install()?;
            test::run(&layout, rest)
        }
        "bench" => {
            shutdown::install()?;
            bench::run(&layout, rest)?;
            Ok(ExitCode::SUCCESS)
        }
        "eval" => {
            shutdown::install()?;
            eval::run(&layout, rest)?;
            Ok(ExitCode::SUCCESS)
        }
        "load" => {
            shutdown::install()?;
            load::run(&layout, rest)
        }
        "reindex" => {
            reindex::run(&layout)?;
            Ok(ExitCode::SUCCESS)
        }
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}
