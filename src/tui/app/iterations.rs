//! The Iterations screen: the run's report, as `leap report` makes it; its keys only move.

use super::App;
use super::bindings::Binding;
use crate::tui::action::{Action, Section};
use crate::tui::event::Read;

pub(super) const BINDINGS: &[Binding] = &[Binding::new(Section::Global, Action::Down, |app| {
    app.navigate(Action::Down)
})
.hint("move")];

impl App {
    /// Makes the report again (on a job thread; the screen says "loading…" meanwhile).
    pub fn reload_iterations(&mut self) {
        if self.store.is_some() {
            self.request(Read::Report(self.report_sources.clone()));
        }
    }
}
