//! The LEAP loop, headless and resumable.
//!
//! Iteration 0 trains on the oracle's demonstrations (behaviour cloning). Each later iteration
//! rolls the latest student out on the train split, has the teacher correct its failed
//! episodes, curates the labels (or waits for a person), builds the aggregated dataset, trains
//! the next adapter and evaluates it on the test split. Every stage is idempotent against the
//! run database and the files it writes, so a rerun after a kill redoes no finished stage:
//! stored episodes are skipped, corrected episodes are not corrected again, decided labels stay
//! decided, a recorded adapter is not retrained and a recorded evaluation is not replayed.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;
use thiserror::Error;

use crate::agent::PolicyError;
use crate::agent::local::LocalPolicy;
use crate::agent::prompt::{Prompt, PromptError};
use crate::agent::student::StudentSpec;
use crate::correct::{CorrectError, CorrectOptions, SkippedEpisode, correct_episodes};
use crate::curate::{CurationRule, curate};
use crate::dataset::DatasetError;
use crate::dataset::build::{build_iteration, write_iteration_pairs};
use crate::eval::{EvalError, EvalEvent, EvalReport, EvalSpec, oracle_alone, split_scenarios};
use crate::rollout::RolloutError;
use crate::run::{RunDir, RunError, iteration_stem};
use crate::scenario::{Scenario, Split};
use crate::store::{EpisodeFilter, LabelFilter, LabelStatus, Order, Store, StoreError};
use crate::teacher::TeacherSpec;
use crate::train::TrainEvent;
use crate::train::record::{RecordError, UpdateOptions, train_and_record};

#[derive(Debug, Error)]
pub enum LoopError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error(transparent)]
    Rollout(#[from] RolloutError),
    #[error(transparent)]
    Correct(#[from] CorrectError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Train(#[from] RecordError),
    #[error("loading {}: {source}", model.display())]
    Load { model: PathBuf, source: PolicyError },
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error("recording the stage's result: {0}")]
    Json(#[from] serde_json::Error),
}

/// How the labels of an iteration are decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curation {
    Rule(CurationRule),
    /// Stop after correcting and wait for a person to decide every label; rerun to go on.
    Manual,
}

/// The loop's settings. `Default` is `leap iterate`'s defaults.
#[derive(Debug, Clone)]
pub struct LoopOptions {
    pub scenarios: Vec<PathBuf>,
    /// Iterations after iteration 0 (behaviour cloning).
    pub iters: u32,
    /// The base model (default: the run's).
    pub model: Option<PathBuf>,
    pub teacher: TeacherSpec,
    /// The oracle's privilege when it acts alone (a baseline).
    pub privilege: f64,
    pub curation: Curation,
    /// Train scenarios each student plays to collect corrections (seeded draw; 0: all).
    pub episodes_per_iter: usize,
    /// An episode goes to the teacher when its reward is at most this (`None`: as its kind
    /// says, see [`crate::env::EnvKind::failed_at_most`]).
    pub failed_at_most: Option<f64>,
    /// Test scenarios evaluated (0: the whole test split).
    pub test_limit: usize,
    /// Also evaluate the teachers acting alone and the zero-shot student.
    pub baselines: bool,
    pub parallel: usize,
    /// Earlier steps shown in the prompt.
    pub history: usize,
    /// The student's prompt template (`None`: the shipped one of each kind). The datasets,
    /// rollouts and evaluations all render it.
    pub prompt: Option<PathBuf>,
    pub horizon: Option<u32>,
    pub temperature: f32,
    pub repeat_temperature: f32,
    /// See [`crate::rollout::RolloutConfig::stop_cycles`].
    pub stop_cycles: bool,
    pub seed: u64,
    pub gpu_layers: u32,
    /// Tokens the student guesses ahead of a greedy answer ([`crate::agent::local::LocalConfig::draft`];
    /// `None`: as the CPU favours).
    pub draft: Option<usize>,
    /// How the student's weights are held ([`crate::agent::local::LocalConfig::weights`];
    /// `None`: as the CPU favours).
    pub weights: Option<crate::agent::local::Weights>,
    /// How each iteration's dataset is built and its adapter trained.
    pub update: UpdateOptions,
}

