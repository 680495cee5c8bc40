//! Labels: the teacher's corrections across episodes, filtered; accept, reject, edit (with the
//! admissible commands at hand), undo, bulk accept; counts per status.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui_textarea::TextArea;

use super::episode::{status_mark, teacher_lines};
use super::{Cursor, clip, shown};
use crate::env::command::{self, Template};
use crate::store::{Label, LabelStatus};
use crate::tui::theme;

#[derive(Default)]
pub struct LabelsScreen {
    /// Every label of the run, by id order.
    pub all: Vec<Label>,
    /// Where each label id is in `all`.
    index: HashMap<i64, usize>,
    pub status: Option<LabelStatus>,
    pub differing: bool,
    pub leaking: bool,
    /// Matches scenario ids and episode keys.
    pub filter: String,
    pub iteration: Option<Option<u32>>,
    /// Indices into `all` that pass the filters.
    pub visible: Vec<usize>,
    pub cursor: Cursor,
    /// Decisions made here, newest last; a bulk accept is one entry.
    pub undo: Vec<Vec<i64>>,
    /// The labels are being read (again).
    pub loading: bool,
    /// The bulk job running undoes a bulk accept (else it accepts).
    pub undoing: bool,
}

impl LabelsScreen {
    pub fn set_all(&mut self, labels: Vec<Label>) {
        self.all = labels;
        self.index = self
            .all
            .iter()
            .enumerate()
            .map(|(i, l)| (l.id, i))
            .collect();
        self.refilter();
    }

    /// Replaces one label as the store now has it.
    pub fn update(&mut self, label: Label) {
        match self.index.get(&label.id) {
            Some(&i) => self.all[i] = label,
            None => {
                self.index.insert(label.id, self.all.len());
                self.all.push(label);
            }
        }
    }

    pub fn label(&self, id: i64) -> Option<&Label> {
        self.index.get(&id).map(|&i| &self.all[i])
    }

    pub fn selected(&self) -> Option<&Label> {
        self.visible
            .get(self.cursor.selected)
            .map(|&i| &self.all[i])
    }

    pub fn refilter(&mut self) {
        let keep = self.selected().map(|l| l.id);
        let needle = self.filter.to_lowercase();
        self.visible = self
            .all
            .iter()
            .enumerate()
            .filter(|(_, l)| self.status.is_none_or(|s| l.status == s))
            .filter(|(_, l)| !self.differing || l.changed)
            .filter(|(_, l)| !self.leaking || !l.leaks.is_empty())
            .filter(|(_, l)| self.iteration.is_none_or(|it| l.iteration == it))
            .filter(|(_, l)| {
                needle.is_empty()
                    || l.scenario_id.to_lowercase().contains(&needle)
                    || l.episode_key.to_lowercase().contains(&needle)
            })
            .map(|(i, _)| i)
            .collect();
        if let Some(id) = keep
            && let Some(pos) = self.visible.iter().position(|&i| self.all[i].id == id)
        {
            self.cursor.selected = pos;
        }
        self.cursor.clamp(self.visible.len());
    }

    pub fn cycle_status(&mut self) {
        self.status = match self.status {
            None => Some(LabelStatus::Pending),
            Some(LabelStatus::Pending) => Some(LabelStatus::Accepted),
            Some(LabelStatus::Accepted) => Some(LabelStatus::Rejected),
            Some(LabelStatus::Rejected) => Some(LabelStatus::Edited),
            Some(LabelStatus::Edited) => None,
        };
    }

    pub fn cycle_iteration(&mut self) {
        let mut its: Vec<Option<u32>> = self.all.iter().map(|l| l.iteration).collect();
        its.sort_unstable();
        its.dedup();
        self.iteration = match self.iteration {
            None => its.first().copied(),
            Some(it) => its
                .iter()
                .position(|x| *x == it)
                .and_then(|i| its.get(i + 1).copied()),
        };
    }

    /// Pending labels among those shown: what a bulk accept takes.
    pub fn pending_shown(&self) -> Vec<i64> {
        self.visible
            .iter()
            .map(|&i| &self.all[i])
            .filter(|l| l.status == LabelStatus::Pending)
            .map(|l| l.id)
            .collect()
    }

