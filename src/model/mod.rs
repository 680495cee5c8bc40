//! The student's weights on disk: where the default model lives, fetching it, reading what a
//! GGUF file holds, LoRA adapter files (read by the student, written by training), and writing a
//! tiny random model for fast tests.
//!
//! Nothing here runs a model; every file is checked in Rust before llama.cpp is given it, so a
//! bad path is an error that names the file rather than an abort inside C++.

use std::path::PathBuf;

pub mod adapter;
pub mod check;
pub mod fetch;
pub mod gguf;
pub mod info;
pub mod llama_log;
pub mod tiny;

pub use adapter::{Adapter, AdapterError, AdapterMeta, LoraSpec, LoraWeight, Target};
pub use check::{CheckError, check_file};
pub use fetch::{Artifact, DEFAULT_STUDENT, FetchError, FetchOptions, FetchStep, Fetched, fetch};
pub use gguf::{GgufError, GgufFile};
pub use info::{ModelInfo, inspect};
pub use tiny::{TinyError, TinySpec, write_tiny};

/// Environment variable that overrides where the student model is.
pub const MODEL_ENV: &str = "LEAP_MODEL";

/// `$LEAP_MODEL` if set, else the default student in the user cache:
/// `${XDG_CACHE_HOME:-~/.cache}/leap/models/SmolLM2-135M-Instruct.Q4_1.gguf`.
pub fn default_model_path() -> PathBuf {
    match std::env::var_os(MODEL_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => models_dir().join(DEFAULT_STUDENT.file_name()),
    }
}

/// `${XDG_CACHE_HOME:-~/.cache}/leap/models`.
pub fn models_dir() -> PathBuf {
    cache_root().join("models")
}

/// `${XDG_CACHE_HOME:-~/.cache}/leap`: what leap keeps per user (models, tools, adapters).
pub fn cache_root() -> PathBuf {
    cache_dir().join("leap")
}

fn cache_dir() -> PathBuf {
    // The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from)
        && dir.is_absolute()
    {
        return dir;
    }
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home).join(".cache"),
        _ => PathBuf::from(".cache"),
    }
}

/// Temporary files are private (0600) by default; a model is not a secret, and should
/// look like any other file once renamed into place.
fn public_tempfile(prefix: &str) -> tempfile::Builder<'_, 'static> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    builder
}
