//! `leap play`: a person plays a scenario in the terminal.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use leap::scenario;

use super::print::{out, outln};

#[derive(clap::Args)]
pub struct Args {
    /// A scenario file (or folder).
    file: PathBuf,
    /// Which scenario, when the file holds several (default: the first).
    #[arg(long)]
    id: Option<String>,
    /// Hide the list of admissible commands.
    #[arg(long)]
    no_hints: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let scenarios = scenario::load_all(std::slice::from_ref(&args.file))?;
    let chosen = match &args.id {
        Some(id) => scenarios.iter().find(|s| &s.id == id).with_context(|| {
            let ids: Vec<&str> = scenarios.iter().map(|s| s.id.as_str()).collect();
            format!(
                "no scenario `{id}` in {}; it has: {}",
                args.file.display(),
                ids.join(", ")
            )
        })?,
        None => match scenarios.first() {
            Some(s) => s,
            None => bail!("{} holds no scenario", args.file.display()),
        },
    };
    let mut env = chosen.body.env(chosen.horizon);
    let stdin = std::io::stdin();
    outln!(
        "{}\n\n{}\n\nYour task is to: {}",
        chosen.id,
        env.observation(),
        env.task()
    );
    let mut line = String::new();
    loop {
        if !args.no_hints {
            outln!(
                "\n[{} of {} steps] admissible: {}",
                env.steps_taken(),
                chosen.horizon,
                env.admissible().join(", ")
            );
        }
        out!("> ");
        line.clear();
        if stdin.lock().read_line(&mut line)? == 0 {
            outln!();
            return Ok(ExitCode::SUCCESS);
        }
        let action = line.trim();
        if action.is_empty() {
            continue;
        }
        let outcome = env.step(action);
        outln!("{}", env.observation());
        if outcome.done {
            let verdict = if outcome.won {
                "Task complete"
            } else if env.steps_taken() >= chosen.horizon {
                "Out of steps"
            } else {
                "Episode over"
            };
            outln!(
                "\n{verdict}: reward {}. ({} steps)",
                outcome.reward,
                env.steps_taken()
            );
            if let Some(info) = env.info() {
                outln!("{info}");
            }
            return Ok(ExitCode::SUCCESS);
        }
    }
}