    fn counts(&self, rows: impl Iterator<Item = usize>) -> [usize; 4] {
        let mut c = [0; 4];
        for i in rows {
            let k = match self.all[i].status {
                LabelStatus::Pending => 0,
                LabelStatus::Accepted => 1,
                LabelStatus::Rejected => 2,
                LabelStatus::Edited => 3,
            };
            c[k] += 1;
        }
        c
    }

    pub fn view(
        &self,
        f: &mut Frame,
        area: Rect,
        typing: Option<&str>,
        bulk: Option<(usize, usize)>,
    ) {
        let [counts, filters, body] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(0),
        ])
        .areas(area);
        let all = self.counts(0..self.all.len());
        let shown = self.counts(self.visible.iter().copied());
        let mut spans = vec![Span::styled(
            format!(" {} labels: ", self.all.len()),
            theme::title(),
        )];
        for (i, status) in LabelStatus::ALL.iter().enumerate() {
            spans.push(Span::raw(format!(
                "{} {} {}   ",
                status_mark(*status),
                all[i],
                status.as_str()
            )));
        }
        spans.push(Span::styled(
            format!(
                "shown {}: {} pending, {} accepted, {} rejected, {} edited",
                self.visible.len(),
                shown[0],
                shown[1],
                shown[2],
                shown[3]
            ),
            theme::dim(),
        ));
        if self.loading {
            spans.push(Span::styled("   loading…", theme::info()));
        }
        if let Some((done, total)) = bulk {
            let doing = if self.undoing { "undoing" } else { "accepting" };
            spans.push(Span::styled(
                format!("   {doing} {done}/{total}…"),
                theme::info(),
            ));
        }
        f.render_widget(Line::from(spans), counts);

        let on = |b: bool| if b { "on" } else { "off" };
        let iteration = match self.iteration {
            None => "all".to_string(),
            Some(None) => "none".to_string(),
            Some(Some(i)) => i.to_string(),
        };
        let mut spans = vec![Span::raw(format!(
            " status: {}   differing: {}   leaking: {}   iteration: {iteration}   scenario/episode: ",
            self.status.map_or("all", |s| s.as_str()),
            on(self.differing),
            on(self.leaking),
        ))];
        match typing {
            Some(text) => spans.push(Span::styled(format!("{text}▏"), theme::key())),
            None if self.filter.is_empty() => spans.push(Span::styled("any", theme::dim())),
            None => spans.push(Span::styled(self.filter.clone(), theme::info())),
        }
        f.render_widget(Line::from(spans), filters);

        let [table, detail] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
        self.table(f, table);
        self.detail(f, detail);
    }

    fn table(&self, f: &mut Frame, area: Rect) {
        let block = Block::default().borders(Borders::ALL).title(" labels ");
        let inner = block.inner(area);
        f.render_widget(block, area);
        let width = inner.width as usize;
        let mut lines = Vec::new();
        lines.push(Line::styled(
            clip(
                "   id  st ≠ !  step  scenario                          student action → teacher action",
                width,
            ),
            theme::dim(),
        ));
        let height = (inner.height as usize).saturating_sub(1);
        for row in self.cursor.window(self.visible.len(), height) {
            let l = &self.all[self.visible[row]];
            let base = if row == self.cursor.selected {
                theme::selected()
            } else {
                Style::new()
            };
            let head = format!("{:>5}  {}  ", l.id, status_mark(l.status),);
            let tail = format!(
                " {:>4}  {:<32}  {} → {}",
                l.idx + 1,
                clip(&l.scenario_id, 32),
                l.student_action,
                l.teacher_action
            );
            let used = head.chars().count() + 2;
            lines.push(Line::from(vec![
                Span::styled(head, base),
                if l.changed {
                    Span::styled("≠", theme::differ())
                } else {
                    Span::styled("=", theme::agree())
                },
                if l.leaks.is_empty() {
                    Span::styled(" ", base)
                } else {
                    Span::styled("!", theme::leak())
                },
                Span::styled(clip(&tail, width.saturating_sub(used)), base),
            ]));
        }
        if self.visible.is_empty() {
            let text = if self.all.is_empty() {
                " no labels yet: finish an episode and ask the teacher (Episode screen)"
            } else {
                " no label matches the filters"
            };
            lines.push(Line::styled(text, theme::dim()));
        }
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn detail(&self, f: &mut Frame, area: Rect) {
        let block = Block::default().borders(Borders::ALL).title(" label ");
        let Some(l) = self.selected() else {
            f.render_widget(block, area);
            return;
        };
        let mut lines = vec![
            Line::styled(
                clip(
                    &format!(
                        "{} step {} · scenario {} · iteration {}{}",
                        l.episode_key,
                        l.idx + 1,
                        l.scenario_id,
                        l.iteration.map_or("none".into(), |i| i.to_string()),
                        l.decided_by
                            .as_ref()
                            .map(|b| format!(" · decided by {b}"))
                            .unwrap_or_default()
                    ),
                    usize::MAX,
                ),
                theme::dim(),
            ),
            Line::from(vec![
                Span::styled("Student REASON: ", theme::dim()),
                Span::styled(
                    l.student_reason
                        .as_deref()
                        .map_or_else(|| "(none)".into(), shown),
                    theme::reason(),
                ),
            ]),
            Line::from(vec![
                Span::styled("Student ACTION: ", theme::dim()),
                Span::styled(shown(&l.student_action), theme::action()),
            ]),
        ];
        teacher_lines(l, &mut lines);
        f.render_widget(
            Paragraph::new(lines)
                .block(block)
                .wrap(Wrap { trim: false }),
            area,
        );
    }
}

