//! Iterations: per LEAP iteration, the dataset, the adapter and success on the train and test
//! splits, as a table and a bar chart, from what the run store holds.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Borders, Paragraph};

use super::{Cursor, clip};
use crate::tui::theme;

/// One iteration's numbers; `None` where the store has nothing yet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IterationRow {
    /// `None`: episodes not tied to an iteration (the workbench's own, zero-shot rollouts).
    pub iteration: Option<u32>,
    pub episodes: u64,
    pub dataset_rows: Option<u64>,
    pub adapter: Option<String>,
    /// (wins, episodes) on train scenarios.
    pub train: (u64, u64),
    /// (wins, episodes) on test scenarios.
    pub test: (u64, u64),
}

fn rate((wins, n): (u64, u64)) -> Option<f64> {
    (n > 0).then(|| wins as f64 / n as f64)
}

#[derive(Default)]
pub struct IterationsScreen {
    pub rows: Vec<IterationRow>,
    pub cursor: Cursor,
}

impl IterationsScreen {
    pub fn view(&self, f: &mut Frame, area: Rect) {
        let [table, chart] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(" iterations (from the run database) ");
        let inner = block.inner(table);
        f.render_widget(block, table);
        let width = inner.width as usize;
        let mut lines = vec![Line::styled(
            clip(
                " iteration  episodes  dataset rows  train success   test success   adapter",
                width,
            ),
            theme::dim(),
        )];
        let pct = |x: (u64, u64)| match rate(x) {
            Some(r) => format!("{:>5.1}% ({}/{})", r * 100.0, x.0, x.1),
            None => "      –".to_string(),
        };
        let height = (inner.height as usize).saturating_sub(1);
        for i in self.cursor.window(self.rows.len(), height) {
            let r = &self.rows[i];
            let text = format!(
                " {:<9}  {:>8}  {:>12}  {:<14}  {:<13}  {}",
                r.iteration.map_or("none".into(), |i| i.to_string()),
                r.episodes,
                r.dataset_rows.map_or("–".into(), |n| n.to_string()),
                pct(r.train),
                pct(r.test),
                r.adapter.as_deref().unwrap_or("–"),
            );
            let style = if i == self.cursor.selected {
                theme::selected()
            } else {
                Style::new()
            };
            lines.push(Line::styled(clip(&text, width), style));
        }
        if self.rows.is_empty() {
            lines.push(Line::styled(
                " nothing stored yet: play episodes, correct them, train",
                theme::dim(),
            ));
        }
        f.render_widget(Paragraph::new(lines), inner);

        let mut chart_widget = BarChart::default()
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" success % per iteration: train (green), test (blue) "),
            )
            .bar_width(5)
            .bar_gap(1)
            .group_gap(3)
            .max(100);
        for r in &self.rows {
            let bar = |x: (u64, u64), style: Style| {
                let v = rate(x).map_or(0, |r| (r * 100.0).round() as u64);
                Bar::default()
                    .value(v)
                    .text_value(rate(x).map_or("–".into(), |_| format!("{v}%")))
                    .style(style)
            };
            let name = r.iteration.map_or("none".into(), |i| format!("it {i}"));
            chart_widget = chart_widget.data(
                BarGroup::default()
                    .label(Line::from(name))
                    .bars(&[bar(r.train, theme::won()), bar(r.test, theme::info())]),
            );
        }
        f.render_widget(chart_widget, chart);
    }
}
