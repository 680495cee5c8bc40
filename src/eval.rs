//! Evaluation: success with a 95% Wilson interval, the score (mean reward x 100, as LEAP reports
//! WebShop) with a 95% interval, steps and invalid actions, overall and per task type, over the
//! episodes a rollout stored; and the oracle acting alone.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::env::command;
use crate::scenario::Scenario;
use crate::store::{EpisodeFilter, EpisodeRecord, Order, StepRecord, Store, StoreError, now_ms};
use crate::teacher::oracle::OracleTeacher;

/// The 95% Wilson score interval of `wins` successes in `n` trials.
pub fn wilson(wins: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let n = n as f64;
    let p = wins as f64 / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) / n) + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// A mean score on a 0-100 scale (mean reward x 100) with its 95% interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

impl std::fmt::Display for Score {
    /// `62.5 [15.6–100.0]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} [{:.1}–{:.1}]", self.mean, self.low, self.high)
    }
}

/// The score of episodes that earned `rewards` (each in [0, 1]): their mean x 100 with the
/// normal approximation's 95% interval of the mean, mean ± 1.96 s/√n (s the sample standard
/// deviation), clipped to [0, 100]. One episode says nothing of the spread, so its interval is
/// the whole scale; no episodes score 0 with an empty interval at 0.
pub fn score(rewards: &[f64]) -> Score {
    let n = rewards.len() as f64;
    if rewards.is_empty() {
        return Score::default();
    }
    let mean = rewards.iter().sum::<f64>() / n;
    if rewards.len() == 1 {
        return Score {
            mean: mean * 100.0,
            low: 0.0,
            high: 100.0,
        };
    }
    let variance = rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let half = 1.959_963_984_540_054 * (variance / n).sqrt();
    Score {
        mean: mean * 100.0,
        low: ((mean - half) * 100.0).max(0.0),
        high: ((mean + half) * 100.0).min(100.0),
    }
}

/// Success and score on one task type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskStats {
    pub episodes: u64,
    pub wins: u64,
    pub success_rate: f64,
    /// `None` in evaluations recorded before leap reported a score.
    #[serde(default)]
    pub score: Option<Score>,
}

/// One evaluation's numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Names the evaluation (and its episodes' keys: `rollout/<label>/...`).
    pub label: String,
    pub policy: String,
    pub split: String,
    pub episodes: u64,
    pub wins: u64,
    pub success_rate: f64,
    /// 95% Wilson interval of the success rate.
    pub success_low: f64,
    pub success_high: f64,
    pub mean_reward: f64,
    /// Mean reward x 100 with its 95% interval (see [`score`]); `None` in evaluations recorded
    /// before leap reported one.
    #[serde(default)]
    pub score: Option<Score>,
    pub mean_steps: f64,
    pub invalid_action_rate: f64,
    pub per_task: BTreeMap<String, TaskStats>,
    /// Wall time of the episodes, summed, in seconds.
    pub wall_s: f64,
}

/// The evaluation of the episodes stored under `rollout/<label>/`, with task types read from
/// `scenarios` (episodes of other scenarios count as `unknown`).
pub fn summarize(
    store: &Store,
    label: &str,
    split: &str,
    scenarios: &[Scenario],
) -> Result<EvalReport, StoreError> {
    let filter = EpisodeFilter {
        key_prefix: Some(format!("rollout/{label}/")),
        order: Order::ById,
        ..EpisodeFilter::default()
    };
    let summary = store.summary(&filter)?;
    let episodes = store.list_episodes(&filter)?;
    let kinds: HashMap<&str, &str> = scenarios
        .iter()
        .map(|s| (s.id.as_str(), s.body.task_type()))
        .collect();
    let mut per_task: BTreeMap<String, TaskStats> = BTreeMap::new();
    let mut task_rewards: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for e in &episodes {
        let kind = kinds
            .get(e.scenario_id.as_str())
            .copied()
            .unwrap_or("unknown");
        let t = per_task.entry(kind.to_string()).or_default();
        t.episodes += 1;
        t.wins += u64::from(e.won);
        task_rewards
            .entry(kind.to_string())
            .or_default()
            .push(e.reward);
    }
    for (kind, t) in per_task.iter_mut() {
        t.success_rate = t.wins as f64 / t.episodes.max(1) as f64;
        t.score = Some(score(&task_rewards[kind]));
    }
    let rewards: Vec<f64> = episodes.iter().map(|e| e.reward).collect();
    let (success_low, success_high) = wilson(summary.wins, summary.episodes);
    Ok(EvalReport {
        label: label.to_string(),
        policy: episodes
            .first()
            .map(|e| e.policy.clone())
            .unwrap_or_default(),
        split: split.to_string(),
        episodes: summary.episodes,
        wins: summary.wins,
        success_rate: summary.success_rate,
        success_low,
        success_high,
        mean_reward: summary.mean_reward,
        score: Some(score(&rewards)),
        mean_steps: summary.mean_steps,
        invalid_action_rate: summary.invalid_action_rate,
        per_task,
        wall_s: summary.wall_ms as f64 / 1e3,
    })
}

