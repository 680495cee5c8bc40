//! Long work the workbench starts besides the live session: asking the teacher, accepting many
//! labels, training. Each runs on its own thread with its own store connection, calls the same
//! library functions as the CLI, and reports back as events.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::event::{BulkEvent, Event, EventSender};
use crate::scenario::Scenario;
use crate::store::{DatasetSource, Decision, LabelFilter, Store};
use crate::teacher::{TeacherSpec, correct_and_store};

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
            let result = (|| {
                let mut store = Store::open(&run_dir).map_err(|e| e.to_string())?;
                let mut teacher = spec.build().map_err(|e| format!("teacher: {e}"))?;
                let report = correct_and_store(&mut store, &scenario, episode_id, teacher.as_mut())
                    .map_err(|e| format!("teacher: {e}"))?;
                let labels = store
                    .labels(&LabelFilter {
                        episode_id: Some(episode_id),
                        ..LabelFilter::default()
                    })
                    .map_err(|e| e.to_string())?;
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
                            error = Some(format!("cancelled after {i} of {total}"));
                            break;
                        }
                        match store.decide(id, &Decision::Accept, &by) {
                            Ok(label) => {
                                done_ids.push(id);
                                let _ = tx.send(Event::Bulk(BulkEvent::Decided(Box::new(label))));
                            }
                            Err(e) => {
                                error = Some(e.to_string());
                                break;
                            }
                        }
                        if i % 25 == 0 || i + 1 == total {
                            let _ =
                                tx.send(Event::Bulk(BulkEvent::Progress { done: i + 1, total }));
                        }
                    }
                }
                Err(e) => error = Some(e.to_string()),
            }
            let _ = tx.send(Event::Bulk(BulkEvent::Done {
                ids: done_ids,
                error,
            }));
        })
        .expect("a thread starts");
}

/// What the Train screen asks for.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    pub model: PathBuf,
    pub out: PathBuf,
    pub epochs: u32,
    pub rank: u32,
    pub lr: f32,
    pub n_ctx: u32,
    pub gpu_layers: u32,
}

/// Builds the rows of every kept label (one per step) and trains a LoRA adapter on them with
/// `leap::train`, forwarding its progress. Cancelled through `cancel` after the current step.
pub fn spawn_train(
    run_dir: PathBuf,
    request: TrainRequest,
    cancel: Arc<AtomicBool>,
    tx: EventSender,
) {
    use super::event::TrainEvent as Ui;
    use crate::train::TrainEvent;
    std::thread::Builder::new()
        .name("leap-train".into())
        .spawn(move || {
            let log = |line: String| {
                let _ = tx.send(Event::Train(Ui::Log(line)));
            };
            let result = (|| -> Result<PathBuf, String> {
                let mut store = Store::open(&run_dir).map_err(|e| e.to_string())?;
                log("building rows from the accepted and edited labels".into());
                let mut rows = Vec::new();
                let mut seen = std::collections::HashSet::new();
                for label in store
                    .labels(&LabelFilter::default())
                    .map_err(|e| e.to_string())?
                {
                    if cancel.load(Ordering::Relaxed) {
                        return Err("cancelled".into());
                    }
                    if label.status.is_kept()
                        && seen.insert((label.episode_id, label.idx))
                        && let Some(row) = crate::dataset::build::label_row(&store, &label)
                            .map_err(|e| e.to_string())?
                    {
                        rows.push(row);
                    }
                }
                if rows.is_empty() {
                    return Err("no accepted or edited label to train on".into());
                }
                log(format!("{} rows", rows.len()));
                // The rows are written and recorded with their labels, so the adapter has a
                // lineage like one `leap iterate` trains: numbered after the newest iteration
                // whose episodes the labels correct.
                let iteration = rows
                    .iter()
                    .filter_map(|r| r.meta.as_ref().map(|m| m.iteration + 1))
                    .max()
                    .unwrap_or(0);
                let stem = request
                    .out
                    .file_stem()
                    .map_or_else(|| "workbench".into(), |s| s.to_string_lossy().into_owned());
                let data = run_dir.join("datasets").join(format!("{stem}.jsonl"));
                let settings = serde_json::json!({
                    "labels": "accepted and edited",
                    "epochs": request.epochs,
                    "rank": request.rank,
                    "lr": request.lr,
                    "n_ctx": request.n_ctx,
                });
                let (dataset_id, _) = crate::dataset::build::record_rows(
                    &mut store,
                    &data,
                    DatasetSource::Workbench,
                    iteration,
                    &rows,
                    &settings,
                )
                .map_err(|e| format!("{e:#}"))?;
                log(format!("dataset {} recorded", data.display()));
                let mut config = crate::train::TrainConfig::new(&request.model, &request.out);
                config.epochs = request.epochs;
                config.lora.rank = request.rank;
                config.lora.alpha = 2.0 * request.rank as f32;
                config.lr = request.lr;
                config.n_ctx = request.n_ctx.div_ceil(256) * 256;
                config.gpu_layers = request.gpu_layers;
                let mut on_event = |e: TrainEvent| {
                    let ui = match e {
                        TrainEvent::Status(s) => Ui::Log(s),
                        TrainEvent::Started {
                            rows,
                            tokens,
                            steps,
                            ..
                        } => {
                            let _ = tx.send(Event::Train(Ui::Log(format!(
                                "started: {rows} rows, {tokens} tokens, {steps} steps"
                            ))));
                            Ui::Dataset { rows, tokens }
                        }
                        TrainEvent::Step(p) => Ui::Progress {
                            step: p.step,
                            total: p.steps,
                            epoch: f64::from(p.epoch),
                            loss: Some(p.loss),
                            tokens_per_s: p.tokens_per_s,
                            eta_s: p.eta_s,
                        },
                        TrainEvent::Eval { step, loss } => {
                            let _ = tx.send(Event::Train(Ui::Log(format!(
                                "step {step}: eval loss {loss:.4}"
                            ))));
                            Ui::EvalLoss { step, loss }
                        }
                        TrainEvent::Checkpoint { step, path } => {
                            Ui::Log(format!("checkpoint at step {step}: {}", path.display()))
                        }
                    };
                    let _ = tx.send(Event::Train(ui));
                };
                let summary = crate::train::train(&config, &rows, &cancel, &mut on_event)
                    .map_err(|e| e.to_string())?;
                log(format!(
                    "done: loss {:.4} → {:.4}{}, {:.0} tokens/s, {:.0} s",
                    summary.train_loss_first,
                    summary.train_loss_last,
                    summary
                        .eval_loss
                        .map(|l| format!(", eval {l:.4}"))
                        .unwrap_or_default(),
                    summary.tokens_per_s,
                    summary.seconds
                ));
                let record = serde_json::to_value(&summary).unwrap_or_default();
                store
                    .insert_adapter(
                        None,
                        &summary.adapter.display().to_string(),
                        Some(dataset_id),
                        &request.model.display().to_string(),
                        &record,
                    )
                    .map_err(|e| e.to_string())?;
                Ok(summary.adapter)
            })();
            let _ = tx.send(Event::Train(Ui::Done(result)));
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
            let mut files: Vec<PathBuf> = std::fs::read_dir(run_dir.join("adapters"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
                .collect();
            files.sort();
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
                    let path = std::path::Path::new("(run snapshot)");
                    crate::scenario::parse_text(path, &snap.json)
                        .scenarios
                        .into_iter()
                        .next()
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
