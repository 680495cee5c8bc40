//! The keys of every screen: quitting, help, moving between screens and rows, closing the
//! message, cancelling jobs.

use std::sync::atomic::Ordering;

use super::bindings::{Binding, Gate};
use super::{App, Overlay, Screen};
use crate::session::Command;
use crate::tui::action::{Action, Section};

const G: Section = Section::Global;

/// In the bar's order; those without a hint are in the help.
pub(super) const BINDINGS: &[Binding] = &[
    Binding::new(G, Action::CancelJob, App::cancel_job).when(can_cancel),
    Binding::new(G, Action::NextScreen, App::next_screen).hint("screen"),
    Binding::new(G, Action::Help, App::open_help),
    Binding::new(G, Action::Quit, App::quit),
    Binding::new(G, Action::PrevScreen, App::prev_screen).hidden(),
    Binding::new(G, Action::ScenariosScreen, |app| app.go(Screen::Scenarios)).hidden(),
    Binding::new(G, Action::EpisodeScreen, |app| app.go(Screen::Episode)).hidden(),
    Binding::new(G, Action::LabelsScreen, |app| app.go(Screen::Labels)).hidden(),
    Binding::new(G, Action::TrainScreen, |app| app.go(Screen::Train)).hidden(),
    Binding::new(G, Action::IterationsScreen, |app| {
        app.go(Screen::Iterations)
    })
    .hidden(),
    Binding::new(G, Action::Up, |app| app.navigate(Action::Up)).hidden(),
    Binding::new(G, Action::Down, |app| app.navigate(Action::Down)).hidden(),
    Binding::new(G, Action::PageUp, |app| app.navigate(Action::PageUp)).hidden(),
    Binding::new(G, Action::PageDown, |app| app.navigate(Action::PageDown)).hidden(),
    Binding::new(G, Action::Top, |app| app.navigate(Action::Top)).hidden(),
    Binding::new(G, Action::Bottom, |app| app.navigate(Action::Bottom)).hidden(),
    Binding::new(G, Action::Dismiss, App::dismiss).hidden(),
];

pub(super) fn can_cancel(app: &App) -> Gate {
    Gate::open_if(app.cancellable_job())
}

impl App {
    pub(super) fn quit(&mut self) {
        let jobs = self.running_jobs();
        if jobs.is_empty() {
            self.stop_jobs();
            self.should_quit = true;
        } else {
            self.overlay = Some(Overlay::ConfirmQuit(jobs));
        }
    }

    fn open_help(&mut self) {
        self.overlay = Some(Overlay::Help);
    }

    fn next_screen(&mut self) {
        self.shift_screen(1);
    }

    fn prev_screen(&mut self) {
        self.shift_screen(Screen::ALL.len() - 1);
    }

    fn shift_screen(&mut self, by: usize) {
        let i = Screen::ALL
            .iter()
            .position(|s| *s == self.screen)
            .unwrap_or(0);
        self.go(Screen::ALL[(i + by) % Screen::ALL.len()]);
    }

    pub(super) fn go(&mut self, screen: Screen) {
        self.screen = screen;
        match screen {
            Screen::Iterations => self.reload_iterations(),
            Screen::Train => self.refresh_dataset(),
            _ => {}
        }
    }

    pub(super) fn navigate(&mut self, action: Action) {
        let (cursor, len) = match self.screen {
            Screen::Scenarios => (&mut self.scenarios.cursor, self.scenarios.visible.len()),
            Screen::Episode => {
                self.episode.follow = false;
                (&mut self.episode.cursor, self.episode.steps.len())
            }
            Screen::Labels => (&mut self.labels.cursor, self.labels.visible.len()),
            Screen::Train => (&mut self.train.cursor, self.train.settings.len()),
            Screen::Iterations => {
                let len = self.iterations.rows().len();
                (&mut self.iterations.cursor, len)
            }
        };
        match action {
            Action::Up => cursor.up(1),
            Action::Down => cursor.down(1, len),
            Action::PageUp => cursor.up(cursor.page()),
            Action::PageDown => cursor.down(cursor.page(), len),
            Action::Top => cursor.top(),
            Action::Bottom => cursor.bottom(len),
            _ => {}
        }
        match self.screen {
            Screen::Scenarios => self.scenarios.refresh_privileged(&self.catalog),
            Screen::Episode => {
                if action == Action::Bottom {
                    self.episode.follow = true;
                }
                self.episode.refresh_privileged();
            }
            _ => {}
        }
    }

    /// Closes the message, else clears the filter.
    fn dismiss(&mut self) {
        if self.note.is_some() {
            self.note = None;
        } else {
            self.set_filter(String::new());
        }
    }

    pub(super) fn set_filter(&mut self, text: String) {
        match self.screen {
            Screen::Scenarios => {
                self.scenarios.filter = text;
                self.scenarios.refilter(&self.catalog);
            }
            Screen::Labels => {
                self.labels.filter = text;
                self.labels.refilter();
            }
            _ => {}
        }
    }

    /// Opens the filter of the current screen with its text.
    pub(super) fn open_filter(&mut self) {
        let current = match self.screen {
            Screen::Scenarios => self.scenarios.filter.clone(),
            Screen::Labels => self.labels.filter.clone(),
            _ => return,
        };
        self.overlay = Some(Overlay::Filter(current));
    }

    pub(super) fn cancel_job(&mut self) {
        let mut cancelled = Vec::new();
        if let Some(c) = &self.links.train_cancel {
            c.store(true, Ordering::Relaxed);
            cancelled.push("training");
        }
        if let Some(c) = &self.links.loop_cancel {
            c.store(true, Ordering::Relaxed);
            cancelled.push("the loop or evaluation");
        }
        if let Some(c) = &self.links.bulk_cancel {
            c.store(true, Ordering::Relaxed);
            cancelled.push("bulk accept");
        }
        if self.episode.running {
            self.episode.running = false;
            self.send(Command::Pause);
            cancelled.push("run");
        }
        if cancelled.is_empty() {
            self.info("no job to cancel");
        } else {
            self.info(format!("cancelling: {}", cancelled.join(", ")));
        }
    }

    /// Asks every job to stop (quitting).
    pub(super) fn stop_jobs(&mut self) {
        for c in [
            &self.links.train_cancel,
            &self.links.bulk_cancel,
            &self.links.loop_cancel,
        ]
        .into_iter()
        .flatten()
        {
            c.store(true, Ordering::Relaxed);
        }
        if let Some(s) = &self.links.session {
            s.send(Command::Pause);
        }
    }

    /// Sends a command to the live session; without one, says so.
    pub(super) fn send(&mut self, command: Command) {
        let sent = self.links.session.as_ref().is_some_and(|s| s.send(command));
        if !sent {
            self.episode.running = false;
            self.fail("no live session (the student is not running in this view)");
        }
    }
}