/// The oracle acting alone at `privilege` on every scenario, stored as episodes under
/// `rollout/<label>/` like a student's (skipping those already stored).
pub fn oracle_episodes(
    store: &mut Store,
    scenarios: &[Scenario],
    privilege: f64,
    seed: u64,
    label: &str,
) -> Result<(), StoreError> {
    let oracle = OracleTeacher::new(privilege, seed);
    let prefix = format!("rollout/{label}/");
    let finished = store.finished_keys(&prefix)?;
    for s in scenarios {
        let key = format!("{prefix}{}/0", s.id);
        if finished.contains(&key) {
            continue;
        }
        store.upsert_scenario(&s.hash, &s.id, s.kind().as_str(), s.split.as_str(), &s.json)?;
        let started = std::time::Instant::now();
        let started_at_ms = now_ms();
        let demo = oracle.demonstrate(s, &key, false);
        let steps = demo
            .steps
            .into_iter()
            .map(|d| StepRecord {
                info: d.info,
                ..StepRecord::scripted(
                    d.reason,
                    d.action,
                    d.next_observation,
                    f64::from(d.reward),
                    d.done,
                    d.admissible,
                )
            })
            .collect();
        let (won, reward) = (demo.won, f64::from(demo.reward));
        store.insert_episode(&EpisodeRecord {
            key,
            scenario_hash: s.hash.clone(),
            scenario_id: s.id.clone(),
            policy: format!("oracle@{privilege}"),
            seed,
            iteration: None,
            sampling: serde_json::json!({}),
            started_at_ms,
            finished_at_ms: now_ms(),
            won,
            reward,
            wall_ms: started.elapsed().as_millis() as u64,
            steps,
            branch: None,
            stopped: None,
        })?;
    }
    Ok(())
}

