//! Long work the workbench starts besides the live session: asking the teacher, accepting many
//! labels, training. Each runs on its own thread with its own store connection, calls the same
//! library functions as the CLI, and reports back as events.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use thiserror::Error;

use super::event::{BulkEvent, Event, EventSender, LoopEnd, LoopJobEvent};
use crate::agent::prompt::Prompt;
use crate::run::RunDir;
use crate::scenario::Scenario;
use crate::store::{Decision, LabelFilter, Store, StoreError};
use crate::teacher::{TeacherError, TeacherSpec, correct_and_store};
use crate::train::record::{RecordError, TrainOptions, UpdateEvent, UpdateOptions, update};

/// Why a job stopped.
#[derive(Debug, Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("teacher: {0}")]
    Teacher(#[from] TeacherError),
    #[error(transparent)]
    Train(#[from] RecordError),
    #[error("cancelled after {done} of {total}")]
    Cancelled { done: usize, total: usize },
    #[error(transparent)]
    Loop(Box<crate::leap::LoopError>),
    #[error(transparent)]
    Eval(Box<crate::eval::EvalError>),
}

impl From<crate::leap::LoopError> for JobError {
    fn from(e: crate::leap::LoopError) -> Self {
        JobError::Loop(Box::new(e))
    }
}

impl From<crate::eval::EvalError> for JobError {
    fn from(e: crate::eval::EvalError) -> Self {
        JobError::Eval(Box::new(e))
    }
}

/// Asks the teacher built from `spec` to correct stored episode `episode_id`.
pub fn spawn_teacher(
    run_dir: PathBuf,
    scenario: Scenario,
    episode_id: i64,
    spec: TeacherSpec,
    tx: EventSender,
) {
    std::thread::Builder::new()
        .name("leap-teacher".into())
        .spawn(move || {
            let result = (|| -> Result<_, JobError> {
                let mut store = Store::open(&run_dir)?;
                let mut teacher = spec.build()?;
                let report =
                    correct_and_store(&mut store, &scenario, episode_id, teacher.as_mut())?;
                let labels = store.labels(&LabelFilter {
                    episode_id: Some(episode_id),
                    ..LabelFilter::default()
                })?;
                Ok((report, labels))
            })();
            let _ = tx.send(Event::Teacher { episode_id, result });
        })
        .expect("a thread starts");
}

/// Accepts each label in `ids`, one transaction each, until done or `cancel` is set.
pub fn spawn_bulk_accept(
    run_dir: PathBuf,
    ids: Vec<i64>,
    by: String,
    cancel: Arc<AtomicBool>,
    tx: EventSender,
) {
    std::thread::Builder::new()
        .name("leap-bulk".into())
        .spawn(move || {
            let total = ids.len();
            let mut done_ids = Vec::new();
            let mut error = None;
            match Store::open(&run_dir) {
                Ok(mut store) => {
                    for (i, id) in ids.into_iter().enumerate() {
                        if cancel.load(Ordering::Relaxed) {
                            error = Some(JobError::Cancelled { done: i, total });
                            break;
                        }
                        match store.decide(id, &Decision::Accept, &by) {
                            Ok(label) => {
                                done_ids.push(id);
                                let _ = tx.send(Event::Bulk(BulkEvent::Decided(Box::new(label))));
                            }
                            Err(e) => {
                                error = Some(e.into());
                                break;
                            }
                        }
                        if i % 25 == 0 || i + 1 == total {
                            let _ =
                                tx.send(Event::Bulk(BulkEvent::Progress { done: i + 1, total }));
                        }
                    }
                }
                Err(e) => error = Some(e.into()),
            }
            let _ = tx.send(Event::Bulk(BulkEvent::Done {
                ids: done_ids,
                error,
            }));
        })
        .expect("a thread starts");
}

/// What the Train screen asks for: the LEAP update `leap iterate` makes, with its defaults
/// ([`UpdateOptions`]) but warm-started from the current student, and the screen's settings.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    pub model: PathBuf,
    /// The adapter file to write (in the run's `adapters/`); its stem names the dataset.
    pub out: PathBuf,
    pub epochs: u32,
    pub rank: u32,
    pub lr: f32,
    pub n_ctx: u32,
    pub gpu_layers: u32,
    /// SFT on the dataset, or DPO on the pairs of the kept labels (from the student).
    pub objective: crate::train::Objective,
    /// The train scenarios, whose demonstrations are replayed beside the kept labels.
    pub scenarios: Vec<Scenario>,
    /// The current student's adapter, which training goes on from.
    pub student: Option<PathBuf>,
}

