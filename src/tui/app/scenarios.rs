//! The Scenarios screen's keys: play the selected scenario, filter and narrow the list, show the
//! privileged state.

use super::bindings::{Binding, Gate};
use super::{App, Screen};
use crate::tui::action::{Action, Section};

const S: Section = Section::Scenarios;

/// In the bar's order.
pub(super) const BINDINGS: &[Binding] = &[
    Binding::new(S, Action::Play, App::play_selected)
        .when(|app| Gate::open_if(app.scenarios.selected(&app.catalog).is_some())),
    Binding::new(S, Action::Filter, App::open_filter),
    Binding::new(S, Action::CycleSplit, |app| {
        app.scenarios.cycle_split();
        app.scenarios.refilter(&app.catalog);
    }),
    Binding::new(S, Action::CycleKind, |app| {
        app.scenarios.cycle_kind(&app.catalog);
        app.scenarios.refilter(&app.catalog);
    }),
    Binding::new(S, Action::TogglePrivileged, |app| {
        app.scenarios.show_privileged = !app.scenarios.show_privileged;
        app.scenarios.refresh_privileged(&app.catalog);
    }),
];

impl App {
    /// Plays the selected scenario on the Episode screen.
    fn play_selected(&mut self) {
        if let Some(s) = self.scenarios.selected(&self.catalog).cloned() {
            self.play(s);
            self.go(Screen::Episode);
        }
    }
}
