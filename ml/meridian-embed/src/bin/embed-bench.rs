//! The candle side of `cargo xtask bench embed`: embeddings per second for the real model,
//! in batches, over the texts of a file, for a number of seconds (after a warm-up batch).
//!
//! Usage: `embed-bench MODEL_DIR TEXTS_FILE BATCH SECONDS OUT_JSON [cpu|candle]` (the encoder:
//! meridian-embed's CPU encoder, the default, or candle's `BertModel`); writes
//! `{"embeddings_per_s", "batches", "texts", "vectors"}` (the first batch's vectors, to check
//! against the reference runtime) to OUT_JSON.

use std::{error::Error, path::Path, time::Instant};

use meridian_embed::{Embedder, EncoderKind};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: embed-bench MODEL_DIR TEXTS_FILE BATCH SECONDS OUT_JSON [cpu|candle]";
    let (model, texts, batch, seconds, out, encoder) = match args.as_slice() {
        [_, m, t, b, s, o] => (m, t, b, s, o, "cpu"),
        [_, m, t, b, s, o, e] => (m, t, b, s, o, e.as_str()),
        _ => return Err(usage.into()),
    };
    let device = candle_core::Device::Cpu;
    let kind = match encoder {
        "cpu" => EncoderKind::for_device(&device),
        "candle" => EncoderKind::Candle,
        _ => return Err(usage.into()),
    };
    let batch: usize = batch.parse()?;
    let seconds: f64 = seconds.parse()?;
    let texts = std::fs::read_to_string(texts)?;
    let texts: Vec<&str> = texts.lines().filter(|l| !l.trim().is_empty()).collect();
    if texts.len() < batch {
        return Err("the texts file holds fewer texts than one batch".into());
    }
    let embedder =
        Embedder::load_with_encoder(Path::new(model), "all-MiniLM-L6-v2", &device, kind)?;
    let first = embedder.embed(&texts[..batch])?;
    embedder.embed(&texts[..batch])?; // warm-up
    let (mut done, mut batches) = (0usize, 0usize);
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < seconds {
        let start = (batches * batch) % (texts.len() - batch).max(1);
        embedder.embed(&texts[start..start + batch])?;
        done += batch;
        batches += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "embeddings_per_s": done as f64 / elapsed,
        "batches": batches,
        "texts": done,
        "vectors": first,
    });
    std::fs::write(out, report.to_string())?;
    Ok(())
}
