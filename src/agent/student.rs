//! The one way to make a student: a model, its adapters, context, GPU layers and slots, for the
//! CLI, the workbench, the self teacher and the benches.
//!
//! Before llama.cpp sees an adapter, its recorded base (the `leap.base.sha256` key leap writes
//! into every adapter it trains) is checked against the model's sha256: an adapter on the wrong
//! model is an error naming both files, not llama.cpp's "null result".

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use thiserror::Error;

use super::PolicyError;
use super::local::{LocalConfig, LocalPolicy, Weights};
use crate::model::GgufFile;
use crate::model::fetch::FetchError;

/// What a student is loaded from.
#[derive(Debug, Clone, PartialEq)]
pub struct StudentSpec {
    pub model: PathBuf,
    /// LoRA adapters and their scales.
    pub adapters: Vec<(PathBuf, f32)>,
    /// Context per slot, in tokens.
    pub ctx: u32,
    /// Layers offloaded to the GPU (builds with the `cuda` or `metal` feature).
    pub gpu_layers: u32,
    /// Episodes decoded at once.
    pub slots: usize,
    /// Tokens guessed ahead of a greedy answer ([`LocalConfig::draft`]; 0: none; `None`: as
    /// the CPU favours).
    pub draft: Option<usize>,
    /// How the weights are held ([`LocalConfig::weights`]; `None`: as the CPU favours).
    pub weights: Option<Weights>,
}

impl StudentSpec {
    /// The model alone, with the local backend's defaults.
    pub fn new(model: impl Into<PathBuf>) -> StudentSpec {
        let defaults = LocalConfig::new(model);
        StudentSpec {
            model: defaults.model,
            adapters: defaults.adapters,
            ctx: defaults.ctx_per_slot,
            gpu_layers: defaults.gpu_layers,
            slots: defaults.slots,
            draft: defaults.draft,
            weights: defaults.weights,
        }
    }

    /// Adds an adapter at `scale`.
    pub fn adapter(mut self, path: impl Into<PathBuf>, scale: f32) -> StudentSpec {
        self.adapters.push((path.into(), scale));
        self
    }

    pub fn adapters(mut self, adapters: impl IntoIterator<Item = (PathBuf, f32)>) -> StudentSpec {
        self.adapters.extend(adapters);
        self
    }

    pub fn slots(mut self, slots: usize) -> StudentSpec {
        self.slots = slots.max(1);
        self
    }

    pub fn gpu_layers(mut self, layers: u32) -> StudentSpec {
        self.gpu_layers = layers;
        self
    }

    pub fn draft(mut self, tokens: impl Into<Option<usize>>) -> StudentSpec {
        self.draft = tokens.into();
        self
    }

    pub fn weights(mut self, weights: impl Into<Option<Weights>>) -> StudentSpec {
        self.weights = weights.into();
        self
    }

    pub fn ctx(mut self, tokens: u32) -> StudentSpec {
        self.ctx = tokens;
        self
    }

    /// The local backend's configuration.
    pub fn config(&self) -> LocalConfig {
        let mut config = LocalConfig::new(&self.model);
        config.adapters = self.adapters.clone();
        config.ctx_per_slot = self.ctx;
        config.gpu_layers = self.gpu_layers;
        config.slots = self.slots.max(1);
        config.draft = self.draft;
        config.weights = self.weights;
        config
    }

    /// Loads the model and adapters (each adapter checked against the model first).
    pub fn load(&self) -> Result<LocalPolicy, PolicyError> {
        LocalPolicy::load(&self.config())
    }
}

/// The largest adapter scale taken, either sign: far above any useful scale (around 1), far
/// below where llama.cpp's scaled update overflows to infinity and its sampler aborts.
pub const MAX_SCALE: f32 = 100.0;

/// An adapter given on the command line as `PATH` or `PATH@SCALE`; the scale is a finite number
/// within ±[`MAX_SCALE`].
pub fn parse_adapter(spec: &str) -> Result<(PathBuf, f32), AdapterSpecError> {
    match spec.rsplit_once('@') {
        Some((path, text)) => match text.parse::<f32>() {
            Ok(scale) if scale_ok(scale) => Ok((PathBuf::from(path), scale)),
            _ => Err(AdapterSpecError {
                spec: spec.into(),
                scale: text.into(),
            }),
        },
        None => Ok((PathBuf::from(spec), 1.0)),
    }
}

fn scale_ok(scale: f32) -> bool {
    scale.is_finite() && scale.abs() <= MAX_SCALE
}

