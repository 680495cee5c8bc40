//! What the worker threads report (the session, the file watcher, the teacher, bulk accepts,
//! training), applied to the state.

use super::{App, Phase};
use crate::scenario::Loaded;
use crate::session::SessionEvent;
use crate::store::Label;
use crate::teacher::CorrectionReport;
use crate::teacher::live::Answer;
use crate::tui::event::{BulkEvent, Event, TrainEvent};

impl App {
    /// Applies one event: a key or the mouse (through [`App::update`]), or a worker's report.
    pub fn handle(&mut self, event: Event) {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Mouse(m) => self.on_mouse(m),
            Event::Resize | Event::Tick => {}
            Event::Session(e) => self.on_session(e),
            Event::Scenarios(loaded) => self.on_scenarios(loaded),
            Event::Teacher { episode_id, result } => self.on_teacher(episode_id, result),
            Event::LiveTeacher(answer) => self.on_live_teacher(answer),
            Event::Bulk(b) => self.on_bulk(b),
            Event::Train(t) => self.on_train(t),
            Event::Loop(e) => self.on_loop(e),
            Event::Read {
                ticket,
                read,
                result,
            } => self.on_read(ticket, read, result),
        }
    }

    fn on_scenarios(&mut self, loaded: Loaded) {
        let before = self.catalog.problems.len();
        self.catalog.update(loaded);
        self.scenarios.refilter(&self.catalog);
        let n = self.catalog.problems.len();
        if n > 0 {
            self.fail(format!(
                "scenario files reloaded: {n} problem{} (see the Scenarios screen)",
                if n == 1 { "" } else { "s" }
            ));
        } else {
            self.info(format!(
                "scenario files reloaded: {} scenarios{}",
                self.catalog.scenarios.len(),
                if before > 0 { ", no problems left" } else { "" }
            ));
        }
    }

    fn on_teacher(
        &mut self,
        episode_id: i64,
        result: Result<(CorrectionReport, Vec<Label>), crate::tui::jobs::JobError>,
    ) {
        self.episode.teacher_busy = false;
        match result {
            Ok((report, labels)) => {
                if self.episode.episode_id == Some(episode_id) {
                    self.episode.set_labels(labels);
                }
                if report.correction_id.is_none() {
                    self.info("this teacher had already corrected the episode");
                } else {
                    self.info(format!(
                        "teacher: {} labels, {} differ from the student, {} leak, {} failed",
                        report.labels, report.changed, report.leaks, report.failures
                    ));
                }
                self.reload_labels();
            }
            Err(e) => self.fail(e.to_string()),
        }
    }

    /// Shows a live answer beside its step, unless it is for an episode (or a teacher) left
    /// behind.
    fn on_live_teacher(&mut self, answer: Answer) {
        if answer.generation != self.episode.generation {
            return;
        }
        self.episode.live.insert(answer.step, answer);
    }

    fn on_bulk(&mut self, b: BulkEvent) {
        match b {
            BulkEvent::Progress { done, total } => self.bulk = Some((done, total)),
            BulkEvent::Decided(label) => self.show_label(*label),
            BulkEvent::Done { ids, error } => {
                self.bulk = None;
                self.links.bulk_cancel = None;
                let n = ids.len();
                if !ids.is_empty() {
                    self.labels.undo.push(ids);
                }
                self.labels.refilter();
                self.refresh_dataset();
                match error {
                    Some(e) => self.fail(format!("bulk accept: {n} accepted, then {e}")),
                    None => self.info(format!("accepted {n} labels")),
                }
            }
            BulkEvent::Undone {
                undone,
                rest,
                error,
            } => {
                self.bulk = None;
                self.labels.undoing = false;
                self.links.bulk_cancel = None;
                if !rest.is_empty() {
                    self.labels.undo.push(rest);
                }
                self.labels.refilter();
                self.refresh_dataset();
                self.said_undone(undone, error);
            }
        }
    }

    fn on_session(&mut self, e: SessionEvent) {
        // Steps of an old episode (before a reset is confirmed), or of the live one while a
        // stored episode is shown, do not touch the screen.
        let stale = self.awaiting_start || matches!(self.episode.phase, Phase::Stored { .. });
        match e {
            SessionEvent::Loading { what } => {
                self.info(format!("loading {what}…"));
                self.student_loading = Some(what);
            }
            SessionEvent::Loaded { policy } => {
                self.student_loading = None;
                self.info(format!("student ready: {policy}"));
                self.episode.policy = format!("{policy} ({})", self.student_settings());
            }
            SessionEvent::Started {
                observation,
                seed,
                horizon,
                branch,
                ..
            } => {
                self.awaiting_start = false;
                if let Some(branch) = branch {
                    self.episode
                        .start_branch(observation, seed, horizon, branch);
                }
            }
            SessionEvent::Generating { .. }
            | SessionEvent::Token { .. }
            | SessionEvent::Replayed { .. }
            | SessionEvent::StepFinished { .. }
                if stale => {}
            SessionEvent::Replayed { steps } => {
                self.episode.replayed(steps);
                self.episode.refresh_privileged();
                self.ask_live_teacher_all();
            }
            SessionEvent::Finished { key, .. } if stale => {
                self.info(format!("the live episode ended and was stored as {key}"));
            }
            SessionEvent::Generating { index } => {
                self.episode.phase = Phase::Generating(index);
                self.episode.streaming.clear();
                if self.episode.follow {
                    self.episode.cursor.selected = index;
                }
            }
            SessionEvent::Token { text } => self.episode.streaming.push_str(&text),
            SessionEvent::StepFinished { index, step } => {
                self.episode.push_step(*step);
                self.episode.phase = Phase::Ready;
                self.episode.refresh_privileged();
                self.ask_live_teacher(index);
            }
            SessionEvent::Finished {
                episode_id,
                key,
                won,
                steps,
            } => {
                self.episode.phase = Phase::Finished { won };
                self.episode.running = false;
                self.episode.episode_id = Some(episode_id);
                self.info(format!(
                    "episode {} after {steps} steps; stored as {key}",
                    if won { "won" } else { "not won" }
                ));
                self.episode.key = Some(key);
                self.reload_iterations();
            }
            SessionEvent::Idle => {
                self.episode.running = false;
                if matches!(self.episode.phase, Phase::Generating(_)) {
                    self.episode.phase = Phase::Ready;
                }
            }
            SessionEvent::Error { message } => {
                // A branch that failed never starts.
                self.awaiting_start = false;
                self.episode.running = false;
                if matches!(self.episode.phase, Phase::Generating(_)) {
                    self.episode.phase = Phase::Ready;
                }
                self.student_loading = None;
                self.fail(message);
            }
        }
    }

    fn on_train(&mut self, t: TrainEvent) {
        match t {
            TrainEvent::Log(line) => self.train.log_line(line),
            TrainEvent::Dataset { rows, tokens } => {
                self.train.dataset = Some((rows as u64, Some(tokens as u64)));
            }
            TrainEvent::Progress {
                step,
                total,
                epoch,
                loss,
                tokens_per_s,
                eta_s,
            } => {
                let p = &mut self.train.progress;
                p.step = step;
                p.total = total;
                p.epoch = epoch;
                p.tokens_per_s = tokens_per_s;
                p.eta_s = eta_s;
                if let Some(l) = loss {
                    p.loss.push((step as f64, l));
                }
            }
            TrainEvent::EvalLoss { step, loss } => {
                self.train.progress.eval_loss.push((step as f64, loss));
            }
            TrainEvent::Done(result) => {
                self.train.running = false;
                self.links.train_cancel = None;
                match result {
                    Ok(path) => {
                        self.info(format!("adapter written: {}", path.display()));
                        self.train.adapter = Some(path);
                        self.reload_iterations();
                    }
                    Err(e) => self.fail(format!("training: {e}")),
                }
            }
        }
    }
}
