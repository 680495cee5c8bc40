//! Teacher corrections and the labels made from them. A label is one corrected step; a person
//! or a policy accepts, rejects or edits it. Every decision is its own transaction and is also
//! appended to `label_events`, so the history is complete and the last decision can be undone.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::Type;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::episodes::json_column;
use super::error::{Result, StoreError, json, sql};
use super::{EpisodeRecord, Store, now_ms};
use crate::env::command;
use crate::teacher::{Corrections, Leak};

/// Where a label stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelStatus {
    Pending,
    Accepted,
    Rejected,
    Edited,
}

impl LabelStatus {
    pub const ALL: [LabelStatus; 4] = [
        LabelStatus::Pending,
        LabelStatus::Accepted,
        LabelStatus::Rejected,
        LabelStatus::Edited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LabelStatus::Pending => "pending",
            LabelStatus::Accepted => "accepted",
            LabelStatus::Rejected => "rejected",
            LabelStatus::Edited => "edited",
        }
    }

    /// Accepted or edited: the label goes into training data.
    pub fn is_kept(self) -> bool {
        matches!(self, LabelStatus::Accepted | LabelStatus::Edited)
    }
}

impl fmt::Display for LabelStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LabelStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        LabelStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("unknown label status {s:?} (pending, accepted, rejected, edited)")
            })
    }
}

/// A decision about one label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accept,
    Reject,
    /// Keep the label with this reason and action instead of the teacher's.
    Edit {
        reason: String,
        action: String,
    },
}

/// One corrected step with the student's original beside the teacher's correction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub id: i64,
    pub correction_id: i64,
    pub teacher: String,
    pub episode_id: i64,
    pub episode_key: String,
    pub scenario_id: String,
    /// The iteration of the student that played the episode.
    pub iteration: Option<u32>,
    /// The step's index in its episode.
    pub idx: u32,
    pub student_reason: Option<String>,
    pub student_action: String,
    pub teacher_reason: String,
    pub teacher_action: String,
    /// The teacher's action differs from the student's.
    pub changed: bool,
    pub leaks: Vec<Leak>,
    pub status: LabelStatus,
    pub edited_reason: Option<String>,
    pub edited_action: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at_ms: Option<i64>,
    /// The commands that were admissible at this step.
    pub admissible: Vec<String>,
    /// How many times the label's state has changed (decisions and undos): a decision names
    /// the revision it decides from, and is refused if another decider got there first.
    #[serde(skip)]
    pub revision: u64,
}

impl Label {
    /// The reason and action this label teaches: the edit when edited, else the teacher's.
    pub fn target(&self) -> (&str, &str) {
        match (&self.edited_reason, &self.edited_action) {
            (Some(r), Some(a)) if self.status == LabelStatus::Edited => (r, a),
            _ => (&self.teacher_reason, &self.teacher_action),
        }
    }
}

/// Which labels to list or count; every field that is set must match.
#[derive(Debug, Clone, Default)]
pub struct LabelFilter {
    pub status: Option<LabelStatus>,
    /// Only labels whose action differs from the student's (or only those that agree).
    pub changed: Option<bool>,
    /// Only labels with leak flags (or only those without).
    pub leaking: Option<bool>,
    pub scenario_id: Option<String>,
    pub iteration: Option<u32>,
    pub episode_id: Option<i64>,
    pub teacher: Option<String>,
    pub limit: Option<u32>,
}

/// How many labels are in each state, over a filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelCounts {
    pub total: u64,
    pub pending: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub edited: u64,
    pub changed: u64,
    pub leaking: u64,
}

/// One entry of a label's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelEvent {
    pub at_ms: i64,
    pub status: LabelStatus,
    pub edited_reason: Option<String>,
    pub edited_action: Option<String>,
    pub decided_by: Option<String>,
    pub undone: bool,
}

