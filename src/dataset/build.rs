//! Building training data. Iteration 0 is behaviour cloning on the oracle's own episodes (with
//! its reasons); iteration i adds the accepted and edited labels of the rollouts of iterations
//! 0..i (the students before it). A row is exactly the prompt the student saw at that step and
//! the response `REASON: ...\nACTION: ...` it should have written.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{DatasetError, Row, RowMeta};
use crate::agent::parse::format;
use crate::agent::prompt::{Prompt, PromptError};
use crate::agent::{Message, Role};
use crate::run::RunDir;
use crate::scenario::Scenario;
use crate::store::{DatasetSource, Label, LabelFilter, Store, StoreError};
use crate::teacher::oracle::OracleTeacher;

/// How the oracle plays the demonstrations of iteration 0.
#[derive(Debug, Clone, Serialize)]
pub struct ExpertSettings {
    /// The oracle's privilege level (see `teacher::oracle`).
    pub privilege: f64,
    pub seed: u64,
}

/// What the oracle's demonstrations came to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExpertReport {
    pub scenarios: usize,
    /// Demonstrations that reached the goal within the horizon (only these become rows).
    pub won: usize,
    pub rows: usize,
}

/// Behaviour-cloning rows: the oracle plays every scenario from its start, and each step of a
/// won episode becomes a row with the student's prompt at that step.
pub fn expert_rows(
    scenarios: &[Scenario],
    prompt: &Prompt,
    settings: &ExpertSettings,
) -> Result<(Vec<Row>, ExpertReport), PromptError> {
    let oracle = OracleTeacher::new(settings.privilege, settings.seed);
    let mut rows = Vec::new();
    let mut report = ExpertReport {
        scenarios: scenarios.len(),
        ..ExpertReport::default()
    };
    for s in scenarios {
        let demo = oracle.demonstrate(s, &format!("expert/{}", s.id), false);
        if !demo.won {
            continue;
        }
        report.won += 1;
        for (step, (mut messages, advice)) in demo
            .prompts(prompt)?
            .into_iter()
            .zip(&demo.steps)
            .enumerate()
        {
            messages.push(Message::new(
                Role::Assistant,
                format(&advice.reason, &advice.action),
            ));
            rows.push(Row {
                messages,
                meta: Some(RowMeta {
                    source: "expert".into(),
                    scenario_id: s.id.clone(),
                    iteration: 0,
                    step: Some(step as u32),
                    ..RowMeta::default()
                }),
            });
        }
    }
    report.rows = rows.len();
    Ok((rows, report))
}

impl RowMeta {
    /// Where a row made from `label` comes from.
    pub fn of_label(label: &Label) -> RowMeta {
        RowMeta {
            source: "label".into(),
            scenario_id: label.scenario_id.clone(),
            iteration: label.iteration.unwrap_or(0),
            episode_id: Some(label.episode_id),
            step: Some(label.idx),
            label_id: Some(label.id),
        }
    }
}

/// A label as a training row: the prompt the student saw at that step, and the label's reason
/// and action (the edit when edited) as the response. `None` for a step stored without its
/// prompt messages.
pub fn label_row(store: &Store, label: &Label) -> Result<Option<Row>, StoreError> {
    let Some(messages) = step_messages(store, label)? else {
        return Ok(None);
    };
    let (reason, action) = label.target();
    let mut messages = messages;
    messages.push(Message::new(Role::Assistant, format(reason, action)));
    Ok(Some(Row {
        messages,
        meta: Some(RowMeta::of_label(label)),
    }))
}

/// The prompt messages of the step a label corrects, with the student's raw output.
fn step_messages(store: &Store, label: &Label) -> Result<Option<Vec<Message>>, StoreError> {
    let episode = store.episode(label.episode_id)?;
    Ok(episode
        .and_then(|e| e.record.steps.into_iter().nth(label.idx as usize))
        .map(|s| s.messages)
        .filter(|m| !m.is_empty()))
}

/// The kept (accepted or edited) labels of the rollouts of `iteration` as rows. With
/// `distinct`, a correction an episode repeats (the same reason and action, as at every step of
/// a loop) gives one row, its first: a loop of twenty steps then weighs as one mistake, not
/// twenty.
pub fn label_rows(store: &Store, iteration: u32, distinct: bool) -> Result<Vec<Row>, StoreError> {
    kept_rows(store, Some(iteration), distinct)
}

/// The kept labels of episodes no iteration's student played (the workbench's live episodes)
/// as rows, as [`label_rows`] makes them.
pub fn unassigned_label_rows(store: &Store, distinct: bool) -> Result<Vec<Row>, StoreError> {
    kept_rows(store, None, distinct)
}

