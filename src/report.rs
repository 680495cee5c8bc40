//! The per-iteration results of a run, as the store holds them: a table (for `leap report`, the
//! README and the workbench's Iterations screen) and a chart of success per iteration (SVG,
//! drawn with plotters).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use serde::Serialize;
use thiserror::Error;

use crate::eval::EvalReport;
use crate::store::{AdapterRow, DatasetRow, EvaluationRow, Provenance, Store, StoreError};

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
    /// The same student on the test split under other decodings, by the suffix `leap eval`
    /// gives their labels (`t0.7` for `eval-test-iter-2-t0.7`, `repeat1`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub decodings: BTreeMap<String, EvalReport>,
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
    /// What the run is called in the chart and tables when other runs are compared with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Other runs shown beside this one (`leap report --compare NAME=DIR`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compared: Vec<RunReport>,
}

/// One bar per student in the chart, and one column of the comparison table: a run's test
/// evaluations under one decoding.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// By the student's row name (`iter-2`).
    pub results: BTreeMap<String, EvalReport>,
}

impl RunReport {
    /// The decodings any student was evaluated with besides greedy, in label order.
    pub fn decodings(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .iterations
            .iter()
            .flat_map(|r| r.decodings.keys().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The students of this run and of the compared ones, zero-shot first, then by iteration.
    pub fn students(&self) -> Vec<(Option<u32>, String)> {
        let mut all: Vec<(Option<u32>, String)> = std::iter::once(self)
            .chain(&self.compared)
            .flat_map(|r| r.iterations.iter().map(|i| (i.iteration, i.name.clone())))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Greedy and each other decoding of this run, then the same of each compared run. A series
    /// is named by its decoding, after the run's name where it has one.
    pub fn series(&self) -> Vec<Series> {
        let mut all = Vec::new();
        for run in std::iter::once(self).chain(&self.compared) {
            let decodings = run.decodings();
            for decoding in std::iter::once(None).chain(decodings.iter().map(Some)) {
                let results: BTreeMap<String, EvalReport> = run
                    .iterations
                    .iter()
                    .filter_map(|row| {
                        let test = match decoding {
                            None => row.test.as_ref(),
                            Some(d) => row.decodings.get(d),
                        };
                        test.map(|t| (row.name.clone(), t.clone()))
                    })
                    .collect();
                let what = decoding.map_or_else(|| "greedy".to_string(), |d| decoding_name(d));
                let run_name = run
                    .name
                    .clone()
                    .or_else(|| (!self.compared.is_empty()).then(|| "this run".to_string()));
                let name = match &run_name {
                    Some(run) if decoding.is_none() => run.clone(),
                    Some(run) => format!("{run}, {what}"),
                    None => what,
                };
                all.push(Series { name, results });
            }
        }
        all
    }

    /// The teachers acting alone of this run and the compared ones, named after their run when
    /// runs are compared.
    pub fn all_teachers(&self) -> Vec<TeacherRow> {
        std::iter::once(self)
            .chain(&self.compared)
            .flat_map(|run| {
                run.teachers.iter().map(|t| TeacherRow {
                    name: match (&run.name, self.compared.is_empty()) {
                        (Some(name), false) => format!("{name}: {}", t.name),
                        _ => t.name.clone(),
                    },
                    test: t.test.clone(),
                })
            })
            .collect()
    }
}

/// Reads the run's datasets, adapters and evaluations. Evaluations are matched by their labels:
/// `eval-<split>-base`, `eval-<split>-iter-N`, `eval-<split>-oracle@P`, `eval-<split>-self-...`,
/// and `eval-test-base-<decoding>`, `eval-test-iter-N-<decoding>` for other decodings.
pub fn run_report(store: &Store) -> Result<RunReport, StoreError> {
    run_report_with(store, &[])
}

/// [`run_report`], also counting `more` evaluations (recorded in other run folders, say): the
/// run's own evaluation wins where both have a label.
pub fn run_report_with(store: &Store, more: &[EvaluationRow]) -> Result<RunReport, StoreError> {
    let evaluations: Vec<EvaluationRow> = store
        .evaluations()?
        .into_iter()
        .chain(more.iter().cloned())
        .collect();
    let find = |label: &str| -> Option<EvalReport> {
        evaluations
            .iter()
            .find(|e| e.label == label)
            .and_then(|e| serde_json::from_value(e.summary.clone()).ok())
    };
    // Every decoding of the student whose greedy test evaluation is labelled `greedy`.
    let decodings = |greedy: &str| -> BTreeMap<String, EvalReport> {
        let prefix = format!("{greedy}-");
        let mut found = BTreeMap::new();
        for e in &evaluations {
            if let Some(decoding) = e.label.strip_prefix(&prefix)
                && is_decoding(decoding)
                && let Ok(report) = serde_json::from_value(e.summary.clone())
            {
                found.entry(decoding.to_string()).or_insert(report);
            }
        }
        found
    };
    let mut report = RunReport::default();
    report.iterations.push(IterationRow {
        name: "zero-shot".into(),
        train: find("eval-train-base"),
        test: find("eval-test-base"),
        decodings: decodings("eval-test-base"),
        ..IterationRow::default()
    });
    let datasets = store.datasets()?;
    let adapters = store.adapters()?;
    let mut iterations: Vec<u32> = datasets
        .iter()
        .map(|d| d.iteration)
        .chain(adapters.iter().filter_map(|a| a.iteration))
        .chain(
            evaluations
                .iter()
                .filter_map(|e| tested_iteration(&e.label)),
        )
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
            decodings: decodings(&format!("eval-test-iter-{i}")),
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

/// A decoding suffix as `leap eval` names it, `t<T>`, `repeat<R>` or `t<T>-repeat<R>`, split into
/// its temperature and repeat temperature; `None` when `suffix` is not one.
fn parse_decoding(suffix: &str) -> Option<(Option<&str>, Option<&str>)> {
    let number = |s: &str| !s.is_empty() && s.parse::<f32>().is_ok();
    let (t, repeat) = match suffix.split_once("-repeat") {
        Some((t, r)) => (Some(t), Some(r)),
        None => match suffix.strip_prefix("repeat") {
            Some(r) => (None, Some(r)),
            None => (Some(suffix), None),
        },
    };
    let t = match t {
        Some(t) => Some(t.strip_prefix('t').filter(|t| number(t))?),
        None => None,
    };
    if repeat.is_some_and(|r| !number(r)) {
        return None;
    }
    Some((t, repeat))
}

fn is_decoding(suffix: &str) -> bool {
    parse_decoding(suffix).is_some()
}

/// A decoding suffix in words: `t0.7` → "temperature 0.7", `repeat1` → "greedy, 1 on repeated
/// prompts".
pub fn decoding_name(suffix: &str) -> String {
    let Some((t, repeat)) = parse_decoding(suffix) else {
        return suffix.to_string();
    };
    let mut name = t.map_or_else(|| "greedy".to_string(), |t| format!("temperature {t}"));
    if let Some(r) = repeat {
        name.push_str(&format!(", {r} on repeated prompts"));
    }
    name
}

/// The iteration of a test evaluation `eval-test-iter-N` or `eval-test-iter-N-<decoding>`.
fn tested_iteration(label: &str) -> Option<u32> {
    let rest = label.strip_prefix("eval-test-iter-")?;
    let (n, decoding) = match rest.split_once('-') {
        Some((n, d)) => (n, Some(d)),
        None => (rest, None),
    };
    if decoding.is_some_and(|d| !is_decoding(d)) {
        return None;
    }
    n.parse().ok()
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

/// The score with its interval, or a dash (none recorded, or no evaluation).
fn score_cell(r: Option<&EvalReport>) -> String {
    r.and_then(|r| r.score)
        .map_or_else(|| "–".into(), |s| s.to_string())
}

/// Success with its interval and the mean steps, or a dash.
fn steps_pct(r: Option<&EvalReport>) -> String {
    r.map_or_else(
        || "–".into(),
        |t| format!("{}, {:.1} steps", pct(&Some(t.clone())), t.mean_steps),
    )
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "–".into(), |v| v.to_string())
}

/// The score column's head: mean reward x 100 with the normal approximation's interval.
const SCORE_HEAD: &str = "test score [95% normal]";

/// A table of the report, as its cells: what `leap report` writes as Markdown and the
/// workbench's Iterations screen draws, so that both show the same columns and numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub head: Vec<String>,
    /// Per column: whether its numbers are aligned right.
    pub right: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: &[(&str, bool)]) -> Table {
        Table {
            head: columns.iter().map(|(h, _)| h.to_string()).collect(),
            right: columns.iter().map(|(_, r)| *r).collect(),
            rows: Vec::new(),
        }
    }

    /// The table in Markdown, with its rule line.
    pub fn markdown(&self) -> String {
        let mut md = format!("| {} |\n|", self.head.join(" | "));
        for right in &self.right {
            md.push_str(if *right { "---:|" } else { "---|" });
        }
        md.push('\n');
        for row in &self.rows {
            let _ = writeln!(md, "| {} |", row.join(" | "));
        }
        md
    }
}

/// Whether any of `reports` earned rewards between 0 and 1, so that its score is not its
/// success rate: only then does a table show the score, which would otherwise repeat success.
fn partial_rewards<'a>(reports: impl IntoIterator<Item = &'a EvalReport>) -> bool {
    reports.into_iter().any(|r| {
        r.score
            .is_some_and(|s| (s.mean - r.success_rate * 100.0).abs() > 1e-6)
    })
}

/// `columns` with the score column after the first `at` of them when `scored`.
fn with_score<'a>(columns: &[(&'a str, bool)], at: usize, scored: bool) -> Vec<(&'a str, bool)> {
    let mut columns = columns.to_vec();
    if scored {
        columns.insert(at, (SCORE_HEAD, false));
    }
    columns
}