impl Default for LoopOptions {
    fn default() -> Self {
        LoopOptions {
            scenarios: vec![PathBuf::from("scenarios/household")],
            iters: 2,
            model: None,
            teacher: TeacherSpec::Oracle {
                draw: Default::default(),
                privilege: 0.5,
                seed: 0,
            },
            privilege: 0.5,
            curation: Curation::Rule(CurationRule::AcceptUnlessLeak),
            episodes_per_iter: 40,
            failed_at_most: None,
            test_limit: 0,
            baselines: true,
            parallel: 8,
            history: crate::agent::prompt::DEFAULT_HISTORY,
            prompt: None,
            horizon: None,
            temperature: 0.0,
            repeat_temperature: 0.0,
            stop_cycles: true,
            seed: 0,
            gpu_layers: 0,
            draft: None,
            weights: None,
            update: UpdateOptions::default(),
        }
    }
}

/// What the loop reports as it goes.
#[derive(Debug)]
pub enum LoopEvent {
    /// A stage begins (`iteration` is none for the baselines).
    Stage {
        iteration: Option<u32>,
        stage: &'static str,
    },
    Eval(EvalEvent),
    /// Episodes corrected so far by the teacher.
    Corrected {
        done: u64,
        total: u64,
    },
    /// The teacher skipped an episode it could not take up (it does not replay); the loop goes
    /// on with the others.
    Skipped(SkippedEpisode),
    Train(TrainEvent),
}

/// How the loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopOutcome {
    Finished,
    /// `pending` labels of `iteration` wait for a person (manual curation).
    WaitingForLabels {
        iteration: u32,
        pending: u64,
    },
}

/// Runs the loop on the run in `run` (resuming what it finds done).
pub fn run_loop(
    run: &RunDir,
    options: &LoopOptions,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(LoopEvent),
) -> Result<LoopOutcome, LoopError> {
    let train_all = split_scenarios(&options.scenarios, Split::Train)?;
    let test = draw(
        &split_scenarios(&options.scenarios, Split::Test)?,
        options.test_limit,
        options.seed,
    );
    let kinds = train_all.iter().chain(&test).map(Scenario::kind);
    let prompt = Prompt::file_or_builtin(options.prompt.as_deref(), options.history, kinds)?;
    let store = run.open()?;
    let model = run.model(&store, options.model.as_deref())?;
    let mut looping = Loop {
        run,
        options,
        model,
        prompt,
        store,
        cancel,
        on_event,
    };
    for i in 0..=options.iters {
        if i > 0
            && let Some(waiting) = looping.labels_of(i, &train_all)?
        {
            return Ok(waiting);
        }
        looping.update(i, &train_all)?;
        looping.evaluate(i, &test)?;
    }
    // The comparisons come last: the loop's own results first.
    if options.baselines {
        looping.baselines(&test)?;
    }
    Ok(LoopOutcome::Finished)
}

struct Loop<'a> {
    run: &'a RunDir,
    options: &'a LoopOptions,
    model: PathBuf,
    prompt: Prompt,
    store: Store,
    cancel: &'a AtomicBool,
    on_event: &'a mut dyn FnMut(LoopEvent),
}