/// Refuses an adapter scale llama.cpp cannot take (for students not made from the command
/// line).
pub fn check_scale(adapter: &Path, scale: f32) -> Result<(), AdapterSpecError> {
    if scale_ok(scale) {
        return Ok(());
    }
    Err(AdapterSpecError {
        spec: format!("{}@{scale}", adapter.display()),
        scale: scale.to_string(),
    })
}

#[derive(Debug, Error)]
#[error(
    "--adapter {spec}: `{scale}` is not a scale (a finite number from -{MAX_SCALE} to {MAX_SCALE})"
)]
pub struct AdapterSpecError {
    pub spec: String,
    pub scale: String,
}

impl From<AdapterSpecError> for PolicyError {
    fn from(e: AdapterSpecError) -> Self {
        PolicyError::Model {
            path: e.spec.clone(),
            message: e.to_string(),
        }
    }
}

/// Why an adapter cannot go on a model.
#[derive(Debug, Error)]
pub enum AdapterError {
    #[error(
        "{}: this adapter was trained on another base model ({base_name}, sha256 {base_sha256}) than {} (sha256 {model_sha256}); pass the adapter's model with --model",
        adapter.display(),
        model.display()
    )]
    Mismatch {
        adapter: PathBuf,
        base_name: String,
        base_sha256: String,
        model: PathBuf,
        model_sha256: String,
    },
    #[error("hashing the model {}: {source}", path.display())]
    Hash { path: PathBuf, source: FetchError },
    #[error(transparent)]
    Read(#[from] crate::model::GgufError),
}

impl From<AdapterError> for PolicyError {
    fn from(e: AdapterError) -> Self {
        PolicyError::Adapter(Box::new(e))
    }
}

/// Checks that every adapter leap trained was trained on `model` (adapters from elsewhere,
/// without leap's base hash, are left to llama.cpp).
pub fn check_adapters(model: &Path, adapters: &[(PathBuf, f32)]) -> Result<(), AdapterError> {
    for (adapter, _) in adapters {
        let file = GgufFile::open(adapter)?;
        let Some(base_sha256) = file.get_str("leap.base.sha256").filter(|s| !s.is_empty()) else {
            continue;
        };
        let model_sha256 = model_sha256(model)?;
        if base_sha256 != model_sha256 {
            return Err(AdapterError::Mismatch {
                adapter: adapter.clone(),
                base_name: file.get_str("leap.base.name").unwrap_or("?").to_owned(),
                base_sha256: base_sha256.to_owned(),
                model: model.to_path_buf(),
                model_sha256,
            });
        }
    }
    Ok(())
}

/// The model file's sha256, computed once per process for a file of the same size and time.
pub(super) fn model_sha256(model: &Path) -> Result<String, AdapterError> {
    type Key = (PathBuf, u64, Option<SystemTime>);
    static HASHES: OnceLock<Mutex<HashMap<Key, String>>> = OnceLock::new();
    let hashes = HASHES.get_or_init(Default::default);
    let meta = std::fs::metadata(model).ok();
    let key = (
        model.to_path_buf(),
        meta.as_ref().map_or(0, |m| m.len()),
        meta.and_then(|m| m.modified().ok()),
    );
    if let Some(hash) = hashes.lock().ok().and_then(|h| h.get(&key).cloned()) {
        return Ok(hash);
    }
    let hash = crate::model::fetch::sha256_file(model).map_err(|source| AdapterError::Hash {
        path: model.to_path_buf(),
        source,
    })?;
    if let Ok(mut h) = hashes.lock() {
        h.insert(key, hash.clone());
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_specs() {
        assert_eq!(parse_adapter("a.gguf").unwrap(), ("a.gguf".into(), 1.0));
        assert_eq!(parse_adapter("a.gguf@0.5").unwrap(), ("a.gguf".into(), 0.5));
        let err = parse_adapter("a.gguf@half").unwrap_err().to_string();
        assert_eq!(
            err,
            "--adapter a.gguf@half: `half` is not a scale (a finite number from -100 to 100)"
        );
        for bad in [
            "inf", "-inf", "nan", "NaN", "1e30", "-1e30", "1e39", "100.5",
        ] {
            let err = parse_adapter(&format!("a.gguf@{bad}"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("--adapter a.gguf@{bad}: `{bad}` is not a scale")),
                "{err}"
            );
        }
        assert_eq!(parse_adapter("a.gguf@-100").unwrap().1, -100.0);
    }
}