/// One row per student: its dataset, its test and train success (and test score when rewards
/// are partial), its training.
pub fn students_table(report: &RunReport) -> Table {
    let scored = partial_rewards(report.iterations.iter().filter_map(|r| r.test.as_ref()));
    let columns = [
        ("student", false),
        ("dataset rows", true),
        ("labels", true),
        ("test success [95% Wilson]", false),
        ("test mean steps", true),
        ("test invalid", true),
        ("train success", false),
        ("final train loss", true),
        ("train time", true),
    ];
    let mut table = Table::new(&with_score(&columns, 4, scored));
    for row in &report.iterations {
        let mut cells = vec![
            row.name.clone(),
            opt(row.dataset_rows),
            opt(row.labels),
            pct(&row.test),
            row.test
                .as_ref()
                .map_or("–".into(), |t| format!("{:.1}", t.mean_steps)),
            row.test.as_ref().map_or("–".into(), |t| {
                format!("{:.1}%", t.invalid_action_rate * 100.0)
            }),
            pct(&row.train),
            row.train_loss_last
                .map_or("–".into(), |l| format!("{l:.3}")),
            row.train_seconds
                .map_or("–".into(), |s| format!("{:.0} s", s)),
        ];
        if scored {
            cells.insert(4, score_cell(row.test.as_ref()));
        }
        table.rows.push(cells);
    }
    table
}

