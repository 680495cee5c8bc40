//! A run folder and its layout: every path inside a run is built here.
//!
//! ```text
//! runs/NAME/
//!   leap.db                    the run store (episodes, labels, datasets, adapters, evaluations)
//!   datasets/iter-N.jsonl      an iteration's training rows
//!   adapters/iter-N.gguf       an iteration's LoRA adapter
//!   adapters/iter-N.ckpt.gguf  its training checkpoint while training runs
//! ```
//!
//! A run also remembers its model: the first command that uses one (trains, evaluates or rolls
//! out with it) records its path and sha256, and later commands on the run use it unless told
//! otherwise.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::model::fetch::FetchError;
use crate::store::{self, RunModel, Store, StoreError};

#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("hashing the model {}: {source}", path.display())]
    Hash {
        path: PathBuf,
        source: Box<FetchError>,
    },
}

/// A run folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The run store's database file.
    pub fn db(&self) -> PathBuf {
        self.root.join(store::DB_FILE)
    }

    /// Opens (creating if needed) the run store.
    pub fn open(&self) -> Result<Store, StoreError> {
        Store::open(&self.root)
    }

    pub fn adapters_dir(&self) -> PathBuf {
        self.root.join("adapters")
    }

    /// The adapter named `stem`: `adapters/STEM.gguf`.
    pub fn named_adapter(&self, stem: &str) -> PathBuf {
        self.adapters_dir().join(format!("{stem}.gguf"))
    }

    /// Iteration `n`'s adapter: `adapters/iter-N.gguf`.
    pub fn adapter(&self, iteration: u32) -> PathBuf {
        self.named_adapter(&iteration_stem(iteration))
    }

    /// The training checkpoint of the adapter named `stem`.
    pub fn checkpoint(&self, stem: &str) -> PathBuf {
        self.adapters_dir().join(format!("{stem}.ckpt.gguf"))
    }

    pub fn datasets_dir(&self) -> PathBuf {
        self.root.join("datasets")
    }

    /// The dataset named `stem`: `datasets/STEM.jsonl`.
    pub fn named_dataset(&self, stem: &str) -> PathBuf {
        self.datasets_dir().join(format!("{stem}.jsonl"))
    }

    /// Iteration `n`'s dataset: `datasets/iter-N.jsonl`.
    pub fn dataset(&self, iteration: u32) -> PathBuf {
        self.named_dataset(&iteration_stem(iteration))
    }

    /// The preference pairs named `stem`: `datasets/STEM.pairs.jsonl`.
    pub fn named_pairs(&self, stem: &str) -> PathBuf {
        self.datasets_dir().join(format!("{stem}.pairs.jsonl"))
    }

    /// The preference pairs iteration `n`'s adapter trains on under DPO (the kept labels of
    /// iteration `n - 1`'s rollouts): `datasets/iter-N.pairs.jsonl`.
    pub fn pairs(&self, iteration: u32) -> PathBuf {
        self.named_pairs(&iteration_stem(iteration))
    }

    /// `*.gguf` adapters in the run (checkpoints left out), sorted by path.
    pub fn adapter_files(&self) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(self.adapters_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "gguf")
                    && !p.to_string_lossy().ends_with(".ckpt.gguf")
            })
            .collect();
        found.sort();
        found
    }

    /// The model a command on this run uses: `explicit` if given, else the model the run
    /// recorded, else the base model of its newest recorded adapter (runs made before runs
    /// recorded their model), else the default student.
    pub fn model(&self, store: &Store, explicit: Option<&Path>) -> Result<PathBuf, RunError> {
        if let Some(path) = explicit {
            return Ok(path.to_path_buf());
        }
        if let Some(model) = store.run_model()? {
            return Ok(PathBuf::from(model.path));
        }
        Ok(store
            .adapters()?
            .into_iter()
            .rev()
            .find(|a| !a.base_model.is_empty())
            .map(|a| PathBuf::from(a.base_model))
            .unwrap_or_else(crate::model::default_model_path))
    }

    /// Records `model` with its sha256 as the run's model, unless the run has one: called once
    /// a command has used it.
    pub fn remember_model(&self, store: &mut Store, model: &Path) -> Result<(), RunError> {
        if store.run_model()?.is_some() || !model.is_file() {
            return Ok(());
        }
        let sha256 = crate::model::fetch::sha256_file(model).map_err(|source| RunError::Hash {
            path: model.to_path_buf(),
            source: Box::new(source),
        })?;
        store.set_run_model(&RunModel {
            path: model.display().to_string(),
            sha256,
        })?;
        Ok(())
    }
}

/// `iter-N`: how an iteration's files are named.
pub fn iteration_stem(iteration: u32) -> String {
    format!("iter-{iteration}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let run = RunDir::new("runs/x");
        assert_eq!(run.adapter(2), Path::new("runs/x/adapters/iter-2.gguf"));
        assert_eq!(
            run.checkpoint("iter-2"),
            Path::new("runs/x/adapters/iter-2.ckpt.gguf")
        );
        assert_eq!(run.dataset(0), Path::new("runs/x/datasets/iter-0.jsonl"));
        assert_eq!(run.db(), Path::new("runs/x/leap.db"));
    }

    #[test]
    fn a_run_remembers_its_first_model() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        let mut store = run.open().unwrap();
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, b"not really a model").unwrap();
        assert_eq!(run.model(&store, Some(&model)).unwrap(), model);
        run.remember_model(&mut store, &model).unwrap();
        assert_eq!(run.model(&store, None).unwrap(), model);
        let recorded = store.run_model().unwrap().unwrap();
        assert_eq!(recorded.path, model.display().to_string());
        assert_eq!(recorded.sha256.len(), 64);
        // Another model for one command does not replace the run's.
        let other = dir.path().join("other.gguf");
        std::fs::write(&other, b"another").unwrap();
        assert_eq!(run.model(&store, Some(&other)).unwrap(), other);
        run.remember_model(&mut store, &other).unwrap();
        assert_eq!(run.model(&store, None).unwrap(), model);
    }
}