/// The label editor: reason and action, with the step's admissible commands.
/// What the editor's text is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditTarget {
    /// The teacher's label with this id.
    Label(i64),
    /// The action taken at this step of the episode shown, instead of the student's.
    Step(usize),
}

pub struct Editor {
    pub target: EditTarget,
    pub reason: TextArea<'static>,
    pub action: TextArea<'static>,
    /// Editing the action (else the reason).
    pub on_action: bool,
    pub admissible: Vec<String>,
    pub error: Option<String>,
}

impl Editor {
    pub fn new(label: &Label) -> Editor {
        let (reason, action) = label.target();
        Editor::with(
            EditTarget::Label(label.id),
            reason,
            action,
            label.admissible.clone(),
        )
    }

    /// An action (and reason) to type for step `at`, whose admissible commands are `admissible`;
    /// the action first.
    pub fn for_step(at: usize, admissible: Vec<String>) -> Editor {
        Editor {
            on_action: true,
            ..Editor::with(EditTarget::Step(at), "", "", admissible)
        }
    }

    fn with(target: EditTarget, reason: &str, action: &str, admissible: Vec<String>) -> Editor {
        let mut editor = Editor {
            target,
            reason: TextArea::new(vec![reason.to_string()]),
            action: TextArea::new(vec![action.to_string()]),
            on_action: false,
            admissible,
            error: None,
        };
        editor.reason.move_cursor(ratatui_textarea::CursorMove::End);
        editor.action.move_cursor(ratatui_textarea::CursorMove::End);
        editor
    }

    pub fn reason_text(&self) -> String {
        self.reason.lines().join(" ")
    }

    pub fn action_text(&self) -> String {
        self.action.lines().join(" ")
    }

    /// Admissible commands that contain what is typed as the action, and templates that what
    /// is typed fills or may still fill; those that begin with it first.
    pub fn matches(&self) -> Vec<&str> {
        let typed = self.action_text().to_lowercase();
        let typed = typed.trim();
        let mut found: Vec<(bool, &str)> = self
            .admissible
            .iter()
            .filter_map(|a| {
                let lower = a.to_lowercase();
                let begins = match Template::of(&lower) {
                    Some(t) => t.may_become(typed),
                    None => lower.starts_with(typed),
                };
                (begins || lower.contains(typed)).then_some((!begins, a.as_str()))
            })
            .collect();
        found.sort_by_key(|&(later, _)| later);
        found.into_iter().map(|(_, a)| a).collect()
    }

