//! Drawing the workbench: the tab bar, the current screen, the message line, the bottom bar
//! with the keys that do something now, and the overlays (help, questions, pickers, editor).
//! Nothing here changes state.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::action::Section;
use super::app::{App, Overlay, Picker, Screen, file_name};
use super::screens::clip;
use super::theme;

impl App {
    pub fn view(&self, f: &mut Frame) {
        let area = f.area();
        let [tabs, body, note, bar] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        self.tab_bar(f, tabs);
        let typing = match &self.overlay {
            Some(Overlay::Filter(t)) => Some(t.as_str()),
            _ => None,
        };
        match self.screen {
            Screen::Scenarios => self.scenarios.view(f, body, &self.catalog, typing),
            Screen::Episode => self.episode.view(f, body),
            Screen::Labels => self.labels.view(f, body, typing, self.bulk),
            Screen::Train => self.train.view(f, body),
            Screen::Iterations => self.iterations.view(f, body),
        }
        if let Some(n) = &self.note {
            let style = if n.error {
                theme::error()
            } else {
                theme::info()
            };
            f.render_widget(
                Line::styled(clip(&format!(" {}", n.text), note.width as usize), style),
                note,
            );
        }
        self.bottom_bar(f, bar);
        match &self.overlay {
            Some(Overlay::Help) => self.help(f, body),
            Some(Overlay::ConfirmQuit(jobs)) => confirm(
                f,
                body,
                " quit? ",
                &format!("Still running: {}. Quit and stop them?", jobs.join(", ")),
                &self.confirm_keys(),
            ),
            Some(Overlay::ConfirmBulk(ids)) => confirm(
                f,
                body,
                " accept all shown? ",
                &format!("Accept {} pending labels (the filters' set)?", ids.len()),
                &self.confirm_keys(),
            ),
            Some(Overlay::Editor(e)) => e.view(f, body),
            Some(Overlay::Picker(p)) => picker(f, body, p),
            Some(Overlay::Filter(_)) | None => {}
        }
    }

    /// "y: yes   n: no": the question's keys, as the bottom bar has them.
    fn confirm_keys(&self) -> String {
        self.hints()
            .iter()
            .map(|(k, label)| format!("{k}: {label}"))
            .collect::<Vec<_>>()
            .join("   ")
    }

    fn tab_bar(&self, f: &mut Frame, area: Rect) {
        let mut spans = vec![Span::styled(" leap ", theme::key())];
        let mut x = 6u16;
        let mut hits = Vec::new();
        for (i, s) in Screen::ALL.iter().enumerate() {
            let text = format!(" {} {} ", i + 1, s.title());
            let w = text.chars().count() as u16;
            hits.push((x, x + w, *s));
            x += w;
            let style = if *s == self.screen {
                theme::selected()
            } else {
                theme::dim()
            };
            spans.push(Span::styled(text, style));
        }
        *self.tabs.borrow_mut() = hits;
        let student = match &self.student_loading {
            Some(what) => format!("loading {what}…"),
            None if self.episode.policy.is_empty() => "no student".into(),
            None => self.episode.policy.clone(),
        };
        let jobs = self.running_jobs();
        let right = format!(
            "{}run {}  student {} ",
            if jobs.is_empty() {
                String::new()
            } else {
                format!("⏵ {}  ", jobs.len())
            },
            file_name(&self.run_dir),
            student
        );
        let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
        let room = (area.width as usize).saturating_sub(used + 1);
        spans.push(Span::raw(" "));
        let right = clip(&right, room);
        let pad = room.saturating_sub(right.chars().count());
        spans.push(Span::raw(" ".repeat(pad)));
        spans.push(Span::styled(right, theme::dim()));
        f.render_widget(Line::from(spans), area);
    }

    fn bottom_bar(&self, f: &mut Frame, area: Rect) {
        let mut spans = Vec::new();
        let mut used = 0usize;
        for (key, label) in self.hints() {
            let k = format!(" {key} ");
            let l = format!(" {label} ");
            let w = k.chars().count() + l.chars().count();
            if used + w > area.width as usize {
                break;
            }
            used += w;
            spans.push(Span::styled(k, theme::key()));
            spans.push(Span::raw(l));
        }
        f.render_widget(Line::from(spans), area);
    }

    fn help(&self, f: &mut Frame, area: Rect) {
        let sections = [self.screen.section(), Section::Global];
        let mut lines = Vec::new();
        for section in sections {
            let title = if section == Section::Global {
                "everywhere".to_string()
            } else {
                format!("{} screen", self.screen.title())
            };
            lines.push(Line::styled(title, theme::title()));
            for action in section.actions() {
                let keys: Vec<String> = self
                    .keymap
                    .keys(section, *action)
                    .iter()
                    .map(|k| k.to_string())
                    .collect();
                let keys = if keys.is_empty() {
                    "(unbound)".to_string()
                } else {
                    keys.join(" ")
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("  {keys:<16}"), theme::info()),
                    Span::raw(action.describe()),
                ]));
            }
            lines.push(Line::raw(""));
        }
        lines.push(Line::styled(
            "keys are data: assets/keys.yaml; a user file overrides the actions it names",
            theme::dim(),
        ));
        let w = area.width.saturating_sub(6).min(96);
        let h = (lines.len() as u16 + 2).min(area.height);
        let popup = centered(area, w, h);
        f.render_widget(Clear, popup);
        f.render_widget(
            Paragraph::new(lines).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(format!(" keys: {} ", self.screen.title())),
            ),
            popup,
        );
    }
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn confirm(f: &mut Frame, area: Rect, title: &str, text: &str, keys: &str) {
    let w = (text.chars().count() as u16 + 4).clamp(30, area.width);
    let popup = centered(area, w, 5);
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(vec![
            Line::raw(text.to_string()),
            Line::raw(""),
            Line::styled(keys.to_string(), theme::dim()),
        ])
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(title.to_string()),
        ),
        popup,
    );
}

fn picker(f: &mut Frame, area: Rect, p: &Picker) {
    let w = area.width.saturating_sub(8).min(120);
    let h = (p.items.len() as u16 + 2).clamp(3, area.height.saturating_sub(2));
    let popup = centered(area, w, h);
    f.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(p.title.clone());
    let inner = block.inner(popup);
    f.render_widget(block, popup);
    let mut lines = Vec::new();
    for i in p.cursor.window(p.items.len(), inner.height as usize) {
        let style = if i == p.cursor.selected {
            theme::selected()
        } else {
            Style::new()
        };
        lines.push(Line::styled(
            clip(&p.items[i].0, inner.width as usize),
            style,
        ));
    }
    f.render_widget(Paragraph::new(lines), inner);
}