/// Teacher-forced agreement: the policy is put in every state of the oracle's own
/// demonstrations, shown the student's prompt there (the oracle's steps as its history), and
/// answers once. Far cheaper than playing episodes, and it tells why episodes fail: an episode
/// of n steps with no bad move is about `good_rate`^n likely.
#[derive(Debug, Clone, Serialize)]
pub struct StepAgreement {
    pub policy: String,
    pub scenarios: usize,
    pub steps: u64,
    /// Answers whose action is the demonstration's own.
    pub same: u64,
    /// Answers whose action is one the oracle gives in that state with or without the
    /// privileged state (see [`crate::teacher::oracle::DemoStep::good_actions`]).
    pub good: u64,
    pub good_rate: f64,
    pub good_low: f64,
    pub good_high: f64,
    /// Answers with no admissible action.
    pub invalid: u64,
    pub mean_demo_steps: f64,
    /// By the first word of the demonstration's action ("go", "take", "open", ...).
    pub by_verb: BTreeMap<String, VerbAgreement>,
    pub wall_s: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct VerbAgreement {
    pub steps: u64,
    pub good: u64,
}

/// Measures [`StepAgreement`] of `policy` on the oracle's demonstrations (at `privilege`, seed
/// 0) of `scenarios`, `parallel` scenarios at a time, greedy under the grammar.
pub fn step_agreement(
    policy: &mut dyn crate::agent::Policy,
    prompt: &crate::agent::prompt::Prompt,
    scenarios: &[Scenario],
    privilege: f64,
    parallel: usize,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<StepAgreement, crate::rollout::RolloutError> {
    use crate::agent::{Request, Sampling, parse::parse};
    let started = std::time::Instant::now();
    let oracle = OracleTeacher::new(privilege, 0);
    let mut demos = Vec::with_capacity(scenarios.len());
    for s in scenarios {
        let demo = oracle.demonstrate(s, &format!("expert/{}", s.id), true);
        let prompts = demo.prompts(prompt)?;
        demos.push((demo, prompts));
    }
    let total: u64 = demos.iter().map(|(d, _)| d.steps.len() as u64).sum();
    let mut report = StepAgreement {
        policy: policy.describe(),
        scenarios: scenarios.len(),
        steps: 0,
        same: 0,
        good: 0,
        good_rate: 0.0,
        good_low: 0.0,
        good_high: 0.0,
        invalid: 0,
        mean_demo_steps: total as f64 / scenarios.len().max(1) as f64,
        by_verb: BTreeMap::new(),
        wall_s: 0.0,
    };
    let sampling = Sampling::default();
    for group in demos.chunks(parallel.max(1)) {
        let longest = group.iter().map(|(d, _)| d.steps.len()).max().unwrap_or(0);
        // Step t of every demonstration in the group at once, one sequence each: step t+1's
        // prompt extends step t's, so each sequence's cache is reused.
        for t in 0..longest {
            let (requests, steps): (Vec<Request>, Vec<_>) = group
                .iter()
                .enumerate()
                .filter(|(_, (d, _))| t < d.steps.len())
                .map(|(seq, (d, prompts))| {
                    let step = &d.steps[t];
                    let request = Request {
                        format: Default::default(),
                        seq,
                        messages: prompts[t].clone(),
                        admissible: step.admissible.clone(),
                        temperature: None,
                        seed: None,
                    };
                    (request, step)
                })
                .unzip();
            let responses = policy.respond(&requests, &sampling, &mut |_, _| {})?;
            for (response, step) in responses.iter().zip(steps) {
                let action = parse(&response.text, &step.admissible).action;
                let verb = step.action.split(' ').next().unwrap_or("").to_string();
                let entry = report.by_verb.entry(verb).or_default();
                entry.steps += 1;
                report.steps += 1;
                match action {
                    Some(a) if command::admits(&step.admissible, &a).is_some() => {
                        report.same += u64::from(a == step.action);
                        if step.good_actions.contains(&a) {
                            report.good += 1;
                            entry.good += 1;
                        }
                    }
                    _ => report.invalid += 1,
                }
            }
            on_progress(report.steps, total);
        }
        for seq in 0..group.len() {
            policy.release(seq);
        }
    }
    report.good_rate = report.good as f64 / report.steps.max(1) as f64;
    (report.good_low, report.good_high) = wilson(report.good, report.steps);
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::{Score, score, wilson};

    #[test]
    fn the_score_interval_is_the_normal_approximation_of_the_mean() {
        // Rewards 0, 0.5, 1, 1: mean 0.625, sample sd 0.4787, standard error 0.2394.
        let s = score(&[0.0, 0.5, 1.0, 1.0]);
        assert!((s.mean - 62.5).abs() < 1e-9, "{s:?}");
        assert!((s.low - 15.58).abs() < 0.01 && s.high == 100.0, "{s:?}");
        // 0.2 x 50 and 0.4 x 50: mean 0.3, sd 0.1005, standard error 0.01005.
        let many: Vec<f64> = (0..100).map(|i| if i < 50 { 0.2 } else { 0.4 }).collect();
        let s = score(&many);
        assert!((s.mean - 30.0).abs() < 1e-9, "{s:?}");
        assert!(
            (s.low - 28.030).abs() < 0.01 && (s.high - 31.970).abs() < 0.01,
            "{s:?}"
        );
        let same = score(&[0.75; 5]);
        assert_eq!((same.low, same.mean, same.high), (75.0, 75.0, 75.0));
        assert_eq!(
            score(&[0.3]),
            Score {
                mean: 30.0,
                low: 0.0,
                high: 100.0
            }
        );
        assert_eq!(score(&[]), Score::default());
    }

    #[test]
    fn wilson_matches_known_values() {
        let (lo, hi) = wilson(0, 60);
        assert!(lo == 0.0 && (hi - 0.0602).abs() < 1e-3, "{hi}");
        let (lo, hi) = wilson(48, 60);
        assert!(
            (lo - 0.6822).abs() < 1e-3 && (hi - 0.8818).abs() < 1e-3,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0), (0.0, 0.0));
    }
}

/// What one evaluation plays and how it is recorded.
#[derive(Debug, Clone)]
pub struct EvalSpec {
    /// Names the evaluation and its episodes.
    pub label: String,
    pub split: String,
    pub episodes: usize,
    pub parallel: usize,
    /// Show the policy the privileged state (a teacher acting alone).
    pub privileged: bool,
    /// The adapter measured, as recorded in the run, and the iteration it belongs to.
    pub adapter_id: Option<i64>,
    pub iteration: Option<u32>,
    pub seed: u64,
    /// Steps before an episode ends, instead of each scenario's own horizon.
    pub horizon: Option<u32>,
    /// Sampling temperature of every step (0: greedy).
    pub temperature: f32,
    /// See [`crate::agent::Sampling::repeat_temperature`] (0: as every other step).
    pub repeat_temperature: f32,
    /// See [`crate::rollout::RolloutConfig::stop_cycles`].
    pub stop_cycles: bool,
}

/// Plays `scenarios` with `policy` (resuming what is stored), summarises and records the
/// evaluation, telling `on_event` as it goes. Decoding under the grammar, greedy unless `spec`
/// sets a temperature.
pub fn evaluate(
    store: &mut Store,
    policy: &mut dyn crate::agent::Policy,
    prompt: &crate::agent::prompt::Prompt,
    scenarios: &[Scenario],
    spec: &EvalSpec,
    cancel: &std::sync::atomic::AtomicBool,
    on_event: &mut dyn FnMut(EvalEvent),
) -> Result<EvalReport, crate::rollout::RolloutError> {
    on_event(EvalEvent::Started {
        label: spec.label.clone(),
    });
    let config = crate::rollout::RolloutConfig {
        label: spec.label.clone(),
        episodes: spec.episodes.max(1),
        parallel: spec.parallel.max(1),
        sampling: crate::agent::Sampling {
            seed: spec.seed,
            temperature: spec.temperature,
            repeat_temperature: spec.repeat_temperature,
            ..crate::agent::Sampling::default()
        },
        iteration: spec.iteration,
        horizon: spec.horizon,
        privileged: spec.privileged,
        stop_cycles: spec.stop_cycles,
    };
    let mut forward = |e| on_event(EvalEvent::Rollout(Box::new(e)));
    crate::rollout::rollout(
        policy,
        prompt,
        store,
        scenarios,
        &config,
        cancel,
        &mut forward,
    )?;
    record(store, spec, scenarios)
}

/// Summarises the episodes of `spec.label` and records the evaluation.
pub fn record(
    store: &mut Store,
    spec: &EvalSpec,
    scenarios: &[Scenario],
) -> Result<EvalReport, crate::rollout::RolloutError> {
    let report = summarize(store, &spec.label, &spec.split, scenarios)?;
    let summary = serde_json::to_value(&report).unwrap_or_default();
    store.record_evaluation(
        &spec.label,
        spec.adapter_id,
        spec.iteration,
        &report.policy,
        &spec.split,
        &summary,
    )?;
    Ok(report)
}

/// What can stop an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("no {split} scenario in {paths:?}")]
    NoScenarios {
        split: &'static str,
        paths: Vec<std::path::PathBuf>,
    },
    #[error("{0}")]
    Scenarios(#[source] crate::scenario::Problems),
    #[error(
        "{}: no adapter for iteration {iteration} (train it first: leap train --iter {iteration})",
        path.display()
    )]
    NoAdapter {
        path: std::path::PathBuf,
        iteration: u32,
    },
    #[error("loading {}: {source}", model.display())]
    Load {
        model: std::path::PathBuf,
        source: crate::agent::PolicyError,
    },
    #[error(transparent)]
    Rollout(#[from] crate::rollout::RolloutError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Run(#[from] crate::run::RunError),
}

