//! What a GGUF model is: architecture, size, quantisation, context and tokenizer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::gguf::{GgufError, GgufFile};

/// A summary of a GGUF model, read from its header alone.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub file_size: u64,
    pub gguf_version: u32,
    pub name: Option<String>,
    pub architecture: Option<String>,
    /// Elements in all tensors, as llama.cpp counts them.
    pub parameters: u64,
    /// The file type (`general.file_type`), e.g. "Q4_1"; "(guessed)" from the most common
    /// tensor type when the file does not say.
    pub quantisation: Option<String>,
    /// How many tensors of each ggml type.
    pub tensor_types: BTreeMap<String, usize>,
    pub tensors: usize,
    /// `n_ctx_train`.
    pub context_length: Option<u64>,
    pub embedding_length: Option<u64>,
    /// The feed-forward's width.
    pub feed_forward_length: Option<u64>,
    pub layers: Option<u64>,
    pub heads: Option<u64>,
    pub kv_heads: Option<u64>,
    pub vocab_size: Option<u64>,
    /// `tokenizer.ggml.model`, e.g. "gpt2" or "llama".
    pub tokenizer: Option<String>,
    pub chat_template: Option<String>,
}

/// Checks `path` is a complete GGUF file and summarises it.
pub fn inspect(path: &Path) -> Result<ModelInfo, GgufError> {
    Ok(ModelInfo::from_gguf(&GgufFile::open(path)?))
}

impl ModelInfo {
    pub fn from_gguf(f: &GgufFile) -> Self {
        let architecture = f.get_str("general.architecture").map(str::to_owned);
        let arch_key = |k: &str| {
            architecture
                .as_deref()
                .and_then(|a| f.get_u64(&format!("{a}.{k}")))
        };
        let mut tensor_types = BTreeMap::new();
        for t in &f.tensors {
            *tensor_types
                .entry(t.type_name().to_uppercase())
                .or_insert(0) += 1;
        }
        let vocab_size = arch_key("vocab_size")
            .or_else(|| f.array_len("tokenizer.ggml.tokens").map(|n| n as u64));
        ModelInfo {
            path: f.path.clone(),
            file_size: f.file_size,
            gguf_version: f.version,
            name: f.get_str("general.name").map(str::to_owned),
            parameters: f.tensors.iter().map(|t| t.n_elements()).sum(),
            quantisation: quantisation(f),
            tensors: f.tensors.len(),
            tensor_types,
            context_length: arch_key("context_length"),
            embedding_length: arch_key("embedding_length"),
            feed_forward_length: arch_key("feed_forward_length"),
            layers: arch_key("block_count"),
            heads: arch_key("attention.head_count"),
            kv_heads: arch_key("attention.head_count_kv").or(arch_key("attention.head_count")),
            vocab_size,
            tokenizer: f.get_str("tokenizer.ggml.model").map(str::to_owned),
            chat_template: f.get_str("tokenizer.chat_template").map(str::to_owned),
            architecture,
        }
    }
}

fn quantisation(f: &GgufFile) -> Option<String> {
    if let Some(ftype) = f.get_u64("general.file_type") {
        return Some(
            ftype_name(ftype).map_or_else(|| format!("unknown file type {ftype}"), str::to_owned),
        );
    }
    // As llama.cpp does: the type most tensors have.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in &f.tensors {
        *counts.entry(t.type_name().to_uppercase()).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(_, n)| n)
        .map(|(name, _)| format!("{name} (guessed)"))
}

/// Names of `enum llama_ftype`, as `llama_ftype_name` prints them.
fn ftype_name(ftype: u64) -> Option<&'static str> {
    Some(match ftype {
        0 => "all F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K - Medium",
        11 => "Q3_K - Small",
        12 => "Q3_K - Medium",
        13 => "Q3_K - Large",
        14 => "Q4_K - Small",
        15 => "Q4_K - Medium",
        16 => "Q5_K - Small",
        17 => "Q5_K - Medium",
        18 => "Q6_K",
        19 => "IQ2_XXS - 2.0625 bpw",
        20 => "IQ2_XS - 2.3125 bpw",
        21 => "Q2_K - Small",
        22 => "IQ3_XS - 3.3 bpw",
        23 => "IQ3_XXS - 3.0625 bpw",
        24 => "IQ1_S - 1.5625 bpw",
        25 => "IQ4_NL - 4.5 bpw",
        26 => "IQ3_S - 3.4375 bpw",
        27 => "IQ3_S mix - 3.66 bpw",
        28 => "IQ2_S - 2.5 bpw",
        29 => "IQ2_M - 2.7 bpw",
        30 => "IQ4_XS - 4.25 bpw",
        31 => "IQ1_M - 1.75 bpw",
        32 => "BF16",
        36 => "TQ1_0 - 1.69 bpw ternary",
        37 => "TQ2_0 - 2.06 bpw ternary",
        38 => "MXFP4 MoE",
        39 => "NVFP4",
        40 => "Q1_0",
        41 => "Q2_0",
        _ => return None,
    })
}
