//! A tiny BERT with random weights and a word-level tokenizer, built here: the pooling,
//! padding and truncation logic, without the real model.

use std::collections::HashMap;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::bert::{Config, HiddenAct, PositionEmbeddingType};
use tokenizers::{
    Tokenizer, models::wordlevel::WordLevel, pre_tokenizers::whitespace::Whitespace,
    processors::bert::BertProcessing,
};

use super::{Embedder, EncoderKind, cosine};

const WORDS: &[&str] = &[
    "red", "blue", "lamp", "desk", "floor", "kettle", "copper", "a", "the", "with", "brass",
    "shade", "tall", "small", "oak", "stand",
];

fn tokenizer() -> Tokenizer {
    let vocab: HashMap<String, u32> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        .iter()
        .chain(WORDS)
        .enumerate()
        .map(|(id, word)| ((*word).to_owned(), id as u32))
        .collect();
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("[UNK]".to_owned())
        .build()
        .expect("word-level model");
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(Whitespace {}));
    tokenizer.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".to_owned(), 3),
        ("[CLS]".to_owned(), 2),
    )));
    tokenizer
}

fn tiny(max_tokens: usize) -> (Embedder, VarMap) {
    let weights = VarMap::new();
    let vb = VarBuilder::from_varmap(&weights, DType::F32, &Device::Cpu);
    let embedder =
        Embedder::new(&config(), vb, tokenizer(), max_tokens, "tiny-test").expect("tiny model");
    (embedder, weights)
}

/// The tiny model run by `kind`, over the weights of `weights` (made on first use).
fn tiny_with(weights: &VarMap, kind: EncoderKind) -> Embedder {
    let vb = VarBuilder::from_varmap(weights, DType::F32, &Device::Cpu);
    Embedder::with_encoder(&config(), vb, tokenizer(), 32, "tiny-test", kind).expect("tiny model")
}

fn config() -> Config {
    Config {
        vocab_size: WORDS.len() + 4,
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 64,
        hidden_act: HiddenAct::Gelu,
        hidden_dropout_prob: 0.0,
        max_position_embeddings: 64,
        type_vocab_size: 2,
        initializer_range: 0.02,
        layer_norm_eps: 1e-12,
        pad_token_id: 0,
        position_embedding_type: PositionEmbeddingType::Absolute,
        use_cache: false,
        classifier_dropout: None,
        model_type: Some("bert".to_owned()),
    }
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
}

#[test]
fn embeddings_are_unit_vectors_of_the_model_dimension() {
    let (embedder, _weights) = tiny(32);
    let vectors = embedder
        .embed(&["red lamp", "copper kettle with a brass stand", ""])
        .expect("embed");
    assert_eq!(vectors.len(), 3);
    for vector in &vectors {
        assert_eq!(vector.len(), 32);
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
    assert!(cosine(&vectors[0], &vectors[1]) < 0.9999);
    assert!(embedder.embed(&[]).expect("embed").is_empty());
    assert_eq!(embedder.name(), "tiny-test");
    assert_eq!(embedder.dimension(), 32);
}

#[test]
fn a_text_embeds_the_same_alone_and_in_a_batch_with_longer_ones() {
    let (embedder, _weights) = tiny(32);
    let alone = embedder.embed(&["red lamp"]).expect("embed");
    let batch = embedder
        .embed(&[
            "the tall oak floor lamp with a small brass shade",
            "red lamp",
            "blue desk",
        ])
        .expect("embed");
    assert!(
        close(&alone[0], &batch[1]),
        "{:?} vs {:?}",
        alone[0],
        batch[1]
    );
    let again = embedder.embed(&["red lamp"]).expect("embed");
    assert_eq!(alone, again);
}

#[test]
fn long_texts_are_cut_at_the_token_limit() {
    // Six words fit beside [CLS] and [SEP].
    let (embedder, _weights) = tiny(8);
    let long = "red blue lamp desk floor kettle copper oak stand shade";
    let cut = "red blue lamp desk floor kettle";
    let vectors = embedder.embed(&[long, cut]).expect("embed");
    assert!(close(&vectors[0], &vectors[1]));
    let different = embedder
        .embed(&["red blue lamp desk floor copper"])
        .expect("embed");
    assert!(!close(&vectors[1], &different[0]));
}

#[test]
fn the_cpu_encoder_computes_what_candles_model_computes() {
    let weights = VarMap::new();
    let candle = tiny_with(&weights, EncoderKind::Candle);
    let texts = [
        "the tall oak floor lamp with a small brass shade",
        "red lamp",
        "",
        "copper kettle with a brass stand and a red shade",
        "blue",
        "oak desk",
        "the small copper kettle",
    ];
    let want = candle.embed(&texts).expect("embed");
    for threads in [1, 2, 3, 16] {
        let cpu = tiny_with(&weights, EncoderKind::Cpu { threads });
        let got = cpu.embed(&texts).expect("embed");
        assert_eq!(got.len(), want.len());
        for (text, (g, w)) in texts.iter().zip(got.iter().zip(&want)) {
            let worst = g
                .iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-5, "{threads} threads, {text:?}: off by {worst}");
        }
    }
    // Not a model that ignores its input: the texts embed apart.
    assert!(cosine(&want[0], &want[1]) < 0.999);
}