const LABEL_COLUMNS: &str = "l.id, l.correction_id, c.teacher, l.episode_id, e.key, e.scenario_id,
    e.iteration, l.idx, l.student_reason, l.student_action, l.teacher_reason, l.teacher_action,
    l.changed, l.leaks, l.status, l.edited_reason, l.edited_action, l.decided_by,
    l.decided_at_ms, s.admissible, (SELECT COUNT(*) + COALESCE(SUM(ev.undone), 0)
    FROM label_events ev WHERE ev.label_id = l.id)";

const LABEL_FROM: &str = "labels l
    JOIN corrections c ON c.id = l.correction_id
    JOIN episodes e ON e.id = l.episode_id
    JOIN steps s ON s.episode_id = l.episode_id AND s.idx = l.idx";

/// `LabelFilter` as SQL over `LABEL_FROM`: ?1 status, ?2 changed, ?3 leaking, ?4 scenario,
/// ?5 iteration, ?6 episode, ?7 teacher; NULL matches all.
const LABEL_WHERE: &str = "(?1 IS NULL OR l.status = ?1)
    AND (?2 IS NULL OR l.changed = ?2)
    AND (?3 IS NULL OR (l.leaks != '[]') = ?3)
    AND (?4 IS NULL OR e.scenario_id = ?4)
    AND (?5 IS NULL OR e.iteration = ?5)
    AND (?6 IS NULL OR l.episode_id = ?6)
    AND (?7 IS NULL OR c.teacher = ?7)";

