//! `leap scenarios check|list|solve|schema|generate|import`

use super::print::{errln, out, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::json;

use leap::scenario::{self, Loaded, Solved, Split};

#[derive(Subcommand)]
pub enum Command {
    /// Validate scenario files; every problem is printed as FILE:LINE:COL.
    Check(Paths),
    /// List the scenarios in files or folders.
    List(Paths),
    /// Run the expert planner on each scenario and print the privileged state it sees.
    Solve(Paths),
    /// Print the JSON Schema of scenario files.
    Schema,
    /// Generate a scenario set.
    Generate(GenerateArgs),
    /// Turn another benchmark's task files into scenario files.
    Import(ImportArgs),
}

#[derive(Args)]
pub struct Paths {
    /// Scenario files or folders (searched for *.yaml and *.yml).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct GenerateArgs {
    /// The environment kind, as scenario files name it.
    kind: String,
    /// How many scenarios.
    #[arg(long, default_value_t = 20)]
    count: usize,
    /// Seed: the same seed gives the same files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Which split to make; test layouts and (object, receptacle) pairs never occur in train.
    #[arg(long, value_enum, default_value_t = SplitArg::Train)]
    split: SplitArg,
    /// Folder to write one YAML file per scenario into.
    #[arg(long)]
    out: PathBuf,
    /// The input data the kind's generator reads, for a kind that reads any (the shop:
    /// WebShop's data folder, by default tests/data/webshop).
    #[arg(long)]
    data: Option<PathBuf>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The task files' format: `intercode` (InterCode-Bash's and InterCode-ALFA's
    /// nl2bash_fs_N.json, which become `shell` scenarios).
    #[arg(value_enum)]
    format: ImportFormat,
    /// The task files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Folder to write into, one YAML file per task under train/, test/ (InterCode's: fs1 and
    /// fs2 train, fs3 and fs4 test) and alfa/ (InterCode-ALFA's).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum ImportFormat {
    Intercode,
}

#[derive(Clone, Copy, ValueEnum)]
enum SplitArg {
    Train,
    Test,
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Check(p) => check(p),
        Command::List(p) => list(p),
        Command::Solve(p) => solve(p),
        Command::Schema => {
            out!("{}", scenario::schema::scenario_schema());
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate(args) => {
            let split = match args.split {
                SplitArg::Train => Split::Train,
                SplitArg::Test => Split::Test,
            };
            let kind = leap::env::kind(&args.kind).with_context(|| {
                let expected = leap::env::expected_kinds();
                format!("no environment kind `{}`, expected {expected}", args.kind)
            })?;
            let written = kind
                .generate(
                    &args.out,
                    args.count,
                    args.seed,
                    split,
                    args.data.as_deref(),
                )
                .with_context(|| format!("kind `{}` has no scenario generator", args.kind))?
                .with_context(|| format!("writing scenarios to {}", args.out.display()))?;
            errln!(
                "wrote {} scenarios to {}",
                written.len(),
                args.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(args) => import(args),
    }
}

fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let written = match args.format {
        ImportFormat::Intercode => leap::env::shell::import::write(&args.paths, &args.out)?,
    };
    let mut sets: Vec<(String, usize)> = Vec::new();
    for path in &written {
        let set = path
            .parent()
            .and_then(|p| p.file_name())
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        match sets.iter_mut().find(|(s, _)| *s == set) {
            Some((_, n)) => *n += 1,
            None => sets.push((set, 1)),
        }
    }
    let counts: Vec<String> = sets.iter().map(|(s, n)| format!("{s} {n}")).collect();
    errln!(
        "wrote {} scenarios to {} ({})",
        written.len(),
        args.out.display(),
        counts.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints the problems on stderr; true when there were none.
fn report(loaded: &Loaded) -> bool {
    for p in &loaded.problems {
        errln!("{p}");
    }
    loaded.problems.is_empty()
}

fn check(p: Paths) -> anyhow::Result<ExitCode> {
    let loaded = scenario::load(&p.paths);
    if p.json {
        let out = json!({
            "ok": loaded.problems.is_empty(),
            "scenarios": loaded.scenarios.len(),
            "problems": loaded.problems,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else if report(&loaded) {
        outln!("{} scenarios, no problems", loaded.scenarios.len());
    } else {
        errln!("{} problems", loaded.problems.len());
    }
    Ok(exit(loaded.problems.is_empty()))
}

#[derive(Serialize)]
struct Listed<'a> {
    id: &'a str,
    kind: &'static str,
    split: &'static str,
    task: &'a str,
}

fn list(p: Paths) -> anyhow::Result<ExitCode> {
    let loaded = scenario::load(&p.paths);
    let ok = report(&loaded);
    let rows: Vec<Listed> = loaded
        .scenarios
        .iter()
        .map(|s| Listed {
            id: &s.id,
            kind: s.kind().as_str(),
            split: s.split.as_str(),
            task: &s.task,
        })
        .collect();
    if p.json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let width = rows.iter().map(|r| r.id.len()).max().unwrap_or(2);
        for r in &rows {
            outln!("{:width$}  {:9}  {:5}  {}", r.id, r.kind, r.split, r.task);
        }
    }
    Ok(exit(ok))
}

fn solve(p: Paths) -> anyhow::Result<ExitCode> {
    let loaded = scenario::load(&p.paths);
    let ok = report(&loaded);
    let results: Vec<Solved> = loaded.scenarios.iter().map(scenario::solve).collect();
    let solved = results.iter().filter(|r| r.solved).count();
    let failures: Vec<_> = results
        .iter()
        .filter(|r| !r.solved)
        .map(|r| match r.steps {
            Some(n) => json!({"id": r.id, "reason": format!("the shortest plan takes {n} steps, over the horizon of {}", r.horizon)}),
            None => json!({"id": r.id, "reason": "no plan reaches the goal"}),
        })
        .collect();
    if p.json {
        let out = json!({"total": results.len(), "solved": solved, "failures": failures, "scenarios": results});
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for r in &results {
            let places: Vec<String> = r
                .privileged
                .facts
                .iter()
                .map(|f| format!("{} {} {}", f.subject, f.relation, f.detail))
                .collect();
            match &r.privileged.plan {
                Some(plan) => outln!(
                    "{}: {} steps (horizon {}); {}\n  {}",
                    r.id,
                    plan.len(),
                    r.horizon,
                    places.join(", "),
                    plan.join(" | ")
                ),
                None => outln!("{}: unsolvable; {}", r.id, places.join(", ")),
            }
        }
        outln!("solved {solved} of {}", results.len());
    }
    Ok(exit(ok && solved == results.len()))
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