impl TrainRequest {
    /// The update's settings: `leap iterate`'s, warm-started, with the screen's values.
    pub fn options(&self) -> UpdateOptions {
        let defaults = UpdateOptions::default();
        let mut train = TrainOptions {
            epochs: self.epochs,
            lr: self.lr,
            ctx: self.n_ctx.div_ceil(256) * 256,
            gpu_layers: self.gpu_layers,
            objective: self.objective,
            ..defaults.train.clone()
        };
        train.lora.rank = self.rank;
        train.lora.alpha = 2.0 * self.rank as f32;
        UpdateOptions {
            warm_start: true,
            train,
            ..defaults
        }
    }
}

/// Runs the LEAP update ([`update`]) for the iteration after the newest one whose episodes the
/// kept labels correct, forwarding its progress. Cancelled through `cancel` after the current
/// step.
pub fn spawn_train(
    run_dir: PathBuf,
    request: TrainRequest,
    cancel: Arc<AtomicBool>,
    tx: EventSender,
) {
    std::thread::Builder::new()
        .name("leap-train".into())
        .spawn(move || {
            let result = train(&RunDir::new(run_dir), &request, &cancel, &tx);
            let _ = tx.send(Event::Train(super::event::TrainEvent::Done(result)));
        })
        .expect("a thread starts");
}

/// Does `read` on its own thread with its own store connection and sends what it found, with
/// `ticket`, as [`Event::Read`].
pub fn spawn_read(run_dir: PathBuf, ticket: u64, read: super::event::Read, tx: EventSender) {
    std::thread::Builder::new()
        .name("leap-read".into())
        .spawn(move || {
            let result = read_run(&run_dir, &read);
            let _ = tx.send(Event::Read {
                ticket,
                read,
                result,
            });
        })
        .expect("a thread starts");
}

/// What `read` finds in the run at `run_dir` (on the caller's thread).
pub fn read_run(
    run_dir: &std::path::Path,
    read: &super::event::Read,
) -> Result<super::event::Readout, crate::store::StoreError> {
    use super::event::{Read, Readout, StoredEpisode};
    let store = Store::open_existing(run_dir)?;
    Ok(match read {
        Read::Labels => Readout::Labels(store.labels(&LabelFilter::default())?),
        Read::Episodes => Readout::Episodes(store.list_episodes(&crate::store::EpisodeFilter {
            limit: Some(500),
            ..crate::store::EpisodeFilter::default()
        })?),
        Read::Adapters => {
            let mut found: Vec<PathBuf> = store
                .adapters()?
                .into_iter()
                .rev()
                .map(|a| PathBuf::from(a.path))
                .collect();
            // Adapters written but not recorded (a `leap train` into the folder, say).
            let files = RunDir::new(run_dir).adapter_files();
            for f in files {
                if !found.contains(&f) {
                    found.push(f);
                }
            }
            Readout::Adapters(found)
        }
        Read::Report(sources) => Readout::Report(Box::new(crate::report::gather(&store, sources)?)),
        Read::Episode { id, .. } => {
            let Some(episode) = store.episode(*id)? else {
                return Ok(Readout::Episode(None));
            };
            let snapshot = store
                .scenario(&episode.record.scenario_hash)?
                .and_then(|snap| {
                    let name = format!("{}: scenario {}", store.path().display(), snap.scenario_id);
                    crate::scenario::from_snapshot(&name, &snap.json).ok()
                });
            let labels = store.labels(&LabelFilter {
                episode_id: Some(*id),
                ..LabelFilter::default()
            })?;
            Readout::Episode(Some(Box::new(StoredEpisode {
                episode,
                snapshot,
                labels,
            })))
        }
    })
}

