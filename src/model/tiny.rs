//! A tiny llama-architecture model with seeded random weights and a real tokenizer, so tests
//! and demos can load, tokenize and decode in milliseconds. Its output is noise.
//!
//! Tensor names and shapes are what `llama_model_llama::load_arch_tensors` in the vendored
//! llama.cpp (`src/models/llama.cpp`) asks for. `output.weight` is left out: the loader then
//! ties the output projection to `token_embd.weight`, which halves the file.

use std::path::{Path, PathBuf};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use super::gguf::{GgufError, GgufFile, GgufWriter, Value};

const GGML_TYPE_F32: u32 = 0;
const GGML_TYPE_F16: u32 = 1;

/// The shape of the tiny model and the seed of its weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TinySpec {
    pub seed: u64,
    pub n_embd: u32,
    pub n_layer: u32,
    pub n_head: u32,
    pub n_head_kv: u32,
    pub n_ff: u32,
    pub n_ctx_train: u32,
}

impl Default for TinySpec {
    fn default() -> Self {
        Self {
            seed: 0,
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 128,
            n_ctx_train: 2048,
        }
    }
}

#[derive(Debug, Error)]
pub enum TinyError {
    #[error("tokenizer source {0}")]
    Source(GgufError),
    #[error("{}: has no tokenizer (tokenizer.ggml.tokens) to copy", path.display())]
    NoTokenizer { path: PathBuf },
    #[error("invalid tiny model shape: {0}")]
    Spec(String),
    #[error(transparent)]
    Write(GgufError),
}

/// Writes a tiny random llama model to `out`, with every `tokenizer.*` entry (vocabulary,
/// merges, special tokens, chat template) copied from the GGUF at `tokenizer_source`.
/// The same spec and source always give the same bytes.
pub fn write_tiny(tokenizer_source: &Path, out: &Path, spec: &TinySpec) -> Result<(), TinyError> {
    check(spec)?;
    let source = GgufFile::open(tokenizer_source).map_err(TinyError::Source)?;
    let n_vocab = source
        .array_len("tokenizer.ggml.tokens")
        .filter(|&n| n > 0)
        .ok_or_else(|| TinyError::NoTokenizer {
            path: tokenizer_source.to_path_buf(),
        })? as u64;

    let mut w = GgufWriter::new();
    let arch = "llama";
    let head_dim = spec.n_embd / spec.n_head;
    w.set("general.architecture", Value::str(arch));
    w.set(
        "general.name",
        Value::str(&format!("leap tiny llama (seed {})", spec.seed)),
    );
    let u32_keys = [
        ("context_length", spec.n_ctx_train),
        ("embedding_length", spec.n_embd),
        ("block_count", spec.n_layer),
        ("feed_forward_length", spec.n_ff),
        ("attention.head_count", spec.n_head),
        ("attention.head_count_kv", spec.n_head_kv),
        ("rope.dimension_count", head_dim),
        ("vocab_size", n_vocab as u32),
    ];
    for (key, v) in u32_keys {
        w.set(&format!("{arch}.{key}"), Value::U32(v));
    }
    w.set(
        &format!("{arch}.attention.layer_norm_rms_epsilon"),
        Value::F32(1e-5),
    );
    w.set(&format!("{arch}.rope.freq_base"), Value::F32(10_000.0));
    for (key, value) in &source.metadata {
        if key.starts_with("tokenizer.") {
            w.set(key, value.clone());
        }
    }

    let (e, ff) = (u64::from(spec.n_embd), u64::from(spec.n_ff));
    let kv = u64::from(head_dim * spec.n_head_kv);
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    // F16 keeps the vocab-sized embedding, the bulk of the file, at half the size.
    let embd = uniform(&mut rng, e * n_vocab, 0.02);
    w.add_tensor(
        "token_embd.weight",
        &[e, n_vocab],
        GGML_TYPE_F16,
        f16_bytes(&embd),
    );
    w.add_tensor("output_norm.weight", &[e], GGML_TYPE_F32, ones(e));
    for i in 0..spec.n_layer {
        // Weights are uniform in ±1/sqrt(fan_in), so activations stay of order one.
        let mut matrix = |name: &str, fan_in: u64, fan_out: u64| {
            let scale = 1.0 / (fan_in as f32).sqrt();
            let data = f32_bytes(&uniform(&mut rng, fan_in * fan_out, scale));
            w.add_tensor(
                &format!("blk.{i}.{name}.weight"),
                &[fan_in, fan_out],
                GGML_TYPE_F32,
                data,
            );
        };
        matrix("attn_q", e, e);
        matrix("attn_k", e, kv);
        matrix("attn_v", e, kv);
        matrix("attn_output", e, e);
        matrix("ffn_gate", e, ff);
        matrix("ffn_down", ff, e);
        matrix("ffn_up", e, ff);
        w.add_tensor(
            &format!("blk.{i}.attn_norm.weight"),
            &[e],
            GGML_TYPE_F32,
            ones(e),
        );
        w.add_tensor(
            &format!("blk.{i}.ffn_norm.weight"),
            &[e],
            GGML_TYPE_F32,
            ones(e),
        );
    }
    w.write(out).map_err(TinyError::Write)
}

