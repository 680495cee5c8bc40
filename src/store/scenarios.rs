//! Scenario snapshots: the exact scenario text each episode was played on, keyed by its hash.

use rusqlite::{OptionalExtension, params};

use super::error::{Result, sql};
use super::{ScenarioSnapshot, Store};

impl Store {
    /// Stores a scenario snapshot unless one with this hash is already there (the hash is of the
    /// content, so it would be the same text). True when it was new.
    pub fn upsert_scenario(
        &mut self,
        hash: &str,
        id: &str,
        kind: &str,
        split: &str,
        json: &str,
    ) -> Result<bool> {
        let added = self
            .conn
            .execute(
                "INSERT INTO scenarios (hash, scenario_id, kind, split, json) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (hash) DO NOTHING",
                params![hash, id, kind, split, json],
            )
            .map_err(sql(&self.path, format!("storing scenario {id} ({hash})")))?;
        Ok(added == 1)
    }

    pub fn scenario(&self, hash: &str) -> Result<Option<ScenarioSnapshot>> {
        self.conn
            .query_row(
                "SELECT hash, scenario_id, kind, split, json FROM scenarios WHERE hash = ?1",
                [hash],
                |row| {
                    Ok(ScenarioSnapshot {
                        hash: row.get(0)?,
                        scenario_id: row.get(1)?,
                        kind: row.get(2)?,
                        split: row.get(3)?,
                        json: row.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(sql(&self.path, format!("reading scenario {hash}")))
    }
}
