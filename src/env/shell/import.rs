//! InterCode-Bash's task files as shell scenarios (`leap scenarios import intercode`).
//!
//! A task file is `nl2bash_fs_N.json`, a list of `{query, gold}` (InterCode-ALFA's add `gold2`
//! and `difficulty`); N names the file system the tasks run on. Each task becomes one scenario
//! file, named by its source and position (`intercode-fs1-007` is task 7 of InterCode's
//! `nl2bash_fs_1.json`, counted from 0), so ids stay the same however often the files are
//! imported. InterCode's tasks split as the paper's evaluation did: fs1 and fs2 train, fs3 and
//! fs4 test. ALFA's go to a set of their own, split the same way by file system, so that no ALFA
//! training task shares a file system with InterCode's test tasks; ALFA's fs_5 tasks work in
//! `/testbed`, fs1's tree, and run on fs1.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::exec::Semantics;
use super::scenario::{ShellPrivileged, ShellWorld};
use crate::scenario::Split;

/// LEAP's horizon for the shell: commands before the episode ends unsubmitted.
pub const HORIZON: u32 = 10;

/// Why a task file could not be imported: each names the file, and the task's index where one
/// task is at fault.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: cannot read it: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: expected a file named nl2bash_fs_N.json (N: the file system, 1 to 4, or 5 for InterCode-ALFA's)"
    )]
    Name { path: PathBuf },
    #[error("{path}: not a JSON list of tasks: {message}")]
    Json { path: PathBuf, message: String },
    #[error("{path}: task {index}: {message}")]
    Task {
        path: PathBuf,
        index: usize,
        message: String,
    },
    #[error("{path}: task {index} would be `{id}`, which {first} already gives")]
    Duplicate {
        path: PathBuf,
        index: usize,
        id: String,
        first: String,
    },
    #[error("{path}: cannot write it: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where a task file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// InterCode-Bash (Yang et al., 2023).
    Intercode,
    /// InterCode-ALFA: revised tasks with a second gold command and a difficulty.
    Alfa,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Intercode => "intercode",
            Source::Alfa => "alfa",
        }
    }
}

/// One task as the files hold it.
#[derive(Debug, Deserialize)]
struct RawTask {
    query: Option<String>,
    gold: Option<String>,
    #[serde(default)]
    gold2: Option<String>,
    #[serde(default)]
    difficulty: Option<u8>,
}

/// One imported scenario.
#[derive(Debug, Clone)]
pub struct Imported {
    pub id: String,
    pub split: Split,
    /// The folder it is written to: `train` or `test` for InterCode's, `alfa` for ALFA's.
    pub set: &'static str,
    /// The scenario file's text.
    pub yaml: String,
}

/// A scenario file's fields, in the order they are written.
#[derive(Serialize)]
struct Doc<'a> {
    id: &'a str,
    kind: &'static str,
    split: Split,
    task: &'a str,
    horizon: u32,
    world: ShellWorld,
    privileged: ShellPrivileged,
}

/// The `N` of `nl2bash_fs_N.json`.
fn file_number(path: &Path) -> Option<u8> {
    let name = path.file_name()?.to_str()?;
    let n = name.strip_prefix("nl2bash_fs_")?.strip_suffix(".json")?;
    n.parse().ok()
}

/// The scenarios of the task file at `path`, in file order.
pub fn read(path: &Path) -> Result<Vec<Imported>, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// The scenarios of a task file's `text`; `path` names it (and its file system).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Imported>, ImportError> {
    let number = file_number(path).ok_or_else(|| ImportError::Name {
        path: path.to_path_buf(),
    })?;
    let items: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|e| ImportError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let task_error = |index: usize, message: String| ImportError::Task {
        path: path.to_path_buf(),
        index,
        message,
    };
    let mut tasks = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let raw: RawTask = serde_json::from_value(item)
            .map_err(|e| task_error(index, format!("{e}, expected {{\"query\", \"gold\"}}")))?;
        let query = raw
            .query
            .filter(|q| !q.trim().is_empty())
            .ok_or_else(|| task_error(index, "no `query`, expected the request as text".into()))?;
        let gold = raw
            .gold
            .filter(|g| !g.trim().is_empty())
            .ok_or_else(|| task_error(index, "no `gold`, expected the gold command".into()))?;
        tasks.push((query, gold, raw.gold2, raw.difficulty));
    }
    let source = if tasks.iter().any(|t| t.2.is_some()) {
        Source::Alfa
    } else {
        Source::Intercode
    };
    let filesystem = match (source, number) {
        (_, 1..=4) => number,
        // ALFA's fifth file works in /testbed, which is fs1's tree (tests/shell_scenarios.rs).
        (Source::Alfa, 5) => 1,
        _ => {
            return Err(ImportError::Name {
                path: path.to_path_buf(),
            });
        }
    };
    let split = if filesystem <= 2 || number == 5 {
        Split::Train
    } else {
        Split::Test
    };
    let set = match source {
        Source::Intercode => split.as_str(),
        Source::Alfa => "alfa",
    };
    let file = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let origin = match source {
        Source::Intercode => "InterCode-Bash",
        Source::Alfa => "InterCode-ALFA",
    };
    Ok(tasks
        .into_iter()
        .enumerate()
        .map(|(index, (query, gold, gold2, difficulty))| {
            let id = format!("{}-fs{number}-{index:03}", source.as_str());
            let doc = Doc {
                id: &id,
                kind: "shell",
                split,
                task: &query,
                horizon: HORIZON,
                world: ShellWorld {
                    filesystem: format!("fs{filesystem}"),
                    file: None,
                    semantics: Semantics::Intercode,
                },
                privileged: ShellPrivileged {
                    gold,
                    gold2,
                    difficulty,
                },
            };
            let yaml = format!(
                "# Imported: leap scenarios import intercode ({origin} {file}, task {index}).\n{}",
                serde_yaml::to_string(&doc).expect("a scenario serializes")
            );
            Imported {
                id,
                split,
                set,
                yaml,
            }
        })
        .collect())
}

/// Imports every task file of `paths` into `out`, one scenario file each under
/// `out/<set>/<id>.yaml` (`train`, `test`, `alfa`), and returns the written paths. Nothing is
/// written when any file has a problem.
pub fn write(paths: &[PathBuf], out: &Path) -> Result<Vec<PathBuf>, ImportError> {
    let mut all: Vec<(PathBuf, usize, Imported)> = Vec::new();
    for path in paths {
        for (index, s) in read(path)?.into_iter().enumerate() {
            if let Some((first, i, _)) = all.iter().find(|(_, _, o)| o.id == s.id) {
                return Err(ImportError::Duplicate {
                    path: path.clone(),
                    index,
                    id: s.id,
                    first: format!("{} task {i}", first.display()),
                });
            }
            all.push((path.clone(), index, s));
        }
    }
    let mut written = Vec::with_capacity(all.len());
    for (_, _, s) in all {
        let dir = out.join(s.set);
        let file = dir.join(format!("{}.yaml", s.id));
        let write_error = |source| ImportError::Write {
            path: file.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(write_error)?;
        std::fs::write(&file, &s.yaml).map_err(write_error)?;
        written.push(file);
    }
    Ok(written)
}