/// The scenarios of `split` in `paths`; an error when there are none.
pub fn split_scenarios(
    paths: &[std::path::PathBuf],
    split: crate::scenario::Split,
) -> Result<Vec<Scenario>, EvalError> {
    let mut all = crate::scenario::load_all(paths).map_err(EvalError::Scenarios)?;
    all.retain(|s| s.split == split);
    if all.is_empty() {
        return Err(EvalError::NoScenarios {
            split: split.as_str(),
            paths: paths.to_vec(),
        });
    }
    Ok(all)
}

/// The oracle acting alone at `privilege`, recorded as the evaluation `eval-SPLIT-oracle@P`.
pub fn oracle_alone(
    store: &mut Store,
    scenarios: &[Scenario],
    split: &str,
    privilege: f64,
) -> Result<EvalReport, crate::rollout::RolloutError> {
    let label = format!("eval-{split}-oracle@{privilege}");
    oracle_episodes(store, scenarios, privilege, 0, &label)?;
    let spec = EvalSpec {
        label,
        split: split.into(),
        episodes: 1,
        parallel: 1,
        privileged: true,
        adapter_id: None,
        iteration: None,
        seed: 0,
        horizon: None,
        temperature: 0.0,
        repeat_temperature: 0.0,
        stop_cycles: false,
    };
    record(store, &spec, scenarios)
}

