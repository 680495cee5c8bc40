//! Train: the dataset the accepted labels make, the settings, and a LoRA training job with a
//! gauge (ETA, tokens/s), the train and eval loss as a live chart, the log tail, and the adapter
//! it produced.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, Gauge, GraphType, Paragraph};

use super::{Cursor, clip};
use crate::train::record::UpdateOptions;
use crate::tui::theme;

/// One adjustable setting: its name, its value and how it moves.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub name: &'static str,
    pub value: f64,
    pub step: f64,
    pub min: f64,
    pub max: f64,
    /// Moves multiply (learning rate) instead of add.
    pub log: bool,
    /// Names of the values 0, 1, ... when the setting is a choice (empty: a number).
    pub choices: &'static [&'static str],
}

impl Setting {
    pub fn text(&self) -> String {
        if let Some(name) = self.choices.get(self.value as usize) {
            (*name).to_owned()
        } else if self.log {
            format!("{:.0e}", self.value)
        } else if self.step.fract() == 0.0 {
            format!("{}", self.value as i64)
        } else {
            format!("{}", self.value)
        }
    }

    pub fn nudge(&mut self, up: bool) {
        self.value = if self.log {
            if up {
                self.value * self.step
            } else {
                self.value / self.step
            }
        } else if up {
            self.value + self.step
        } else {
            self.value - self.step
        }
        .clamp(self.min, self.max);
    }
}

/// The progress of a training job, as it reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub step: u64,
    pub total: u64,
    pub epoch: f64,
    pub tokens_per_s: f64,
    pub eta_s: f64,
    /// (step, loss).
    pub loss: Vec<(f64, f64)>,
    pub eval_loss: Vec<(f64, f64)>,
}

pub struct TrainScreen {
    pub settings: Vec<Setting>,
    pub cursor: Cursor,
    /// Rows and tokens of the dataset the kept labels make (tokens: `None` until counted).
    pub dataset: Option<(u64, Option<u64>)>,
    pub running: bool,
    pub progress: Progress,
    pub log: VecDeque<String>,
    /// The adapter the last job wrote.
    pub adapter: Option<std::path::PathBuf>,
    /// Why training cannot start here, if it cannot.
    pub unavailable: Option<String>,
}

pub const LOG_LINES: usize = 200;

impl Default for TrainScreen {
    fn default() -> Self {
        let s = |name, value, step, min, max, log| Setting {
            name,
            value,
            step,
            min,
            max,
            log,
            choices: &[],
        };
        // The loop's own defaults (`leap iterate`), so the screen trains what an iteration would.
        let t = UpdateOptions::default().train;
        TrainScreen {
            settings: vec![
                s("epochs", f64::from(t.epochs), 1.0, 1.0, 50.0, false),
                s("LoRA rank", f64::from(t.lora.rank), 4.0, 4.0, 128.0, false),
                s("learning rate", f64::from(t.lr), 2.0, 1e-6, 1e-2, true),
                s(
                    "context (tokens)",
                    f64::from(t.ctx),
                    256.0,
                    256.0,
                    8192.0,
                    false,
                ),
                s("GPU layers", f64::from(t.gpu_layers), 1.0, 0.0, 99.0, false),
                Setting {
                    choices: &["sft", "dpo"],
                    ..s("update", 0.0, 1.0, 0.0, 1.0, false)
                },
                s("DPO beta", 0.01, 10f64.sqrt(), 1e-3, 1.0, true),
            ],
            cursor: Cursor::default(),
            dataset: None,
            running: false,
            progress: Progress::default(),
            log: VecDeque::new(),
            adapter: None,
            unavailable: None,
        }
    }
}

impl TrainScreen {
    pub fn value(&self, name: &str) -> f64 {
        self.settings
            .iter()
            .find(|s| s.name == name)
            .map_or(0.0, |s| s.value)
    }

    pub fn log_line(&mut self, line: impl Into<String>) {
        self.log.push_back(line.into());
        while self.log.len() > LOG_LINES {
            self.log.pop_front();
        }
    }

    pub fn view(&self, f: &mut Frame, area: Rect) {
        let [top, gauge, bottom] = Layout::vertical([
            Constraint::Length(9),
            Constraint::Length(3),
            Constraint::Min(0),
        ])
        .areas(area);
        let [settings, dataset] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);

        let block = Block::default().borders(Borders::ALL).title(" settings ");
        let mut lines = Vec::new();
        for (i, s) in self.settings.iter().enumerate() {
            let style = if i == self.cursor.selected {
                theme::selected()
            } else {
                Style::new()
            };
            lines.push(Line::styled(
                format!(" {:<18} {:>10}", s.name, s.text()),
                style,
            ));
        }
        f.render_widget(Paragraph::new(lines).block(block), settings);

