//! `embed`: embeddings per second of all-MiniLM-L6-v2 on the CPU, batches of 32 generated
//! product titles, meridian-embed's CPU encoder (its release binary `embed-bench`) beside the
//! same weights in ONNX Runtime (`ml/meridian-embed/bench/onnx_reference.py`, installed from
//! PyPI by hash), one after the other on the same texts and threads; goal: at least 1.0x the
//! reference. candle's own `BertModel` runs too, to show what the CPU encoder changes. The
//! first batch's vectors are compared, so all three run the same model.

use std::path::Path;

use anyhow::{Context, Result, ensure};

use super::measurement_seconds;
use crate::cargo::{self, Profile};
use crate::cmd;
use crate::layout::{Layout, create_dir};
use crate::model;
use crate::venv;

const BATCH: usize = 32;
const TEXTS: usize = 4096;

pub fn run(layout: &Layout) -> Result<()> {
    let seconds = measurement_seconds()?;
    let model = model::ensure(layout)?;
    let python = ensure_reference(layout)?;
    cargo::build_binaries(layout, Profile::Release)?;
    let bench = cargo::binary(layout, Profile::Release, "embed-bench")?;
    let dir = layout.bench().join("embed");
    create_dir(&dir)?;
    let texts = dir.join("texts.txt");
    std::fs::write(&texts, titles(TEXTS))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "xtask: {TEXTS} product titles, batches of {BATCH}, {seconds} s each, {threads} threads"
    );

    let run_ours = |encoder: &str| -> Result<serde_json::Value> {
        let out = dir.join(format!("{encoder}.json"));
        let status = cmd::status(
            cmd::command(&bench)
                .env(model::SPIN_LIMIT.0, model::SPIN_LIMIT.1)
                .arg(&model)
                .arg(&texts)
                .arg(BATCH.to_string())
                .arg(seconds.to_string())
                .arg(&out)
                .arg(encoder),
        )?;
        ensure!(status.success(), "embed-bench {encoder} failed ({status})");
        read(&out)
    };
    let ours = run_ours("cpu")?;
    let candle = run_ours("candle")?;
    let reference_out = dir.join("onnxruntime.json");
    let script = layout
        .root()
        .join("ml/meridian-embed/bench/onnx_reference.py");
    let status = cmd::status(
        cmd::command(&python)
            .arg(&script)
            .arg(&model)
            .arg(&texts)
            .arg(BATCH.to_string())
            .arg(seconds.to_string())
            .arg(threads.to_string())
            .arg(&reference_out),
    )?;
    ensure!(
        status.success(),
        "the ONNX Runtime reference failed ({status})"
    );

    let reference = read(&reference_out)?;
    let agreement = min_cosine(&ours["vectors"], &reference["vectors"])?
        .min(min_cosine(&candle["vectors"], &reference["vectors"])?);
    let rate = |v: &serde_json::Value| v["embeddings_per_s"].as_f64().unwrap_or(0.0);
    let ratio = |v: &serde_json::Value| rate(v) / rate(&reference).max(1e-9);
    println!();
    println!("| runtime | embeddings/s | batches | vs ONNX Runtime |");
    println!("| --- | --- | --- | --- |");
    for (name, v) in [
        ("meridian-embed CPU encoder", &ours),
        ("candle BertModel", &candle),
        ("ONNX Runtime 1.32", &reference),
    ] {
        println!(
            "| {name} | {:.1} | {} | {:.2}x |",
            rate(v),
            v["batches"],
            ratio(v)
        );
    }
    println!();
    println!("xtask: the first batch's vectors agree to a cosine of at least {agreement:.5}");
    println!(
        "xtask: the CPU encoder makes {:.2}x the reference's embeddings/s (goal >= 1.0x: {})",
        ratio(&ours),
        if ratio(&ours) >= 1.0 { "met" } else { "missed" }
    );
    ensure!(
        agreement > 0.999,
        "the runtimes disagree (cosine {agreement}): they do not run the same model"
    );
    Ok(())
}

/// `.meridian/venv`'s python with onnxruntime, onnx and tokenizers.
fn ensure_reference(layout: &Layout) -> Result<std::path::PathBuf> {
    let python = layout.venv().join("bin").join("python");
    let ready = || {
        python.is_file()
            && cmd::output(
                cmd::command(&python)
                    .arg("-c")
                    .arg("import onnxruntime, onnx, tokenizers, numpy"),
            )
            .is_ok()
    };
    if !ready() {
        venv::install_without_dependencies(
            layout,
            &layout
                .root()
                .join("xtask")
                .join("requirements-bench-embed.txt"),
            "ONNX Runtime 1.32.0 (the reference runtime)",
        )?;
    }
    ensure!(ready(), "ONNX Runtime was installed but does not import");
    Ok(python)
}

fn read(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// The smallest cosine between the two runtimes' vectors of the same texts.
fn min_cosine(a: &serde_json::Value, b: &serde_json::Value) -> Result<f64> {
    let rows = |v: &serde_json::Value| -> Option<Vec<Vec<f64>>> {
        v.as_array()?
            .iter()
            .map(|row| row.as_array()?.iter().map(|x| x.as_f64()).collect())
            .collect()
    };
    let (a, b) = (
        rows(a).context("no vectors")?,
        rows(b).context("no reference vectors")?,
    );
    ensure!(a.len() == b.len() && !a.is_empty(), "different batches");
    Ok(a.iter()
        .zip(&b)
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>())
        .fold(f64::INFINITY, f64::min))
}

/// `count` product titles, varied and deterministic (3 to 12 words).
fn titles(count: usize) -> String {
    const ADJECTIVES: &[&str] = &[
        "stainless steel",
        "ceramic",
        "leather",
        "waterproof",
        "wireless",
        "organic",
        "compact",
        "premium",
        "cordless",
        "vintage",
        "lightweight",
        "ergonomic",
        "insulated",
        "handmade",
    ];
    const NOUNS: &[&str] = &[
        "electric kettle",
        "teapot",
        "hiking boots",
        "noise-cancelling headphones",
        "desk lamp",
        "coffee beans",
        "travel backpack",
        "power drill",
        "terracotta planter",
        "keyboard",
        "frying pan",
        "running shoes",
        "sleeping bag",
        "office chair",
        "bluetooth speaker",
    ];
    const TAILS: &[&str] = &[
        "",
        "for home",
        "with a two-year warranty",
        "in three colours, machine washable",
        "for everyday use and long trips in any weather",
        "set of two",
    ];
    let mut out = String::new();
    for n in 0..count {
        let adjective = ADJECTIVES[n % ADJECTIVES.len()];
        let noun = NOUNS[(n / ADJECTIVES.len()) % NOUNS.len()];
        let tail = TAILS[(n * 7 / 3) % TAILS.len()];
        out.push_str(format!("{adjective} {noun} {tail}").trim_end());
        out.push('\n');
    }
    out
}
