//! What llama.cpp asserts on, checked in Rust before it sees a file.
//!
//! `gguf.rs` checks a file is well-formed GGUF. A well-formed file can still end the process:
//! llama.cpp's loader `GGML_ASSERT`s on hyper-parameters (`load_hparams` in `src/llama-model.cpp`:
//! the layer count, the expert counts), its vocabulary asserts every token string is distinct
//! (`src/llama-vocab.cpp`), ggml asserts norm epsilons are not negative, and NaN or infinite
//! weights reach the sampler and the grammar, which abort on them. Each is checked here, with an
//! error naming the file and the field or tensor. The rules follow the vendored llama.cpp.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::gguf::{GgufError, GgufFile, TensorInfo, Value, ValueType};

/// `LLAMA_MAX_LAYERS`.
pub const MAX_LAYERS: u64 = 512;
/// `LLAMA_MAX_EXPERTS`.
pub const MAX_EXPERTS: u64 = 1024;
const F32: u32 = 0;
/// The largest adapter weight taken: trained LoRA weights are of order one (0.01 to 1); one
/// ten thousand times larger comes only from diverged training, or damage, and pushes the
/// scaled update towards infinity.
pub const MAX_ADAPTER_WEIGHT: f32 = 1e4;
/// `enum llama_token_type`: UNDEFINED (0) to BYTE (6).
const MAX_TOKEN_TYPE: i32 = 6;
/// The tokenizers `llama_vocab::load` knows (`tokenizer.ggml.model`).
const TOKENIZERS: [&str; 8] = [
    "no_vocab", "none", "llama", "bert", "gpt2", "t5", "rwkv", "plamo2",
];
/// `llama_rope_scaling_type_from_string`.
const ROPE_SCALINGS: [&str; 4] = ["none", "linear", "yarn", "longrope"];

/// Why llama.cpp must not be given a file; every variant names the file.
#[derive(Debug, Error)]
pub enum CheckError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("{}: {field} {problem}", path.display())]
    Field {
        path: PathBuf,
        field: String,
        problem: String,
    },
    #[error("{}: tensor {tensor}: {problem}", path.display())]
    Tensor {
        path: PathBuf,
        tensor: String,
        problem: String,
    },
}

fn field(f: &GgufFile, field: &str, problem: impl Into<String>) -> CheckError {
    CheckError::Field {
        path: f.path.clone(),
        field: field.to_owned(),
        problem: problem.into(),
    }
}

fn tensor_err(f: &GgufFile, tensor: &str, problem: impl Into<String>) -> CheckError {
    CheckError::Tensor {
        path: f.path.clone(),
        tensor: tensor.to_owned(),
        problem: problem.into(),
    }
}

/// Whether a GGUF file holds a model or a LoRA adapter (`general.type`).
pub fn is_adapter(f: &GgufFile) -> bool {
    f.get_str("general.type") == Some("adapter")
}

/// Opens `path` and runs every check on it: [`check_model`] or [`check_adapter`] by its
/// `general.type`, then [`scan_weights`].
pub fn check_file(path: &Path) -> Result<GgufFile, CheckError> {
    let f = GgufFile::open(path)?;
    check_header(&f)?;
    scan_weights(&f)?;
    Ok(f)
}

/// The checks that need only the header: the model or adapter checks by `general.type`.
/// Takes what [`GgufFile::from_bytes`] returns, so the two together can be fuzzed.
pub fn check_header(f: &GgufFile) -> Result<(), CheckError> {
    if is_adapter(f) {
        check_adapter(f)
    } else {
        check_model(f)
    }
}

/// An integer field: `None` when absent, an error when it is not an integer.
fn int(f: &GgufFile, key: &str) -> Result<Option<u64>, CheckError> {
    match f.get(key) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            field(
                f,
                key,
                format!("is {}, expected a non-negative integer", shown(v)),
            )
        }),
    }
}

fn required_int(f: &GgufFile, key: &str) -> Result<u64, CheckError> {
    int(f, key)?.ok_or_else(|| field(f, key, "is missing"))
}

