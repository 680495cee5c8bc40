//! Iterations: the run's report, as `leap report` makes it: the students' table (dataset, test
//! and train success, training), the other decodings and compared runs, the teachers acting
//! alone, and a bar chart of test success per student, a bar per series; between them, the LEAP
//! loop (or an evaluation) started from here: its settings, the stage it is in with its progress,
//! and the stages it finished.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Borders, Paragraph};

use std::time::Instant;

use super::{Cursor, clip};
use crate::curate::CurationRule;
use crate::leap::Curation;
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
    /// The loop or evaluation started from this screen.
    pub job: LoopPanel,
}

/// Which job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Loop,
    Eval,
}

impl JobKind {
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Loop => "the LEAP loop",
            JobKind::Eval => "an evaluation",
        }
    }

    fn settings(self) -> &'static str {
        match self {
            JobKind::Loop => "loop settings",
            JobKind::Eval => "evaluation settings",
        }
    }
}

/// The stage a job is in.
#[derive(Debug, Clone)]
pub struct StageNow {
    pub name: String,
    pub started: Instant,
    /// Units done, of how many, and what they are.
    pub progress: Option<(u64, u64, &'static str)>,
}

/// The loop's settings (`leap iterate`'s defaults, the iterations and curation adjustable) and
/// what the job started from here reports.
#[derive(Debug, Clone)]
pub struct LoopPanel {
    /// Iterations after iteration 0 (behaviour cloning).
    pub iters: u32,
    pub curation: Curation,
    /// The settings the job runs (or last ran, or would run) with, as (name, value).
    pub settings: Vec<(String, String)>,
    /// Whose settings are shown: the loop's until an evaluation starts.
    pub shown: JobKind,
    /// What runs now, since when.
    pub running: Option<(JobKind, Instant)>,
    pub stage: Option<StageNow>,
    /// Stages the run had already finished when the loop started.
    pub resuming: Vec<String>,
    /// Stages finished, with their wall time; the last lines of the job's log.
    pub log: Vec<String>,
    /// How the last job ended.
    pub outcome: Option<String>,
}

impl Default for LoopPanel {
    fn default() -> Self {
        let defaults = crate::leap::LoopOptions::default();
        LoopPanel {
            iters: defaults.iters,
            curation: defaults.curation,
            settings: Vec::new(),
            shown: JobKind::Loop,
            running: None,
            stage: None,
            resuming: Vec::new(),
            log: Vec::new(),
            outcome: None,
        }
    }
}

/// The curations in the order the key cycles through them.
pub const CURATIONS: [Curation; 4] = [
    Curation::Rule(CurationRule::AcceptUnlessLeak),
    Curation::Rule(CurationRule::AcceptAll),
    Curation::Rule(CurationRule::AcceptIfChanged),
    Curation::Manual,
];

pub fn curation_name(c: Curation) -> &'static str {
    match c {
        Curation::Rule(rule) => rule.name(),
        Curation::Manual => "manual (wait for the Labels screen)",
    }
}

/// Seconds as `1m05s` (or `42s`).
fn elapsed(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

pub const JOB_LOG_LINES: usize = 100;

impl LoopPanel {
    /// Rows it takes: its settings alone while nothing ran, else room for the stage and log.
    fn height(&self) -> u16 {
        if self.running.is_none() && self.log.is_empty() && self.outcome.is_none() {
            6
        } else {
            11
        }
    }

    pub fn log_line(&mut self, line: impl Into<String>) {
        self.log.push(line.into());
        if self.log.len() > JOB_LOG_LINES {
            self.log.remove(0);
        }
    }

    fn view(&self, f: &mut Frame, area: Rect) {
        let title = match self.running {
            Some((kind, since)) => format!(
                " {} running, {} ",
                kind.name(),
                elapsed(since.elapsed().as_secs_f64())
            ),
            None => " the LEAP loop on this run ".to_string(),
        };
        let block = Block::default().borders(Borders::ALL).title(title);
        let inner = block.inner(area);
        f.render_widget(block, area);
        let width = inner.width as usize;
        let mut lines: Vec<Line> = Vec::new();
        let settings: Vec<String> = self
            .settings
            .iter()
            .map(|(name, value)| format!("{name} {value}"))
            .collect();
        lines.push(Line::raw(clip(
            &format!(
                " iterations {}  curation {}",
                self.iters,
                curation_name(self.curation)
            ),
            width,
        )));
        if !settings.is_empty() {
            // At most two lines of them.
            let text = format!("{}: {}", self.shown.settings(), settings.join(", "));
            let wrapped = wrap(&text, width.saturating_sub(2).max(10));
            let n = wrapped.len();
            for (i, line) in wrapped.into_iter().take(2).enumerate() {
                let more = if i == 1 && n > 2 { "…" } else { "" };
                lines.push(Line::styled(
                    clip(&format!(" {line}{more}"), width),
                    theme::dim(),
                ));
            }
        }
        if !self.resuming.is_empty() {
            lines.push(Line::styled(
                clip(
                    &format!(
                        " resuming: stages already done: {}",
                        self.resuming.join(", ")
                    ),
                    width,
                ),
                theme::info(),
            ));
        }
        match &self.stage {
            Some(stage) => {
                let progress = stage
                    .progress
                    .map(|(done, total, unit)| format!("  {done}/{total} {unit}"))
                    .unwrap_or_default();
                lines.push(Line::styled(
                    clip(
                        &format!(
                            " now: {}{progress}  {}",
                            stage.name,
                            elapsed(stage.started.elapsed().as_secs_f64())
                        ),
                        width,
                    ),
                    theme::title(),
                ));
            }
            None if self.running.is_some() => {
                lines.push(Line::styled(" starting…", theme::dim()));
            }
            None => {}
        }
        if let Some(outcome) = &self.outcome {
            lines.push(Line::styled(
                clip(&format!(" {outcome}"), width),
                theme::won(),
            ));
        }
        let room = (inner.height as usize).saturating_sub(lines.len());
        let skip = self.log.len().saturating_sub(room);
        lines.extend(
            self.log
                .iter()
                .skip(skip)
                .map(|l| Line::raw(clip(&format!(" {l}"), width))),
        );
        if self.running.is_none() && self.log.is_empty() && self.outcome.is_none() {
            lines.push(Line::styled(
                " not running: start the loop or an evaluation (see the keys below)",
                theme::dim(),
            ));
        }
        f.render_widget(Paragraph::new(lines), inner);
    }
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
        let [table, job, chart] = Layout::vertical([
            Constraint::Percentage(50),
            Constraint::Length(self.job.height()),
            Constraint::Min(0),
        ])
        .areas(area);
        self.job.view(f, job);
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
