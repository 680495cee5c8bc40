//! Scenarios: the scenario files on disk, filtered by kind, split and text, with a preview of the
//! task, the world and (on request) the privileged state; problems in a banner.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::{Cursor, clip, shown};
use crate::env::Privileged;
use crate::scenario::{Kind, Scenario, Split};
use crate::tui::catalog::Catalog;
use crate::tui::theme;

#[derive(Default)]
pub struct ScenariosScreen {
    pub filter: String,
    pub split: Option<Split>,
    pub kind: Option<Kind>,
    pub show_privileged: bool,
    pub cursor: Cursor,
    /// Indices into the catalog's scenarios that pass the filters.
    pub visible: Vec<usize>,
    /// The privileged state of the selected scenario, by hash.
    privileged: Option<(String, Privileged)>,
}

impl ScenariosScreen {
    /// Recomputes the visible rows, keeping the selected scenario selected if it still shows.
    pub fn refilter(&mut self, catalog: &Catalog) {
        let keep = self
            .visible
            .get(self.cursor.selected)
            .and_then(|&i| catalog.scenarios.get(i))
            .map(|s| s.id.clone());
        let needle = self.filter.to_lowercase();
        self.visible = catalog
            .scenarios
            .iter()
            .enumerate()
            .filter(|(_, s)| self.split.is_none_or(|x| s.split == x))
            .filter(|(_, s)| self.kind.is_none_or(|k| s.kind() == k))
            .filter(|(_, s)| {
                needle.is_empty()
                    || s.id.to_lowercase().contains(&needle)
                    || s.task.to_lowercase().contains(&needle)
            })
            .map(|(i, _)| i)
            .collect();
        if let Some(id) = keep
            && let Some(pos) = self
                .visible
                .iter()
                .position(|&i| catalog.scenarios[i].id == id)
        {
            self.cursor.selected = pos;
        }
        self.cursor.clamp(self.visible.len());
        self.refresh_privileged(catalog);
    }

