//! Writing finished episodes (one transaction each) and reading them back.

use std::collections::BTreeSet;

use rusqlite::types::Type;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};
use serde::de::DeserializeOwned;

use super::error::{Result, StoreError, json, sql};
use super::{
    Branch, Episode, EpisodeFilter, EpisodeRecord, EpisodeSummary, Order, StepRecord, Store,
    Summary,
};

const INSERT_EPISODE: &str = "
    INSERT INTO episodes (
        key, scenario_hash, scenario_id, policy, seed, iteration, sampling, started_at_ms,
        finished_at_ms, won, reward, steps, invalid_actions, prompt_tokens, cached_tokens,
        gen_tokens, wall_ms, branched_from, branched_at, stopped
    ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
        ?20)
    ON CONFLICT (key) DO NOTHING";

const INSERT_STEP: &str = "
    INSERT INTO steps (
        episode_id, idx, prompt, raw_output, reason, action, observation, reward, done, valid,
        admissible, prompt_tokens, cached_tokens, gen_tokens, prompt_ms, gen_ms, messages,
        intervention, info
    ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

/// `EpisodeFilter` as SQL: ?1 key prefix, ?2 scenario id, ?3 iteration; NULL matches all. The
/// prefix is compared with `substr`, not `LIKE`, so `%` and `_` in keys are plain characters.
const FILTER: &str = "(?1 IS NULL OR substr(key, 1, length(?1)) = ?1)
    AND (?2 IS NULL OR scenario_id = ?2)
    AND (?3 IS NULL OR iteration = ?3)";

const SUMMARY_COLUMNS: &str = "id, key, scenario_hash, scenario_id, policy, seed, iteration, started_at_ms,
    finished_at_ms, won, reward, steps, invalid_actions, prompt_tokens, cached_tokens, gen_tokens, wall_ms";

impl Store {
    /// Writes a finished episode and all its steps in one transaction and returns its id, or
    /// `None` (writing nothing) when an episode with the same key is already stored. On an
    /// error nothing is written either. The scenario snapshot must be stored first.
    pub fn insert_episode(&mut self, ep: &EpisodeRecord) -> Result<Option<i64>> {
        let path = &self.path;
        let key = &ep.key;
        let what = |detail: &str| format!("storing episode {key}: {detail}");
        // Everything that can fail outside SQLite is done before the transaction opens.
        let sampling = serde_json::to_string(&ep.sampling).map_err(json(path, what("sampling")))?;
        let admissible = ep
            .steps
            .iter()
            .map(|s| serde_json::to_string(&s.admissible))
            .collect::<Result<Vec<_>, _>>()
            .map_err(json(path, what("admissible actions")))?;
        let messages = ep
            .steps
            .iter()
            .map(|s| {
                (!s.messages.is_empty())
                    .then(|| serde_json::to_string(&s.messages))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(json(path, what("prompt messages")))?;

        // IMMEDIATE takes the write lock up front, so a concurrent writer waits on the busy
        // timeout instead of failing on a read-to-write upgrade.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(path, what("locking the database")))?;
        let added = tx
            .prepare_cached(INSERT_EPISODE)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    ep.key,
                    ep.scenario_hash,
                    ep.scenario_id,
                    ep.policy,
                    ep.seed as i64, // same bits; seeds use all 64
                    ep.iteration,
                    sampling,
                    ep.started_at_ms,
                    ep.finished_at_ms,
                    ep.won,
                    ep.reward,
                    ep.steps.len() as i64,
                    ep.invalid_actions(),
                    ep.prompt_tokens(),
                    ep.cached_tokens(),
                    ep.gen_tokens(),
                    ep.wall_ms,
                    ep.branch.map(|b| b.from),
                    ep.branch.map(|b| b.at),
                    ep.stopped,
                ])
            })
            .map_err(sql(path, what("episode row")))?;
        if added == 0 {
            return Ok(None); // the key exists; dropping `tx` rolls back
        }
        let id = tx.last_insert_rowid();
        {
            let mut stmt = tx
                .prepare_cached(INSERT_STEP)
                .map_err(sql(path, what("steps")))?;
            let columns = admissible.iter().zip(&messages);
            for (i, (s, (admissible, messages))) in ep.steps.iter().zip(columns).enumerate() {
                stmt.execute(params![
                    id,
                    i as i64,
                    s.prompt,
                    s.raw_output,
                    s.reason,
                    s.action,
                    s.observation,
                    s.reward,
                    s.done,
                    s.valid,
                    admissible,
                    s.prompt_tokens,
                    s.cached_tokens,
                    s.gen_tokens,
                    s.prompt_ms,
                    s.gen_ms,
                    messages,
                    s.intervention,
                    s.info.as_ref().map(|info| info.to_string()),
                ])
                .map_err(|cause| StoreError::Sqlite {
                    path: path.clone(),
                    what: what(&format!("step {i}")),
                    cause,
                })?;
            }
        }
        tx.commit().map_err(sql(path, what("commit")))?;
        Ok(Some(id))
    }

    /// The keys starting with `prefix` that are already stored: what a rerun can skip.
    pub fn finished_keys(&self, prefix: &str) -> Result<BTreeSet<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key FROM episodes WHERE substr(key, 1, length(?1)) = ?1")
            .map_err(sql(&self.path, "reading episode keys"))?;
        let keys = stmt
            .query_map([prefix], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(sql(
                &self.path,
                format!("reading episode keys under {prefix:?}"),
            ))?;
        Ok(keys)
    }

    /// The episodes matching `filter`, without their steps.
    pub fn list_episodes(&self, filter: &EpisodeFilter) -> Result<Vec<EpisodeSummary>> {
        let order = match filter.order {
            Order::NewestFirst => "finished_at_ms DESC, id DESC",
            Order::ById => "id",
        };
        let query = format!(
            "SELECT {SUMMARY_COLUMNS} FROM episodes WHERE {FILTER} ORDER BY {order} LIMIT ?4"
        );
        let limit = filter.limit.map_or(-1, i64::from);
        let mut stmt = self
            .conn
            .prepare_cached(&query)
            .map_err(sql(&self.path, "listing episodes"))?;
        let rows = stmt
            .query_map(
                params![
                    filter.key_prefix,
                    filter.scenario_id,
                    filter.iteration,
                    limit
                ],
                summary_row,
            )
            .and_then(|rows| rows.collect())
            .map_err(sql(&self.path, "listing episodes"))?;
        Ok(rows)
    }

    /// One episode with all its steps; `None` when there is no episode `id`.
    pub fn episode(&self, id: i64) -> Result<Option<Episode>> {
        let what = format!("reading episode {id}");
        let head = self
            .conn
            .query_row(
                "SELECT key, scenario_hash, scenario_id, policy, seed, iteration, sampling, started_at_ms,
                        finished_at_ms, won, reward, wall_ms, branched_from, branched_at, stopped
                 FROM episodes WHERE id = ?1",
                [id],
                |row| {
                    Ok(EpisodeRecord {
                        key: row.get(0)?,
                        scenario_hash: row.get(1)?,
                        scenario_id: row.get(2)?,
                        policy: row.get(3)?,
                        seed: row.get::<_, i64>(4)? as u64,
                        iteration: row.get(5)?,
                        sampling: json_column(row, 6)?,
                        started_at_ms: row.get(7)?,
                        finished_at_ms: row.get(8)?,
                        won: row.get(9)?,
                        reward: row.get(10)?,
                        wall_ms: row.get(11)?,
                        steps: Vec::new(),
                        branch: match (row.get(12)?, row.get(13)?) {
                            (Some(from), Some(at)) => Some(Branch { from, at }),
                            _ => None,
                        },
                        stopped: row.get(14)?,
                    })
                },
            )
            .optional()
            .map_err(sql(&self.path, what.clone()))?;
        let Some(mut record) = head else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT prompt, raw_output, reason, action, observation, reward, done, valid, admissible,
                        prompt_tokens, cached_tokens, gen_tokens, prompt_ms, gen_ms, messages,
                        intervention, info
                 FROM steps WHERE episode_id = ?1 ORDER BY idx",
            )
            .map_err(sql(&self.path, what.clone()))?;
        record.steps = stmt
            .query_map([id], step_row)
            .and_then(|rows| rows.collect())
            .map_err(sql(&self.path, what))?;
        Ok(Some(Episode { id, record }))
    }

    /// Totals and rates over the episodes matching `filter` (its order and limit are ignored).
    pub fn summary(&self, filter: &EpisodeFilter) -> Result<Summary> {
        let query = format!(
            "SELECT COUNT(*), COALESCE(SUM(won), 0), TOTAL(reward), COALESCE(SUM(steps), 0),
                    COALESCE(SUM(invalid_actions), 0), COALESCE(SUM(prompt_tokens), 0),
                    COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(gen_tokens), 0),
                    COALESCE(SUM(wall_ms), 0)
             FROM episodes WHERE {FILTER}"
        );
        let params = params![filter.key_prefix, filter.scenario_id, filter.iteration];
        let (totals, reward_total) = self
            .conn
            .query_row(&query, params, |row| {
                let totals = Summary {
                    episodes: row.get(0)?,
                    wins: row.get(1)?,
                    steps: row.get(3)?,
                    invalid_actions: row.get(4)?,
                    prompt_tokens: row.get(5)?,
                    cached_tokens: row.get(6)?,
                    gen_tokens: row.get(7)?,
                    wall_ms: row.get(8)?,
                    ..Summary::default()
                };
                Ok((totals, row.get::<_, f64>(2)?))
            })
            .map_err(sql(&self.path, "summarising episodes"))?;
        Ok(with_rates(totals, reward_total))
    }
}