impl Store {
    /// The id of `teacher`'s corrections of episode `episode_id`, if it made any.
    pub fn correction_id(&self, episode_id: i64, teacher: &str) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT id FROM corrections WHERE episode_id = ?1 AND teacher = ?2",
                params![episode_id, teacher],
                |row| row.get(0),
            )
            .optional()
            .map_err(sql(
                &self.path,
                format!("reading corrections of episode {episode_id}"),
            ))
    }

    /// Steps `teacher` failed to correct, over all its corrections.
    pub fn correction_failures(&self, teacher: &str) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(json_array_length(summary, '$.failures')), 0)
                 FROM corrections WHERE teacher = ?1",
                [teacher],
                |row| row.get(0),
            )
            .map_err(sql(
                &self.path,
                format!("counting failed corrections of {teacher}"),
            ))
    }

    /// Every stored correction as (episode id, teacher, its summary and failures as stored:
    /// `{"summary": ..., "failures": [{"timestep", "error"}]}`), by id.
    pub fn correction_summaries(&self) -> Result<Vec<(i64, String, serde_json::Value)>> {
        let read = || -> rusqlite::Result<Vec<(i64, String, String)>> {
            let mut stmt = self
                .conn
                .prepare("SELECT episode_id, teacher, summary FROM corrections ORDER BY id")?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect()
        };
        let rows = read().map_err(sql(&self.path, "reading corrections".to_string()))?;
        rows.into_iter()
            .map(|(episode, teacher, summary)| {
                let value = serde_json::from_str(&summary).map_err(json(
                    &self.path,
                    format!("the summary of a correction by {teacher}"),
                ))?;
                Ok((episode, teacher, value))
            })
            .collect()
    }

    /// Stores a teacher's corrections of an episode and one pending label per corrected step,
    /// in one transaction. Returns the corrections' id, or `None` when this teacher had already
    /// corrected the episode (nothing is written).
    pub fn insert_corrections(
        &mut self,
        episode_id: i64,
        teacher: &str,
        privilege: Option<f64>,
        episode: &EpisodeRecord,
        corrections: &Corrections,
    ) -> Result<Option<i64>> {
        let path = &self.path;
        let what = |d: &str| format!("storing corrections of episode {episode_id}: {d}");
        let summary = serde_json::to_string(&serde_json::json!({
            "summary": corrections.summary,
            "failures": corrections.failures,
        }))
        .map_err(json(path, what("summary")))?;
        let failed = (!corrections.failures.is_empty()).then(|| {
            corrections
                .failures
                .iter()
                .map(|f| format!("step {}: {}", f.timestep, f.error))
                .collect::<Vec<_>>()
                .join("; ")
        });
        let mut leaks = Vec::with_capacity(corrections.trajectory.len());
        for c in &corrections.trajectory {
            if c.timestep as usize >= episode.steps.len() {
                return Err(StoreError::Invalid {
                    path: path.clone(),
                    what: what(&format!(
                        "timestep {} is past the episode's {} steps",
                        c.timestep,
                        episode.steps.len()
                    )),
                });
            }
            leaks.push(serde_json::to_string(&c.leaks).map_err(json(path, what("leaks")))?);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(path, what("locking the database")))?;
        let added = tx
            .execute(
                "INSERT INTO corrections (episode_id, teacher, privilege, created_at_ms, summary, failed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (episode_id, teacher) DO NOTHING",
                params![episode_id, teacher, privilege, now_ms(), summary, failed],
            )
            .map_err(sql(path, what("corrections row")))?;
        if added == 0 {
            return Ok(None);
        }
        let id = tx.last_insert_rowid();
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO labels (correction_id, episode_id, idx, student_reason,
                        student_action, teacher_reason, teacher_action, changed, leaks, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending')",
                )
                .map_err(sql(path, what("labels")))?;
            for (c, leaks) in corrections.trajectory.iter().zip(&leaks) {
                let step = &episode.steps[c.timestep as usize];
                stmt.execute(params![
                    id,
                    episode_id,
                    c.timestep,
                    step.reason,
                    step.action,
                    c.corrected_reason,
                    c.corrected_action,
                    c.is_corrected,
                    leaks,
                ])
                .map_err(sql(path, what(&format!("label of step {}", c.timestep))))?;
            }
        }
        tx.commit().map_err(sql(path, what("commit")))?;
        Ok(Some(id))
    }

    /// The labels matching `filter`, by episode then step.
    pub fn labels(&self, filter: &LabelFilter) -> Result<Vec<Label>> {
        let query = format!(
            "SELECT {LABEL_COLUMNS} FROM {LABEL_FROM} WHERE {LABEL_WHERE}
             ORDER BY l.episode_id, l.idx, l.id LIMIT ?8"
        );
        let mut stmt = self
            .conn
            .prepare_cached(&query)
            .map_err(sql(&self.path, "listing labels"))?;
        let limit = filter.limit.map_or(-1, i64::from);
        let rows = stmt
            .query_map(
                params![
                    filter.status.map(LabelStatus::as_str),
                    filter.changed,
                    filter.leaking,
                    filter.scenario_id,
                    filter.iteration,
                    filter.episode_id,
                    filter.teacher,
                    limit
                ],
                label_row,
            )
            .and_then(|rows| rows.collect())
            .map_err(sql(&self.path, "listing labels"))?;
        Ok(rows)
    }

    /// One label; `None` when there is no label `id`.
    pub fn label(&self, id: i64) -> Result<Option<Label>> {
        let query = format!("SELECT {LABEL_COLUMNS} FROM {LABEL_FROM} WHERE l.id = ?1");
        self.conn
            .query_row(&query, [id], label_row)
            .optional()
            .map_err(sql(&self.path, format!("reading label {id}")))
    }

    /// Counts per status over the labels matching `filter` (its limit is ignored).
    pub fn label_counts(&self, filter: &LabelFilter) -> Result<LabelCounts> {
        let query = format!(
            "SELECT COUNT(*),
                    COALESCE(SUM(l.status = 'pending'), 0), COALESCE(SUM(l.status = 'accepted'), 0),
                    COALESCE(SUM(l.status = 'rejected'), 0), COALESCE(SUM(l.status = 'edited'), 0),
                    COALESCE(SUM(l.changed), 0), COALESCE(SUM(l.leaks != '[]'), 0)
             FROM {LABEL_FROM} WHERE {LABEL_WHERE}"
        );
        self.conn
            .query_row(
                &query,
                params![
                    filter.status.map(LabelStatus::as_str),
                    filter.changed,
                    filter.leaking,
                    filter.scenario_id,
                    filter.iteration,
                    filter.episode_id,
                    filter.teacher,
                ],
                |row| {
                    Ok(LabelCounts {
                        total: row.get(0)?,
                        pending: row.get(1)?,
                        accepted: row.get(2)?,
                        rejected: row.get(3)?,
                        edited: row.get(4)?,
                        changed: row.get(5)?,
                        leaking: row.get(6)?,
                    })
                },
            )
            .map_err(sql(&self.path, "counting labels"))
    }

    /// Records a decision about label `id` (its own transaction, with a history entry) and
    /// returns the label as it now stands. An edit's action must be one of the step's admissible
    /// commands (a template's fill is kept trimmed) and its reason must not be empty.
    pub fn decide(&mut self, id: i64, decision: &Decision, by: &str) -> Result<Label> {
        let label = self.label(id)?.ok_or_else(|| self.no_label(id))?;
        self.decide_from(&label, decision, by)
    }

    /// Decides a label as the decider saw it (`seen`, read earlier from this store): recorded
    /// only if the label is still in that state, else `StoreError::Decided` and nothing is
    /// written, so that two deciders at once never both decide a label.
    pub fn decide_from(&mut self, seen: &Label, decision: &Decision, by: &str) -> Result<Label> {
        let (id, label) = (seen.id, seen);
        let (status, reason, action) = match decision {
            Decision::Accept => (LabelStatus::Accepted, None, None),
            Decision::Reject => (LabelStatus::Rejected, None, None),
            Decision::Edit { reason, action } => {
                let reason = reason.trim();
                let action = action.trim();
                if reason.is_empty() {
                    return Err(self.invalid(format!("label {id}: the edited reason is empty")));
                }
                let Some(action) = command::admits(&label.admissible, action) else {
                    return Err(self.invalid(format!(
                        "label {id}: {action:?} was not admissible at step {} of episode {}",
                        label.idx, label.episode_id
                    )));
                };
                (LabelStatus::Edited, Some(reason), Some(action))
            }
        };
        let event = LabelEvent {
            at_ms: now_ms(),
            status,
            edited_reason: reason.map(str::to_string),
            edited_action: action,
            decided_by: Some(by.to_string()),
            undone: false,
        };
        self.write_state(label, &event, None)?;
        self.label(id)?.ok_or_else(|| self.no_label(id))
    }

    /// Undoes the last decision about label `id` that is still in force: the label goes back to
    /// the decision before it (or pending). The undone entry stays in the history, marked.
    pub fn undo_label(&mut self, id: i64) -> Result<Label> {
        let label = self.label(id)?.ok_or_else(|| self.no_label(id))?;
        let history = self.label_history(id)?;
        let live: Vec<(usize, &LabelEvent)> = history
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.undone)
            .collect();
        let Some(&(last, _)) = live.last() else {
            return Err(self.invalid(format!("label {id}: no decision to undo")));
        };
        let restored = match live.len().checked_sub(2).map(|i| live[i].1) {
            Some(previous) => previous.clone(),
            None => LabelEvent {
                at_ms: 0,
                status: LabelStatus::Pending,
                edited_reason: None,
                edited_action: None,
                decided_by: None,
                undone: false,
            },
        };
        self.write_state(&label, &restored, Some(last))?;
        self.label(id)?.ok_or_else(|| self.no_label(id))
    }

    /// Every decision about label `id`, oldest first.
    pub fn label_history(&self, id: i64) -> Result<Vec<LabelEvent>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT at_ms, status, edited_reason, edited_action, decided_by, undone
                 FROM label_events WHERE label_id = ?1 ORDER BY id",
            )
            .map_err(sql(
                &self.path,
                format!("reading the history of label {id}"),
            ))?;
        let rows = stmt
            .query_map([id], |row| {
                Ok(LabelEvent {
                    at_ms: row.get(0)?,
                    status: status_column(row, 1)?,
                    edited_reason: row.get(2)?,
                    edited_action: row.get(3)?,
                    decided_by: row.get(4)?,
                    undone: row.get(5)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(sql(
                &self.path,
                format!("reading the history of label {id}"),
            ))?;
        Ok(rows)
    }

    /// Sets the label's state to `state` in one transaction: either a new decision (appended to
    /// the history) or, with `undo = Some(k)`, the undo of the k-th history entry. Refused
    /// (`StoreError::Decided`) unless the label is still at the revision of `seen`: the check
    /// and the write are one transaction, under SQLite's write lock.
    fn write_state(&mut self, seen: &Label, state: &LabelEvent, undo: Option<usize>) -> Result<()> {
        let id = seen.id;
        let path = &self.path;
        let what = |d: &str| format!("deciding label {id}: {d}");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(path, what("locking the database")))?;
        let (revision, now, by): (u64, String, Option<String>) = tx
            .query_row(
                "SELECT (SELECT COUNT(*) + COALESCE(SUM(undone), 0) FROM label_events
                         WHERE label_id = ?1), status, decided_by
                 FROM labels WHERE id = ?1",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .map_err(sql(path, what("reading its state")))?;
        if revision != seen.revision {
            return Err(StoreError::Decided {
                path: path.clone(),
                id,
                seen: seen.status.as_str(),
                now,
                by: by.unwrap_or_else(|| "an undo".into()),
            });
        }
        let decided_at = (state.status != LabelStatus::Pending).then_some(state.at_ms);
        tx.execute(
            "UPDATE labels SET status = ?2, edited_reason = ?3, edited_action = ?4,
                decided_by = ?5, decided_at_ms = ?6 WHERE id = ?1",
            params![
                id,
                state.status.as_str(),
                state.edited_reason,
                state.edited_action,
                state.decided_by,
                decided_at
            ],
        )
        .map_err(sql(path, what("label row")))?;
        match undo {
            None => tx.execute(
                "INSERT INTO label_events (label_id, at_ms, status, edited_reason, edited_action, decided_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    state.at_ms,
                    state.status.as_str(),
                    state.edited_reason,
                    state.edited_action,
                    state.decided_by
                ],
            ),
            Some(k) => tx.execute(
                "UPDATE label_events SET undone = 1 WHERE id =
                    (SELECT id FROM label_events WHERE label_id = ?1 ORDER BY id LIMIT 1 OFFSET ?2)",
                params![id, k as i64],
            ),
        }
        .map_err(sql(path, what("history")))?;
        tx.commit().map_err(sql(path, what("commit")))
    }

    fn no_label(&self, id: i64) -> StoreError {
        self.invalid(format!("no label {id} in this run"))
    }

    fn invalid(&self, what: String) -> StoreError {
        StoreError::Invalid {
            path: self.path.clone(),
            what,
        }
    }
}

fn status_column(row: &Row, idx: usize) -> rusqlite::Result<LabelStatus> {
    let text: String = row.get(idx)?;
    text.parse()
        .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, e.into()))
}

fn label_row(row: &Row) -> rusqlite::Result<Label> {
    Ok(Label {
        id: row.get(0)?,
        correction_id: row.get(1)?,
        teacher: row.get(2)?,
        episode_id: row.get(3)?,
        episode_key: row.get(4)?,
        scenario_id: row.get(5)?,
        iteration: row.get(6)?,
        idx: row.get(7)?,
        student_reason: row.get(8)?,
        student_action: row.get(9)?,
        teacher_reason: row.get(10)?,
        teacher_action: row.get(11)?,
        changed: row.get(12)?,
        leaks: json_column(row, 13)?,
        status: status_column(row, 14)?,
        edited_reason: row.get(15)?,
        edited_action: row.get(16)?,
        decided_by: row.get(17)?,
        decided_at_ms: row.get(18)?,
        admissible: json_column(row, 19)?,
        revision: row.get(20)?,
    })
}