/// Undoes the last decision about each label in `ids`, newest first, one transaction each,
/// until done or `cancel` is set; what is left stays undoable.
pub fn spawn_bulk_undo(run_dir: PathBuf, ids: Vec<i64>, cancel: Arc<AtomicBool>, tx: EventSender) {
    std::thread::Builder::new()
        .name("leap-undo".into())
        .spawn(move || {
            let total = ids.len();
            let mut rest = ids;
            let mut error = None;
            match Store::open_existing(&run_dir) {
                Ok(mut store) => {
                    let mut done = 0;
                    while let Some(&id) = rest.last() {
                        if cancel.load(Ordering::Relaxed) {
                            error = Some(format!("cancelled after {done} of {total}"));
                            break;
                        }
                        match store.undo_label(id) {
                            Ok(label) => {
                                rest.pop();
                                done += 1;
                                let _ = tx.send(Event::Bulk(BulkEvent::Decided(Box::new(label))));
                            }
                            Err(e) => {
                                error = Some(e.to_string());
                                break;
                            }
                        }
                        if done % 25 == 0 || done == total {
                            let _ = tx.send(Event::Bulk(BulkEvent::Progress { done, total }));
                        }
                    }
                }
                Err(e) => error = Some(e.to_string()),
            }
            let undone = total - rest.len();
            let _ = tx.send(Event::Bulk(BulkEvent::Undone {
                undone,
                rest,
                error,
            }));
        })
        .expect("a thread starts");
}

fn train(
    run: &RunDir,
    request: &TrainRequest,
    cancel: &AtomicBool,
    tx: &EventSender,
) -> Result<PathBuf, JobError> {
    use super::event::TrainEvent as Ui;
    use crate::train::TrainEvent;
    let send = |e: Ui| {
        let _ = tx.send(Event::Train(e));
    };
    let mut store = run.open()?;
    let kept = store.labels(&LabelFilter::default())?;
    let iteration = kept
        .iter()
        .filter(|l| l.status.is_kept())
        .map(|l| l.iteration.unwrap_or(0) + 1)
        .max()
        .unwrap_or(0);
    let stem = request
        .out
        .file_stem()
        .map_or_else(|| "workbench".into(), |s| s.to_string_lossy().into_owned());
    let options = request.options();
    send(Ui::Log(format!(
        "iteration {iteration}: demonstrations and kept labels, {:?} aggregation; warm start from {}",
        options.aggregate,
        request
            .student
            .as_ref()
            .filter(|_| iteration > 0)
            .map_or_else(
                || "nothing (fresh adapter)".into(),
                |p| p.display().to_string()
            )
    )));
    let prompt = Prompt::builtin(crate::agent::prompt::DEFAULT_HISTORY);
    let mut on_event = |e: UpdateEvent| match e {
        UpdateEvent::Dataset(report) => send(Ui::Log(format!(
            "dataset {} recorded: {} rows (parts {:?})",
            report.path, report.rows, report.parts
        ))),
        UpdateEvent::Pairs(report) => send(Ui::Log(format!(
            "{} preference pairs written to {}",
            report.pairs, report.path
        ))),
        UpdateEvent::Train(TrainEvent::Status(s)) => send(Ui::Log(s)),
        UpdateEvent::Train(TrainEvent::Started {
            rows,
            tokens,
            steps,
            ..
        }) => {
            send(Ui::Log(format!(
                "started: {rows} rows, {tokens} tokens, {steps} steps"
            )));
            send(Ui::Dataset { rows, tokens });
        }
        UpdateEvent::Train(TrainEvent::Step(p)) => send(Ui::Progress {
            step: p.step,
            total: p.steps,
            epoch: f64::from(p.epoch),
            loss: Some(p.loss),
            tokens_per_s: p.tokens_per_s,
            eta_s: p.eta_s,
        }),
        UpdateEvent::Train(TrainEvent::Eval { step, loss }) => {
            send(Ui::Log(format!("step {step}: eval loss {loss:.4}")));
            send(Ui::EvalLoss { step, loss });
        }
        UpdateEvent::Train(TrainEvent::Checkpoint { step, path }) => send(Ui::Log(format!(
            "checkpoint at step {step}: {}",
            path.display()
        ))),
    };
    let trained = update(
        run,
        &mut store,
        &request.scenarios,
        &prompt,
        &request.model,
        iteration,
        &stem,
        request.student.as_deref(),
        &options,
        cancel,
        &mut on_event,
    )?;
    let summary = trained.summary;
    send(Ui::Log(format!(
        "done: loss {:.4} → {:.4}{}, {:.0} tokens/s, {:.0} s",
        summary.train_loss_first,
        summary.train_loss_last,
        summary
            .eval_loss
            .map(|l| format!(", eval {l:.4}"))
            .unwrap_or_default(),
        summary.tokens_per_s,
        summary.seconds
    )));
    Ok(summary.adapter)
}

