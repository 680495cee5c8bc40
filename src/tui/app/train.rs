//! The Train screen's keys: start or cancel training, change its settings, load the adapter it
//! wrote as the student.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::bindings::{Binding, Gate};
use super::{App, global};
use crate::tui::action::{Action, Section};
use crate::tui::jobs;

const T: Section = Section::Train;

fn idle(app: &App) -> Gate {
    Gate::open_if(!app.train.running)
}

/// In the bar's order.
pub(super) const BINDINGS: &[Binding] = &[
    Binding::new(T, Action::CancelJob, App::cancel_job).when(global::can_cancel),
    Binding::new(T, Action::StartTraining, App::start_training).when(|app| {
        let t = &app.train;
        Gate::unless(t.running, "training is already running")
            .and(|| Gate::open_if(t.unavailable.is_none()))
            .and(|| {
                Gate::unless(
                    t.dataset.is_none_or(|(rows, _)| rows == 0),
                    "no accepted or edited label yet: review labels first (screen 3)",
                )
            })
    }),
    Binding::new(T, Action::Increase, |app| app.nudge_setting(true)).when(idle),
    Binding::new(T, Action::Decrease, |app| app.nudge_setting(false)).when(idle),
    Binding::new(T, Action::LoadAdapter, App::load_adapter)
        .when(|app| Gate::unless(app.train.adapter.is_none(), "no adapter trained yet")),
];

impl App {
    /// Moves the selected setting up or down a notch.
    fn nudge_setting(&mut self, up: bool) {
        if let Some(s) = self.train.settings.get_mut(self.train.cursor.selected) {
            s.nudge(up);
        }
    }

    fn load_adapter(&mut self) {
        let adapter = self.train.adapter.clone();
        self.load_student(adapter);
    }

    fn start_training(&mut self) {
        let Some(tx) = self.links.tx.clone() else {
            self.fail("no live session (training is not available in this view)");
            return;
        };
        let stamp = crate::store::now_ms();
        let out =
            crate::run::RunDir::new(&self.run_dir).named_adapter(&format!("workbench-{stamp}"));
        let t = &self.train;
        let request = jobs::TrainRequest {
            model: self.model.clone(),
            out,
            epochs: t.value("epochs") as u32,
            rank: t.value("LoRA rank") as u32,
            lr: t.value("learning rate") as f32,
            n_ctx: t.value("context (tokens)") as u32,
            gpu_layers: t.value("GPU layers") as u32,
            objective: if t.value("update") >= 1.0 {
                crate::train::Objective::Dpo(crate::train::Preference {
                    beta: t.value("DPO beta"),
                    ..Default::default()
                })
            } else {
                crate::train::Objective::Sft
            },
            scenarios: (self.catalog.scenarios.iter())
                .filter(|s| s.split == crate::scenario::Split::Train)
                .cloned()
                .collect(),
            student: self.adapter.clone(),
        };
        let cancel = Arc::new(AtomicBool::new(false));
        self.links.train_cancel = Some(cancel.clone());
        self.train.running = true;
        self.train.progress = Default::default();
        self.train.log.clear();
        self.info(format!("training → {}", request.out.display()));
        jobs::spawn_train(self.run_dir.clone(), request, cancel, tx);
    }

    /// Rows the kept labels make: what training would use.
    pub fn refresh_dataset(&mut self) {
        // One row per step, however many teachers labelled it (as training builds them).
        let kept: std::collections::HashSet<(i64, u32)> = self
            .labels
            .all
            .iter()
            .filter(|l| l.status.is_kept())
            .map(|l| (l.episode_id, l.idx))
            .collect();
        let rows = kept.len() as u64;
        let tokens = match self.train.dataset {
            Some((r, tokens)) if r == rows => tokens,
            _ => None,
        };
        self.train.dataset = Some((rows, tokens));
    }
}
