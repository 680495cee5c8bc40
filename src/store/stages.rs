//! The wall time of each finished stage of the LEAP loop (`leap iterate`): recorded as each stage
//! ends, so that the times of a run killed and resumed are all kept.

use rusqlite::params;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::episodes::json_column;
use super::error::{Result, json, sql};
use super::{Store, now_ms};

/// One finished stage; `detail` is what the stage returned, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRow {
    pub id: i64,
    pub iteration: Option<u32>,
    pub stage: String,
    pub seconds: f64,
    pub finished_at_ms: i64,
    pub detail: Value,
}

impl Store {
    /// Records that `stage` (of `iteration`, or of none) finished after `seconds`, unless it is
    /// recorded already: a resumed run passes again through the stages it had finished (each one
    /// then finds its work done) and keeps their first, real, times. Returns the new row's id.
    pub fn record_stage_once(
        &mut self,
        iteration: Option<u32>,
        stage: &str,
        seconds: f64,
        detail: &Value,
    ) -> Result<Option<i64>> {
        let seen: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM stages WHERE iteration IS ?1 AND stage = ?2)",
                params![iteration, stage],
                |row| row.get(0),
            )
            .map_err(sql(&self.path, format!("looking up stage {stage}")))?;
        if seen {
            return Ok(None);
        }
        self.record_stage(iteration, stage, seconds, detail)
            .map(Some)
    }

    /// Records that `stage` (of `iteration`, or of none) finished after `seconds`.
    pub fn record_stage(
        &mut self,
        iteration: Option<u32>,
        stage: &str,
        seconds: f64,
        detail: &Value,
    ) -> Result<i64> {
        let what = format!("recording stage {stage}");
        let text = serde_json::to_string(detail).map_err(json(&self.path, what.clone()))?;
        self.conn
            .query_row(
                "INSERT INTO stages (iteration, stage, seconds, finished_at_ms, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                params![iteration, stage, seconds, now_ms(), text],
                |row| row.get(0),
            )
            .map_err(sql(&self.path, what))
    }

    /// Every recorded stage, in the order they finished.
    pub fn stages(&self) -> Result<Vec<StageRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, iteration, stage, seconds, finished_at_ms, detail FROM stages ORDER BY id",
            )
            .map_err(sql(&self.path, "listing stages"))?;
        let rows = stmt
            .query_map([], |row| {
                Ok(StageRow {
                    id: row.get(0)?,
                    iteration: row.get(1)?,
                    stage: row.get(2)?,
                    seconds: row.get(3)?,
                    finished_at_ms: row.get(4)?,
                    detail: json_column(row, 5)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(sql(&self.path, "listing stages"))?;
        Ok(rows)
    }
}