fn check(spec: &TinySpec) -> Result<(), TinyError> {
    let bad = |why: &str| Err(TinyError::Spec(why.to_owned()));
    let all = [
        spec.n_embd,
        spec.n_layer,
        spec.n_head,
        spec.n_head_kv,
        spec.n_ff,
        spec.n_ctx_train,
    ];
    if all.contains(&0) {
        return bad("every size must be positive");
    }
    if !spec.n_embd.is_multiple_of(spec.n_head) {
        return bad("n_embd must be a multiple of n_head");
    }
    if !spec.n_head.is_multiple_of(spec.n_head_kv) {
        return bad("n_head must be a multiple of n_head_kv");
    }
    if !(spec.n_embd / spec.n_head).is_multiple_of(2) {
        return bad("the head size n_embd/n_head must be even for RoPE");
    }
    Ok(())
}

/// `n` values uniform in [-scale, scale). Built from raw u32s so the values depend only on
/// the ChaCha stream, not on how a `rand` version maps bits to floats.
fn uniform(rng: &mut ChaCha8Rng, n: u64, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let unit = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
            (unit * 2.0 - 1.0) * scale
        })
        .collect()
}

fn ones(n: u64) -> Vec<u8> {
    f32_bytes(&vec![1.0; n as usize])
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f16_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| f16_bits(v).to_le_bytes())
        .collect()
}

/// IEEE half precision bits of `x`, rounded to nearest even.
fn f16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    let (half, dropped, shift) = if e <= 0 {
        // Subnormal half: the value is man_full * 2^(exp-150), a half subnormal step 2^-24.
        let shift = (14 - e) as u32;
        if shift > 24 {
            return sign;
        }
        let full = man | 0x80_0000;
        (full >> shift, full & ((1 << shift) - 1), shift)
    } else {
        (((e as u32) << 10) | (man >> 13), man & 0x1fff, 13)
    };
    let halfway = 1 << (shift - 1);
    let round_up = dropped > halfway || (dropped == halfway && half & 1 == 1);
    // A carry out of the mantissa correctly bumps the exponent (up to infinity).
    sign | (half + u32::from(round_up)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_matches_ieee() {
        let cases: [(f32, u16); 10] = [
            (0.0, 0x0000),
            (-0.0, 0x8000),
            (1.0, 0x3c00),
            (-2.0, 0xc000),
            (0.5, 0x3800),
            (65504.0, 0x7bff),
            (1e6, 0x7c00),
            (5.960_464_5e-8, 0x0001), // 2^-24, the smallest subnormal
            (6.103_515_6e-5, 0x0400), // 2^-14, the smallest normal
            (1.0e-9, 0x0000),
        ];
        for (x, bits) in cases {
            assert_eq!(f16_bits(x), bits, "{x}");
        }
        // 1 + 2^-11 is halfway between 1 and the next half; ties go to even (1.0).
        assert_eq!(f16_bits(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f16_bits(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        assert!(f16_bits(f32::NAN) & 0x7c00 == 0x7c00 && f16_bits(f32::NAN) & 0x3ff != 0);
    }

    #[test]
    fn bad_shapes_are_refused() {
        let spec = TinySpec {
            n_head: 3,
            ..TinySpec::default()
        };
        assert!(matches!(check(&spec), Err(TinyError::Spec(_))));
        assert!(check(&TinySpec::default()).is_ok());
    }
}
