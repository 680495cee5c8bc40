//! Keys and the mouse: a key asks for the action its binding names here, or is typed into the
//! filter or the editor; the wheel moves, a click on a tab goes there.

use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use super::{App, Overlay};
use crate::tui::action::Action;
use crate::tui::keys::Key;

impl App {
    /// Turns a key into an action for the current place, or gives it to the text being typed.
    pub fn on_key(&mut self, event: KeyEvent) {
        let key = Key::from_event(&event);
        if let Some(action) = self.action_for(key) {
            self.update(action);
            return;
        }
        match &mut self.overlay {
            Some(Overlay::Filter(text)) => match event.code {
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c)
                    if !key
                        .mods
                        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
                {
                    text.push(c)
                }
                _ => {}
            },
            Some(Overlay::Editor(editor)) => {
                let area = if editor.on_action {
                    &mut editor.action
                } else {
                    &mut editor.reason
                };
                area.input(event);
            }
            _ => {}
        }
    }

    pub(super) fn on_mouse(&mut self, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollUp => self.update(Action::Up),
            MouseEventKind::ScrollDown => self.update(Action::Down),
            MouseEventKind::Down(MouseButton::Left) if m.row == 0 && self.overlay.is_none() => {
                let hit = self
                    .tabs
                    .borrow()
                    .iter()
                    .find(|(a, b, _)| (*a..*b).contains(&m.column))
                    .map(|t| t.2);
                if let Some(screen) = hit {
                    self.go(screen);
                }
            }
            _ => {}
        }
    }
}
