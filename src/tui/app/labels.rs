//! The Labels screen's keys: accept, reject or edit the teacher's label, undo, accept all shown,
//! filter the list, open a label's episode.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::bindings::{Binding, Gate};
use super::overlays::focus;
use super::{App, Overlay, Screen};
use crate::store::Decision;
use crate::tui::action::{Action, Section};
use crate::tui::event::Read;
use crate::tui::jobs;
use crate::tui::screens::labels::{EditTarget, Editor};

const L: Section = Section::Labels;

fn selected(app: &App) -> Gate {
    Gate::open_if(app.labels.selected().is_some())
}

/// In the bar's order; the iteration filter is in the help only (the bar is full).
pub(super) const BINDINGS: &[Binding] = &[
    Binding::new(L, Action::Accept, |app| app.decide(Decision::Accept)).when(selected),
    Binding::new(L, Action::Reject, |app| app.decide(Decision::Reject)).when(selected),
    Binding::new(L, Action::Edit, App::edit).when(selected),
    Binding::new(L, Action::Undo, App::undo).when(|app| {
        Gate::unless(
            app.bulk.is_some(),
            "wait for the bulk accept to end (or cancel it) before undoing",
        )
        .and(|| Gate::unless(app.labels.undo.is_empty(), "nothing to undo"))
    }),
    Binding::new(L, Action::AcceptAll, App::accept_all).when(|app| {
        Gate::unless(app.bulk.is_some(), "a bulk accept is already running").and(|| {
            Gate::unless(
                app.labels.pending_shown().is_empty(),
                "no pending label among those shown",
            )
        })
    }),
    Binding::new(L, Action::CycleStatus, |app| {
        app.labels.cycle_status();
        app.labels.refilter();
    }),
    Binding::new(L, Action::ToggleDiffering, |app| {
        app.labels.differing = !app.labels.differing;
        app.labels.refilter();
    }),
    Binding::new(L, Action::ToggleLeaking, |app| {
        app.labels.leaking = !app.labels.leaking;
        app.labels.refilter();
    }),
    Binding::new(L, Action::Filter, App::open_filter),
    Binding::new(L, Action::ShowEpisode, App::show_episode)
        .when(selected)
        .hint("episode"),
    Binding::new(L, Action::CycleIteration, |app| {
        app.labels.cycle_iteration();
        app.labels.refilter();
    })
    .hidden(),
];

impl App {
    fn edit(&mut self) {
        if let Some(l) = self.labels.selected() {
            let mut editor = Editor::new(l);
            focus(&mut editor);
            self.overlay = Some(Overlay::Editor(Box::new(editor)));
        }
    }

    /// Asks before accepting every pending label the filters show.
    fn accept_all(&mut self) {
        let ids = self.labels.pending_shown();
        self.overlay = Some(Overlay::ConfirmBulk(ids));
    }

    /// Opens the selected label's episode at its step.
    fn show_episode(&mut self) {
        if let Some(l) = self.labels.selected() {
            let (id, idx) = (l.episode_id, l.idx as usize);
            self.open_episode_at(id, Some(idx));
            self.go(Screen::Episode);
        }
    }

    fn decide(&mut self, decision: Decision) {
        let Some(id) = self.labels.selected().map(|l| l.id) else {
            return;
        };
        self.apply_decision(id, decision);
    }

    fn apply_decision(&mut self, id: i64, decision: Decision) -> bool {
        let Some(store) = self.store.as_mut() else {
            return false;
        };
        match store.decide(id, &decision, &self.by) {
            Ok(label) => {
                self.info(format!("label {id} {}", label.status));
                self.show_label(label);
                self.labels.undo.push(vec![id]);
                self.labels.refilter();
                self.refresh_dataset();
                true
            }
            Err(e) => {
                self.fail(e.to_string());
                false
            }
        }
    }

    pub(super) fn save_edit(&mut self) {
        let Some(Overlay::Editor(editor)) = &self.overlay else {
            return;
        };
        let EditTarget::Label(id) = editor.target else {
            return;
        };
        let decision = Decision::Edit {
            reason: editor.reason_text(),
            action: editor.action_text(),
        };
        let Some(store) = self.store.as_mut() else {
            return;
        };
        match store.decide(id, &decision, &self.by) {
            Ok(label) => {
                self.overlay = None;
                self.info(format!("label {id} edited"));
                self.show_label(label);
                self.labels.undo.push(vec![id]);
                self.labels.refilter();
                self.refresh_dataset();
            }
            Err(e) => {
                // The store names its file; in the editor the reason is enough.
                let why = match e {
                    crate::store::StoreError::Invalid { what, .. } => what,
                    other => other.to_string(),
                };
                if let Some(Overlay::Editor(editor)) = &mut self.overlay {
                    editor.error = Some(why);
                }
            }
        }
    }

    /// Undoes the newest entry of the undo list: one decision here, many (a bulk accept's) on a
    /// job thread.
    fn undo(&mut self) {
        let Some(ids) = self.labels.undo.pop() else {
            return;
        };
        if ids.len() > 1
            && let Some(tx) = self.links.tx.clone()
        {
            let cancel = Arc::new(AtomicBool::new(false));
            self.links.bulk_cancel = Some(cancel.clone());
            self.bulk = Some((0, ids.len()));
            self.labels.undoing = true;
            jobs::spawn_bulk_undo(self.run_dir.clone(), ids, cancel, tx);
            return;
        }
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let mut undone = Vec::new();
        let mut error = None;
        for id in ids.iter().rev() {
            match store.undo_label(*id) {
                Ok(label) => undone.push(label),
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        let n = undone.len();
        for label in undone {
            self.show_label(label);
        }
        self.labels.refilter();
        self.refresh_dataset();
        self.said_undone(n, error);
    }

    pub(super) fn said_undone(&mut self, n: usize, error: Option<String>) {
        match error {
            Some(e) => self.fail(format!("undo: {e}")),
            None => self.info(format!(
                "undid {n} decision{}",
                if n == 1 { "" } else { "s" }
            )),
        }
    }

    pub(super) fn start_bulk(&mut self, ids: Vec<i64>) {
        let Some(tx) = self.links.tx.clone() else {
            // Without worker threads (tests), accept in place.
            let mut done = Vec::new();
            for id in ids {
                if let Some(store) = self.store.as_mut()
                    && let Ok(label) = store.decide(id, &Decision::Accept, &self.by)
                {
                    self.show_label(label);
                    done.push(id);
                }
            }
            let n = done.len();
            self.labels.undo.push(done);
            self.labels.refilter();
            self.refresh_dataset();
            self.info(format!("accepted {n} labels"));
            return;
        };
        let cancel = Arc::new(AtomicBool::new(false));
        self.links.bulk_cancel = Some(cancel.clone());
        self.bulk = Some((0, ids.len()));
        jobs::spawn_bulk_accept(self.run_dir.clone(), ids, self.by.clone(), cancel, tx);
    }

    /// Reads every label again (on a job thread; the screen says "loading…" meanwhile).
    pub fn reload_labels(&mut self) {
        if self.store.is_some() {
            self.request(Read::Labels);
        }
    }
}
