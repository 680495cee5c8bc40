//! The Iterations screen: the run's report, as `leap report` makes it, and the LEAP loop
//! (`leap iterate`) and evaluations (`leap eval`) started, watched and cancelled from here.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::bindings::{Binding, Gate};
use super::{App, global};
use crate::eval::EvalOptions;
use crate::leap::LoopOptions;
use crate::train::record::{TrainOptions, UpdateOptions};
use crate::tui::action::{Action, Section};
use crate::tui::event::{LoopEnd, LoopJobEvent, Read};
use crate::tui::jobs;
use crate::tui::screens::iterations::{CURATIONS, JobKind, StageNow, curation_name};

const I: Section = Section::Iterations;

fn idle(app: &App) -> Gate {
    Gate::unless(
        app.iterations.job.running.is_some(),
        "a loop or evaluation is already running (x cancels it)",
    )
}

fn no_session(app: &App) -> Gate {
    Gate::unless(
        app.links.tx.is_none(),
        "no live session (the loop is not available in this view)",
    )
}

/// In the bar's order.
pub(super) const BINDINGS: &[Binding] = &[
    Binding::new(I, Action::CancelJob, App::cancel_job).when(global::can_cancel),
    Binding::new(I, Action::StartLoop, App::start_loop)
        .when(|app| idle(app).and(|| no_session(app))),
    Binding::new(I, Action::StartEval, App::start_eval)
        .when(|app| idle(app).and(|| no_session(app))),
    Binding::new(I, Action::Increase, |app| app.nudge_iterations(true))
        .when(idle)
        .hint("more iterations"),
    Binding::new(I, Action::Decrease, |app| app.nudge_iterations(false))
        .when(idle)
        .hint("fewer"),
    Binding::new(I, Action::CycleCuration, App::cycle_curation).when(idle),
    Binding::new(Section::Global, Action::Down, |app| {
        app.navigate(Action::Down)
    })
    .hint("move"),
];

/// The most iterations the screen offers.
const MAX_ITERS: u32 = 20;

impl App {
    /// Makes the report again (on a job thread; the screen says "loading…" meanwhile).
    pub fn reload_iterations(&mut self) {
        if self.store.is_some() {
            self.request(Read::Report(self.report_sources.clone()));
        }
        // What the loop would run with, shown before it starts.
        let job = &self.iterations.job;
        if job.running.is_none() && job.shown == JobKind::Loop {
            self.iterations.job.settings = self.loop_settings(&self.loop_options());
        }
    }

    fn nudge_iterations(&mut self, up: bool) {
        let job = &mut self.iterations.job;
        job.iters = if up {
            (job.iters + 1).min(MAX_ITERS)
        } else {
            job.iters.saturating_sub(1)
        };
    }

    fn cycle_curation(&mut self) {
        let job = &mut self.iterations.job;
        let i = CURATIONS
            .iter()
            .position(|c| *c == job.curation)
            .unwrap_or(0);
        job.curation = CURATIONS[(i + 1) % CURATIONS.len()];
    }

    /// The loop's settings: `leap iterate`'s defaults, on the workbench's scenarios, model,
    /// horizon and GPU layers, with the screen's iterations and curation.
    pub fn loop_options(&self) -> LoopOptions {
        let defaults = LoopOptions::default();
        let update = UpdateOptions {
            train: TrainOptions {
                gpu_layers: self.gpu_layers,
                ..defaults.update.train.clone()
            },
            ..defaults.update.clone()
        };
        LoopOptions {
            scenarios: self.catalog.paths.clone(),
            iters: self.iterations.job.iters,
            model: Some(self.model.clone()),
            curation: self.iterations.job.curation,
            horizon: self.horizon,
            gpu_layers: self.gpu_layers,
            update,
            ..defaults
        }
    }

    /// `leap eval`'s options for the current student, on the workbench's model, horizon and GPU
    /// layers.
    pub fn eval_request(&self) -> jobs::EvalRequest {
        jobs::EvalRequest {
            scenarios: self.catalog.paths.clone(),
            adapter: self.adapter.clone(),
            history: crate::agent::prompt::DEFAULT_HISTORY,
            options: EvalOptions {
                model: Some(self.model.clone()),
                horizon: self.horizon,
                gpu_layers: self.gpu_layers,
                ..EvalOptions::default()
            },
        }
    }

    /// Clears the panel for a new job of `kind` and hands back its cancel flag.
    fn begin_job(&mut self, kind: JobKind, settings: Vec<(String, String)>) -> Arc<AtomicBool> {
        let cancel = Arc::new(AtomicBool::new(false));
        self.links.loop_cancel = Some(cancel.clone());
        let job = &mut self.iterations.job;
        job.running = Some((kind, Instant::now()));
        job.shown = kind;
        job.settings = settings;
        job.stage = None;
        job.resuming.clear();
        job.log.clear();
        job.outcome = None;
        cancel
    }