/// Test success of each student, a column per run and decoding ([`RunReport::series`]); `None`
/// when there is only the one greedy column.
pub fn series_table(report: &RunReport) -> Option<Table> {
    let series = report.series();
    if series.len() < 2 {
        return None;
    }
    let mut columns = vec![("student", false)];
    columns.extend(series.iter().map(|s| (s.name.as_str(), false)));
    let mut table = Table::new(&columns);
    for (_, student) in report.students() {
        let mut line = vec![student.clone()];
        line.extend(series.iter().map(|s| steps_pct(s.results.get(&student))));
        table.rows.push(line);
    }
    Some(table)
}

/// The teachers acting alone ([`RunReport::all_teachers`]); `None` when there is none.
pub fn teachers_table(report: &RunReport) -> Option<Table> {
    let teachers = report.all_teachers();
    if teachers.is_empty() {
        return None;
    }
    let scored = partial_rewards(teachers.iter().map(|t| &t.test));
    let columns = [
        ("teacher", false),
        ("test success [95% Wilson]", false),
        ("test mean steps", true),
    ];
    let mut table = Table::new(&with_score(&columns, 2, scored));
    for t in &teachers {
        let mut cells = vec![
            t.name.clone(),
            pct(&Some(t.test.clone())),
            format!("{:.1}", t.test.mean_steps),
        ];
        if scored {
            cells.insert(2, score_cell(Some(&t.test)));
        }
        table.rows.push(cells);
    }
    Some(table)
}