    pub fn selected<'a>(&self, catalog: &'a Catalog) -> Option<&'a Scenario> {
        self.visible
            .get(self.cursor.selected)
            .and_then(|&i| catalog.scenarios.get(i))
    }

    /// Computes the privileged state of the selection when it is shown and not computed yet.
    pub fn refresh_privileged(&mut self, catalog: &Catalog) {
        if !self.show_privileged {
            return;
        }
        let Some(s) = self.selected(catalog) else {
            return;
        };
        if self.privileged.as_ref().is_some_and(|(h, _)| *h == s.hash) {
            return;
        }
        self.privileged = Some((s.hash.clone(), s.body.privileged(s.horizon)));
    }

    pub fn cycle_split(&mut self) {
        self.split = match self.split {
            None => Some(Split::Train),
            Some(Split::Train) => Some(Split::Test),
            Some(Split::Test) => None,
        };
    }

    pub fn cycle_kind(&mut self, catalog: &Catalog) {
        let mut kinds: Vec<Kind> = Vec::new();
        for s in &catalog.scenarios {
            if !kinds.contains(&s.kind()) {
                kinds.push(s.kind());
            }
        }
        self.kind = match self.kind {
            None => kinds.first().copied(),
            Some(k) => kinds
                .iter()
                .position(|x| *x == k)
                .and_then(|i| kinds.get(i + 1).copied()),
        };
    }

    /// Draws the screen; `typing` is the filter being typed, if any.
    pub fn view(&self, f: &mut Frame, area: Rect, catalog: &Catalog, typing: Option<&str>) {
        let banner_rows = if catalog.problems.is_empty() {
            0
        } else {
            (catalog.problems.len().min(4) + 2) as u16
        };
        let [banner, header, body] = Layout::vertical([
            Constraint::Length(banner_rows),
            Constraint::Length(1),
            Constraint::Min(0),
        ])
        .areas(area);
        if banner_rows > 0 {
            problems_banner(f, banner, catalog);
        }

        let split = self.split.map_or("all", |s| s.as_str());
        let kind = self.kind.map_or("all", |k| k.as_str());
        let mut spans = vec![
            Span::styled(
                format!(
                    " {} of {} scenarios",
                    self.visible.len(),
                    catalog.scenarios.len()
                ),
                theme::title(),
            ),
            Span::raw(format!("   split: {split}   kind: {kind}   filter: ")),
        ];
        match typing {
            Some(text) => {
                spans.push(Span::styled(format!("{text}▏"), theme::key()));
            }
            None if self.filter.is_empty() => spans.push(Span::styled("none", theme::dim())),
            None => spans.push(Span::styled(self.filter.clone(), theme::info())),
        }
        f.render_widget(Line::from(spans), header);

        let [list, preview] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                .areas(body);
        self.list(f, list, catalog);
        self.preview(f, preview, catalog);
    }

    fn list(&self, f: &mut Frame, area: Rect, catalog: &Catalog) {
        let block = Block::default().borders(Borders::ALL).title(" scenarios ");
        let inner = block.inner(area);
        f.render_widget(block, area);
        let height = inner.height as usize;
        let width = inner.width as usize;
        let rows = self.cursor.window(self.visible.len(), height);
        let mut lines = Vec::with_capacity(rows.len());
        for row in rows {
            let s = &catalog.scenarios[self.visible[row]];
            let stale = if catalog.stale.contains(&s.id) {
                "⚠"
            } else {
                " "
            };
            let text = format!("{stale}{:<5} {}  {}", s.split.as_str(), s.id, s.task);
            let style = if row == self.cursor.selected {
                theme::selected()
            } else {
                ratatui::style::Style::new()
            };
            lines.push(Line::styled(clip(&text, width), style));
        }
        if self.visible.is_empty() {
            lines.push(Line::styled(" no scenario matches", theme::dim()));
        }
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn preview(&self, f: &mut Frame, area: Rect, catalog: &Catalog) {
        let block = Block::default().borders(Borders::ALL).title(" preview ");
        let Some(s) = self.selected(catalog) else {
            f.render_widget(block, area);
            return;
        };
        let world = s.body.preview();
        let mut lines = vec![
            Line::from(vec![
                Span::styled(shown(&s.id), theme::title()),
                Span::styled(
                    format!(
                        "  {} · {} · horizon {}",
                        s.kind().as_str(),
                        s.split.as_str(),
                        s.horizon
                    ),
                    theme::dim(),
                ),
            ]),
            Line::styled(s.origin.to_string(), theme::dim()),
        ];
        if catalog.stale.contains(&s.id) {
            lines.push(Line::styled(
                "the file has problems now: this is its last good version",
                theme::warning(),
            ));
        }
        lines.push(Line::from(vec![
            Span::styled("Task: ", theme::title()),
            Span::raw(shown(&s.task)),
        ]));
        lines.push(Line::raw(""));
        lines.push(Line::styled(world.title, theme::title()));
        lines.extend(world.lines.iter().map(|l| Line::raw(shown(l))));
        if self.show_privileged {
            lines.push(Line::raw(""));
            lines.push(Line::styled(
                "Privileged (the teacher sees this)",
                theme::privileged(),
            ));
            for note in &world.notes {
                lines.push(Line::styled(
                    format!("  note: {}", shown(note)),
                    theme::privileged(),
                ));
            }
            if let Some((hash, p)) = &self.privileged
                && *hash == s.hash
            {
                privileged_lines(p, &mut lines);
            }
        } else {
            lines.push(Line::raw(""));
            lines.push(Line::styled("privileged state hidden", theme::dim()));
        }
        f.render_widget(
            Paragraph::new(lines)
                .block(block)
                .wrap(Wrap { trim: false }),
            area,
        );
    }
}

/// The privileged state as lines, for every kind: its facts, and the expert's plan.
pub fn privileged_lines(p: &Privileged, lines: &mut Vec<Line<'static>>) {
    for f in &p.facts {
        // A detail of several lines (a command's output) goes on under its fact, indented.
        let mut detail = f.detail.lines();
        let first = detail.next().unwrap_or_default();
        lines.push(Line::styled(
            shown(&format!("  {} {} {first}", f.subject, f.relation)),
            theme::privileged(),
        ));
        for more in detail {
            lines.push(Line::styled(
                shown(&format!("    {more}")),
                theme::privileged(),
            ));
        }
    }
    match &p.plan {
        Some(plan) => lines.push(Line::styled(
            shown(&format!(
                "  expert plan ({} steps): {}",
                plan.len(),
                plan.join(", ")
            )),
            theme::privileged(),
        )),
        None => lines.push(Line::styled(
            "  no plan reaches the goal",
            theme::privileged(),
        )),
    }
}

fn problems_banner(f: &mut Frame, area: Rect, catalog: &Catalog) {
    let n = catalog.problems.len();
    let title = format!(
        " {n} problem{} in the scenario files; each file's last good version stays in use ",
        if n == 1 { "" } else { "s" }
    );
    let mut lines: Vec<Line> = catalog
        .problems
        .iter()
        .take(4)
        .map(|p| Line::raw(shown(&p.to_string())))
        .collect();
    if n > 4 {
        lines.pop();
        lines.push(Line::raw(format!("… and {} more", n - 3)));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::lost())
        .title(Span::styled(title, theme::error()));
    f.render_widget(Paragraph::new(lines).block(block), area);
}
