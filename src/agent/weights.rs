//! How a model's weights are held for the CPU: as the file stores them, or re-encoded as Q8_0.
//!
//! ggml's CPU matrix products have a fast kernel for a batch of many tokens only for some
//! encodings: AMX for most (on Sapphire Rapids and later), and on other x86-64 CPUs a repacked
//! or tiled kernel for Q4_0, Q8_0, IQ4_NL and the K-quants, but none for Q4_1 or Q5_1. A Q4_1
//! model's prompt tokens there go through one dot product per row and token: on a 2-core AMD
//! EPYC (Zen 4) llama-bench gives SmolLM2-135M Q4_1 206 to 254 prompt tokens/s, and the same
//! weights re-encoded as Q8_0 523 to 539, generation 99 against 80 tokens/s after 384 cached.
//!
//! Q8_0 holds each weight of a Q4_1 block of 32 to within 1/254 of the block's largest
//! magnitude, about 1/17 of the Q4_1 step: a finer copy of the same weights, not the same bits,
//! so answers may differ where the model is near a tie (as across batch sizes). Whether to use
//! it is timed like flash attention ([`super::tune`]); the copy is made once with llama.cpp's
//! own quantizer and kept in `${XDG_CACHE_HOME:-~/.cache}/leap/models/q8_0/`.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::GgufFile;

/// How the weights are held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Weights {
    /// As the file stores them.
    #[value(name = "file")]
    File,
    /// Re-encoded as Q8_0 (once, kept in the cache).
    #[value(name = "q8_0")]
    Q8_0,
}

impl Weights {
    pub fn name(self) -> &'static str {
        match self {
            Weights::File => "as the file",
            Weights::Q8_0 => "re-encoded as Q8_0",
        }
    }

    /// The file that holds `model`'s weights this way: the model itself, or its Q8_0 copy
    /// ([`q8_0_copy`]: made now where it is not kept yet).
    pub fn file(self, model: &Path) -> Result<PathBuf, String> {
        match self {
            Weights::File => Ok(model.to_path_buf()),
            Weights::Q8_0 => q8_0_copy(model),
        }
    }
}

/// ggml's type ids of the encodings that have no many-token kernel on the CPU without AMX.
const Q4_1: u32 = 3;
const Q5_1: u32 = 7;

/// Whether re-encoding `file`'s weights could pay: most of its layers' weights (by elements;
/// the layers' products are a prompt's cost, where the embeddings are looked up and the output
/// projection is taken for one token) are in an encoding without a many-token CPU kernel
/// ([`Q4_1`], [`Q5_1`]).
pub fn worth_timing(file: &GgufFile) -> bool {
    let (mut slow, mut all) = (0u64, 0u64);
    for t in file.tensors.iter().filter(|t| t.name.starts_with("blk.")) {
        let n = t.n_elements();
        all += n;
        if matches!(t.ggml_type, Q4_1 | Q5_1) {
            slow += n;
        }
    }
    slow * 2 > all
}

/// The Q8_0 copy of `model`, made now where it is not kept yet: written whole (a temporary file
/// renamed into place), so that a kill leaves no half copy and processes that make it at once
/// both end with one whole file.
pub fn q8_0_copy(model: &Path) -> Result<PathBuf, String> {
    let file = copy_path(model)?;
    if file.exists() {
        return Ok(file);
    }
    let dir = file.parent().ok_or("no cache folder")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .suffix(".gguf.part")
        .tempfile_in(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    quantize(model, tmp.path(), llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q8_0)
        .map_err(|why| format!("re-encoding as Q8_0: {why}"))?;
    match tmp.persist_noclobber(&file) {
        Ok(_) => Ok(file),
        // Another process kept its copy first: the same bytes.
        Err(_) if file.exists() => Ok(file),
        Err(e) => Err(format!("{}: {}", file.display(), e.error)),
    }
}

/// `src`'s weights encoded as `ftype` (already encoded ones decoded first) into `dst`, by
/// llama.cpp's own quantizer on every core.
pub fn quantize(src: &Path, dst: &Path, ftype: llama_cpp_sys_2::llama_ftype) -> Result<(), String> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| "a NUL byte in the path")
    };
    let (src, dst) = (c(src)?, c(dst)?);
    super::local::backend();
    crate::model::llama_log::clear_errors();
    // SAFETY: plain parameters and two NUL-terminated paths, valid for the call; llama.cpp reads
    // the one file and writes the other.
    let rc = unsafe {
        let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
        params.nthread = std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
        params.ftype = ftype;
        params.allow_requantize = true;
        llama_cpp_sys_2::llama_model_quantize(src.as_ptr(), dst.as_ptr(), &params)
    };
    match rc {
        0 => Ok(()),
        _ => Err(crate::model::llama_log::explain(format!(
            "llama_model_quantize returned {rc}"
        ))),
    }
}

/// Where the Q8_0 copy of `model` is kept, made or not: named by the model's file name and the
/// start of its sha256, so that a changed file gets a new copy and equal files share one.
pub fn copy_path(model: &Path) -> Result<PathBuf, String> {
    let sha = super::student::model_sha256(model).map_err(|e| e.to_string())?;
    let stem: String = model
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .chars()
        .take(60)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    Ok(crate::model::models_dir()
        .join("q8_0")
        .join(format!("{stem}-{}.q8_0.gguf", &sha[..16])))
}