fn with_rates(totals: Summary, reward_total: f64) -> Summary {
    let ratio = |num: f64, den: u64| if den == 0 { 0.0 } else { num / den as f64 };
    Summary {
        success_rate: ratio(totals.wins as f64, totals.episodes),
        mean_reward: ratio(reward_total, totals.episodes),
        mean_steps: ratio(totals.steps as f64, totals.episodes),
        invalid_action_rate: ratio(totals.invalid_actions as f64, totals.steps),
        ..totals
    }
}

fn summary_row(row: &Row) -> rusqlite::Result<EpisodeSummary> {
    Ok(EpisodeSummary {
        id: row.get(0)?,
        key: row.get(1)?,
        scenario_hash: row.get(2)?,
        scenario_id: row.get(3)?,
        policy: row.get(4)?,
        seed: row.get::<_, i64>(5)? as u64,
        iteration: row.get(6)?,
        started_at_ms: row.get(7)?,
        finished_at_ms: row.get(8)?,
        won: row.get(9)?,
        reward: row.get(10)?,
        steps: row.get(11)?,
        invalid_actions: row.get(12)?,
        prompt_tokens: row.get(13)?,
        cached_tokens: row.get(14)?,
        gen_tokens: row.get(15)?,
        wall_ms: row.get(16)?,
    })
}

fn step_row(row: &Row) -> rusqlite::Result<StepRecord> {
    Ok(StepRecord {
        prompt: row.get(0)?,
        raw_output: row.get(1)?,
        reason: row.get(2)?,
        action: row.get(3)?,
        observation: row.get(4)?,
        reward: row.get(5)?,
        done: row.get(6)?,
        valid: row.get(7)?,
        admissible: json_column(row, 8)?,
        prompt_tokens: row.get(9)?,
        cached_tokens: row.get(10)?,
        gen_tokens: row.get(11)?,
        prompt_ms: row.get(12)?,
        gen_ms: row.get(13)?,
        messages: optional_json_column(row, 14)?.unwrap_or_default(),
        intervention: row.get(15)?,
        info: optional_json_column(row, 16)?,
    })
}

pub(super) fn json_column<T: DeserializeOwned>(row: &Row, idx: usize) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    from_json(&text, idx)
}

/// A JSON column that may be NULL.
fn optional_json_column<T: DeserializeOwned>(row: &Row, idx: usize) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = row.get(idx)?;
    text.map(|text| from_json(&text, idx)).transpose()
}

fn from_json<T: DeserializeOwned>(text: &str, idx: usize) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}
