//! Training data: rows of chat messages whose last message is the response to learn, read and
//! written as JSONL in the `messages` format that TRL and axolotl read.

pub mod build;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::agent::{Message, Role};

#[derive(Debug, Error)]
pub enum DatasetError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {what}", path.display())]
    Row {
        path: PathBuf,
        line: usize,
        what: String,
    },
    #[error(transparent)]
    Prompt(#[from] crate::agent::prompt::PromptError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("encoding a row or the settings as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Where a row came from, kept beside it so that an adapter can be traced to its labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RowMeta {
    /// `expert` (behaviour cloning) or `label`.
    pub source: String,
    pub scenario_id: String,
    /// The LEAP iteration whose rollouts (or expert runs) the row comes from.
    pub iteration: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_id: Option<i64>,
}

/// One supervised row: the prompt the student saw (system and user messages) and the response
/// (the last message, from the assistant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<RowMeta>,
}

impl Row {
    /// The prompt messages: all but the last.
    pub fn prompt(&self) -> &[Message] {
        &self.messages[..self.messages.len().saturating_sub(1)]
    }

    /// The response to learn: the last message.
    pub fn response(&self) -> Option<&Message> {
        self.messages.last()
    }

    /// Why this row cannot be trained on, if it cannot: at least one prompt message, and a
    /// non-empty assistant message last.
    pub fn problem(&self) -> Option<String> {
        match self.messages.last() {
            None => Some("no messages".into()),
            Some(_) if self.messages.len() < 2 => Some("no prompt before the response".into()),
            Some(m) if m.role != Role::Assistant => Some(format!(
                "the last message is from {}, not the assistant",
                m.role.as_str()
            )),
            Some(m) if m.content.trim().is_empty() => Some("the response is empty".into()),
            Some(_) => None,
        }
    }
}

/// Reads rows from a JSONL file; an unreadable or invalid row is an error naming its line.
pub fn read_jsonl(path: &Path) -> Result<Vec<Row>, DatasetError> {
    read_lines(path, Row::problem, "")
}

/// Reads preference pairs (`leap export --format dpo`) from a JSONL file, as [`read_jsonl`].
pub fn read_pairs(path: &Path) -> Result<Vec<build::PreferencePair>, DatasetError> {
    read_lines(
        path,
        build::PreferencePair::problem,
        " (preference training reads pairs of {\"prompt\", \"chosen\", \"rejected\"}: `leap export --format dpo`)",
    )
}

/// Items of a JSONL file, each checked by `problem`; `hint` follows a line that is not an item.
fn read_lines<T: serde::de::DeserializeOwned>(
    path: &Path,
    problem: impl Fn(&T) -> Option<String>,
    hint: &str,
) -> Result<Vec<T>, DatasetError> {
    let io = |source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut items = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: String| DatasetError::Row {
            path: path.to_path_buf(),
            line: i + 1,
            what,
        };
        let item: T = serde_json::from_str(&line).map_err(|e| bad(format!("{e}{hint}")))?;
        if let Some(what) = problem(&item) {
            return Err(bad(what));
        }
        items.push(item);
    }
    Ok(items)
}

/// Writes rows as JSONL, atomically: to a temporary file beside `path`, then renamed over it, so
/// a crash leaves either the old file or the new one.
pub fn write_jsonl<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), DatasetError> {
    let io = |source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        for row in rows {
            serde_json::to_writer(&mut out, row).map_err(|e| io(e.into()))?;
            out.write_all(b"\n").map_err(io)?;
        }
        out.flush().map_err(io)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    // A temporary file is private (0600); the dataset is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o644);
        tmp.as_file().set_permissions(mode).map_err(io)?;
    }
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
