//! The CPU encoder: BERT's forward pass over the real tokens only, with the weights candle
//! loaded and the matrix kernels candle itself calls (the `gemm` crate).
//!
//! candle's `BertModel` pads every text of a batch to the longest, runs each operation as its
//! own pass over memory, and splits every operation across the threads, which then wait for
//! each other dozens of times per layer. This encoder packs the batch's tokens without
//! padding (every text attends only to itself, so nothing needs masking), fuses the bias,
//! residual and activation into the passes that produce them, and gives each thread whole
//! texts, so the threads never meet inside the model.
//!
//! Invariant: the same function as candle's `BertModel` with mean pooling (erf GELU,
//! post-layer normalisation, absolute positions): the tests compare the two on random
//! weights, and on the real model.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct, PositionEmbeddingType};

/// One tokenized text: word-piece ids and token type ids, of the same length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Text<'a> {
    pub ids: &'a [u32],
    pub types: &'a [u32],
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

/// A dense layer, its weight stored transposed (`inputs` rows of `outputs`).
struct Linear {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

struct Layer {
    /// Query, key and value in one product: per token `[q | k | v]`, each `hidden` wide.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

pub(crate) struct CpuEncoder {
    hidden: usize,
    heads: usize,
    eps: f32,
    words: Vec<f32>,
    positions: Vec<f32>,
    types: Vec<f32>,
    vocab: usize,
    max_positions: usize,
    type_vocab: usize,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    threads: usize,
}

/// The prefix under which `vb` holds the encoder: none, `bert.`, or the model type's, as
/// candle's `BertModel::load` accepts them.
fn prefix(vb: &VarBuilder<'_>, config: &Config) -> String {
    let mut candidates = vec![String::new(), "bert.".to_owned()];
    if let Some(model_type) = &config.model_type {
        candidates.push(format!("{model_type}."));
    }
    candidates
        .into_iter()
        .find(|p| vb.contains_tensor(&format!("{p}embeddings.word_embeddings.weight")))
        .unwrap_or_default()
}

fn flat(tensor: Tensor) -> Result<Vec<f32>> {
    tensor.flatten_all()?.to_vec1::<f32>()
}

fn norm(vb: &VarBuilder<'_>, name: &str, size: usize) -> Result<Norm> {
    Ok(Norm {
        gamma: flat(vb.get(size, &format!("{name}.weight"))?)?,
        beta: flat(vb.get(size, &format!("{name}.bias"))?)?,
    })
}

/// Dense layers named `names` (all `inputs` wide), side by side as one.
fn linear(vb: &VarBuilder<'_>, names: &[String], inputs: usize, outputs: usize) -> Result<Linear> {
    let weights = names
        .iter()
        .map(|name| vb.get((outputs, inputs), &format!("{name}.weight")))
        .collect::<Result<Vec<_>>>()?;
    let biases = names
        .iter()
        .map(|name| vb.get(outputs, &format!("{name}.bias")))
        .collect::<Result<Vec<_>>>()?;
    let weight = Tensor::cat(&weights, 0)?.t()?.contiguous()?;
    Ok(Linear {
        weight: flat(weight)?,
        bias: flat(Tensor::cat(&biases, 0)?)?,
        inputs,
        outputs: outputs * names.len(),
    })
}

impl CpuEncoder {
    /// The encoder of `config` from `vb` (where candle's `BertModel::load` finds it), for
    /// `threads` threads; fails on a configuration that candle's model would run differently.
    pub fn load(vb: &VarBuilder<'_>, config: &Config, threads: usize) -> Result<CpuEncoder> {
        if config.hidden_act != HiddenAct::Gelu {
            candle_core::bail!("the CPU encoder runs erf GELU only");
        }
        if config.position_embedding_type != PositionEmbeddingType::Absolute {
            candle_core::bail!("the CPU encoder runs absolute positions only");
        }
        let (hidden, inner) = (config.hidden_size, config.intermediate_size);
        if config.num_attention_heads == 0 || hidden % config.num_attention_heads != 0 {
            candle_core::bail!("the hidden size does not split into the attention heads");
        }
        let p = prefix(vb, config);
        let embedding = |name: &str, rows: usize| {
            flat(vb.get((rows, hidden), &format!("{p}embeddings.{name}.weight"))?)
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = format!("{p}encoder.layer.{i}");
            let qkv = ["query", "key", "value"].map(|n| format!("{l}.attention.self.{n}"));
            layers.push(Layer {
                qkv: linear(vb, &qkv, hidden, hidden)?,
                attention_out: linear(
                    vb,
                    &[format!("{l}.attention.output.dense")],
                    hidden,
                    hidden,
                )?,
                attention_norm: norm(vb, &format!("{l}.attention.output.LayerNorm"), hidden)?,
                intermediate: linear(vb, &[format!("{l}.intermediate.dense")], hidden, inner)?,
                output: linear(vb, &[format!("{l}.output.dense")], inner, hidden)?,
                output_norm: norm(vb, &format!("{l}.output.LayerNorm"), hidden)?,
            });
        }
        Ok(CpuEncoder {
            hidden,
            heads: config.num_attention_heads,
            eps: config.layer_norm_eps as f32,
            words: embedding("word_embeddings", config.vocab_size)?,
            positions: embedding("position_embeddings", config.max_position_embeddings)?,
            types: embedding("token_type_embeddings", config.type_vocab_size)?,
            vocab: config.vocab_size,
            max_positions: config.max_position_embeddings,
            type_vocab: config.type_vocab_size,
            embedding_norm: norm(vb, &format!("{p}embeddings.LayerNorm"), hidden)?,
            layers,
            threads: threads.max(1),
        })
    }