        let block = Block::default()
            .borders(Borders::ALL)
            .title(" dataset and adapter ");
        let dpo = self.value("update") >= 1.0;
        let mut lines = vec![match self.dataset {
            Some((rows, tokens)) => Line::raw(format!(
                " {rows} rows from accepted and edited labels{}",
                tokens.map(|t| format!(", {t} tokens")).unwrap_or_default()
            )),
            None => Line::styled(" no dataset yet", theme::dim()),
        }];
        lines.extend(update_lines(dpo).map(|l| Line::styled(l, theme::dim())));
        match &self.adapter {
            Some(path) => {
                lines.push(Line::styled(
                    format!(" adapter: {}", path.display()),
                    theme::won(),
                ));
                lines.push(Line::styled(" ready to load as the student", theme::dim()));
            }
            None => lines.push(Line::styled(
                " no adapter trained in this session",
                theme::dim(),
            )),
        }
        if let Some(why) = &self.unavailable {
            lines.push(Line::styled(format!(" {why}"), theme::warning()));
        }
        f.render_widget(Paragraph::new(lines).block(block), dataset);

        let p = &self.progress;
        let ratio = if p.total > 0 {
            (p.step as f64 / p.total as f64).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let label = if p.total > 0 {
            format!(
                "step {}/{}  epoch {:.2}  {:.0} tokens/s  ETA {}",
                p.step,
                p.total,
                p.epoch,
                p.tokens_per_s,
                eta(p.eta_s)
            )
        } else if self.running {
            "starting…".to_string()
        } else {
            "not running".to_string()
        };
        f.render_widget(
            Gauge::default()
                .block(Block::default().borders(Borders::ALL).title(" progress "))
                .gauge_style(theme::info())
                .ratio(ratio)
                .label(label),
            gauge,
        );

        let [chart, log] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
                .areas(bottom);
        self.chart(f, chart);
        let block = Block::default().borders(Borders::ALL).title(" log ");
        let inner = block.inner(log);
        let height = inner.height as usize;
        let width = inner.width as usize;
        let skip = self.log.len().saturating_sub(height);
        let lines: Vec<Line> = self
            .log
            .iter()
            .skip(skip)
            .map(|l| Line::raw(clip(l, width)))
            .collect();
        f.render_widget(Paragraph::new(lines).block(block), log);
    }

    fn chart(&self, f: &mut Frame, area: Rect) {
        let p = &self.progress;
        let max_x = p
            .loss
            .iter()
            .chain(&p.eval_loss)
            .map(|(x, _)| *x)
            .fold(1.0f64, f64::max);
        let (lo, hi) = p
            .loss
            .iter()
            .chain(&p.eval_loss)
            .map(|(_, y)| *y)
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
                (lo.min(y), hi.max(y))
            });
        // Fit the curve, with a margin, so that small changes show.
        let (min_y, max_y) = if lo.is_finite() {
            let margin = ((hi - lo) * 0.1).max(hi.abs() * 0.01).max(1e-3);
            ((lo - margin).max(0.0), hi + margin)
        } else {
            (0.0, 1.0)
        };
        let datasets = vec![
            Dataset::default()
                .name("train loss")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(theme::info())
                .data(&p.loss),
            Dataset::default()
                .name("eval loss")
                .marker(Marker::Dot)
                .graph_type(GraphType::Line)
                .style(theme::differ())
                .data(&p.eval_loss),
        ];
        let chart = Chart::new(datasets)
            .block(Block::default().borders(Borders::ALL).title(" loss "))
            .x_axis(
                Axis::default()
                    .title("step")
                    .bounds([0.0, max_x])
                    .labels(vec![Span::raw("0"), Span::raw(format!("{max_x:.0}"))]),
            )
            .y_axis(Axis::default().bounds([min_y, max_y]).labels(vec![
                Span::raw(format!("{min_y:.2}")),
                Span::raw(format!("{max_y:.2}")),
            ]));
        f.render_widget(chart, area);
    }
}

fn eta(seconds: f64) -> String {
    if !seconds.is_finite() || seconds <= 0.0 {
        return "–".into();
    }
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// What `s` trains beyond the settings: the LEAP update of `leap iterate`, as its defaults say.
fn update_lines(dpo: bool) -> [String; 2] {
    if dpo {
        return [
            " LEAP update: DPO, labels that changed the step".into(),
            " teacher's step over the student's; from the student".into(),
        ];
    }
    let o = UpdateOptions::default();
    let cap = match o.max_rows_per_part {
        0 => String::new(),
        n => format!(", at most {n} rows a part"),
    };
    [
        format!(
            " LEAP update: demonstrations (privilege {}) + labels",
            o.expert_privilege
        ),
        format!(" {}{cap}; warm-started", o.aggregate.as_str()),
    ]
}
