//! `cargo xtask bench NAME...`: benchmarks against a release build on free ports, so they run beside
//! a `cargo xtask up`. A benchmark is an entry in [`BENCHMARKS`]; most start a [`harness::Harness`]
//! (services, release core and edge, dev seed) and drive it with [`wrk`].

mod checkout;
mod cpu;
mod edge;
mod edge_overhead;
mod edge_waf;
mod embed;
mod harness;
mod recs;
mod rounds;
mod search;
mod wrk;

pub use harness::Harness;

use anyhow::{Context, Result, bail};

use crate::layout::Layout;

struct Benchmark {
    name: &'static str,
    about: &'static str,
    run: fn(&Layout) -> Result<()>,
}

/// Future entries: `embed`.
const BENCHMARKS: &[Benchmark] = &[
    Benchmark {
        name: "edge-overhead",
        about: "GET /products/{id} through the edge vs straight at the core; login under 50 clients \
                with /healthz latency alongside",
        run: edge_overhead::run,
    },
    Benchmark {
        name: "edge",
        about: "GET /products/{id}: the edge vs nginx proxy_pass (installed and started here), and \
                with a verified access token vs anonymous",
        run: edge::run,
    },
    Benchmark {
        name: "checkout",
        about: "add-to-cart + POST /orders by 32 buyers straight at the core (k6), beside pgbench \
                tpcb-like on the same Postgres",
        run: checkout::run,
    },
    Benchmark {
        name: "search",
        about: "100k generated products: the search index vs Postgres full-text search (tsvector + \
                GIN) on the same 1-3 word queries with facets; QPS, p50, p99, build rates",
        run: search::run,
    },
    Benchmark {
        name: "embed",
        about: "all-MiniLM-L6-v2 embeddings/s on the CPU, batches of 32: candle vs the same \
                weights in ONNX Runtime",
        run: embed::run,
    },
    Benchmark {
        name: "recs",
        about: "a product recommendation at 100k products (top-k scan, co-purchases, blend) vs                 scoring and sorting every product; p50, p99",
        run: recs::run,
    },
];

pub fn run(layout: &Layout, names: &[String]) -> Result<()> {
    if names.is_empty() || names.iter().any(|name| name == "list") {
        print_list();
        if names.is_empty() {
            bail!("name a benchmark: cargo xtask bench <name>");
        }
        return Ok(());
    }
    let chosen = names
        .iter()
        .map(|name| {
            BENCHMARKS
                .iter()
                .find(|benchmark| benchmark.name == name)
                .with_context(|| {
                    format!("unknown benchmark `{name}` (`cargo xtask bench list` lists them)")
                })
        })
        .collect::<Result<Vec<_>>>()?;
    for benchmark in chosen {
        println!("xtask: benchmark {}", benchmark.name);
        (benchmark.run)(layout).with_context(|| format!("benchmark {} failed", benchmark.name))?;
    }
    Ok(())
}

fn print_list() {
    println!("Benchmarks:");
    for benchmark in BENCHMARKS {
        println!("  {:<16} {}", benchmark.name, benchmark.about);
    }
}

/// Seconds per measurement: `MERIDIAN_BENCH_SECONDS`, default 10.
fn measurement_seconds() -> Result<u64> {
    match std::env::var("MERIDIAN_BENCH_SECONDS") {
        Err(_) => Ok(10),
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(seconds) if (1..=600).contains(&seconds) => Ok(seconds),
            _ => bail!(
                "MERIDIAN_BENCH_SECONDS must be a number of seconds from 1 to 600, not `{text}`"
            ),
        },
    }
}
