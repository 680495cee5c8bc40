//! Key bindings as the app acts on them: for each place the keys can be, a table of what each
//! action does, when it does it, and what the bottom bar calls it. [`App::update`] and
//! [`App::hints`] read the same tables, so a hint is shown exactly when its key does something.

use std::borrow::Cow;

use super::{
    App, Overlay, Screen, episode, global, iterations, labels, overlays, scenarios, train,
};
use crate::tui::action::{Action, Section};
use crate::tui::keys::Key;

/// Whether an action does something now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Nothing to do (no row selected, the episode is not at a step); nothing to say either.
    Closed,
    /// Not now, for this reason (shown as the message).
    Refused(&'static str),
}

impl Gate {
    pub fn open_if(open: bool) -> Gate {
        if open { Gate::Open } else { Gate::Closed }
    }

    /// Open unless `refused`, then refused for `why`.
    pub fn unless(refused: bool, why: &'static str) -> Gate {
        if refused {
            Gate::Refused(why)
        } else {
            Gate::Open
        }
    }

    /// This gate if open, else `other`.
    pub fn and(self, other: impl FnOnce() -> Gate) -> Gate {
        match self {
            Gate::Open => other(),
            closed => closed,
        }
    }
}

/// What the bottom bar says for a binding.
#[derive(Clone, Copy)]
pub enum Hint {
    /// Not in the bar (it is in the help).
    Hidden,
    /// The action's own label.
    Label,
    Text(&'static str),
    /// A word that depends on the state ("run" or "pause").
    Dynamic(fn(&App) -> &'static str),
}

/// One action in one place: the keymap section its keys come from, what it does, when, and its
/// hint.
#[derive(Clone, Copy)]
pub struct Binding {
    pub section: Section,
    pub action: Action,
    pub run: fn(&mut App),
    pub when: fn(&App) -> Gate,
    pub hint: Hint,
}

fn always(_: &App) -> Gate {
    Gate::Open
}

impl Binding {
    /// Always open, hinted with the action's label.
    pub const fn new(section: Section, action: Action, run: fn(&mut App)) -> Binding {
        Binding {
            section,
            action,
            run,
            when: always,
            hint: Hint::Label,
        }
    }

    pub const fn when(mut self, when: fn(&App) -> Gate) -> Binding {
        self.when = when;
        self
    }

    pub const fn hint(mut self, text: &'static str) -> Binding {
        self.hint = Hint::Text(text);
        self
    }

    pub const fn hint_by(mut self, text: fn(&App) -> &'static str) -> Binding {
        self.hint = Hint::Dynamic(text);
        self
    }

    pub const fn hidden(mut self) -> Binding {
        self.hint = Hint::Hidden;
        self
    }
}

impl App {
    /// The tables in force here, the first first: a screen's own bindings before the global
    /// ones, an overlay's alone.
    fn tables(&self) -> Vec<&'static [Binding]> {
        match &self.overlay {
            Some(Overlay::Help) => vec![overlays::HELP],
            Some(Overlay::ConfirmQuit(_) | Overlay::ConfirmBulk(_)) => vec![overlays::CONFIRM],
            Some(Overlay::Filter(_)) => vec![overlays::FILTER],
            Some(Overlay::Editor(_)) => vec![overlays::EDITOR],
            Some(Overlay::Picker(_)) => vec![overlays::PICKER],
            None => {
                let screen = match self.screen {
                    Screen::Scenarios => scenarios::BINDINGS,
                    Screen::Episode => episode::BINDINGS,
                    Screen::Labels => labels::BINDINGS,
                    Screen::Train => train::BINDINGS,
                    Screen::Iterations => iterations::BINDINGS,
                };
                vec![screen, global::BINDINGS]
            }
        }
    }

    /// The bindings in force, in the bar's order; of two for one action the first stands (a
    /// screen's own over the global one).
    pub fn bindings(&self) -> Vec<&'static Binding> {
        let mut found: Vec<&'static Binding> = Vec::new();
        for b in self.tables().into_iter().flatten() {
            if !found.iter().any(|f| f.action == b.action) {
                found.push(b);
            }
        }
        found
    }

    /// The binding of `action` here, if it has one.
    pub fn binding(&self, action: Action) -> Option<&'static Binding> {
        self.bindings().into_iter().find(|b| b.action == action)
    }

    /// The keymap sections a key is looked up in here, the first first. The editor and the
    /// filter take no global key: the others are typed.
    fn key_sections(&self) -> Vec<Section> {
        match &self.overlay {
            Some(Overlay::Help) => vec![Section::Global],
            Some(Overlay::ConfirmQuit(_) | Overlay::ConfirmBulk(_)) => {
                vec![Section::Confirm, Section::Global]
            }
            Some(Overlay::Filter(_) | Overlay::Editor(_)) => vec![Section::Editor],
            Some(Overlay::Picker(_)) => vec![Section::Editor, Section::Global],
            None => vec![self.screen.section(), Section::Global],
        }
    }

    /// The action `key` asks for here: the first section that binds the key to an action this
    /// place has.
    pub fn action_for(&self, key: Key) -> Option<Action> {
        let bindings = self.bindings();
        self.key_sections().into_iter().find_map(|section| {
            let action = self.keymap.action(section, key)?;
            bindings
                .iter()
                .any(|b| b.action == action)
                .then_some(action)
        })
    }

    /// The bottom bar: each open, hinted binding with the first of its keys that asks for it
    /// here.
    pub fn hints(&self) -> Vec<(Key, Cow<'static, str>)> {
        self.bindings()
            .into_iter()
            .filter(|b| (b.when)(self) == Gate::Open)
            .filter_map(|b| {
                let label = match b.hint {
                    Hint::Hidden => return None,
                    Hint::Label => b.action.label(),
                    Hint::Text(text) => text,
                    Hint::Dynamic(text) => text(self),
                };
                let key = self
                    .keymap
                    .keys(b.section, b.action)
                    .iter()
                    .copied()
                    .find(|k| self.action_for(*k) == Some(b.action))?;
                Some((key, Cow::Borrowed(label)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every action a key file can bind in a section does something in a place that reads that
    /// section: no key is bound to nothing.
    #[test]
    fn every_bindable_action_has_a_binding() {
        let tables: [(Section, &[&[Binding]]); 8] = [
            (Section::Global, &[global::BINDINGS]),
            (Section::Scenarios, &[scenarios::BINDINGS]),
            (Section::Episode, &[episode::BINDINGS]),
            (Section::Labels, &[labels::BINDINGS]),
            (Section::Train, &[train::BINDINGS]),
            (Section::Iterations, &[iterations::BINDINGS]),
            (
                Section::Editor,
                &[overlays::EDITOR, overlays::FILTER, overlays::PICKER],
            ),
            (Section::Confirm, &[overlays::CONFIRM]),
        ];
        for (section, places) in tables {
            for action in section.actions() {
                assert!(
                    places
                        .iter()
                        .flat_map(|t| t.iter())
                        .any(|b| b.section == section && b.action == *action),
                    "{section:?}: {action:?} has no binding"
                );
            }
            for b in places.iter().flat_map(|t| t.iter()) {
                assert!(
                    b.section.actions().contains(&b.action),
                    "{:?}: {:?} cannot be bound in {:?}",
                    section,
                    b.action,
                    b.section
                );
            }
        }
    }
}