    /// The mean-pooled, unit-length embedding of each text, in order.
    pub fn embed(&self, texts: &[Text<'_>]) -> Result<Vec<Vec<f32>>> {
        for text in texts {
            if text.ids.len() != text.types.len() || text.ids.len() > self.max_positions {
                candle_core::bail!("a text is longer than the model's positions");
            }
            if text.ids.iter().any(|&id| id as usize >= self.vocab)
                || text.types.iter().any(|&t| t as usize >= self.type_vocab)
            {
                candle_core::bail!("a token id is outside the model's vocabulary");
            }
        }
        let groups = balance(texts, self.threads);
        let mut out = vec![Vec::new(); texts.len()];
        std::thread::scope(|scope| {
            let mut groups = groups.into_iter().filter(|g| !g.is_empty());
            let own = groups.next();
            let spawned: Vec<_> = groups
                .map(|group| scope.spawn(move || (self.encode(texts, &group), group)))
                .collect();
            let mut place = |vectors: Vec<Vec<f32>>, group: Vec<usize>| {
                for (vector, i) in vectors.into_iter().zip(group) {
                    out[i] = vector;
                }
            };
            if let Some(group) = own {
                place(self.encode(texts, &group), group);
            }
            for handle in spawned {
                let (vectors, group) = handle.join().expect("an encoder thread panicked");
                place(vectors, group);
            }
        });
        Ok(out)
    }

    /// The embeddings of `texts[i]` for each `i` of `group`, on this thread: compiled twice,
    /// for AVX2 (wide vectors in the element-wise passes) and for any x86-64.
    fn encode(&self, texts: &[Text<'_>], group: &[usize]) -> Vec<Vec<f32>> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2 and FMA, as just checked.
            return unsafe { self.encode_avx2(texts, group) };
        }
        self.encode_any(texts, group)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn encode_avx2(&self, texts: &[Text<'_>], group: &[usize]) -> Vec<Vec<f32>> {
        self.encode_any(texts, group)
    }

    #[inline(always)]
    fn encode_any(&self, texts: &[Text<'_>], group: &[usize]) -> Vec<Vec<f32>> {
        let h = self.hidden;
        let spans: Vec<(usize, usize)> = group
            .iter()
            .scan(0, |start, &i| {
                let span = (*start, texts[i].ids.len());
                *start += span.1;
                Some(span)
            })
            .collect();
        let tokens: usize = spans.iter().map(|s| s.1).sum();
        let inner = self.layers.first().map_or(0, |l| l.intermediate.outputs);
        let mut x = vec![0f32; tokens * h];
        let mut sum = vec![0f32; tokens * h];
        let mut qkv = vec![0f32; tokens * 3 * h];
        let mut context = vec![0f32; tokens * h];
        let mut wide = vec![0f32; tokens * inner];
        let mut scores = Vec::new();

        for (&i, &(start, len)) in group.iter().zip(&spans) {
            let text = texts[i];
            for p in 0..len {
                let row = &mut x[(start + p) * h..(start + p + 1) * h];
                let word = &self.words[text.ids[p] as usize * h..][..h];
                let position = &self.positions[p * h..][..h];
                let kind = &self.types[text.types[p] as usize * h..][..h];
                for (((r, w), q), t) in row.iter_mut().zip(word).zip(position).zip(kind) {
                    *r = w + q + t;
                }
            }
        }
        layer_norm(&mut x, &self.embedding_norm, h, self.eps);

        for layer in &self.layers {
            affine(&mut qkv, &x, &layer.qkv, None);
            self.attention(&qkv, &spans, &mut context, &mut scores);
            affine(&mut sum, &context, &layer.attention_out, Some(&x));
            layer_norm(&mut sum, &layer.attention_norm, h, self.eps);
            std::mem::swap(&mut x, &mut sum);
            affine(&mut wide, &x, &layer.intermediate, None);
            kernels::gelu(&mut wide);
            affine(&mut sum, &wide, &layer.output, Some(&x));
            layer_norm(&mut sum, &layer.output_norm, h, self.eps);
            std::mem::swap(&mut x, &mut sum);
        }

        spans
            .iter()
            .map(|&(start, len)| {
                let mut mean = vec![0f32; h];
                for row in x[start * h..(start + len) * h].chunks_exact(h) {
                    for (m, v) in mean.iter_mut().zip(row) {
                        *m += v;
                    }
                }
                let count = (len as f32).max(1e-9);
                mean.iter_mut().for_each(|m| *m /= count);
                let norm = mean.iter().map(|m| m * m).sum::<f32>().sqrt().max(1e-12);
                mean.iter_mut().for_each(|m| *m /= norm);
                mean
            })
            .collect()
    }

    /// Scaled dot-product attention of each text with itself, every head, into `context`.
    #[inline(always)]
    fn attention(
        &self,
        qkv: &[f32],
        spans: &[(usize, usize)],
        context: &mut [f32],
        scores: &mut Vec<f32>,
    ) {
        let h = self.hidden;
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        let row = |t: usize| &qkv[t * 3 * h..(t + 1) * 3 * h];
        for &(start, len) in spans {
            scores.resize(len, 0.0);
            for head in 0..self.heads {
                let (q, k, v) = (head * d, h + head * d, 2 * h + head * d);
                for i in start..start + len {
                    let query = &row(i)[q..q + d];
                    for (j, s) in scores.iter_mut().enumerate() {
                        *s = kernels::dot(query, &row(start + j)[k..k + d]) * scale;
                    }
                    kernels::softmax(scores);
                    let out = &mut context[i * h + head * d..i * h + (head + 1) * d];
                    out.fill(0.0);
                    for (j, &p) in scores.iter().enumerate() {
                        let value = &row(start + j)[v..v + d];
                        for (o, x) in out.iter_mut().zip(value) {
                            *o += p * x;
                        }
                    }
                }
            }
        }
    }
}

/// `out = input · W + b (+ residual)`, row by row.
#[inline(always)]
fn affine(out: &mut [f32], input: &[f32], layer: &Linear, residual: Option<&[f32]>) {
    let n = layer.outputs;
    let rows = input.len() / layer.inputs;
    for (r, row) in out.chunks_exact_mut(n).enumerate() {
        row.copy_from_slice(&layer.bias);
        if let Some(residual) = residual {
            for (o, x) in row.iter_mut().zip(&residual[r * n..(r + 1) * n]) {
                *o += x;
            }
        }
    }
    kernels::matmul_add(out, input, &layer.weight, rows, layer.inputs, n);
}

#[inline(always)]
fn layer_norm(x: &mut [f32], norm: &Norm, width: usize, eps: f32) {
    for row in x.chunks_exact_mut(width) {
        let mean = row.iter().sum::<f32>() / width as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(&norm.gamma).zip(&norm.beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// `texts`' indices in `threads` groups of about equal work, longest texts placed first.
fn balance(texts: &[Text<'_>], threads: usize) -> Vec<Vec<usize>> {
    let cost = |i: usize| {
        let len = texts[i].ids.len();
        // The dense layers grow with the tokens, attention with their square.
        len * 64 + len * len
    };
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cost(i)));
    let mut groups = vec![(0usize, Vec::new()); threads.min(texts.len()).max(1)];
    for i in order {
        let lightest = groups
            .iter_mut()
            .min_by_key(|(load, _)| *load)
            .expect("at least one group");
        lightest.0 += cost(i);
        lightest.1.push(i);
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

mod kernels {
    /// `dst[m×n] += a[m×k] · b[k×n]`, all row-major, on this thread.
    pub fn matmul_add(dst: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize) {
        assert!(dst.len() == m * n && a.len() == m * k && b.len() == k * n);
        if m == 0 || n == 0 || k == 0 {
            return;
        }
        #[allow(unsafe_code)]
        // SAFETY: the asserts above make each slice exactly the row-major matrix that its
        // pointer and strides describe (column stride 1, row stride the width), so gemm reads
        // and writes inside them only; `dst` is a unique borrow, so it aliases neither input.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                true,
                a.as_ptr(),
                1,
                k as isize,
                b.as_ptr(),
                1,
                n as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }

    #[inline(always)]
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut lanes = [0f32; 8];
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let tail: f32 = ca
            .remainder()
            .iter()
            .zip(cb.remainder())
            .map(|(x, y)| x * y)
            .sum();
        for (x, y) in ca.zip(cb) {
            for l in 0..8 {
                lanes[l] += x[l] * y[l];
            }
        }
        lanes.iter().sum::<f32>() + tail
    }

    #[inline(always)]
    pub fn softmax(scores: &mut [f32]) {
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0;
        for s in scores.iter_mut() {
            *s = exp(*s - max);
            total += *s;
        }
        let inv = 1.0 / total;
        scores.iter_mut().for_each(|s| *s *= inv);
    }

    /// GELU with the exact (erf) form, in place.
    #[inline(always)]
    pub fn gelu(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    }

    /// `e^x` to about 2 ulp over f32's range (0 below -87), in straight-line arithmetic that
    /// the compiler turns into vector code: `2^n · e^r` with `|r| <= ln 2 / 2`.
    #[inline(always)]
    pub fn exp(x: f32) -> f32 {
        const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
        const LN2_HI: f32 = 0.693_145_75;
        const LN2_LO: f32 = 1.428_606_8e-6;
        let x = x.clamp(-87.0, 88.0);
        let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
        let r = x - n * LN2_HI - n * LN2_LO;
        // Taylor series of e^r to r^7: below 2e-8 relative for |r| <= 0.35.
        let p = 1.0
            + r * (1.0
                + r * (0.5
                    + r * (1.0 / 6.0
                        + r * (1.0 / 24.0
                            + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
        let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
        p * scale
    }

    /// The error function to 1.5e-7 (Abramowitz and Stegun 7.1.26), 5e-7 after f32 rounding:
    /// absolute error, which is what GELU's `x · (1 + erf)` needs.
    #[inline(always)]
    pub fn erf(x: f32) -> f32 {
        let a = x.abs();
        let t = 1.0 / (1.0 + 0.327_591_1 * a);
        let poly = t
            * (0.254_829_6
                + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
        let y = 1.0 - poly * exp(-a * a);
        y.copysign(x)
    }
}

#[cfg(test)]
mod tests {
    use super::kernels::{erf, exp};

    #[test]
    fn exp_matches_the_standard_library() {
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let (ours, std) = (exp(x), x.exp());
            assert!(
                ((ours - std) / std).abs() < 1e-6,
                "exp({x}) = {ours}, not {std}"
            );
        }
        assert!(exp(-200.0) < 1e-37);
    }

    #[test]
    fn erf_is_within_its_bound() {
        // erf through its series at small x and its tail at large x, in f64.
        let reference = |x: f64| -> f64 {
            if x.abs() < 2.5 {
                let mut term = x;
                let mut sum = x;
                for n in 1..80 {
                    term *= -x * x / n as f64;
                    sum += term / (2 * n + 1) as f64;
                }
                sum * 2.0 / std::f64::consts::PI.sqrt()
            } else {
                // erfc's continued fraction.
                let a = x.abs();
                let mut f = 0.0;
                for n in (1..60).rev() {
                    f = (n as f64 / 2.0) / (a + f);
                }
                let erfc = (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + f);
                (1.0 - erfc).copysign(x)
            }
        };
        for i in -600..=600 {
            let x = i as f32 / 100.0;
            let want = reference(f64::from(x));
            let got = f64::from(erf(x));
            assert!((got - want).abs() < 5e-7, "erf({x}) = {got}, not {want}");
        }
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(-10.0), -1.0);
    }
}