/// Runs the LEAP loop ([`crate::leap::run_loop`]) on the run at `run_dir`, resuming after the
/// stages the run has already finished, and reports its stages and their progress.
/// Cancelled through `cancel` after the current unit of work (an episode, a training step).
pub fn spawn_loop(
    run_dir: PathBuf,
    options: crate::leap::LoopOptions,
    cancel: Arc<AtomicBool>,
    tx: EventSender,
) {
    std::thread::Builder::new()
        .name("leap-loop".into())
        .spawn(move || {
            let result = run_loop_job(&RunDir::new(run_dir), &options, &cancel, &tx);
            let _ = tx.send(Event::Loop(LoopJobEvent::Done(result)));
        })
        .expect("a thread starts");
}

/// `iteration N: stage`, or the stage alone.
pub fn stage_name(iteration: Option<u32>, stage: &str) -> String {
    iteration.map_or_else(|| stage.to_string(), |i| format!("iteration {i}: {stage}"))
}

/// Reports the stages the loop records in the run, through a connection of its own.
struct StageWatch<'a> {
    store: Store,
    last: i64,
    tx: &'a EventSender,
}

impl StageWatch<'_> {
    /// Sends each stage recorded since the last look as finished.
    fn flush(&mut self) {
        let Ok(stages) = self.store.stages() else {
            return;
        };
        let last = self.last;
        for s in stages.into_iter().filter(|s| s.id > last) {
            self.last = s.id;
            let _ = self.tx.send(Event::Loop(LoopJobEvent::Finished {
                iteration: s.iteration,
                stage: s.stage,
                seconds: s.seconds,
            }));
        }
    }
}

/// The progress of an evaluation, as a loop job reports it.
fn eval_progress(e: &crate::eval::EvalEvent) -> Option<LoopJobEvent> {
    use crate::eval::EvalEvent;
    use crate::rollout::RolloutEvent;
    match e {
        EvalEvent::Rollout(r) => match **r {
            RolloutEvent::Progress { done, total } => Some(LoopJobEvent::Progress {
                done: done as u64,
                total: total as u64,
                unit: "episodes",
            }),
            _ => None,
        },
        EvalEvent::Steps { done, total, .. } => Some(LoopJobEvent::Progress {
            done: *done,
            total: *total,
            unit: "steps",
        }),
        EvalEvent::Started { .. } => None,
    }
}

fn run_loop_job(
    run: &RunDir,
    options: &crate::leap::LoopOptions,
    cancel: &AtomicBool,
    tx: &EventSender,
) -> Result<LoopEnd, JobError> {
    use crate::leap::{LoopEvent, LoopOutcome, run_loop};
    use crate::train::TrainEvent;
    let send = |e: LoopJobEvent| {
        let _ = tx.send(Event::Loop(e));
    };
    let store = run.open()?;
    let done = store.stages()?;
    if !done.is_empty() {
        send(LoopJobEvent::Resuming(
            done.iter()
                .map(|s| stage_name(s.iteration, &s.stage))
                .collect(),
        ));
    }
    let mut watch = StageWatch {
        last: done.last().map_or(0, |s| s.id),
        store,
        tx,
    };
    let mut on_event = |e: LoopEvent| match e {
        LoopEvent::Stage { iteration, stage } => {
            watch.flush();
            send(LoopJobEvent::Stage {
                iteration,
                stage: stage.to_string(),
            });
        }
        LoopEvent::Eval(e) => {
            if let Some(e) = eval_progress(&e) {
                send(e);
            }
        }
        LoopEvent::Corrected { done, total } => send(LoopJobEvent::Progress {
            done,
            total,
            unit: "episodes corrected",
        }),
        LoopEvent::Skipped(s) => send(LoopJobEvent::Log(s.to_string())),
        LoopEvent::Train(TrainEvent::Started {
            rows,
            tokens,
            steps,
            ..
        }) => send(LoopJobEvent::Log(format!(
            "training: {rows} rows, {tokens} tokens, {steps} steps"
        ))),
        LoopEvent::Train(TrainEvent::Step(p)) => send(LoopJobEvent::Progress {
            done: p.step,
            total: p.steps,
            unit: "training steps",
        }),
        LoopEvent::Train(_) => {}
    };
    let outcome = run_loop(run, options, cancel, &mut on_event);
    watch.flush();
    Ok(match outcome? {
        LoopOutcome::Finished => LoopEnd::Finished,
        LoopOutcome::WaitingForLabels { iteration, pending } => {
            LoopEnd::WaitingForLabels { iteration, pending }
        }
    })
}

