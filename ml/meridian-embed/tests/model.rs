//! The real all-MiniLM-L6-v2, from the directory `cargo xtask test` installs and verifies
//! (`MERIDIAN_EMBED_MODEL_DIR`).

use std::path::PathBuf;

use meridian_embed::{Embedder, EncoderKind, cosine, default_device};

fn model() -> Embedder {
    model_with(EncoderKind::for_device(&default_device().expect("device")))
}

fn model_with(kind: EncoderKind) -> Embedder {
    let dir = std::env::var_os("MERIDIAN_EMBED_MODEL_DIR").map(PathBuf::from).expect(
        "MERIDIAN_EMBED_MODEL_DIR names the all-MiniLM-L6-v2 directory (run through `cargo xtask test`)",
    );
    let device = default_device().expect("device");
    Embedder::load_with_encoder(&dir, "all-MiniLM-L6-v2", &device, kind).expect("the model loads")
}

#[test]
fn related_texts_are_closer_than_unrelated_ones() {
    let model = model();
    assert_eq!(model.dimension(), 384);
    let texts = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The new movie is awesome.",
        "Stainless steel electric kettle, 1.7 litres",
        "Cordless water boiler with auto shut-off",
        "Leather hiking boots, waterproof",
    ];
    let v = model.embed(&texts).expect("embed");
    // The model card's own pair scores about 0.755 with sentence-transformers.
    let food = cosine(&v[0], &v[1]);
    assert!((food - 0.755).abs() < 0.01, "{food}");
    assert!(food > cosine(&v[0], &v[2]) + 0.3);
    // Shop texts: two kettles against a kettle and a boot.
    let kettles = cosine(&v[3], &v[4]);
    assert!(kettles > cosine(&v[3], &v[5]) + 0.2, "{kettles}");
    assert!(kettles > cosine(&v[4], &v[5]) + 0.2, "{kettles}");
    // The same text alone embeds as in the batch.
    let alone = model.embed(&[texts[4]]).expect("embed");
    assert!(cosine(&alone[0], &v[4]) > 0.9999);
}

#[test]
fn the_cpu_encoder_and_candles_model_agree_on_the_real_model() {
    let device = default_device().expect("device");
    if !device.is_cpu() {
        return;
    }
    let texts = [
        "Stainless steel electric kettle, 1.7 litres, with a two-year warranty",
        "kettle",
        "Waterproof leather hiking boots for long trips in any weather, in three colours",
        "",
    ];
    let cpu = model_with(EncoderKind::Cpu { threads: 2 })
        .embed(&texts)
        .expect("embed");
    let candle = model_with(EncoderKind::Candle)
        .embed(&texts)
        .expect("embed");
    for (text, (a, b)) in texts.iter().zip(cpu.iter().zip(&candle)) {
        let agreement = cosine(a, b);
        assert!(agreement > 0.99999, "{text:?}: cosine {agreement}");
    }
}
