//! Command-line front-end. Each subcommand lives in its own file and calls the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod episodes;
mod model;
mod play;
mod rollout;
mod scenarios;

/// leap: train LLM agents with privileged-teacher feedback.
#[derive(Parser)]
#[command(name = "leap", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check, list, solve and generate scenario files.
    #[command(subcommand)]
    Scenarios(scenarios::Command),
    /// Play a scenario yourself in the terminal.
    Play(play::Args),
    /// Fetch, inspect and make GGUF models.
    #[command(subcommand)]
    Model(model::Command),
    /// The student plays scenarios; every step is written to the run database.
    Rollout(rollout::Args),
    /// List stored episodes and show their traces.
    #[command(subcommand)]
    Episodes(episodes::Command),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scenarios(cmd) => scenarios::run(cmd),
        Command::Play(args) => play::run(args),
        Command::Model(cmd) => model::run(cmd),
        Command::Rollout(args) => rollout::run(args),
        Command::Episodes(cmd) => episodes::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