/// What the Iterations screen's evaluation asks for: `leap eval` on the test split, of the
/// current student (`adapter`, else the run's latest adapter, else the model alone).
#[derive(Debug, Clone)]
pub struct EvalRequest {
    pub scenarios: Vec<PathBuf>,
    pub adapter: Option<PathBuf>,
    pub history: usize,
    /// `leap eval`'s options; the student is resolved on the job thread.
    pub options: crate::eval::EvalOptions,
}

/// Runs [`crate::eval::compare`] for `request` on the run at `run_dir`, reporting each
/// evaluation it plays as a stage. Cancelled through `cancel` after the current episode.
pub fn spawn_eval(
    run_dir: PathBuf,
    request: EvalRequest,
    cancel: Arc<AtomicBool>,
    tx: EventSender,
) {
    std::thread::Builder::new()
        .name("leap-eval".into())
        .spawn(move || {
            let result = eval_job(&RunDir::new(run_dir), request, &cancel, &tx);
            let _ = tx.send(Event::Loop(LoopJobEvent::Done(result)));
        })
        .expect("a thread starts");
}

/// The adapter `path` as an evaluation names it: iteration N's when it is the run's
/// `adapters/iter-N.gguf`, else the file itself.
fn student_adapter(run: &RunDir, path: PathBuf) -> crate::eval::StudentAdapter {
    use crate::eval::StudentAdapter;
    let iteration = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.strip_prefix("iter-"))
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| run.adapter(*n) == path);
    match iteration {
        Some(n) => StudentAdapter::Iteration(n),
        None => StudentAdapter::File(path, 1.0),
    }
}

fn eval_job(
    run: &RunDir,
    request: EvalRequest,
    cancel: &AtomicBool,
    tx: &EventSender,
) -> Result<LoopEnd, JobError> {
    use crate::eval::{StudentAdapter, compare, split_scenarios};
    use std::time::Instant;
    let send = |e: LoopJobEvent| {
        let _ = tx.send(Event::Loop(e));
    };
    let mut store = run.open()?;
    let latest = || -> Result<Option<PathBuf>, StoreError> {
        Ok(store
            .adapters()?
            .into_iter()
            .rev()
            .map(|a| PathBuf::from(a.path))
            .find(|p| p.is_file()))
    };
    let adapter = match request.adapter {
        Some(path) => Some(path),
        None => latest()?,
    };
    let mut options = request.options;
    options.student = adapter.map_or(StudentAdapter::None, |p| student_adapter(run, p));
    send(LoopJobEvent::Log(format!("student: {:?}", options.student)));
    let scenarios = split_scenarios(&request.scenarios, options.split)?;
    let prompt = Prompt::builtin(request.history);
    // Each evaluation it plays is a stage, timed here (`leap eval` records no stage).
    let mut current: Option<(String, Instant)> = None;
    let finish = |current: &mut Option<(String, Instant)>| {
        if let Some((stage, start)) = current.take() {
            send(LoopJobEvent::Finished {
                iteration: None,
                stage,
                seconds: start.elapsed().as_secs_f64(),
            });
        }
    };
    let mut on_event = |e: crate::eval::EvalEvent| {
        if let crate::eval::EvalEvent::Started { label } = &e {
            finish(&mut current);
            current = Some((label.clone(), Instant::now()));
            send(LoopJobEvent::Stage {
                iteration: None,
                stage: label.clone(),
            });
        } else if let Some(e) = eval_progress(&e) {
            send(e);
        }
    };
    let table = compare(
        run,
        &mut store,
        &prompt,
        &scenarios,
        &options,
        cancel,
        &mut on_event,
    )?;
    finish(&mut current);
    let s = &table.student;
    let score = s
        .score
        .map_or(String::new(), |score| format!(", score {score}"));
    Ok(LoopEnd::Evaluated(format!(
        "{}: {} of {} won ({:.0}%){score}",
        s.label,
        s.wins,
        s.episodes,
        s.success_rate * 100.0
    )))
}