/// Who acts alone with the privileged state beside the student.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TeacherAlone {
    /// The oracle at the evaluation's privilege.
    Oracle,
    /// The student's own model and adapter, shown the privileged state in its prompt.
    #[value(name = "self")]
    SelfTeacher,
    None,
}

/// What `leap eval` measures. `Default` is its defaults.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub split: crate::scenario::Split,
    /// The adapter measured: an iteration's, or any file at a scale.
    pub student: StudentAdapter,
    /// The base model (default: the run's).
    pub model: Option<std::path::PathBuf>,
    /// Episodes per scenario.
    pub episodes: usize,
    pub parallel: usize,
    /// Also the model without adapter.
    pub baseline: bool,
    pub teacher: TeacherAlone,
    /// The oracle's privilege (acting alone, and in the stepwise demonstrations).
    pub privilege: f64,
    pub horizon: Option<u32>,
    pub temperature: f32,
    pub repeat_temperature: f32,
    /// See [`crate::rollout::RolloutConfig::stop_cycles`].
    pub stop_cycles: bool,
    pub gpu_layers: u32,
    /// Tokens the student guesses ahead of a greedy answer ([`crate::agent::local::LocalConfig::draft`];
    /// `None`: as the CPU favours).
    pub draft: Option<usize>,
    /// How the student's weights are held ([`crate::agent::local::LocalConfig::weights`];
    /// `None`: as the CPU favours).
    pub weights: Option<crate::agent::local::Weights>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            split: crate::scenario::Split::Test,
            student: StudentAdapter::None,
            model: None,
            episodes: 1,
            parallel: 8,
            baseline: true,
            teacher: TeacherAlone::Oracle,
            privilege: 0.5,
            horizon: None,
            temperature: 0.0,
            repeat_temperature: 0.0,
            stop_cycles: true,
            gpu_layers: 0,
            draft: None,
            weights: None,
        }
    }
}

/// The adapter an evaluation measures.
#[derive(Debug, Clone, PartialEq)]
pub enum StudentAdapter {
    /// The model alone.
    None,
    /// Iteration N's adapter in the run.
    Iteration(u32),
    /// Any adapter file at a scale.
    File(std::path::PathBuf, f32),
}

/// The three rows of an evaluation.
#[derive(Debug, Serialize)]
pub struct EvalTable {
    pub student: EvalReport,
    pub baseline: Option<EvalReport>,
    pub teacher: Option<EvalReport>,
}

/// What an evaluation reports while it plays.
#[derive(Debug)]
pub enum EvalEvent {
    /// A policy starts playing the evaluation named `label`.
    Started {
        label: String,
    },
    Rollout(Box<crate::rollout::RolloutEvent>),
    /// Stepwise: `done` of `total` demonstration steps answered by the policy `name`.
    Steps {
        name: String,
        done: u64,
        total: u64,
    },
}

/// An evaluation's resolved student: its model, adapter, name and record in the run.
struct Resolved {
    model: std::path::PathBuf,
    adapter: Option<(std::path::PathBuf, f32)>,
    name: String,
    adapter_id: Option<i64>,
    iteration: Option<u32>,
}

fn resolve(
    run: &crate::run::RunDir,
    store: &mut Store,
    options: &EvalOptions,
) -> Result<Resolved, EvalError> {
    let model = run.model(store, options.model.as_deref())?;
    let (adapter, name, iteration) = match &options.student {
        StudentAdapter::File(path, scale) => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (Some((path.clone(), *scale)), stem, None)
        }
        StudentAdapter::Iteration(n) => {
            let path = run.adapter(*n);
            if !path.is_file() {
                return Err(EvalError::NoAdapter {
                    path,
                    iteration: *n,
                });
            }
            (Some((path, 1.0)), crate::run::iteration_stem(*n), Some(*n))
        }
        StudentAdapter::None => (None, "base".to_string(), None),
    };
    let adapter_id = match &adapter {
        Some((path, _)) => store
            .adapter_by_path(&path.display().to_string())?
            .map(|a| a.id),
        None => None,
    };
    Ok(Resolved {
        model,
        adapter,
        name,
        adapter_id,
        iteration,
    })
}

