//! Evaluations, each linked to the adapter (and iteration) it measured: with datasets and
//! adapters, the lineage from labels to a better student.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::episodes::json_column;
use super::error::{Result, json, sql};
use super::{Store, now_ms};

/// A stored evaluation; `summary` is the evaluation's full report as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRow {
    pub id: i64,
    pub label: String,
    pub adapter_id: Option<i64>,
    pub iteration: Option<u32>,
    pub policy: String,
    pub split: String,
    pub created_at_ms: i64,
    pub summary: Value,
}

impl Store {
    /// Records (or replaces) the evaluation named `label`.
    pub fn record_evaluation(
        &mut self,
        label: &str,
        adapter_id: Option<i64>,
        iteration: Option<u32>,
        policy: &str,
        split: &str,
        summary: &Value,
    ) -> Result<i64> {
        let what = format!("recording evaluation {label}");
        let text = serde_json::to_string(summary).map_err(json(&self.path, what.clone()))?;
        self.conn
            .query_row(
                "INSERT INTO evaluations (label, adapter_id, iteration, policy, split, created_at_ms, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (label) DO UPDATE SET adapter_id = ?2, iteration = ?3, policy = ?4,
                    split = ?5, created_at_ms = ?6, summary = ?7
                 RETURNING id",
                params![label, adapter_id, iteration, policy, split, now_ms(), text],
                |row| row.get(0),
            )
            .map_err(sql(&self.path, what))
    }

    /// The evaluation named `label`, if recorded.
    pub fn evaluation(&self, label: &str) -> Result<Option<EvaluationRow>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM evaluations WHERE label = ?1"),
                [label],
                evaluation_row,
            )
            .optional()
            .map_err(sql(&self.path, format!("reading evaluation {label}")))
    }

    /// Every evaluation, oldest first.
    pub fn evaluations(&self) -> Result<Vec<EvaluationRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM evaluations ORDER BY id"))
            .map_err(sql(&self.path, "listing evaluations"))?;
        let rows = stmt
            .query_map([], evaluation_row)
            .and_then(|rows| rows.collect())
            .map_err(sql(&self.path, "listing evaluations"))?;
        Ok(rows)
    }
}

const COLUMNS: &str = "id, label, adapter_id, iteration, policy, split, created_at_ms, summary";

fn evaluation_row(row: &rusqlite::Row) -> rusqlite::Result<EvaluationRow> {
    Ok(EvaluationRow {
        id: row.get(0)?,
        label: row.get(1)?,
        adapter_id: row.get(2)?,
        iteration: row.get(3)?,
        policy: row.get(4)?,
        split: row.get(5)?,
        created_at_ms: row.get(6)?,
        summary: json_column(row, 7)?,
    })
}
