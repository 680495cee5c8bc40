//! `leap episodes list|show`: read the episodes a run has stored.

use super::print::{out, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use leap::store::{self, EpisodeFilter, Store};

use super::trace::{render_list, render_trace};

#[derive(Subcommand)]
pub enum Command {
    /// List a run's episodes, newest first, with a summary.
    List(ListArgs),
    /// Print one episode's trace: each step's reason, action and what came back, then the outcome.
    Show(ShowArgs),
}

#[derive(Args)]
pub struct ListArgs {
    /// The run folder.
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    /// Only episodes of this scenario.
    #[arg(long, value_name = "ID")]
    scenario: Option<String>,
    /// Only episodes whose key starts with this (e.g. `rollout/base/`).
    #[arg(long)]
    prefix: Option<String>,
    /// Only episodes of this LEAP iteration.
    #[arg(long)]
    iteration: Option<u32>,
    /// At most this many rows (the summary still covers every match).
    #[arg(long)]
    limit: Option<u32>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    /// The run folder.
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    /// The episode's id (from `episodes list`).
    id: i64,
    /// Also print each step's full prompt and the model's raw output.
    #[arg(long)]
    full: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::List(args) => list(args),
        Command::Show(args) => show(args),
    }
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_existing(&args.run)?;
    let filter = EpisodeFilter {
        key_prefix: args.prefix,
        scenario_id: args.scenario,
        iteration: args.iteration,
        limit: args.limit,
        ..EpisodeFilter::default()
    };
    let rows = store.list_episodes(&filter)?;
    let summary = store.summary(&filter)?;
    if args.json {
        let out = json!({ "summary": summary, "episodes": rows });
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        out!("{}", render_list(&rows, &summary));
    }
    Ok(ExitCode::SUCCESS)
}

fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_existing(&args.run)?;
    let episode = store
        .episode(args.id)?
        .with_context(|| format!("no episode {} in {}", args.id, store.path().display()))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&episode)?);
    } else {
        out!("{}", render_trace(&episode, args.full));
    }
    Ok(ExitCode::SUCCESS)
}