    /// The settings `o` shows on the screen, as (name, value).
    fn loop_settings(&self, o: &LoopOptions) -> Vec<(String, String)> {
        let t = &o.update.train;
        let teacher = match &o.teacher {
            crate::teacher::TeacherSpec::Oracle { privilege, .. } => format!("oracle@{privilege}"),
            other => format!("{other:?}"),
        };
        vec![
            ("model".into(), super::file_name(&self.model)),
            ("scenarios".into(), paths(&o.scenarios)),
            ("teacher".into(), teacher),
            (
                "episodes per iteration".into(),
                o.episodes_per_iter.to_string(),
            ),
            (
                "test scenarios".into(),
                if o.test_limit == 0 {
                    "all".into()
                } else {
                    o.test_limit.to_string()
                },
            ),
            ("horizon".into(), horizon(o.horizon)),
            ("parallel".into(), o.parallel.to_string()),
            ("GPU layers".into(), o.gpu_layers.to_string()),
            (
                "training".into(),
                format!(
                    "{} epochs, rank {}, lr {:e}, ctx {}, {:?} aggregation{}",
                    t.epochs,
                    t.lora.rank,
                    t.lr,
                    t.ctx,
                    o.update.aggregate,
                    if o.update.warm_start {
                        ", warm start"
                    } else {
                        ""
                    }
                ),
            ),
            ("baselines".into(), o.baselines.to_string()),
        ]
    }

    fn start_loop(&mut self) {
        let Some(tx) = self.links.tx.clone() else {
            return;
        };
        let o = self.loop_options();
        let settings = self.loop_settings(&o);
        let cancel = self.begin_job(JobKind::Loop, settings);
        self.info(format!(
            "the LEAP loop: {} iteration{} after behaviour cloning, curation {}",
            o.iters,
            if o.iters == 1 { "" } else { "s" },
            curation_name(o.curation)
        ));
        jobs::spawn_loop(self.run_dir.clone(), o, cancel, tx);
    }

    fn start_eval(&mut self) {
        let Some(tx) = self.links.tx.clone() else {
            return;
        };
        let request = self.eval_request();
        let o = &request.options;
        let settings = vec![
            ("model".into(), super::file_name(&self.model)),
            (
                "student".into(),
                request
                    .adapter
                    .as_deref()
                    .map_or_else(|| "the run's latest adapter".into(), super::file_name),
            ),
            ("split".into(), o.split.as_str().into()),
            ("scenarios".into(), paths(&request.scenarios)),
            ("horizon".into(), horizon(o.horizon)),
            ("parallel".into(), o.parallel.to_string()),
            ("GPU layers".into(), o.gpu_layers.to_string()),
        ];
        let cancel = self.begin_job(JobKind::Eval, settings);
        self.info("evaluating the current student on the test split");
        jobs::spawn_eval(self.run_dir.clone(), request, cancel, tx);
    }

    /// Applies what the loop or evaluation job reports.
    pub(super) fn on_loop(&mut self, e: LoopJobEvent) {
        let job = &mut self.iterations.job;
        match e {
            LoopJobEvent::Resuming(done) => {
                job.resuming = done;
            }
            LoopJobEvent::Stage { iteration, stage } => {
                job.stage = Some(StageNow {
                    name: jobs::stage_name(iteration, &stage),
                    started: Instant::now(),
                    progress: None,
                });
            }
            LoopJobEvent::Progress { done, total, unit } => {
                if let Some(stage) = &mut job.stage {
                    stage.progress = Some((done, total, unit));
                }
            }
            LoopJobEvent::Finished {
                iteration,
                stage,
                seconds,
            } => {
                job.log_line(format!(
                    "done: {} ({seconds:.1} s)",
                    jobs::stage_name(iteration, &stage)
                ));
                self.reload_iterations();
            }
            LoopJobEvent::Log(line) => job.log_line(line),
            LoopJobEvent::Done(result) => {
                let kind = job.running.take().map(|(k, _)| k);
                job.stage = None;
                self.links.loop_cancel = None;
                let what = kind.map_or("the job", JobKind::name);
                match result {
                    Ok(LoopEnd::Finished) => {
                        job.outcome = Some("loop finished".into());
                        self.info("the LEAP loop finished");
                    }
                    Ok(LoopEnd::WaitingForLabels { iteration, pending }) => {
                        let text = format!(
                            "iteration {iteration} waits for {pending} labels: decide them on the Labels screen, then start again"
                        );
                        job.outcome = Some(text.clone());
                        self.info(text);
                        self.reload_labels();
                    }
                    Ok(LoopEnd::Evaluated(summary)) => {
                        job.outcome = Some(format!("evaluated: {summary}"));
                        self.info(format!("evaluated: {summary}"));
                    }
                    Err(e) => {
                        job.outcome = Some(format!(
                            "stopped: {e} (start again to resume after the stages done)"
                        ));
                        self.fail(format!("{what}: {e}"));
                    }
                }
                self.reload_iterations();
            }
        }
    }
}

fn paths(paths: &[std::path::PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn horizon(horizon: Option<u32>) -> String {
    horizon.map_or_else(|| "each scenario's".into(), |h| h.to_string())
}