impl Loop<'_> {
    /// Runs one stage and records its wall time in the run as soon as it has finished.
    fn timed<T: Serialize>(
        &mut self,
        iteration: Option<u32>,
        stage: &'static str,
        f: impl FnOnce(&mut Self) -> Result<T, LoopError>,
    ) -> Result<T, LoopError> {
        (self.on_event)(LoopEvent::Stage { iteration, stage });
        let start = Instant::now();
        let value = f(self)?;
        let detail = serde_json::to_value(&value).unwrap_or_default();
        let seconds = start.elapsed().as_secs_f64();
        self.store
            .record_stage_once(iteration, stage, seconds, &detail)?;
        Ok(value)
    }

    fn student(&self, adapter: Option<&Path>) -> Result<LocalPolicy, LoopError> {
        StudentSpec::new(&self.model)
            .adapters(adapter.map(|a| (a.to_path_buf(), 1.0)))
            .slots(self.options.parallel)
            .gpu_layers(self.options.gpu_layers)
            .draft(self.options.draft)
            .weights(self.options.weights)
            .load()
            .map_err(|source| LoopError::Load {
                model: self.model.clone(),
                source,
            })
    }

    fn eval_spec(
        &self,
        label: String,
        adapter_id: Option<i64>,
        iteration: Option<u32>,
        privileged: bool,
    ) -> EvalSpec {
        EvalSpec {
            label,
            split: "test".into(),
            episodes: 1,
            parallel: self.options.parallel,
            privileged,
            adapter_id,
            iteration,
            seed: self.options.seed,
            horizon: self.options.horizon,
            temperature: self.options.temperature,
            repeat_temperature: self.options.repeat_temperature,
            stop_cycles: self.options.stop_cycles,
        }
    }

    fn adapter_id(&self, adapter: &Path) -> Result<Option<i64>, StoreError> {
        Ok(self
            .store
            .adapter_by_path(&adapter.display().to_string())?
            .map(|a| a.id))
    }

    /// Plays `policy` as the evaluation `spec`, forwarding its progress.
    fn play(
        &mut self,
        policy: &mut LocalPolicy,
        scenarios: &[Scenario],
        spec: &EvalSpec,
    ) -> Result<EvalReport, LoopError> {
        let on_event = &mut *self.on_event;
        let mut forward = |e| on_event(LoopEvent::Eval(e));
        let report = crate::eval::evaluate(
            &mut self.store,
            policy,
            &self.prompt,
            scenarios,
            spec,
            self.cancel,
            &mut forward,
        )?;
        Ok(report)
    }

    /// Iteration `i`'s labels: the last student plays the train split, the teacher corrects
    /// its failures and the labels are curated. `Some` when they wait for a person.
    fn labels_of(
        &mut self,
        i: u32,
        train_all: &[Scenario],
    ) -> Result<Option<LoopOutcome>, LoopError> {
        let prev = i - 1;
        let label = format!("{}-train", iteration_stem(prev));
        let o = self.options;
        let played = draw(
            train_all,
            o.episodes_per_iter,
            o.seed.wrapping_add(u64::from(prev)),
        );
        self.timed(Some(i), "student rollouts on train", |l| {
            let adapter = l.run.adapter(prev);
            let adapter_id = l.adapter_id(&adapter)?;
            let mut student = l.student(Some(&adapter))?;
            let spec = EvalSpec {
                split: "train".into(),
                ..l.eval_spec(label.clone(), adapter_id, Some(prev), false)
            };
            let report = l.play(&mut student, &played, &spec)?;
            // The same numbers, under the name the report looks for.
            l.store.record_evaluation(
                &format!("eval-train-{}", iteration_stem(prev)),
                adapter_id,
                Some(prev),
                &report.policy,
                "train",
                &serde_json::to_value(&report)?,
            )?;
            Ok(report)
        })?;
        self.timed(Some(i), "teacher corrects failed episodes", |l| {
            let options = CorrectOptions {
                filter: EpisodeFilter {
                    key_prefix: Some(format!("rollout/{label}/")),
                    order: Order::ById,
                    ..EpisodeFilter::default()
                },
                failed_only: true,
                max_reward: l.options.failed_at_most,
            };
            let on_event = &mut *l.on_event;
            let mut progress = |done, total| on_event(LoopEvent::Corrected { done, total });
            let summary = correct_episodes(&mut l.store, &o.teacher, &options, &mut progress)?;
            for skipped in &summary.skipped {
                (l.on_event)(LoopEvent::Skipped(skipped.clone()));
            }
            Ok(summary)
        })?;
        let pending = self
            .store
            .label_counts(&LabelFilter {
                status: Some(LabelStatus::Pending),
                iteration: Some(prev),
                ..LabelFilter::default()
            })?
            .total;
        match o.curation {
            Curation::Rule(rule) => {
                self.timed(Some(i), "curation", |l| {
                    Ok(curate(&mut l.store, rule, Some(prev), &mut |_| {})?)
                })?;
            }
            Curation::Manual if pending > 0 => {
                return Ok(Some(LoopOutcome::WaitingForLabels {
                    iteration: prev,
                    pending,
                }));
            }
            Curation::Manual => {}
        }
        Ok(None)
    }

    /// Iteration `i`'s dataset and adapter, unless its adapter is recorded and on disk.
    fn update(&mut self, i: u32, train_all: &[Scenario]) -> Result<(), LoopError> {
        let adapter = self.run.adapter(i);
        let trained = self
            .store
            .adapter_by_path(&adapter.display().to_string())?
            .filter(|_| adapter.is_file());
        if trained.is_some() {
            return Ok(());
        }
        let options = self.options;
        let update = &options.update;
        if update.preference(i) {
            self.timed(Some(i), "pairs", |l| {
                Ok(write_iteration_pairs(&mut l.store, l.run, i)?)
            })?;
        } else {
            self.timed(Some(i), "dataset", |l| {
                let settings = update.build_settings(i);
                Ok(build_iteration(
                    &mut l.store,
                    l.run,
                    train_all,
                    &l.prompt,
                    i,
                    &settings,
                )?)
            })?;
        }
        self.timed(Some(i), "training", |l| {
            let last = i.checked_sub(1).map(|p| l.run.adapter(p));
            let mut job = update.adapter_job(&l.model, i, last.as_deref());
            job.train.gpu_layers = options.gpu_layers;
            let on_event = &mut *l.on_event;
            let mut forward = |e| on_event(LoopEvent::Train(e));
            train_and_record(l.run, &mut l.store, &job, l.cancel, &mut forward)?;
            Ok(adapter.display().to_string())
        })?;
        Ok(())
    }

    /// Iteration `i`'s adapter on the test split, unless evaluated on all of it already.
    fn evaluate(&mut self, i: u32, test: &[Scenario]) -> Result<(), LoopError> {
        let label = format!("eval-test-{}", iteration_stem(i));
        let done = self
            .store
            .evaluation(&label)?
            .and_then(|e| e.summary.get("episodes").and_then(|v| v.as_u64()))
            == Some(test.len() as u64);
        if done {
            return Ok(());
        }
        self.timed(Some(i), "evaluation on test", |l| {
            let adapter = l.run.adapter(i);
            let adapter_id = l.adapter_id(&adapter)?;
            let mut student = l.student(Some(&adapter))?;
            let spec = l.eval_spec(label.clone(), adapter_id, Some(i), false);
            l.play(&mut student, test, &spec)
        })?;
        Ok(())
    }

    /// The oracle alone, the model alone with the privileged facts (the self teacher, the
    /// comparison the loop has to beat) and the zero-shot student.
    fn baselines(&mut self, test: &[Scenario]) -> Result<(), LoopError> {
        let privilege = self.options.privilege;
        self.timed(None, "oracle alone on test", |l| {
            Ok(oracle_alone(&mut l.store, test, "test", privilege)?)
        })?;
        // One load of the base model serves both.
        let mut base = self.student(None)?;
        for (stage, label, privileged) in [
            ("self teacher alone on test", "eval-test-self-base", true),
            ("zero-shot student on test", "eval-test-base", false),
        ] {
            self.timed(None, stage, |l| {
                let spec = l.eval_spec(label.into(), None, None, privileged);
                l.play(&mut base, test, &spec)
            })?;
        }
        Ok(())
    }
}

/// A seeded draw of `n` scenarios (all when `n` is 0 or more than there are), in file order.
pub fn draw(scenarios: &[Scenario], n: usize, seed: u64) -> Vec<Scenario> {
    use rand::SeedableRng;
    use rand::seq::index::sample;
    if n == 0 || n >= scenarios.len() {
        return scenarios.to_vec();
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut picked = sample(&mut rng, scenarios.len(), n).into_vec();
    picked.sort_unstable();
    picked.into_iter().map(|i| scenarios[i].clone()).collect()
}
