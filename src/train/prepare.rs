//! Which weights training runs on. On the CPU, leap computes the step's matrix products itself
//! and reads a quantised (or F16) weight a chunk of rows at a time, converted to F32 as it goes:
//! the model as it is trains as fast as an F32 copy of it, on the same values, in a fraction of
//! the memory, so that is the default there. ggml's own kernels (`--matmul ggml`, and the GPU)
//! train a quantised base several times slower than F32, so there the default is an F32 copy
//! of the base, made once with llama.cpp's quantize API (F32 target, requantising allowed) and
//! cached beside it, when that copy fits in memory. The quantised base trains on a GPU too: that
//! is what lets a 7-8B model fit a laptop GPU. An adapter trained on either serves on the
//! quantised base.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use llama_cpp_sys_2 as sys;
use serde::Serialize;

use super::{TrainError, memory};
use crate::model::ModelInfo;

/// Key of the F32 copy holding the sha256 of the file it was made from.
const SOURCE_KEY: &str = "leap.source.sha256";

/// The weights to train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BaseChoice {
    /// On the CPU with leap's products, the model as it is; else the F32 copy when it fits in
    /// memory, else the model as it is.
    #[default]
    Auto,
    /// The F32 copy, made if missing.
    F32,
    /// The model as it is, quantised (or F16).
    Quantized,
}

/// What training will load.
#[derive(Debug, Clone, Serialize)]
pub struct Base {
    pub path: PathBuf,
    /// `f32` (the model itself), `f32 copy` (prepared beside it) or `quantized` (the model as it
    /// is, not F32).
    pub kind: &'static str,
    /// Why this one, in words.
    pub reason: String,
}

/// `X.gguf` -> `X.f32.gguf` in the same folder.
pub fn f32_copy_path(model: &Path) -> PathBuf {
    let stem = model
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    model.with_file_name(format!("{stem}.f32.gguf"))
}

/// True when every tensor of the model is F32: there is nothing to convert.
pub fn is_f32(info: &ModelInfo) -> bool {
    info.tensor_types.keys().all(|t| t == "F32")
}

/// Bytes of graph memory a training step holds at its peak (the start of the backward pass),
/// for one window of `n_ctx` positions, in F32: the logits, their labels and their gradient
/// (vocabulary-wide, at every position); per layer the attention probabilities (heads x window
/// x window) and the activations kept for the backward pass (the feed-forward's gate, up and
/// product, six of the model's width, the new keys and values). It is what `leap train
/// --profile` replays from the graph, less the adapters' small products (`tests/train.rs`
/// checks the two agree).
pub fn activation_bytes(info: &ModelInfo, n_ctx: u32) -> u64 {
    let vocab = info.vocab_size.unwrap_or(32_000);
    let layers = info.layers.unwrap_or(32);
    let embd = info.embedding_length.unwrap_or(4096);
    let ff = info.feed_forward_length.unwrap_or(embd * 8 / 3);
    let heads = info.heads.unwrap_or(32).max(1);
    let kv = embd / heads * info.kv_heads.unwrap_or(heads);
    let n = u64::from(n_ctx);
    let per_layer = heads * n + 3 * ff + 6 * embd + 2 * kv;
    n * (3 * vocab + layers * per_layer) * 4
}