/// A per-layer field, stored as one integer or an array with one per layer.
fn per_layer(f: &GgufFile, key: &str, n_layer: u64) -> Result<Option<Vec<u64>>, CheckError> {
    match f.get(key) {
        None => Ok(None),
        Some(Value::Array(_, items)) => {
            if items.len() as u64 != n_layer {
                return Err(field(
                    f,
                    key,
                    format!(
                        "has {} entries, expected one per layer ({n_layer})",
                        items.len()
                    ),
                ));
            }
            items
                .iter()
                .map(|v| {
                    v.as_u64().ok_or_else(|| {
                        field(f, key, format!("holds {}, expected integers", shown(v)))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        Some(_) => Ok(int(f, key)?.map(|v| vec![v; n_layer as usize])),
    }
}

/// A float field: `None` when absent, an error when it is not an F32 (as llama.cpp reads it)
/// or not finite.
fn float(f: &GgufFile, key: &str) -> Result<Option<f32>, CheckError> {
    match f.get(key) {
        None => Ok(None),
        Some(Value::F32(x)) if x.is_finite() => Ok(Some(*x)),
        Some(Value::F32(x)) => Err(field(f, key, format!("is {x}, expected a finite number"))),
        Some(v) => Err(field(f, key, format!("is {}, expected an f32", shown(v)))),
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("the string {:?}", String::from_utf8_lossy(s)),
        Value::Array(t, items) => format!("an array of {} {t:?}", items.len()),
        other => format!("{other:?}"),
    }
}

/// The hyper-parameters and vocabulary of a model, as llama.cpp's loader asserts on them.
pub fn check_model(f: &GgufFile) -> Result<(), CheckError> {
    let arch = match f.get("general.architecture") {
        Some(v) => v.as_str().filter(|a| !a.is_empty()).ok_or_else(|| {
            field(
                f,
                "general.architecture",
                format!("is {}, expected a name", shown(v)),
            )
        })?,
        None => return Err(field(f, "general.architecture", "is missing")),
    };
    let k = |key: &str| format!("{arch}.{key}");

    let n_layer = required_int(f, &k("block_count"))?;
    if !(1..=MAX_LAYERS).contains(&n_layer) {
        return Err(field(
            f,
            &k("block_count"),
            format!("is {n_layer}, expected 1..={MAX_LAYERS}"),
        ));
    }
    let n_embd = required_int(f, &k("embedding_length"))?;
    if n_embd == 0 || n_embd > u64::from(u32::MAX) {
        return Err(field(
            f,
            &k("embedding_length"),
            format!("is {n_embd}, expected 1 or more"),
        ));
    }
    let n_ctx = required_int(f, &k("context_length"))?;
    if n_ctx == 0 || n_ctx > u64::from(u32::MAX) {
        return Err(field(
            f,
            &k("context_length"),
            format!("is {n_ctx}, expected 1 or more"),
        ));
    }
    if let Some(n) = int(f, &k("nextn_predict_layers"))?
        && n > n_layer
    {
        return Err(field(
            f,
            &k("nextn_predict_layers"),
            format!("is {n}, more than the {n_layer} layers"),
        ));
    }
    check_experts(f, arch, n_layer)?;
    if let Some(ff) = per_layer(f, &k("feed_forward_length"), n_layer)?
        && ff.iter().any(|&n| n > u64::from(u32::MAX))
    {
        return Err(field(
            f,
            &k("feed_forward_length"),
            "does not fit in 32 bits",
        ));
    }
    check_heads(f, arch, n_layer, n_embd)?;

    for key in [
        "attention.layer_norm_rms_epsilon",
        "attention.layer_norm_epsilon",
    ] {
        if let Some(eps) = float(f, &k(key))?
            && eps < 0.0
        {
            return Err(field(f, &k(key), format!("is {eps}, expected 0 or more")));
        }
    }
    if let Some(base) = float(f, &k("rope.freq_base"))?
        && base <= 0.0
    {
        return Err(field(
            f,
            &k("rope.freq_base"),
            format!("is {base}, expected more than 0"),
        ));
    }
    for key in ["rope.scaling.factor", "rope.scale_linear"] {
        if let Some(x) = float(f, &k(key))?
            && x < 0.0
        {
            return Err(field(f, &k(key), format!("is {x}, expected 0 or more")));
        }
    }
    if let Some(v) = f.get(&k("rope.scaling.type")) {
        let name = v.as_str().unwrap_or("");
        if !ROPE_SCALINGS.contains(&name) {
            return Err(field(
                f,
                &k("rope.scaling.type"),
                format!(
                    "is {}, expected one of {}",
                    shown(v),
                    ROPE_SCALINGS.join(", ")
                ),
            ));
        }
    }
    // Every other float the architecture has reaches the graph as it is.
    for (key, v) in &f.metadata {
        if key.starts_with(&format!("{arch}."))
            && let Value::F32(x) = v
            && !x.is_finite()
        {
            return Err(field(f, key, format!("is {x}, expected a finite number")));
        }
    }

    let n_vocab = check_vocab(f)?;
    if let Some(n) = int(f, &k("vocab_size"))?
        && Some(n) != n_vocab
    {
        let tokens = n_vocab.map_or("no".to_owned(), |n| n.to_string());
        return Err(field(
            f,
            &k("vocab_size"),
            format!("is {n}, but the vocabulary has {tokens} tokens"),
        ));
    }
    check_tensors(f, n_layer, n_embd, n_vocab)
}

/// `load_hparams`: at most `LLAMA_MAX_EXPERTS` experts, as many used as there are, expert
/// groups that divide them.
fn check_experts(f: &GgufFile, arch: &str, n_layer: u64) -> Result<(), CheckError> {
    let k = |key: &str| format!("{arch}.{key}");
    let n_expert = int(f, &k("expert_count"))?.unwrap_or(0);
    if n_expert > MAX_EXPERTS {
        return Err(field(
            f,
            &k("expert_count"),
            format!("is {n_expert}, expected at most {MAX_EXPERTS}"),
        ));
    }
    let used = per_layer(f, &k("expert_used_count"), n_layer)?
        .and_then(|v| v.into_iter().max())
        .unwrap_or(0);
    let groups = int(f, &k("expert_group_count"))?.unwrap_or(0);
    let group_used = int(f, &k("expert_group_used_count"))?.unwrap_or(0);
    let bad = |key: &str, why: String| Err(field(f, &k(key), why));
    if used > n_expert {
        return bad(
            "expert_used_count",
            format!("is {used}, more than the {n_expert} experts (expert_count)"),
        );
    }
    if n_expert > 0 {
        if used == 0 {
            return bad("expert_used_count", format!("is 0 with {n_expert} experts"));
        }
        if groups >= n_expert {
            return bad(
                "expert_group_count",
                format!("is {groups}, expected fewer than the {n_expert} experts"),
            );
        }
        if groups > 1 {
            if !n_expert.is_multiple_of(groups) {
                return bad(
                    "expert_group_count",
                    format!("is {groups}, which does not divide the {n_expert} experts"),
                );
            }
            if group_used == 0 || group_used >= groups {
                return bad(
                    "expert_group_used_count",
                    format!("is {group_used}, expected 1..{groups}"),
                );
            }
        }
    } else if groups != 0 {
        return bad("expert_group_count", format!("is {groups} without experts"));
    }
    Ok(())
}

/// Head counts that divide the embedding, key-value heads that divide the heads, and a RoPE
/// dimension that fits a head: otherwise the graph divides by zero or asserts on its shapes.
fn check_heads(f: &GgufFile, arch: &str, n_layer: u64, n_embd: u64) -> Result<(), CheckError> {
    let k = |key: &str| format!("{arch}.{key}");
    let Some(heads) = per_layer(f, &k("attention.head_count"), n_layer)? else {
        return Ok(());
    };
    let kv_heads = per_layer(f, &k("attention.head_count_kv"), n_layer)?.unwrap_or(heads.clone());
    let key_length = int(f, &k("attention.key_length"))?;
    for (layer, (&h, &kv)) in heads.iter().zip(&kv_heads).enumerate() {
        let at = if heads.iter().all(|&x| x == h) {
            String::new()
        } else {
            format!(" (layer {layer})")
        };
        if h == 0 || h > n_embd || (key_length.is_none() && !n_embd.is_multiple_of(h)) {
            return Err(field(
                f,
                &k("attention.head_count"),
                format!("is {h}{at}, expected a divisor of the embedding length {n_embd}"),
            ));
        }
        if kv == 0 || !h.is_multiple_of(kv) {
            return Err(field(
                f,
                &k("attention.head_count_kv"),
                format!("is {kv}{at}, expected a divisor of the {h} heads"),
            ));
        }
    }
    let head_dim = key_length.unwrap_or(n_embd / heads[0]);
    if let Some(rot) = int(f, &k("rope.dimension_count"))?
        && (rot == 0 || rot > head_dim || !rot.is_multiple_of(2))
    {
        return Err(field(
            f,
            &k("rope.dimension_count"),
            format!("is {rot}, expected an even number in 2..={head_dim} (the head size)"),
        ));
    }
    Ok(())
}

/// The vocabulary `llama_vocab::load` reads: a known tokenizer, distinct token strings, token
/// types llama.cpp knows, one score and one type per token, merges for BPE, special tokens
/// inside the vocabulary. Returns the number of tokens (`None` without a vocabulary).
fn check_vocab(f: &GgufFile) -> Result<Option<u64>, CheckError> {
    let model_key = "tokenizer.ggml.model";
    let tokenizer = match f.get(model_key) {
        None => None,
        Some(v) => Some(
            v.as_str()
                .filter(|t| TOKENIZERS.contains(t))
                .ok_or_else(|| {
                    field(
                        f,
                        model_key,
                        format!("is {}, expected one of {}", shown(v), TOKENIZERS.join(", ")),
                    )
                })?,
        ),
    };
    let tokens_key = "tokenizer.ggml.tokens";
    let tokens = match f.get(tokens_key) {
        None if matches!(tokenizer, None | Some("none") | Some("no_vocab")) => return Ok(None),
        None => return Err(field(f, tokens_key, "is missing")),
        Some(Value::Array(ValueType::Str, items)) if !items.is_empty() => items,
        Some(v) => {
            return Err(field(
                f,
                tokens_key,
                format!("is {}, expected strings", shown(v)),
            ));
        }
    };
    if tokenizer.is_none() {
        return Err(field(f, model_key, "is missing"));
    }
    let n = tokens.len();
    if n > i32::MAX as usize {
        return Err(field(
            f,
            tokens_key,
            format!("has {n} tokens, too many for llama.cpp"),
        ));
    }
    let mut seen = HashSet::with_capacity(n);
    for (i, t) in tokens.iter().enumerate() {
        let Value::Str(bytes) = t else { continue };
        // llama.cpp renames an empty token before it checks the strings are distinct.
        let text = if bytes.is_empty() {
            format!("[EMPTY_{i}]").into_bytes()
        } else {
            bytes.clone()
        };
        if !seen.insert(text) {
            let first = tokens.iter().position(|x| x == t).unwrap_or(i);
            return Err(field(
                f,
                tokens_key,
                format!(
                    "has token {i} equal to token {first} ({:?}): every token must be distinct",
                    String::from_utf8_lossy(bytes)
                ),
            ));
        }
    }
    let types_key = "tokenizer.ggml.token_type";
    for (i, v) in per_token(f, types_key, n, &[ValueType::I32], "i32s")?
        .iter()
        .enumerate()
    {
        if let Value::I32(t) = v
            && !(0..=MAX_TOKEN_TYPE).contains(t)
        {
            return Err(field(
                f,
                types_key,
                format!("of token {i} is {t}, expected 0..={MAX_TOKEN_TYPE}"),
            ));
        }
    }
    let scores_key = "tokenizer.ggml.scores";
    let scores = per_token(f, scores_key, n, &[ValueType::F32, ValueType::I32], "f32s")?;
    if let Some(i) = scores
        .iter()
        .position(|v| matches!(v, Value::F32(x) if !x.is_finite()))
    {
        return Err(field(
            f,
            scores_key,
            format!("of token {i} is not a finite number"),
        ));
    }
    let merges_key = "tokenizer.ggml.merges";
    match f.get(merges_key) {
        None if tokenizer == Some("gpt2") => {
            return Err(field(
                f,
                merges_key,
                "is missing (a gpt2 tokenizer needs its merges)",
            ));
        }
        None | Some(Value::Array(ValueType::Str, _)) => {}
        Some(v) => {
            return Err(field(
                f,
                merges_key,
                format!("is {}, expected strings", shown(v)),
            ));
        }
    }
    for (key, v) in &f.metadata {
        if key.starts_with("tokenizer.ggml.") && key.ends_with("_token_id") {
            match v.as_u64() {
                Some(id) if id < n as u64 => {}
                // llama.cpp reads these as u32; a signed -1 is its "none".
                _ if matches!(v, Value::I32(-1)) => {}
                _ => {
                    return Err(field(
                        f,
                        key,
                        format!("is {}, expected a token id below {n}", shown(v)),
                    ));
                }
            }
        }
    }
    // Tokenizing with a BOS or EOS token added asserts the token exists.
    for (add, id) in [
        ("add_bos_token", "bos_token_id"),
        ("add_eos_token", "eos_token_id"),
    ] {
        let (add, id) = (
            format!("tokenizer.ggml.{add}"),
            format!("tokenizer.ggml.{id}"),
        );
        if f.get(&add) == Some(&Value::Bool(true)) && f.get(&id).and_then(Value::as_u64).is_none() {
            return Err(field(f, &id, format!("is missing, but {add} is true")));
        }
    }
    Ok(Some(n as u64))
}

/// A per-token array (`token_type`, `scores`): empty when absent; an error when its elements
/// are not of `types` or it has fewer entries than the `n` tokens (llama.cpp reads one per token).
fn per_token<'a>(
    f: &'a GgufFile,
    key: &str,
    n: usize,
    types: &[ValueType],
    expected: &str,
) -> Result<&'a [Value], CheckError> {
    match f.get(key) {
        None => Ok(&[]),
        Some(Value::Array(t, items)) if types.contains(t) => {
            if items.len() < n {
                return Err(field(
                    f,
                    key,
                    format!("has {} entries for {n} tokens", items.len()),
                ));
            }
            Ok(items)
        }
        Some(v) => Err(field(
            f,
            key,
            format!("is {}, expected {expected}", shown(v)),
        )),
    }
}

/// Tensor shapes llama.cpp asserts on: no empty dimension, layers that exist, an embedding
/// with one row per token.
fn check_tensors(
    f: &GgufFile,
    n_layer: u64,
    n_embd: u64,
    n_vocab: Option<u64>,
) -> Result<(), CheckError> {
    for t in &f.tensors {
        if t.dims.contains(&0) {
            return Err(tensor_err(
                f,
                &t.name,
                format!("has an empty dimension: {:?}", t.dims),
            ));
        }
        // Norm weights and biases are added or multiplied to F32 activations, which ggml's CPU
        // kernels do only with F32 (other types abort in `binary_op`); converters keep them F32.
        if t.dims.len() == 1 && t.ggml_type != F32 {
            return Err(tensor_err(
                f,
                &t.name,
                format!("is a vector of type {}, expected F32", t.type_name()),
            ));
        }
        if let Some(layer) = t
            .name
            .strip_prefix("blk.")
            .and_then(|rest| rest.split('.').next())
            .and_then(|n| n.parse::<u64>().ok())
            && layer >= n_layer
        {
            return Err(tensor_err(
                f,
                &t.name,
                format!("is for layer {layer}, but the model has {n_layer} layers (block_count)"),
            ));
        }
    }
    let embd = "token_embd.weight";
    if let (Some(t), Some(n_vocab)) = (f.tensor(embd), n_vocab)
        && t.dims[..] != [n_embd, n_vocab]
    {
        return Err(tensor_err(
            f,
            embd,
            format!(
                "has shape {:?}, expected [{n_embd}, {n_vocab}] (embedding length, tokens)",
                t.dims
            ),
        ));
    }
    Ok(())
}

/// The adapter checks `llama_adapter_lora_init` makes, in Rust: keys, pairs, shapes, alpha.
pub fn check_adapter(f: &GgufFile) -> Result<(), CheckError> {
    match f.get("general.architecture") {
        Some(v) if v.as_str().is_some_and(|a| !a.is_empty()) => {}
        Some(v) => {
            return Err(field(
                f,
                "general.architecture",
                format!("is {}, expected a name", shown(v)),
            ));
        }
        None => return Err(field(f, "general.architecture", "is missing")),
    }
    match f.get("adapter.type") {
        Some(v) if v.as_str() == Some("lora") => {}
        Some(v) => {
            return Err(field(
                f,
                "adapter.type",
                format!("is {}, expected \"lora\"", shown(v)),
            ));
        }
        None => return Err(field(f, "adapter.type", "is missing")),
    }
    if let Some(alpha) = float(f, "adapter.lora.alpha")?
        && alpha.abs() > MAX_ALPHA
    {
        return Err(field(
            f,
            "adapter.lora.alpha",
            format!("is {alpha}, expected at most {MAX_ALPHA} in size"),
        ));
    }
    let mut rank = None;
    for t in &f.tensors {
        let (base, other) = if let Some(base) = t.name.strip_suffix(".lora_a") {
            (base, format!("{base}.lora_b"))
        } else if let Some(base) = t.name.strip_suffix(".lora_b") {
            (base, format!("{base}.lora_a"))
        } else {
            return Err(tensor_err(
                f,
                &t.name,
                "is neither a .lora_a nor a .lora_b tensor",
            ));
        };
        if f.tensor(&other).is_none() {
            return Err(tensor_err(f, &t.name, format!("has no {other} beside it")));
        }
        let [rows, cols] = t.dims[..] else {
            return Err(tensor_err(
                f,
                &t.name,
                format!("is not a matrix: {:?}", t.dims),
            ));
        };
        if rows == 0 || cols == 0 {
            return Err(tensor_err(
                f,
                &t.name,
                format!("has an empty dimension: {:?}", t.dims),
            ));
        }
        let r = if t.name.ends_with(".lora_a") {
            cols
        } else {
            rows
        };
        if *rank.get_or_insert(r) != r {
            return Err(tensor_err(
                f,
                &t.name,
                format!(
                    "has rank {r}, other tensors of {base}'s adapter have {}",
                    rank.unwrap_or(r)
                ),
            ));
        }
    }
    if rank.is_none() {
        return Err(field(f, "tensors", "hold no LoRA tensor"));
    }
    Ok(())
}

/// The largest LoRA alpha taken: far above any trained adapter's, far below where the scaled
/// update overflows an f32.
pub const MAX_ALPHA: f32 = 1e6;

/// That `adapter` fits `model`: the same architecture, and every pair of LoRA tensors the
/// shape of a model tensor, as `llama_adapter_lora_init` requires.
pub fn check_adapter_fits(adapter: &GgufFile, model: &GgufFile) -> Result<(), CheckError> {
    let arch = adapter.get_str("general.architecture").unwrap_or("");
    let model_arch = model.get_str("general.architecture").unwrap_or("");
    if arch != model_arch {
        return Err(field(
            adapter,
            "general.architecture",
            format!(
                "is {arch:?}, but the model {} is {model_arch:?}",
                model.path.display()
            ),
        ));
    }
    for t in &adapter.tensors {
        let Some(base) = t.name.strip_suffix(".lora_a") else {
            continue;
        };
        let Some(w) = model.tensor(base) else {
            return Err(tensor_err(
                adapter,
                &t.name,
                format!(
                    "adapts {base}, which the model {} does not have",
                    model.path.display()
                ),
            ));
        };
        let b = adapter.tensor(&format!("{base}.lora_b"));
        let (Some(b), [n_in, n_out, ..]) = (b, &w.dims[..]) else {
            continue;
        };
        if t.dims[0] != *n_in || b.dims[1] != *n_out || t.dims[1] != b.dims[0] {
            return Err(tensor_err(
                adapter,
                &t.name,
                format!(
                    "and its lora_b have shapes {:?} and {:?}, but {base} is {:?}: expected [{n_in}, r] and [r, {n_out}]",
                    t.dims, b.dims, w.dims
                ),
            ));
        }
    }
    Ok(())
}

/// Reads every tensor of `f` and checks its values are numbers (no NaN, no infinity; for
/// quantised types, the block scales), with ggml's own `ggml_validate_row_data`, the check
/// llama.cpp makes with `check_tensors`; an adapter's weights must also be of a sane size. One
/// sequential read of the tensor data.
pub fn scan_weights(f: &GgufFile) -> Result<(), CheckError> {
    let io = |e: std::io::Error| {
        CheckError::Gguf(GgufError::Read {
            path: f.path.clone(),
            cause: e,
        })
    };
    let mut file = File::open(&f.path).map_err(io)?;
    let adapter = is_adapter(f);
    let mut buf = Vec::new();
    for t in &f.tensors {
        buf.resize(t.n_bytes as usize, 0);
        file.seek(SeekFrom::Start(f.data_offset + t.offset))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(io)?;
        if !valid_data(t, &buf) {
            return Err(tensor_err(
                f,
                &t.name,
                format!(
                    "holds values that are not numbers (NaN or infinite {})",
                    t.type_name()
                ),
            ));
        }
        if adapter && t.ggml_type == F32 {
            let big = buf
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .find(|x| x.abs() > MAX_ADAPTER_WEIGHT);
            if let Some(x) = big {
                return Err(tensor_err(
                    f,
                    &t.name,
                    format!(
                        "holds {x}, larger than any trained weight (at most {MAX_ADAPTER_WEIGHT:e} in size)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn valid_data(t: &TensorInfo, data: &[u8]) -> bool {
    if data.is_empty() {
        return true;
    }
    // SAFETY: the type was checked against ggml's table when the header was read, and `data`
    // holds exactly the tensor's bytes, a whole number of blocks.
    unsafe {
        llama_cpp_sys_2::ggml_validate_row_data(t.ggml_type, data.as_ptr().cast(), data.len())
    }
}