fn load(
    model: &std::path::Path,
    adapter: Option<(std::path::PathBuf, f32)>,
    options: &EvalOptions,
) -> Result<crate::agent::local::LocalPolicy, EvalError> {
    crate::agent::student::StudentSpec::new(model)
        .adapters(adapter)
        .slots(options.parallel)
        .gpu_layers(options.gpu_layers)
        .draft(options.draft)
        .weights(options.weights)
        .load()
        .map_err(|source| EvalError::Load {
            model: model.to_path_buf(),
            source,
        })
}

/// Another decoding is another evaluation: its name gets a suffix (`-t0.7`, `-repeat1`).
pub fn decoding_suffix(temperature: f32, repeat_temperature: f32) -> String {
    let mut decoding = String::new();
    if temperature > 0.0 {
        decoding.push_str(&format!("-t{temperature}"));
    }
    if repeat_temperature > 0.0 {
        decoding.push_str(&format!("-repeat{repeat_temperature}"));
    }
    decoding
}

/// `leap eval`: the student on `scenarios`, then the teacher acting alone and the model
/// without adapter, each recorded as an evaluation of the run.
pub fn compare(
    run: &crate::run::RunDir,
    store: &mut Store,
    prompt: &crate::agent::prompt::Prompt,
    scenarios: &[Scenario],
    options: &EvalOptions,
    cancel: &std::sync::atomic::AtomicBool,
    on_event: &mut dyn FnMut(EvalEvent),
) -> Result<EvalTable, EvalError> {
    let r = resolve(run, store, options)?;
    let split = options.split.as_str();
    let spec = |label: String, privileged: bool| EvalSpec {
        label,
        split: split.into(),
        episodes: options.episodes,
        parallel: options.parallel,
        privileged,
        adapter_id: r.adapter_id,
        iteration: r.iteration,
        seed: 0,
        horizon: options.horizon,
        temperature: options.temperature,
        repeat_temperature: options.repeat_temperature,
        stop_cycles: options.stop_cycles,
    };
    let decoding = decoding_suffix(options.temperature, options.repeat_temperature);
    let mut student = load(&r.model, r.adapter.clone(), options)?;
    run.remember_model(store, &r.model)?;
    let name = &r.name;
    let label = format!("eval-{split}-{name}{decoding}");
    let student_report = evaluate(
        store,
        &mut student,
        prompt,
        scenarios,
        &spec(label, false),
        cancel,
        on_event,
    )?;
    let teacher = match options.teacher {
        TeacherAlone::None => None,
        TeacherAlone::Oracle => Some(oracle_alone(store, scenarios, split, options.privilege)?),
        TeacherAlone::SelfTeacher => Some(evaluate(
            store,
            &mut student,
            prompt,
            scenarios,
            &spec(format!("eval-{split}-self-{name}{decoding}"), true),
            cancel,
            on_event,
        )?),
    };
    drop(student);
    let baseline = if !options.baseline || r.adapter.is_none() {
        None
    } else {
        let mut base = load(&r.model, None, options)?;
        let mut s = spec(format!("eval-{split}-base{decoding}"), false);
        s.adapter_id = None;
        s.iteration = None;
        Some(evaluate(
            store, &mut base, prompt, scenarios, &s, cancel, on_event,
        )?)
    };
    Ok(EvalTable {
        student: student_report,
        baseline,
        teacher,
    })
}

/// `leap eval --stepwise`: [`step_agreement`] of the student, and of the model without adapter
/// unless `options.baseline` is off. Nothing is recorded in the run.
pub fn stepwise(
    run: &crate::run::RunDir,
    store: &mut Store,
    prompt: &crate::agent::prompt::Prompt,
    scenarios: &[Scenario],
    options: &EvalOptions,
    on_event: &mut dyn FnMut(EvalEvent),
) -> Result<Vec<StepAgreement>, EvalError> {
    let r = resolve(run, store, options)?;
    let mut one = |adapter: Option<(std::path::PathBuf, f32)>, name: &str| {
        let mut policy = load(&r.model, adapter, options)?;
        let mut progress = |done, total| {
            on_event(EvalEvent::Steps {
                name: name.to_string(),
                done,
                total,
            })
        };
        let report = step_agreement(
            &mut policy,
            prompt,
            scenarios,
            options.privilege,
            options.parallel,
            &mut progress,
        )?;
        Ok::<_, EvalError>(report)
    };
    let mut reports = vec![one(r.adapter.clone(), &r.name)?];
    if options.baseline && r.adapter.is_some() {
        reports.push(one(None, "base")?);
    }
    Ok(reports)
}