/// The kept labels of `iteration`'s episodes, or (`None`) of episodes without an iteration.
fn kept_rows(
    store: &Store,
    iteration: Option<u32>,
    distinct: bool,
) -> Result<Vec<Row>, StoreError> {
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut taught = std::collections::HashSet::new();
    for status in [
        crate::store::LabelStatus::Accepted,
        crate::store::LabelStatus::Edited,
    ] {
        let filter = LabelFilter {
            status: Some(status),
            iteration,
            ..LabelFilter::default()
        };
        let labels = store.labels(&filter)?.into_iter();
        for label in labels.filter(|l| iteration.is_some() || l.iteration.is_none()) {
            // One row per step even when several teachers labelled it: the first kept one.
            if !seen.insert((label.episode_id, label.idx)) {
                continue;
            }
            let (reason, action) = label.target();
            if distinct
                && !taught.insert((label.episode_id, reason.to_string(), action.to_string()))
            {
                continue;
            }
            if let Some(row) = label_row(store, &label)? {
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// How the rows of several iterations are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// Every row of every iteration.
    Union,
    /// Each iteration subsampled (seeded) to the size of the smallest non-empty one, as the
    /// LEAP paper did, so that no iteration dominates.
    Smallest,
}

impl Aggregate {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Union => "union",
            Aggregate::Smallest => "smallest",
        }
    }
}

/// Combines per-iteration row sets and shuffles nothing: the trainer shuffles.
pub fn aggregate(parts: Vec<Vec<Row>>, how: Aggregate, seed: u64) -> Vec<Row> {
    let smallest = parts
        .iter()
        .map(Vec::len)
        .filter(|&n| n > 0)
        .min()
        .unwrap_or(0);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for mut part in parts {
        if how == Aggregate::Smallest && part.len() > smallest {
            part.shuffle(&mut rng);
            part.truncate(smallest);
        }
        out.extend(part);
    }
    out
}

/// A preference pair for DPO, in the conversational form TRL reads: the prompt messages, the
/// teacher's step as `chosen` and the student's own output as `rejected`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PreferencePair {
    pub prompt: Vec<Message>,
    pub chosen: Vec<Message>,
    pub rejected: Vec<Message>,
    pub meta: RowMeta,
}

impl PreferencePair {
    /// Why this pair cannot be trained on, if it cannot: a prompt, and one non-empty assistant
    /// message on each side.
    pub fn problem(&self) -> Option<String> {
        if self.prompt.is_empty() {
            return Some("prompt: no messages".into());
        }
        for (side, messages) in [("chosen", &self.chosen), ("rejected", &self.rejected)] {
            match messages.as_slice() {
                [m] if m.role == Role::Assistant && !m.content.trim().is_empty() => {}
                [m] if m.role != Role::Assistant => {
                    return Some(format!(
                        "{side}: the message is from {}, not the assistant",
                        m.role.as_str()
                    ));
                }
                [_] => return Some(format!("{side}: the response is empty")),
                _ => {
                    return Some(format!(
                        "{side}: expected one assistant message, found {}",
                        messages.len()
                    ));
                }
            }
        }
        None
    }
}

/// DPO pairs from the kept labels whose action differs from the student's.
pub fn preference_pairs(
    store: &Store,
    filter: &LabelFilter,
) -> Result<Vec<PreferencePair>, StoreError> {
    let mut pairs = Vec::new();
    for label in store.labels(filter)? {
        if !label.status.is_kept() || !label.changed {
            continue;
        }
        let Some(episode) = store.episode(label.episode_id)? else {
            continue;
        };
        let Some(step) = episode.record.steps.get(label.idx as usize) else {
            continue;
        };
        // A pair needs both sides: the student's output may be empty (nothing written).
        if step.messages.is_empty() || step.raw_output.trim().is_empty() {
            continue;
        }
        let (reason, action) = label.target();
        pairs.push(PreferencePair {
            prompt: step.messages.clone(),
            chosen: vec![Message::new(Role::Assistant, format(reason, action))],
            rejected: vec![Message::new(Role::Assistant, step.raw_output.clone())],
            meta: RowMeta::of_label(&label),
        });
    }
    Ok(pairs)
}

/// What [`write_iteration_pairs`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PairsReport {
    pub iteration: u32,
    pub path: String,
    pub pairs: usize,
    pub dataset_id: i64,
    pub hash: String,
}

/// Iteration `iteration`'s preference pairs, from the kept labels of the rollouts of iteration
/// `iteration - 1` (the student the update starts from), written to [`RunDir::pairs`] and
/// recorded as the iteration's dataset with the labels they come from.
pub fn write_iteration_pairs(
    store: &mut Store,
    run: &RunDir,
    iteration: u32,
) -> Result<PairsReport, DatasetError> {
    write_pairs(
        store,
        &run.pairs(iteration),
        DatasetSource::Iterate,
        iteration,
    )
}

/// [`write_iteration_pairs`] to `path`, recorded as `source`'s.
pub fn write_pairs(
    store: &mut Store,
    path: &std::path::Path,
    source: DatasetSource,
    iteration: u32,
) -> Result<PairsReport, DatasetError> {
    let filter = LabelFilter {
        iteration: iteration.checked_sub(1),
        ..LabelFilter::default()
    };
    let pairs = preference_pairs(store, &filter)?;
    let config = serde_json::json!({ "pairs_of_iteration": filter.iteration });
    let label = |p: &PreferencePair| p.meta.label_id;
    let (dataset_id, hash) = record_items(store, path, source, iteration, &pairs, label, &config)?;
    Ok(PairsReport {
        iteration,
        path: path.display().to_string(),
        pairs: pairs.len(),
        dataset_id,
        hash,
    })
}

