//! Iterations: the run's report, as `leap report` makes it: the students' table (dataset, test
//! and train success, training), the other decodings and compared runs, the teachers acting
//! alone, and a bar chart of test success per student, a bar per series.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Borders, Paragraph};

use super::{Cursor, clip};
use crate::report::{self, IterationRow, RunReport, Table};
use crate::tui::theme;

#[derive(Default)]
pub struct IterationsScreen {
    /// `None` until the first report is read.
    pub report: Option<RunReport>,
    /// A newer report is being read.
    pub loading: bool,
    /// Over the students' rows.
    pub cursor: Cursor,
}

/// The bars' colours, one per series, and what the chart's title calls them.
const PALETTE: [(Color, &str); 5] = [
    (Color::Cyan, "blue"),
    (Color::Green, "green"),
    (Color::Yellow, "yellow"),
    (Color::Magenta, "magenta"),
    (Color::LightRed, "red"),
];

impl IterationsScreen {
    /// The students, one row each (zero-shot first).
    pub fn rows(&self) -> &[IterationRow] {
        self.report.as_ref().map_or(&[], |r| &r.iterations)
    }

    pub fn set_report(&mut self, report: RunReport) {
        self.report = Some(report);
        self.cursor.clamp(self.rows().len());
    }

    pub fn view(&self, f: &mut Frame, area: Rect) {
        let [table, chart] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
        let block = Block::default().borders(Borders::ALL).title(format!(
            " iterations (the run's report){} ",
            if self.loading { ": loading…" } else { "" }
        ));
        let inner = block.inner(table);
        f.render_widget(block, table);
        let width = inner.width as usize;
        let Some(report) = &self.report else {
            let text = if self.loading {
                " loading…"
            } else {
                " no report"
            };
            f.render_widget(Paragraph::new(Line::styled(text, theme::dim())), inner);
            return;
        };

        let students = report::students_table(report);
        let (columns, head) = layout(&students);
        let mut lines: Vec<Line> = head
            .iter()
            .map(|h| Line::styled(clip(h, width), theme::dim()))
            .collect();
        let height = (inner.height as usize).saturating_sub(lines.len());
        for i in self.cursor.window(students.rows.len(), height) {
            let style = if i == self.cursor.selected {
                theme::selected()
            } else {
                Style::new()
            };
            lines.push(Line::styled(
                clip(&row(&columns, &students.rows[i]), width),
                style,
            ));
        }
        let nothing = report.compared.is_empty()
            && report
                .iterations
                .iter()
                .all(|r| r.test.is_none() && r.train.is_none() && r.dataset_rows.is_none());
        if nothing {
            lines.push(Line::styled(
                " nothing evaluated or trained yet: train on the Train screen, or `leap iterate`",
                theme::dim(),
            ));
        }
        for (title, table) in [
            (
                "Test success of each student, by run and decoding:",
                report::series_table(report),
            ),
            (
                "Teachers acting alone with their privileged state:",
                report::teachers_table(report),
            ),
        ] {
            let Some(table) = table else { continue };
            lines.push(Line::raw(""));
            lines.push(Line::styled(format!(" {title}"), theme::title()));
            let (columns, head) = layout(&table);
            lines.extend(
                head.iter()
                    .map(|h| Line::styled(clip(h, width), theme::dim())),
            );
            lines.extend(
                table
                    .rows
                    .iter()
                    .map(|r| Line::raw(clip(&row(&columns, r), width))),
            );
        }
        f.render_widget(Paragraph::new(lines), inner);
        draw_chart(f, chart, report);
    }
}

/// Test success per student (those with any), a bar per series in the series' colour.
fn draw_chart(f: &mut Frame, area: Rect, report: &RunReport) {
    let series = report.series();
    let legend: Vec<String> = series
        .iter()
        .zip(PALETTE.iter().cycle())
        .map(|(s, (_, colour))| format!("{} ({colour})", s.name))
        .collect();
    let mut chart = BarChart::default()
        .block(Block::default().borders(Borders::ALL).title(format!(
            " test success % per student: {} ",
            legend.join(", ")
        )))
        .bar_width(5)
        .bar_gap(1)
        .group_gap(3)
        .max(100);
    for (_, student) in report.students() {
        if !series.iter().any(|s| s.results.contains_key(&student)) {
            continue;
        }
        let bars: Vec<Bar> = series
            .iter()
            .zip(PALETTE.iter().cycle())
            .map(|(s, (colour, _))| {
                let rate = s.results.get(&student).map(|t| t.success_rate);
                let v = rate.map_or(0, |r| (r * 100.0).round() as u64);
                Bar::default()
                    .value(v)
                    .text_value(rate.map_or("–".into(), |_| format!("{v}%")))
                    .style(Style::new().fg(*colour))
            })
            .collect();
        chart = chart.data(BarGroup::default().label(Line::from(student)).bars(&bars));
    }
    f.render_widget(chart, area);
}

/// A column's width and alignment.
struct Column {
    width: usize,
    right: bool,
}

/// The columns of `table`, each as wide as its widest cell, and its header in at most two
/// lines (a header wider than its cells is wrapped at its spaces).
fn layout(table: &Table) -> (Vec<Column>, Vec<String>) {
    let mut columns = Vec::new();
    let mut heads: Vec<Vec<String>> = Vec::new();
    for (c, head) in table.head.iter().enumerate() {
        let cells = table
            .rows
            .iter()
            .filter_map(|r| r.get(c))
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0);
        let word = head
            .split(' ')
            .map(|w| w.chars().count())
            .max()
            .unwrap_or(0);
        let mut width = cells.max(word);
        let mut wrapped = wrap(head, width);
        while wrapped.len() > 2 {
            width += 1;
            wrapped = wrap(head, width);
        }
        columns.push(Column {
            width,
            right: table.right.get(c).copied().unwrap_or(false),
        });
        heads.push(wrapped);
    }
    let height = heads.iter().map(Vec::len).max().unwrap_or(1);
    let head = (0..height)
        .map(|line| {
            let cells: Vec<String> = heads
                .iter()
                .map(|h| h.get(line).cloned().unwrap_or_default())
                .collect();
            row(&columns, &cells)
        })
        .collect();
    (columns, head)
}

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// One line of a table: its cells padded to their columns, two spaces apart.
fn row(columns: &[Column], cells: &[String]) -> String {
    let mut line = String::new();
    for (i, (column, cell)) in columns.iter().zip(cells).enumerate() {
        let pad = column.width.saturating_sub(cell.chars().count());
        line.push_str(if i == 0 { " " } else { "  " });
        if column.right {
            line.push_str(&" ".repeat(pad));
            line.push_str(cell);
        } else {
            line.push_str(cell);
            line.push_str(&" ".repeat(pad));
        }
    }
    line.trim_end().to_string()
}