/// The report as Markdown; `chart` is the chart's file name, linked when given.
pub fn markdown(report: &RunReport, chart: Option<&str>) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# LEAP run report\n");
    md.push_str(&students_table(report).markdown());
    if let Some(table) = series_table(report) {
        let _ = writeln!(md, "\nTest success of each student, by run and decoding:\n");
        md.push_str(&table.markdown());
    }
    if let Some(table) = teachers_table(report) {
        let _ = writeln!(md, "\nTeachers acting alone with their privileged state:\n");
        md.push_str(&table.markdown());
    }
    if let Some(chart) = chart {
        let _ = writeln!(md, "\n![success per iteration]({chart})");
    }
    md
}

/// Where a report's numbers come from besides the run itself (`leap report`'s and `leap tui`'s
/// `--evaluations-from`, `--name` and `--compare`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sources {
    /// Run folders whose evaluations also count, matched by label.
    pub evaluations_from: Vec<PathBuf>,
    /// What to call this run beside the compared ones.
    pub name: Option<String>,
    /// Other runs shown beside this one: their names and folders.
    pub compare: Vec<(String, PathBuf)>,
}

/// The report of the run in `store` with everything `sources` adds; the other folders must hold
/// a run (each error names the folder's database).
pub fn gather(store: &Store, sources: &Sources) -> Result<RunReport, StoreError> {
    let mut more = Vec::new();
    for dir in &sources.evaluations_from {
        more.extend(Store::open_existing(dir)?.evaluations()?);
    }
    let mut report = run_report_with(store, &more)?;
    report.name = sources.name.clone();
    for (name, dir) in &sources.compare {
        let mut other = run_report(&Store::open_existing(dir)?)?;
        other.name = Some(name.clone());
        report.compared.push(other);
    }
    Ok(report)
}

/// A compared run as given on the command line, `NAME=DIR`.
pub fn parse_compared(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
            Ok((name.to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!(
            "`{text}`: expected NAME=DIR, e.g. `self teacher=runs/self`"
        )),
    }
}

/// The chart could not be drawn: the SVG file and the drawing backend's error.
#[derive(Debug, Error)]
#[error("{}: drawing the chart: {cause}", path.display())]
pub struct ChartError {
    pub path: PathBuf,
    pub cause: DrawingAreaErrorKind<std::io::Error>,
}