/// Everything that decides an iteration's dataset.
#[derive(Debug, Clone, Serialize)]
pub struct BuildSettings {
    pub expert: ExpertSettings,
    pub aggregate: Aggregate,
    /// Seed of the per-iteration subsampling.
    pub seed: u64,
    /// At most this many rows from each part (the expert's, each iteration's labels), drawn
    /// with the seed: every row is paid for in training time.
    pub max_rows_per_part: Option<usize>,
    /// One row per distinct correction of an episode (`label_rows`).
    pub distinct_labels: bool,
}

impl BuildSettings {
    /// Demonstrations at `privilege`, and every draw seeded with `seed`.
    pub fn new(privilege: f64, aggregate: Aggregate, seed: u64) -> BuildSettings {
        BuildSettings {
            expert: ExpertSettings { privilege, seed },
            aggregate,
            seed,
            max_rows_per_part: None,
            distinct_labels: false,
        }
    }
}

/// What `build_iteration` produced.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub iteration: u32,
    pub path: String,
    pub dataset_id: i64,
    pub rows: usize,
    /// Rows per part before aggregation: the expert's, then each iteration's labels.
    pub parts: Vec<usize>,
    pub expert: ExpertReport,
    pub hash: String,
}

/// Builds the dataset of `iteration` (expert demonstrations on `scenarios`, plus the kept labels
/// of the rollouts of iterations `0..iteration`), writes it to [`RunDir::dataset`] atomically, and
/// records it with its labels in the run store.
pub fn build_iteration(
    store: &mut Store,
    run: &RunDir,
    scenarios: &[Scenario],
    prompt: &Prompt,
    iteration: u32,
    settings: &BuildSettings,
) -> Result<BuildReport, super::DatasetError> {
    let path = run.dataset(iteration);
    let to = (path.as_path(), DatasetSource::Iterate);
    build_dataset(store, to, scenarios, prompt, iteration, settings, false)
}

/// [`build_iteration`]'s rows, written to `to.0` and recorded as coming from `to.1`; with
/// `unassigned`, the kept labels of episodes without an iteration are one more part.
pub fn build_dataset(
    store: &mut Store,
    to: (&std::path::Path, DatasetSource),
    scenarios: &[Scenario],
    prompt: &Prompt,
    iteration: u32,
    settings: &BuildSettings,
    unassigned: bool,
) -> Result<BuildReport, super::DatasetError> {
    let (expert, expert_report) = expert_rows(scenarios, prompt, &settings.expert)?;
    let mut parts = vec![expert];
    for i in 0..iteration {
        parts.push(label_rows(store, i, settings.distinct_labels)?);
    }
    if unassigned {
        parts.push(unassigned_label_rows(store, settings.distinct_labels)?);
    }
    if let Some(cap) = settings.max_rows_per_part {
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed ^ 0x5eed);
        for part in &mut parts {
            if part.len() > cap {
                part.shuffle(&mut rng);
                part.truncate(cap);
            }
        }
    }
    let sizes = parts.iter().map(Vec::len).collect();
    let rows = aggregate(parts, settings.aggregate, settings.seed);
    let (path, source) = to;
    let (dataset_id, hash) = record_rows(
        store,
        path,
        source,
        iteration,
        &rows,
        &serde_json::to_value(settings)?,
    )?;
    Ok(BuildReport {
        iteration,
        path: path.display().to_string(),
        dataset_id,
        rows: rows.len(),
        parts: sizes,
        expert: expert_report,
        hash,
    })
}

/// Writes `rows` to `path` atomically and records the file with the labels its rows come from;
/// returns the dataset's id in the run and the sha256 of the file.
pub fn record_rows(
    store: &mut Store,
    path: &std::path::Path,
    source: DatasetSource,
    iteration: u32,
    rows: &[Row],
    config: &serde_json::Value,
) -> Result<(i64, String), super::DatasetError> {
    let label = |r: &Row| r.meta.as_ref().and_then(|m| m.label_id);
    record_items(store, path, source, iteration, rows, label, config)
}

/// [`record_rows`] for any items, `label` naming the label each comes from.
fn record_items<T: Serialize>(
    store: &mut Store,
    path: &std::path::Path,
    source: DatasetSource,
    iteration: u32,
    items: &[T],
    label: impl Fn(&T) -> Option<i64>,
    config: &serde_json::Value,
) -> Result<(i64, String), super::DatasetError> {
    use sha2::{Digest, Sha256};
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item)?);
        text.push('\n');
    }
    let hash = format!("{:x}", Sha256::digest(text.as_bytes()));
    super::write_jsonl(path, items)?;
    let label_ids: Vec<i64> = items.iter().filter_map(label).collect();
    let id = store.record_dataset(
        source,
        iteration,
        &hash,
        &path.display().to_string(),
        items.len() as u64,
        config,
        &label_ids,
    )?;
    Ok((id, hash))
}
