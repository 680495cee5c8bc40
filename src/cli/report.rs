//! `leap report` (the per-iteration table and chart) and `leap lineage` (which labels and
//! datasets made each adapter, and how each adapter did).

use super::print::{errln, out, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use leap::report::lineage;
use leap::report::{Sources, chart_svg, gather, markdown, parse_compared};
use leap::store::{self, Store};

#[derive(clap::Args)]
pub struct ReportArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    /// Folder for report.md and success.svg.
    #[arg(long)]
    out: PathBuf,
    /// Also count the evaluations recorded in these run folders, matched by label (say, the
    /// same adapters evaluated sampled in a scratch run). The run's own win where both have one.
    #[arg(long, value_name = "DIR")]
    evaluations_from: Vec<PathBuf>,
    /// What to call this run beside the compared ones.
    #[arg(long)]
    name: Option<String>,
    /// Show another run's students beside this run's, as bars and a column each: NAME=DIR.
    #[arg(long, value_name = "NAME=DIR", value_parser = parse_compared)]
    compare: Vec<(String, PathBuf)>,
    #[arg(long)]
    json: bool,
}

pub fn run_report_cmd(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_existing(&args.run)?;
    let sources = Sources {
        evaluations_from: args.evaluations_from.clone(),
        name: args.name.clone(),
        compare: args.compare.clone(),
    };
    let report = gather(&store, &sources)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("{}", args.out.display()))?;
    let chart = args.out.join("success.svg");
    chart_svg(&report, &chart)?;
    let md = markdown(&report, Some("success.svg"));
    let path = args.out.join("report.md");
    std::fs::write(&path, &md).with_context(|| format!("{}", path.display()))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{md}");
        errln!("wrote {} and {}", path.display(), chart.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct LineageArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn run_lineage(args: LineageArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_existing(&args.run)?;
    let nodes = lineage(&store)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&nodes)?);
        return Ok(ExitCode::SUCCESS);
    }
    if nodes.is_empty() {
        outln!("no adapter in {} yet", store.path().display());
    }
    for n in &nodes {
        outln!(
            "adapter #{} {} (iteration {})",
            n.adapter.id,
            n.adapter.path,
            n.adapter.iteration.map_or("–".into(), |i| i.to_string())
        );
        match &n.dataset {
            Some(d) => outln!(
                "  dataset #{} {} rows, sha256 {}, built by {}",
                d.id,
                d.rows,
                &d.hash[..12.min(d.hash.len())],
                d.source.as_str()
            ),
            None => outln!("  dataset: not recorded"),
        }
        for p in &n.labels {
            outln!(
                "    {} labels by {} ({}), from iteration {} episodes: {} changed, {} with leak flags",
                p.labels,
                p.teacher,
                p.status,
                p.iteration.map_or("–".into(), |i| i.to_string()),
                p.changed,
                p.leaking
            );
        }
        for e in &n.evaluations {
            let rate = e
                .summary
                .get("success_rate")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0);
            let count = e
                .summary
                .get("episodes")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            outln!(
                "  evaluation {}: {:.1}% of {count} on {}",
                e.label,
                rate * 100.0,
                e.split
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
