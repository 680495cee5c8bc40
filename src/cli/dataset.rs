//! `leap dataset build` and `leap export`: training rows from the expert and the kept labels.

use super::print::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};

use leap::agent::prompt::Prompt;
use leap::dataset::build::{Aggregate, BuildSettings, build_iteration, preference_pairs};
use leap::dataset::write_jsonl;
use leap::run::RunDir;
use leap::scenario::{self, Split};
use leap::store::{self, LabelFilter, Store};

/// Where the dataset's rows come from and how they are combined.
#[derive(Args, Clone)]
pub struct BuildArgs {
    /// Scenario files or folders: the train split's scenarios give the expert demonstrations.
    #[arg(long, num_args = 1.., default_value = "scenarios/household")]
    pub scenarios: Vec<PathBuf>,
    /// The oracle's privilege level for the demonstrations.
    #[arg(long = "expert-privilege", default_value_t = 0.0)]
    pub expert_privilege: f64,
    /// How iterations are combined.
    #[arg(long, value_enum, default_value = "union")]
    pub aggregate: Aggregate,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// At most this many rows from the expert and from each iteration's labels (seeded draw).
    #[arg(long)]
    pub max_rows_per_part: Option<usize>,
    /// One row per distinct correction of an episode: a correction repeated at every step of a
    /// loop is kept once, at its first step.
    #[arg(long)]
    pub distinct_labels: bool,
    /// Earlier steps shown in the prompt (must match the student's).
    #[arg(long, default_value_t = leap::agent::prompt::DEFAULT_HISTORY)]
    pub history: usize,
    /// The student's prompt template.
    #[arg(long)]
    pub prompt: Option<PathBuf>,
}

impl BuildArgs {
    pub fn settings(&self) -> BuildSettings {
        BuildSettings {
            max_rows_per_part: self.max_rows_per_part,
            distinct_labels: self.distinct_labels,
            ..BuildSettings::new(self.expert_privilege, self.aggregate, self.seed)
        }
    }

    /// The prompt, a template file serving the kinds of `scenarios`.
    pub fn prompt(&self, scenarios: &[scenario::Scenario]) -> anyhow::Result<Prompt> {
        let kinds = scenarios.iter().map(|s| s.kind());
        Ok(Prompt::file_or_builtin(
            self.prompt.as_deref(),
            self.history,
            kinds,
        )?)
    }

    pub fn train_scenarios(&self) -> anyhow::Result<Vec<scenario::Scenario>> {
        let mut all = scenario::load_all(&self.scenarios)?;
        all.retain(|s| s.split == Split::Train);
        if all.is_empty() {
            bail!("no train-split scenario in {:?}", self.scenarios);
        }
        Ok(all)
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Build iteration N's training set into DIR/datasets/iter-N.jsonl.
    Build(DatasetArgs),
}

#[derive(Args)]
pub struct DatasetArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    /// The iteration whose adapter will train on it: 0 is behaviour cloning on the expert.
    #[arg(long)]
    iter: u32,
    #[command(flatten)]
    build: BuildArgs,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Build(args) = cmd;
    let mut store = Store::open(&args.run)?;
    let scenarios = args.build.train_scenarios()?;
    let report = build_iteration(
        &mut store,
        &RunDir::new(&args.run),
        &scenarios,
        &args.build.prompt(&scenarios)?,
        args.iter,
        &args.build.settings(),
    )?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        outln!(
            "{}: {} rows (expert {} from {} of {} demonstrations won; labels per iteration {:?})",
            report.path,
            report.rows,
            report.parts[0],
            report.expert.won,
            report.expert.scenarios,
            &report.parts[1..]
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// `{"messages": [...]}` rows for supervised fine-tuning.
    Sft,
    /// `{"prompt", "chosen", "rejected"}` pairs: the teacher's step over the student's.
    Dpo,
}

#[derive(Args)]
pub struct ExportArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    #[arg(long, value_enum)]
    format: Format,
    #[arg(long)]
    out: PathBuf,
    /// sft: the iteration whose dataset to build (default 0); dpo: only labels of episodes
    /// played by this iteration's student (default all).
    #[arg(long)]
    iter: Option<u32>,
    #[command(flatten)]
    build: BuildArgs,
}

pub fn run_export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let mut store = Store::open_existing(&args.run)?;
    let n = match args.format {
        Format::Sft => {
            let iteration = args.iter.unwrap_or(0);
            let run = RunDir::new(&args.run);
            let scenarios = args.build.train_scenarios()?;
            let report = build_iteration(
                &mut store,
                &run,
                &scenarios,
                &args.build.prompt(&scenarios)?,
                iteration,
                &args.build.settings(),
            )?;
            if args.out != run.dataset(iteration) {
                std::fs::copy(&report.path, &args.out)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
            }
            report.rows
        }
        Format::Dpo => {
            let filter = LabelFilter {
                iteration: args.iter,
                ..LabelFilter::default()
            };
            let pairs = preference_pairs(&store, &filter)?;
            write_jsonl(&args.out, &pairs)?;
            pairs.len()
        }
    };
    outln!("{}: {n} rows", args.out.display());
    Ok(ExitCode::SUCCESS)
}
