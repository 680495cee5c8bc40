//! Trained LoRA adapters: where each file is, which iteration and dataset it comes from, its base
//! model and the training summary. The link from datasets to evaluations.
//!
//! An adapter inside the run folder is recorded by its path in the folder (`adapters/iter-1.gguf`),
//! so a run that is copied, moved or opened from another directory still finds what it trained
//! (a loop does not train it again); readers get the path joined to the folder. Runs recorded
//! before kept the path as it was given, and are still found by it.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{Result, json, sql};
use super::{Store, now_ms};

/// An adapter as recorded in the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterRow {
    pub id: i64,
    pub iteration: Option<u32>,
    /// Where the file is: inside the run, the run folder joined to the recorded path.
    pub path: String,
    pub dataset_id: Option<i64>,
    /// The base model file the adapter is for.
    pub base_model: String,
    pub created_at_ms: i64,
    /// The training summary (losses, tokens/s, ...).
    pub summary: Value,
}

const COLUMNS: &str = "id, iteration, path, dataset_id, base_model, created_at_ms, summary";

impl Store {
    /// Records an adapter file (one transaction) and returns its id. Training again to the same
    /// path replaces the record in place, keeping its id.
    pub fn insert_adapter(
        &mut self,
        iteration: Option<u32>,
        path: &str,
        dataset_id: Option<i64>,
        base_model: &str,
        summary: &Value,
    ) -> Result<i64> {
        let p = &self.path;
        let what = |d: &str| format!("recording adapter {path}: {d}");
        let path = self.in_run(path);
        let summary = serde_json::to_string(summary).map_err(json(p, what("summary")))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(p, what("locking the database")))?;
        let id: i64 = tx
            .query_row(
                "INSERT INTO adapters (iteration, path, dataset_id, base_model, created_at_ms, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (path) DO UPDATE SET iteration = excluded.iteration,
                     dataset_id = excluded.dataset_id, base_model = excluded.base_model,
                     created_at_ms = excluded.created_at_ms, summary = excluded.summary
                 RETURNING id",
                params![iteration, path, dataset_id, base_model, now_ms(), summary],
                |row| row.get(0),
            )
            .map_err(sql(p, what("adapter row")))?;
        tx.commit().map_err(sql(p, what("commit")))?;
        Ok(id)
    }

    /// Every adapter, oldest first.
    pub fn adapters(&self) -> Result<Vec<AdapterRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM adapters ORDER BY id"))
            .map_err(sql(&self.path, "listing adapters"))?;
        let rows = stmt
            .query_map([], raw_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(sql(&self.path, "listing adapters"))?;
        rows.into_iter().map(|r| self.decode(r)).collect()
    }

    /// The adapter recorded at `path`, if any.
    pub fn adapter_by_path(&self, path: &str) -> Result<Option<AdapterRow>> {
        let what = format!("reading adapter {path}");
        // Its place in the run, else the path as given (how runs recorded it before).
        let row = self
            .conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM adapters WHERE path IN (?1, ?2) ORDER BY path = ?1 DESC"
                ),
                [self.in_run(path), path.to_string()],
                raw_row,
            )
            .optional()
            .map_err(sql(&self.path, what))?;
        row.map(|r| self.decode(r)).transpose()
    }

    /// The run's folder: where the database is.
    fn run_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }

    /// `path` as the run records it: relative to the run folder when the file is in it, else
    /// absolute, so that a relative path in the table is always one inside the run. The folder
    /// is matched as spelt first, then by the real paths of both.
    fn in_run(&self, path: &str) -> String {
        let dir = self.run_dir();
        let file = Path::new(path);
        let inside = |f: &Path, d: &Path| {
            f.strip_prefix(d)
                .ok()
                .filter(|rest| !rest.as_os_str().is_empty())
                .map(|rest| rest.display().to_string())
        };
        inside(file, dir)
            .or_else(|| {
                let real_dir = dir.canonicalize().ok()?;
                let real_parent = file.parent()?.canonicalize().ok()?;
                inside(&real_parent.join(file.file_name()?), &real_dir)
            })
            .unwrap_or_else(|| match std::path::absolute(file) {
                Ok(absolute) => absolute.display().to_string(),
                Err(_) => path.to_string(),
            })
    }

    /// A recorded path as readers use it: a path relative to the run, joined to the folder; one
    /// recorded before (relative to where that command ran) kept where only it names a file.
    fn resolved(&self, recorded: String) -> String {
        let path = PathBuf::from(&recorded);
        if path.is_absolute() {
            return recorded;
        }
        let joined = self.run_dir().join(&path);
        match !joined.exists() && path.exists() {
            true => recorded,
            false => joined.display().to_string(),
        }
    }

    fn decode(&self, (mut row, summary): (AdapterRow, String)) -> Result<AdapterRow> {
        row.path = self.resolved(row.path);
        row.summary = serde_json::from_str(&summary).map_err(json(
            &self.path,
            format!("reading the summary of adapter {}", row.path),
        ))?;
        Ok(row)
    }
}

/// A row with its summary still as text.
fn raw_row(row: &Row) -> rusqlite::Result<(AdapterRow, String)> {
    Ok((
        AdapterRow {
            id: row.get(0)?,
            iteration: row.get(1)?,
            path: row.get(2)?,
            dataset_id: row.get(3)?,
            base_model: row.get(4)?,
            created_at_ms: row.get(5)?,
            summary: Value::Null,
        },
        row.get(6)?,
    ))
}