/// Picks the weights to train on; makes the F32 copy when it is chosen and missing or stale.
pub fn choose(
    model: &Path,
    model_sha256: &str,
    choice: BaseChoice,
    n_ctx: u32,
    gpu_layers: u32,
    matmul: super::Matmul,
    threads: i32,
) -> Result<Base, TrainError> {
    let info = crate::model::inspect(model).map_err(|e| TrainError::model(model, e))?;
    if is_f32(&info) {
        return Ok(Base {
            path: model.to_path_buf(),
            kind: "f32",
            reason: "the model is F32 already".into(),
        });
    }
    let f32_bytes = info.parameters * 4;
    let need = f32_bytes + activation_bytes(&info, n_ctx);
    let (use_f32, reason) = match choice {
        BaseChoice::F32 => (true, "asked for (--base f32)".to_owned()),
        BaseChoice::Quantized => (false, "asked for (--base quantized)".to_owned()),
        BaseChoice::Auto if gpu_layers == 0 && matmul != super::Matmul::Ggml => (
            false,
            "on the CPU leap's products convert its rows to F32 as they go: as fast as an F32 \
             copy, in a fraction of the memory"
                .to_owned(),
        ),
        BaseChoice::Auto => {
            let layers = info.layers.unwrap_or(1).max(1);
            let (room, place) = if gpu_layers > 0 {
                // The offloaded share of the weights and activations must fit on the GPU.
                let share = u64::from(gpu_layers).min(layers) as f64 / layers as f64;
                (
                    memory::gpu_free_bytes().map(|b| (b as f64 / share) as u64),
                    "GPU memory",
                )
            } else {
                (memory::available_bytes(), "available memory")
            };
            let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
            match room {
                Some(room) if need <= room / 10 * 8 => (
                    true,
                    format!(
                        "it needs about {:.1} GiB of {:.1} GiB {place}",
                        gib(need),
                        gib(room)
                    ),
                ),
                Some(room) => (
                    false,
                    format!(
                        "an F32 copy needs about {:.1} GiB, more than 80% of {:.1} GiB {place}",
                        gib(need),
                        gib(room)
                    ),
                ),
                // Without a figure, only small models get the copy.
                None => (
                    need < 2 << 30,
                    format!(
                        "{place} unknown; the F32 copy needs about {:.1} GiB",
                        gib(need)
                    ),
                ),
            }
        }
    };
    if !use_f32 {
        return Ok(Base {
            path: model.to_path_buf(),
            kind: "quantized",
            reason,
        });
    }
    let path = prepare_f32(model, model_sha256, threads)?;
    Ok(Base {
        path,
        kind: "f32 copy",
        reason,
    })
}

/// The F32 copy of `model`, made unless a copy of this very file (same sha256) is already there.
pub fn prepare_f32(model: &Path, model_sha256: &str, threads: i32) -> Result<PathBuf, TrainError> {
    let out = f32_copy_path(model);
    if let Ok(copy) = crate::model::GgufFile::open(&out)
        && copy.get_str(SOURCE_KEY) == Some(model_sha256)
    {
        return Ok(out);
    }
    crate::model::inspect(model).map_err(|e| TrainError::model(model, e))?;
    crate::agent::local::backend();
    let dir = out.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".leap-f32-")
        .suffix(".gguf")
        .tempfile_in(dir)
        .map_err(|source| TrainError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    let src = CString::new(model.to_string_lossy().as_bytes())
        .map_err(|_| TrainError::model(model, "the path holds a NUL byte"))?;
    let dst = CString::new(tmp.path().to_string_lossy().as_bytes())
        .map_err(|_| TrainError::model(&out, "the path holds a NUL byte"))?;
    // SAFETY: the override array ends with an empty key as llama.cpp expects; the strings it
    // copies are NUL-terminated within their 128 bytes (a sha256 is 64 characters).
    let status = unsafe {
        let mut source: sys::llama_model_kv_override = std::mem::zeroed();
        source.tag = sys::LLAMA_KV_OVERRIDE_TYPE_STR;
        copy_c(&mut source.key, SOURCE_KEY);
        copy_c(&mut source.__bindgen_anon_1.val_str, model_sha256);
        let overrides = [source, std::mem::zeroed()];
        let mut params = sys::llama_model_quantize_default_params();
        params.nthread = threads;
        params.ftype = sys::LLAMA_FTYPE_ALL_F32;
        params.allow_requantize = true;
        params.kv_overrides = overrides.as_ptr();
        sys::llama_model_quantize(src.as_ptr(), dst.as_ptr(), &params)
    };
    if status != 0 {
        return Err(TrainError::model(
            model,
            "llama.cpp could not write an F32 copy (LEAP_LLAMA_LOG=1 shows why)",
        ));
    }
    tmp.persist(&out).map_err(|e| TrainError::Io {
        path: out.clone(),
        source: e.error,
    })?;
    // Temporary files are private; the copy is no more secret than the model beside it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644));
    }
    Ok(out)
}

fn copy_c(dst: &mut [std::ffi::c_char; 128], s: &str) {
    for (d, &b) in dst.iter_mut().zip(s.as_bytes().iter().take(127)) {
        *d = b as std::ffi::c_char;
    }
}
