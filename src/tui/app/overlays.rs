//! What is drawn over a screen and takes the keys while open: the help, a yes/no question, a
//! picker, the filter being typed and the label editor.

use ratatui::style::{Modifier, Style};

use super::bindings::Binding;
use super::{App, Overlay, Pick, Screen};
use crate::tui::action::{Action, Section};
use crate::tui::screens::labels::{EditTarget, Editor};

const G: Section = Section::Global;
const E: Section = Section::Editor;

/// Any other key is ignored while the help is open; quitting still works.
pub(super) const HELP: &[Binding] = &[
    Binding::new(G, Action::Dismiss, App::close_overlay),
    Binding::new(G, Action::Help, App::close_overlay).hint("close"),
    Binding::new(G, Action::Quit, App::quit).hidden(),
];

pub(super) const CONFIRM: &[Binding] = &[
    Binding::new(Section::Confirm, Action::Yes, App::confirm),
    Binding::new(Section::Confirm, Action::No, App::close_overlay),
];

pub(super) const PICKER: &[Binding] = &[
    Binding::new(G, Action::Down, |app| app.move_pick(Action::Down)).hint("move"),
    Binding::new(E, Action::Save, App::choose).hint("choose"),
    Binding::new(E, Action::Dismiss, App::close_overlay).hint("cancel"),
    Binding::new(G, Action::Up, |app| app.move_pick(Action::Up)).hidden(),
    Binding::new(G, Action::PageUp, |app| app.move_pick(Action::PageUp)).hidden(),
    Binding::new(G, Action::PageDown, |app| app.move_pick(Action::PageDown)).hidden(),
    Binding::new(G, Action::Top, |app| app.move_pick(Action::Top)).hidden(),
    Binding::new(G, Action::Bottom, |app| app.move_pick(Action::Bottom)).hidden(),
    Binding::new(G, Action::Quit, App::close_overlay).hidden(),
];

/// Other keys are typed into the filter.
pub(super) const FILTER: &[Binding] = &[
    Binding::new(E, Action::Save, App::keep_filter).hint("keep filter"),
    Binding::new(E, Action::Dismiss, App::clear_filter).hint("clear filter"),
];

/// Other keys are typed into the field being edited.
pub(super) const EDITOR: &[Binding] = &[
    Binding::new(E, Action::Save, App::save_editor),
    Binding::new(E, Action::NextField, App::next_field),
    Binding::new(E, Action::Complete, App::complete),
    Binding::new(E, Action::Dismiss, App::close_overlay).hint("cancel"),
];

impl App {
    fn close_overlay(&mut self) {
        self.overlay = None;
    }

    /// Yes to the question open: quit, or accept the labels.
    fn confirm(&mut self) {
        match self.overlay.take() {
            Some(Overlay::ConfirmQuit(_)) => {
                self.stop_jobs();
                self.should_quit = true;
            }
            Some(Overlay::ConfirmBulk(ids)) => self.start_bulk(ids),
            other => self.overlay = other,
        }
    }

    fn move_pick(&mut self, action: Action) {
        let Some(Overlay::Picker(p)) = &mut self.overlay else {
            return;
        };
        let len = p.items.len();
        match action {
            Action::Up => p.cursor.up(1),
            Action::Down => p.cursor.down(1, len),
            Action::PageUp => p.cursor.up(p.cursor.page()),
            Action::PageDown => p.cursor.down(p.cursor.page(), len),
            Action::Top => p.cursor.top(),
            Action::Bottom => p.cursor.bottom(len),
            _ => {}
        }
    }

    /// Closes the picker and acts on its selection.
    fn choose(&mut self) {
        let Some(Overlay::Picker(p)) = self.overlay.take() else {
            return;
        };
        if let Some(pick) = p.items.get(p.cursor.selected).map(|i| i.1.clone()) {
            self.pick(pick);
        }
    }

    fn pick(&mut self, pick: Pick) {
        match pick {
            Pick::Student(adapter) => self.load_student(adapter),
            Pick::Episode(id) => {
                self.open_episode(id);
                self.go(Screen::Episode);
            }
            Pick::Teacher(kind, privilege) => {
                self.episode.teacher = kind;
                self.episode.privilege = privilege;
                self.teacher_changed();
            }
        }
    }

    fn keep_filter(&mut self) {
        if let Some(Overlay::Filter(text)) = self.overlay.take() {
            self.set_filter(text);
        }
    }

    fn clear_filter(&mut self) {
        self.overlay = None;
        self.set_filter(String::new());
    }

    /// Saves the label's edit, or takes the typed action.
    fn save_editor(&mut self) {
        match &self.overlay {
            Some(Overlay::Editor(e)) if matches!(e.target, EditTarget::Step(_)) => {
                self.take_typed_action()
            }
            _ => self.save_edit(),
        }
    }

    fn next_field(&mut self) {
        if let Some(Overlay::Editor(editor)) = &mut self.overlay {
            editor.on_action = !editor.on_action;
            focus(editor);
        }
    }

    /// Completes the action from the admissible commands.
    fn complete(&mut self) {
        if let Some(Overlay::Editor(editor)) = &mut self.overlay {
            editor.on_action = true;
            editor.complete();
            focus(editor);
        }
    }
}

/// Shows the cursor only in the field being edited.
pub(super) fn focus(editor: &mut Editor) {
    let on = Style::new().add_modifier(Modifier::REVERSED);
    let off = Style::new();
    let (a, b) = if editor.on_action {
        (off, on)
    } else {
        (on, off)
    };
    editor.reason.set_cursor_style(a);
    editor.action.set_cursor_style(b);
    editor.reason.set_cursor_line_style(Style::new());
    editor.action.set_cursor_line_style(Style::new());
}
