//! The rows of a run store as plain structs: what the rollout runner writes and what the
//! workbench and the CLI read back. Times are unix milliseconds.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One finished episode with all its steps, as written by `Store::insert_episode`.
///
/// The per-episode counts and token sums (steps, invalid actions, prompt/cached/gen tokens) are
/// not fields: they are computed from `steps` when the episode is stored, so they cannot
/// disagree with the trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRecord {
    /// Unique within the run, e.g. `rollout/<label>/<scenario_id>/<index>`; a rerun skips the
    /// keys that are already stored.
    pub key: String,
    /// Content hash of the scenario snapshot (store it first with `upsert_scenario`).
    pub scenario_hash: String,
    pub scenario_id: String,
    /// What played: model and adapters.
    pub policy: String,
    /// Any u64; SQLite holds it as the i64 with the same bits.
    pub seed: u64,
    /// The LEAP iteration that produced it, if any.
    pub iteration: Option<u32>,
    /// Sampling settings (temperature, top-p, ...) as JSON.
    pub sampling: Value,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub won: bool,
    pub reward: f64,
    pub wall_ms: u64,
    pub steps: Vec<StepRecord>,
    /// The stored episode this one was played on from, and where; `None` for a fresh one.
    #[serde(default)]
    pub branch: Option<Branch>,
    /// Why the episode was ended before its environment ended it ("cycle at step 12", see
    /// [`crate::rollout::RolloutConfig::stop_cycles`]); `None` when it ended on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// Where a branched episode comes from: its first `at` steps are those of episode `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    /// The stored episode's id.
    pub from: i64,
    /// The step the branch starts at: steps `0..at` were copied.
    pub at: u32,
}

/// One step of an episode; its index is its position in `EpisodeRecord::steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The full rendered prompt the student saw (its messages' contents, blank-line separated).
    pub prompt: String,
    /// The same prompt as chat messages (system, user): what a training row repeats exactly.
    /// Empty for steps stored before the store kept them.
    #[serde(default)]
    pub messages: Vec<crate::agent::Message>,
    /// The model's text, verbatim.
    pub raw_output: String,
    /// The reason parsed from the output, if there was one.
    pub reason: Option<String>,
    /// What was sent to the environment.
    pub action: String,
    /// What came back.
    pub observation: String,
    pub reward: f64,
    pub done: bool,
    /// Whether the action was admissible.
    pub valid: bool,
    /// The admissible actions at this step.
    pub admissible: Vec<String>,
    pub prompt_tokens: u32,
    /// Prompt tokens reused from the KV cache.
    pub cached_tokens: u32,
    pub gen_tokens: u32,
    pub prompt_ms: u64,
    pub gen_ms: u64,
    /// Who chose the action instead of the student (`teacher:oracle@0.5`,
    /// `researcher:<user>@workbench`); `None` for the student's own step. An intervention is
    /// never a student step to learn from: it trains only through a teacher label on it that
    /// someone accepts.
    #[serde(default)]
    pub intervention: Option<String>,
    /// What the step did beyond its reward, as the environment reported it
    /// (`Environment::info`); `None` when it reported nothing (and then left out of JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<serde_json::Value>,
}

impl StepRecord {
    /// A valid step taken without a model (an oracle or a scripted policy): its output is the
    /// reason and action in the student's format, and it has no prompt, tokens or timings.
    pub fn scripted(
        reason: String,
        action: String,
        observation: String,
        reward: f64,
        done: bool,
        admissible: Vec<String>,
    ) -> StepRecord {
        StepRecord {
            prompt: String::new(),
            messages: Vec::new(),
            raw_output: crate::agent::parse::format(&reason, &action),
            reason: Some(reason),
            action,
            observation,
            reward,
            done,
            valid: true,
            admissible,
            prompt_tokens: 0,
            cached_tokens: 0,
            gen_tokens: 0,
            prompt_ms: 0,
            gen_ms: 0,
            intervention: None,
            info: None,
        }
    }
}

impl EpisodeRecord {
    pub fn invalid_actions(&self) -> u32 {
        self.steps.iter().filter(|s| !s.valid).count() as u32
    }

    pub fn prompt_tokens(&self) -> u64 {
        self.steps.iter().map(|s| u64::from(s.prompt_tokens)).sum()
    }

    pub fn cached_tokens(&self) -> u64 {
        self.steps.iter().map(|s| u64::from(s.cached_tokens)).sum()
    }

    pub fn gen_tokens(&self) -> u64 {
        self.steps.iter().map(|s| u64::from(s.gen_tokens)).sum()
    }
}

/// A stored episode: its row id and the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub id: i64,
    #[serde(flatten)]
    pub record: EpisodeRecord,
}

/// An episode without its steps, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeSummary {
    pub id: i64,
    pub key: String,
    pub scenario_hash: String,
    pub scenario_id: String,
    pub policy: String,
    pub seed: u64,
    pub iteration: Option<u32>,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub won: bool,
    pub reward: f64,
    pub steps: u32,
    pub invalid_actions: u32,
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    pub gen_tokens: u64,
    pub wall_ms: u64,
}

/// Which episodes to list or summarise; every field that is set must match.
#[derive(Debug, Clone, Default)]
pub struct EpisodeFilter {
    /// Keys starting with this text (compared literally: no wildcards).
    pub key_prefix: Option<String>,
    pub scenario_id: Option<String>,
    pub iteration: Option<u32>,
    /// Listing order; `summary` ignores it.
    pub order: Order,
    /// At most this many rows; `summary` ignores it.
    pub limit: Option<u32>,
}

impl EpisodeFilter {
    /// Episodes whose key starts with `prefix`.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        EpisodeFilter {
            key_prefix: Some(prefix.into()),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Latest `finished_at_ms` first.
    #[default]
    NewestFirst,
    /// Insertion order.
    ById,
}

/// Aggregates over a set of episodes. Rates and means are 0 when there are no episodes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub episodes: u64,
    pub wins: u64,
    /// wins / episodes.
    pub success_rate: f64,
    pub mean_reward: f64,
    pub mean_steps: f64,
    pub steps: u64,
    pub invalid_actions: u64,
    /// Invalid actions per step taken (not per episode).
    pub invalid_action_rate: f64,
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    pub gen_tokens: u64,
    pub wall_ms: u64,
}

/// A scenario exactly as it was played, keyed by its content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioSnapshot {
    pub hash: String,
    pub scenario_id: String,
    pub kind: String,
    pub split: String,
    /// The scenario's canonical JSON text.
    pub json: String,
}

/// The run this store belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run folder's name when the store was created.
    pub name: String,
    pub created_at_ms: i64,
    /// The run's configuration as JSON (`{}` until set).
    pub config: Value,
}