    /// Replaces the action with the next admissible command that matches what is typed. A
    /// template is written with its hole empty and the cursor in it, or closed around the
    /// words already typed into it.
    pub fn complete(&mut self) {
        let current = self.action_text();
        let current = current.trim();
        let next = match command::admitting(&self.admissible, current) {
            // Already complete: move on to the next admissible command.
            Some(done) => {
                let i = self.admissible.iter().position(|a| a == done).unwrap_or(0);
                self.admissible
                    .get((i + 1) % self.admissible.len().max(1))
                    .cloned()
            }
            None => self.matches().first().map(|s| s.to_string()),
        };
        let Some(next) = next else {
            return;
        };
        let Some(t) = Template::of(&next) else {
            self.action = TextArea::new(vec![next]);
            self.action.move_cursor(ratatui_textarea::CursorMove::End);
            return;
        };
        let typed = current
            .strip_prefix(t.prefix)
            .map(|rest| rest.split(|c| !t.allows(c)).next().unwrap_or(""))
            .and_then(|fill| t.with(fill));
        match typed {
            Some(filled) => {
                self.action = TextArea::new(vec![filled]);
                self.action.move_cursor(ratatui_textarea::CursorMove::End);
            }
            None => {
                self.action = TextArea::new(vec![format!("{}{}", t.prefix, t.suffix)]);
                let col = t.prefix.chars().count().min(u16::MAX as usize) as u16;
                self.action
                    .move_cursor(ratatui_textarea::CursorMove::Jump(0, col));
            }
        }
    }

    pub fn view(&self, f: &mut Frame, area: Rect) {
        let w = area.width.saturating_sub(8).min(110);
        let h = area.height.saturating_sub(4).min(24);
        let popup = Rect {
            x: area.x + (area.width - w) / 2,
            y: area.y + (area.height - h) / 2,
            width: w,
            height: h,
        };
        f.render_widget(Clear, popup);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(match self.target {
                EditTarget::Label(id) => format!(" edit label {id} "),
                EditTarget::Step(at) => format!(" your action for step {} ", at + 1),
            });
        let inner = block.inner(popup);
        f.render_widget(block, popup);
        let [rl, reason, al, action, err, list] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(0),
        ])
        .areas(inner);
        let label = |text: &str, on: bool| {
            Line::styled(
                text.to_string(),
                if on { theme::title() } else { theme::dim() },
            )
        };
        f.render_widget(label("REASON", !self.on_action), rl);
        f.render_widget(&self.reason, reason);
        f.render_widget(label("ACTION", self.on_action), al);
        f.render_widget(&self.action, action);
        if let Some(e) = &self.error {
            f.render_widget(Line::styled(e.clone(), theme::error()), err);
        }
        let matches = self.matches();
        let current = self.action_text();
        let mut lines = vec![Line::styled(
            format!(
                "admissible commands ({} of {} match):",
                matches.len(),
                self.admissible.len()
            ),
            theme::dim(),
        )];
        for m in matches.iter().take(list.height.saturating_sub(1) as usize) {
            let style = if *m == current.trim() {
                theme::selected()
            } else {
                Style::new()
            };
            lines.push(Line::styled(format!("  {m}"), style));
        }
        f.render_widget(Paragraph::new(lines), list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn editor(typed: &str) -> Editor {
        let admissible = ["click[back to search]", "look", "search[...]"]
            .map(String::from)
            .to_vec();
        let mut e = Editor::for_step(0, admissible);
        e.action = TextArea::new(vec![typed.to_string()]);
        e
    }

    #[test]
    fn completing_into_a_template_leaves_the_cursor_in_its_hole() {
        let mut e = editor("se");
        assert_eq!(e.matches(), ["search[...]", "click[back to search]"]);
        e.complete();
        assert_eq!(e.action_text(), "search[]");
        assert_eq!(e.action.cursor(), (0, "search[".len()));
    }

    #[test]
    fn completing_a_half_typed_fill_closes_it_and_a_filled_one_moves_on() {
        let mut e = editor("search[red shoes");
        assert_eq!(e.matches(), ["search[...]"]);
        e.complete();
        assert_eq!(e.action_text(), "search[red shoes]");
        e.complete();
        assert_eq!(
            e.action_text(),
            "click[back to search]",
            "wraps to the first command"
        );
        e.complete();
        assert_eq!(e.action_text(), "look");
    }
}
