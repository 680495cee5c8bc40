//! The per-iteration results of a run, as the store holds them: a table (for `leap report`, the
//! README and the workbench's Iterations screen) and a chart of success per iteration (SVG,
//! drawn with plotters).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use crate::eval::EvalReport;
use crate::store::{Store, StoreError};

/// One row of the iterations table. Iteration `None` is the model without adapter (zero-shot).
#[derive(Debug, Clone, Default, Serialize)]
pub struct IterationRow {
    pub iteration: Option<u32>,
    /// "zero-shot", "iter-0 (BC)", "iter-1", ...
    pub name: String,
    pub dataset_rows: Option<u64>,
    pub labels: Option<u64>,
    pub adapter: Option<String>,
    pub train_loss_last: Option<f64>,
    pub train_seconds: Option<f64>,
    pub train: Option<EvalReport>,
    pub test: Option<EvalReport>,
}

/// A teacher acting alone, for comparison.
#[derive(Debug, Clone, Serialize)]
pub struct TeacherRow {
    pub name: String,
    pub test: EvalReport,
}

/// Everything the report shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub iterations: Vec<IterationRow>,
    pub teachers: Vec<TeacherRow>,
}

/// Reads the run's datasets, adapters and evaluations. Evaluations are matched by their labels:
/// `eval-<split>-base`, `eval-<split>-iter-N`, `eval-<split>-oracle@P`, `eval-<split>-self-...`.
pub fn run_report(store: &Store) -> Result<RunReport, StoreError> {
    let evaluations = store.evaluations()?;
    let find = |label: &str| -> Option<EvalReport> {
        evaluations
            .iter()
            .find(|e| e.label == label)
            .and_then(|e| serde_json::from_value(e.summary.clone()).ok())
    };
    let mut report = RunReport::default();
    report.iterations.push(IterationRow {
        name: "zero-shot".into(),
        train: find("eval-train-base"),
        test: find("eval-test-base"),
        ..IterationRow::default()
    });
    let datasets = store.datasets()?;
    let adapters = store.adapters()?;
    let mut iterations: Vec<u32> = datasets
        .iter()
        .map(|d| d.iteration)
        .chain(adapters.iter().filter_map(|a| a.iteration))
        .collect();
    iterations.sort_unstable();
    iterations.dedup();
    for i in iterations {
        let dataset = datasets.iter().rev().find(|d| d.iteration == i);
        let adapter = adapters.iter().rev().find(|a| a.iteration == Some(i));
        let labels = match dataset {
            Some(d) => Some(store.dataset_labels(d.id)?.len() as u64),
            None => None,
        };
        let number = |key: &str| {
            adapter
                .and_then(|a| a.summary.get(key))
                .and_then(|v| v.as_f64())
        };
        report.iterations.push(IterationRow {
            iteration: Some(i),
            name: if i == 0 {
                "iter-0 (BC)".into()
            } else {
                format!("iter-{i}")
            },
            dataset_rows: dataset.map(|d| d.rows),
            labels,
            adapter: adapter.map(|a| a.path.clone()),
            train_loss_last: number("train_loss_last"),
            train_seconds: number("seconds"),
            train: find(&format!("eval-train-iter-{i}")),
            test: find(&format!("eval-test-iter-{i}")),
        });
    }
    for e in &evaluations {
        let Some(name) = e.label.strip_prefix("eval-test-") else {
            continue;
        };
        let teacher = name.starts_with("oracle@") || name.starts_with("self-");
        if teacher && let Ok(test) = serde_json::from_value(e.summary.clone()) {
            report.teachers.push(TeacherRow {
                name: name.to_string(),
                test,
            });
        }
    }
    Ok(report)
}

fn pct(r: &Option<EvalReport>) -> String {
    match r {
        Some(r) => format!(
            "{:.1}% [{:.1}–{:.1}] (n={})",
            r.success_rate * 100.0,
            r.success_low * 100.0,
            r.success_high * 100.0,
            r.episodes
        ),
        None => "–".into(),
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "–".into(), |v| v.to_string())
}

/// The report as Markdown; `chart` is the chart's file name, linked when given.
pub fn markdown(report: &RunReport, chart: Option<&str>) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# LEAP run report\n");
    let _ = writeln!(
        md,
        "| student | dataset rows | labels | test success [95% Wilson] | test mean steps | test invalid | train success | final train loss | train time |"
    );
    let _ = writeln!(md, "|---|---:|---:|---|---:|---:|---|---:|---:|");
    for row in &report.iterations {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.name,
            opt(row.dataset_rows),
            opt(row.labels),
            pct(&row.test),
            row.test
                .as_ref()
                .map_or("–".into(), |t| format!("{:.1}", t.mean_steps)),
            row.test.as_ref().map_or("–".into(), |t| format!(
                "{:.1}%",
                t.invalid_action_rate * 100.0
            )),
            pct(&row.train),
            row.train_loss_last
                .map_or("–".into(), |l| format!("{l:.3}")),
            row.train_seconds
                .map_or("–".into(), |s| format!("{:.0} s", s)),
        );
    }
    if !report.teachers.is_empty() {
        let _ = writeln!(md, "\nTeachers acting alone with their privileged state:\n");
        let _ = writeln!(
            md,
            "| teacher | test success [95% Wilson] | test mean steps |"
        );
        let _ = writeln!(md, "|---|---|---:|");
        for t in &report.teachers {
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} |",
                t.name,
                pct(&Some(t.test.clone())),
                t.test.mean_steps
            );
        }
    }
    if let Some(chart) = chart {
        let _ = writeln!(md, "\n![success per iteration]({chart})");
    }
    md
}

/// Draws success on the test split per iteration (with its Wilson interval), the teachers
/// acting alone as dashed lines, into an SVG file.
pub fn chart_svg(report: &RunReport, path: &Path) -> Result<(), String> {
    let rows: Vec<(&str, &EvalReport)> = report
        .iterations
        .iter()
        .filter_map(|r| r.test.as_ref().map(|t| (r.name.as_str(), t)))
        .collect();
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let n = rows.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption("Success on the test split", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..100f64)
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = rows.iter().map(|(n, _)| n.to_string()).collect();
    chart
        .configure_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("success (%)")
        .disable_x_mesh()
        .draw()
        .map_err(|e| e.to_string())?;
    let blue = RGBColor(49, 110, 181);
    chart
        .draw_series(rows.iter().enumerate().map(|(i, (_, r))| {
            let x = i as f64;
            Rectangle::new(
                [(x - 0.3, 0.0), (x + 0.3, r.success_rate * 100.0)],
                blue.mix(0.8).filled(),
            )
        }))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, (_, r))| {
            let x = i as f64;
            PathElement::new(
                vec![(x, r.success_low * 100.0), (x, r.success_high * 100.0)],
                BLACK.stroke_width(2),
            )
        }))
        .map_err(|e| e.to_string())?;
    let palette = [
        RGBColor(200, 80, 40),
        RGBColor(60, 150, 60),
        RGBColor(130, 70, 160),
    ];
    for (k, t) in report.teachers.iter().enumerate() {
        let y = t.test.success_rate * 100.0;
        let color = palette[k % palette.len()];
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(-0.5, y), (n as f64 - 0.5, y)],
                color.stroke_width(2),
            )))
            .map_err(|e| e.to_string())?
            .label(format!("{} alone: {:.1}%", t.name, y))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    if !report.teachers.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
