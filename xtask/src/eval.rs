//! `cargo xtask eval recs [-- --sweep]`: offline evaluation of the recommendations. Builds the
//! release binary `recs-eval` (`workers/meridian-recommendations/src/bin/recs-eval.rs`) and runs
//! it on the embedding model xtask installs: hit-rate@10 and NDCG@10 of the blend against
//! popularity and content-only baselines, on generated purchase histories with each user's
//! last order held out.

use anyhow::{Result, bail, ensure};

use crate::cargo::{self, Profile};
use crate::cmd;
use crate::layout::Layout;
use crate::model;

pub fn run(layout: &Layout, args: &[String]) -> Result<()> {
    let (name, rest) = args.split_first().unzip();
    match name.map(String::as_str) {
        Some("recs") => {}
        Some(other) => bail!("unknown evaluation `{other}`; there is `recs`"),
        None => bail!("usage: cargo xtask eval recs [-- --sweep]"),
    }
    let extra: Vec<&String> = rest
        .unwrap_or_default()
        .iter()
        .filter(|arg| *arg != "--")
        .collect();
    let model = model::ensure(layout)?;
    cargo::build_binaries(layout, Profile::Release)?;
    let eval = cargo::binary(layout, Profile::Release, "recs-eval")?;
    let mut command = cmd::command(&eval);
    command.arg(&model).args(extra);
    let status = cmd::status(&mut command)?;
    ensure!(status.success(), "recs-eval failed ({status})");
    Ok(())
}
