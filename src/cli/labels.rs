//! `leap labels`: review the teacher's corrections one label at a time. Every decision is its own
//! transaction: once the command says it is made, it is stored.

use super::print::{out, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde::Serialize;

use leap::store::{self, Decision, Label, LabelCounts, LabelFilter, LabelStatus, Store};

#[derive(Subcommand)]
pub enum Command {
    /// List labels with counts per status.
    List(ListArgs),
    /// One label in full, with its history of decisions.
    Show(OneArgs),
    /// Accept labels: they become training rows as the teacher wrote them.
    Accept(ManyArgs),
    /// Reject labels: they are left out of training.
    Reject(ManyArgs),
    /// Keep a label with your own reason and action (the action must have been admissible).
    Edit(EditArgs),
    /// Undo the last decision about a label.
    Undo(OneArgs),
}

#[derive(Args)]
pub struct Filter {
    /// Only labels in this state.
    #[arg(long, value_parser = parse_status)]
    status: Option<LabelStatus>,
    /// Only labels with leak flags.
    #[arg(long)]
    leaks: bool,
    /// Only labels whose action differs from the student's.
    #[arg(long)]
    changed: bool,
    /// Only labels of this scenario.
    #[arg(long, value_name = "ID")]
    scenario: Option<String>,
    /// Only labels of episodes played by this iteration's student.
    #[arg(long)]
    iteration: Option<u32>,
    /// Only labels by this teacher (as listed, e.g. `oracle@0.5`).
    #[arg(long)]
    teacher: Option<String>,
}

impl Filter {
    fn to_filter(&self, limit: Option<u32>) -> LabelFilter {
        LabelFilter {
            status: self.status,
            changed: self.changed.then_some(true),
            leaking: self.leaks.then_some(true),
            scenario_id: self.scenario.clone(),
            iteration: self.iteration,
            teacher: self.teacher.clone(),
            limit,
            ..LabelFilter::default()
        }
    }
}

fn parse_status(s: &str) -> Result<LabelStatus, String> {
    s.parse()
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    #[command(flatten)]
    filter: Filter,
    /// At most this many labels (the counts cover every match).
    #[arg(long)]
    limit: Option<u32>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct OneArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    id: i64,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ManyArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    /// Label ids.
    #[arg(required = true)]
    ids: Vec<i64>,
    /// Who decides (default: person:$USER).
    #[arg(long)]
    by: Option<String>,
}

#[derive(Args)]
pub struct EditArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    id: i64,
    #[arg(long)]
    reason: String,
    #[arg(long)]
    action: String,
    #[arg(long)]
    by: Option<String>,
}

fn person(by: &Option<String>) -> String {
    by.clone().unwrap_or_else(|| {
        format!(
            "person:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    })
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::List(args) => {
            let store = Store::open_existing(&args.run)?;
            let labels = store.labels(&args.filter.to_filter(args.limit))?;
            let counts = store.label_counts(&args.filter.to_filter(None))?;
            if args.json {
                #[derive(Serialize)]
                struct Out<'a> {
                    counts: &'a LabelCounts,
                    labels: &'a [Label],
                }
                let out = Out {
                    counts: &counts,
                    labels: &labels,
                };
                outln!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for l in &labels {
                    outln!("{}", super::text::label_line(l));
                }
                outln!("{}", super::text::counts_line(&counts));
            }
        }
        Command::Show(args) => {
            let store = Store::open_existing(&args.run)?;
            let Some(label) = store.label(args.id)? else {
                bail!("{}: no label {}", store.path().display(), args.id);
            };
            let history = store.label_history(args.id)?;
            if args.json {
                let out = serde_json::json!({ "label": label, "history": history });
                outln!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                out!("{}", super::text::label_details(&label, &history));
            }
        }
        Command::Accept(args) | Command::Reject(args) if args.ids.is_empty() => {
            bail!("no label ids given")
        }
        Command::Accept(args) => decide_many(&args, Decision::Accept)?,
        Command::Reject(args) => decide_many(&args, Decision::Reject)?,
        Command::Edit(args) => {
            let mut store = Store::open_existing(&args.run)?;
            let decision = Decision::Edit {
                reason: args.reason.clone(),
                action: args.action.clone(),
            };
            let label = store.decide(args.id, &decision, &person(&args.by))?;
            outln!("{}", super::text::label_line(&label));
        }
        Command::Undo(args) => {
            let mut store = Store::open_existing(&args.run)?;
            let label = store.undo_label(args.id)?;
            outln!("{}", super::text::label_line(&label));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn decide_many(args: &ManyArgs, decision: Decision) -> anyhow::Result<()> {
    let mut store = Store::open_existing(&args.run)?;
    let by = person(&args.by);
    for &id in &args.ids {
        let label = store.decide(id, &decision, &by)?;
        outln!("{}", super::text::label_line(&label));
    }
    Ok(())
}
