//! Datasets built for training, with the labels each one holds: the first link of the lineage
//! from labels to adapters to evaluations.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::episodes::json_column;
use super::error::{Result, json, sql};
use super::{Store, now_ms};

/// Who built a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetSource {
    /// An iteration's training set (`leap iterate`, `leap dataset build`): the one a later
    /// iteration's `dataset(N)` finds.
    Iterate,
    /// The workbench's Train screen: the kept labels, recorded so its adapter has a lineage.
    Workbench,
}

impl DatasetSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetSource::Iterate => "iterate",
            DatasetSource::Workbench => "workbench",
        }
    }
}

/// A dataset as recorded in the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRow {
    pub id: i64,
    pub source: DatasetSource,
    pub iteration: u32,
    /// sha256 of the JSONL file's bytes.
    pub hash: String,
    pub path: String,
    pub rows: u64,
    pub created_at_ms: i64,
    pub config: Value,
}

impl Store {
    /// Records a dataset file and the labels it holds (one transaction); the same iteration and
    /// hash recorded twice is one dataset. Returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn record_dataset(
        &mut self,
        source: DatasetSource,
        iteration: u32,
        hash: &str,
        path: &str,
        rows: u64,
        config: &Value,
        label_ids: &[i64],
    ) -> Result<i64> {
        let p = &self.path;
        let what = |d: &str| format!("recording dataset {path}: {d}");
        let config = serde_json::to_string(config).map_err(json(p, what("config")))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(p, what("locking the database")))?;
        tx.execute(
            "INSERT INTO datasets (iteration, hash, path, rows, created_at_ms, config, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (iteration, hash) DO NOTHING",
            params![
                iteration,
                hash,
                path,
                rows as i64,
                now_ms(),
                config,
                source.as_str()
            ],
        )
        .map_err(sql(p, what("dataset row")))?;
        let id: i64 = tx
            .query_row(
                "SELECT id FROM datasets WHERE iteration = ?1 AND hash = ?2",
                params![iteration, hash],
                |row| row.get(0),
            )
            .map_err(sql(p, what("dataset id")))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO dataset_labels (dataset_id, label_id) VALUES (?1, ?2)",
                )
                .map_err(sql(p, what("labels")))?;
            for label in label_ids {
                stmt.execute(params![id, label])
                    .map_err(sql(p, what("labels")))?;
            }
        }
        tx.commit().map_err(sql(p, what("commit")))?;
        Ok(id)
    }

    /// The latest dataset built for `iteration` by `leap iterate` or `leap dataset build`.
    pub fn dataset(&self, iteration: u32) -> Result<Option<DatasetRow>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {DATASET_COLUMNS} FROM datasets WHERE iteration = ?1 AND source = 'iterate' ORDER BY id DESC LIMIT 1"
                ),
                [iteration],
                dataset_row,
            )
            .optional()
            .map_err(sql(
                &self.path,
                format!("reading the dataset of iteration {iteration}"),
            ))
    }

    /// The ids of the labels dataset `id` holds.
    pub fn dataset_labels(&self, id: i64) -> Result<Vec<i64>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT label_id FROM dataset_labels WHERE dataset_id = ?1 ORDER BY label_id",
            )
            .map_err(sql(&self.path, "reading a dataset's labels"))?;
        let ids = stmt
            .query_map([id], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(sql(&self.path, "reading a dataset's labels"))?;
        Ok(ids)
    }

    /// The labels dataset `id` holds, counted by teacher, decision and the iteration of the
    /// student whose episode they correct.
    pub fn dataset_provenance(&self, id: i64) -> Result<Vec<Provenance>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT c.teacher, l.status, e.iteration, COUNT(*), COALESCE(SUM(l.changed), 0),
                        COALESCE(SUM(l.leaks != '[]'), 0)
                 FROM dataset_labels d
                 JOIN labels l ON l.id = d.label_id
                 JOIN corrections c ON c.id = l.correction_id
                 JOIN episodes e ON e.id = l.episode_id
                 WHERE d.dataset_id = ?1
                 GROUP BY c.teacher, l.status, e.iteration
                 ORDER BY e.iteration, c.teacher, l.status",
            )
            .map_err(sql(&self.path, "reading a dataset's provenance"))?;
        let rows = stmt
            .query_map([id], |row| {
                Ok(Provenance {
                    teacher: row.get(0)?,
                    status: row.get(1)?,
                    iteration: row.get(2)?,
                    labels: row.get(3)?,
                    changed: row.get(4)?,
                    leaking: row.get(5)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(sql(&self.path, "reading a dataset's provenance"))?;
        Ok(rows)
    }

    /// Every dataset, oldest first.
    pub fn datasets(&self) -> Result<Vec<DatasetRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {DATASET_COLUMNS} FROM datasets ORDER BY id"
            ))
            .map_err(sql(&self.path, "listing datasets"))?;
        let rows = stmt
            .query_map([], dataset_row)
            .and_then(|rows| rows.collect())
            .map_err(sql(&self.path, "listing datasets"))?;
        Ok(rows)
    }
}

const DATASET_COLUMNS: &str = "id, iteration, hash, path, rows, created_at_ms, config, source";

fn dataset_row(row: &rusqlite::Row) -> rusqlite::Result<DatasetRow> {
    let source = match row.get_ref(7)?.as_str()? {
        "workbench" => DatasetSource::Workbench,
        _ => DatasetSource::Iterate,
    };
    Ok(DatasetRow {
        id: row.get(0)?,
        source,
        iteration: row.get(1)?,
        hash: row.get(2)?,
        path: row.get(3)?,
        rows: row.get(4)?,
        created_at_ms: row.get(5)?,
        config: json_column(row, 6)?,
    })
}

/// A group of labels in a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub teacher: String,
    pub status: String,
    pub iteration: Option<u32>,
    pub labels: u64,
    pub changed: u64,
    pub leaking: u64,
}
