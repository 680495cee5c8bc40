//! Trained LoRA adapters: where each file is, which iteration and dataset it comes from, its base
//! model and the training summary. The link from datasets to evaluations.

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
        let row = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM adapters WHERE path = ?1"),
                [path],
                raw_row,
            )
            .optional()
            .map_err(sql(&self.path, what))?;
        row.map(|r| self.decode(r)).transpose()
    }

    fn decode(&self, (mut row, summary): (AdapterRow, String)) -> Result<AdapterRow> {
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