/// Draws success on the test split per student (with its Wilson interval), a bar per decoding
/// when there are several, and the teachers acting alone as lines, into an SVG file.
pub fn chart_svg(report: &RunReport, path: &Path) -> Result<(), ChartError> {
    let failed = |cause| ChartError {
        path: path.to_path_buf(),
        cause,
    };
    let series = report.series();
    let students: Vec<String> = report
        .students()
        .into_iter()
        .map(|(_, name)| name)
        .filter(|name| series.iter().any(|s| s.results.contains_key(name)))
        .collect();
    // The legend gets its own column, so that it never hides a bar, as wide as its longest
    // entry (about 7 pixels a character at 13 pixels).
    let teachers = report.all_teachers();
    let longest = series
        .iter()
        .map(|s| s.name.chars().count())
        .chain(teachers.iter().map(|t| t.name.chars().count() + 14))
        .max()
        .unwrap_or(0);
    let legend_width = 40 + 7 * longest as u32;
    let root = SVGBackend::new(path, (620 + legend_width, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let (plot, legend_area) = root.split_horizontally(620);
    let mut legend: Vec<(RGBColor, bool, String)> = Vec::new();
    let n = students.len().max(1);
    let mut chart = ChartBuilder::on(&plot)
        .caption("Success on the test split", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..100f64)
        .map_err(failed)?;
    chart
        .configure_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                students.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("success (%)")
        .disable_x_mesh()
        .draw()
        .map_err(failed)?;
    let bars = [
        RGBColor(49, 110, 181),
        RGBColor(240, 160, 40),
        RGBColor(90, 170, 170),
        RGBColor(150, 110, 190),
        RGBColor(180, 80, 120),
    ];
    let width = 0.7 / series.len() as f64;
    for (j, one) in series.iter().enumerate() {
        let color = bars[j % bars.len()];
        let placed: Vec<(f64, &EvalReport)> = students
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let x = i as f64 - 0.35 + width * (j as f64 + 0.5);
                one.results.get(name).map(|t| (x, t))
            })
            .collect();
        chart
            .draw_series(placed.iter().map(|(x, r)| {
                Rectangle::new(
                    [
                        (x - width * 0.45, 0.0),
                        (x + width * 0.45, r.success_rate * 100.0),
                    ],
                    color.mix(0.85).filled(),
                )
            }))
            .map_err(failed)?;
        if series.len() > 1 {
            legend.push((color, true, one.name.clone()));
        }
        chart
            .draw_series(placed.iter().map(|(x, r)| {
                PathElement::new(
                    vec![(*x, r.success_low * 100.0), (*x, r.success_high * 100.0)],
                    BLACK.stroke_width(2),
                )
            }))
            .map_err(failed)?;
    }
    let palette = [
        RGBColor(200, 80, 40),
        RGBColor(60, 150, 60),
        RGBColor(130, 70, 160),
        RGBColor(90, 90, 90),
    ];
    for (k, t) in teachers.iter().enumerate() {
        let y = t.test.success_rate * 100.0;
        let color = palette[k % palette.len()];
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(-0.5, y), (n as f64 - 0.5, y)],
                color.stroke_width(2),
            )))
            .map_err(failed)?;
        legend.push((color, false, format!("{} alone: {:.1}%", t.name, y)));
    }
    let font = ("sans-serif", 13).into_font().color(&BLACK);
    for (k, (color, bar, text)) in legend.iter().enumerate() {
        let y = 60 + 22 * k as i32;
        let mark = if *bar {
            legend_area.draw(&Rectangle::new(
                [(8, y - 6), (26, y + 6)],
                color.mix(0.85).filled(),
            ))
        } else {
            legend_area.draw(&PathElement::new(
                vec![(8, y), (26, y)],
                color.stroke_width(2),
            ))
        };
        mark.map_err(failed)?;
        legend_area
            .draw(&Text::new(text.as_str(), (32, y - 5), font.clone()))
            .map_err(failed)?;
    }
    root.present().map_err(failed)?;
    Ok(())
}

/// One adapter with what made it and how it did: `leap lineage`.
#[derive(Debug, Clone, Serialize)]
pub struct Lineage {
    pub adapter: AdapterRow,
    pub dataset: Option<DatasetRow>,
    pub labels: Vec<Provenance>,
    pub evaluations: Vec<EvaluationRow>,
}

/// Every recorded adapter of the run with its dataset, the labels in it and its evaluations.
pub fn lineage(store: &Store) -> Result<Vec<Lineage>, StoreError> {
    let datasets = store.datasets()?;
    let evaluations = store.evaluations()?;
    let mut nodes = Vec::new();
    for adapter in store.adapters()? {
        let dataset = adapter
            .dataset_id
            .and_then(|id| datasets.iter().find(|d| d.id == id).cloned());
        let labels = match &dataset {
            Some(d) => store.dataset_provenance(d.id)?,
            None => Vec::new(),
        };
        let evaluations = evaluations
            .iter()
            .filter(|e| e.adapter_id == Some(adapter.id))
            .cloned()
            .collect();
        nodes.push(Lineage {
            adapter,
            dataset,
            labels,
            evaluations,
        });
    }
    Ok(nodes)
}
