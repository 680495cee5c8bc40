//! Command-line front-end. Each subcommand lives in its own file and calls the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use print::errln;

mod correct;
mod curate;
mod dataset;
mod doctor;
mod episodes;
mod eval;
mod iterate;
mod labels;
mod model;
mod play;
mod print;
mod progress;
mod remote;
mod report;
mod rollout;
mod scenarios;
mod text;
mod trace;
mod train;
#[cfg(feature = "tui")]
mod tui;

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
    /// The workbench: step live episodes, review teacher labels, train.
    #[cfg(feature = "tui")]
    Tui(tui::Args),
    /// A teacher corrects stored episodes; each corrected step becomes a pending label.
    Correct(correct::Args),
    /// Review labels: list, show, accept, reject, edit, undo.
    #[command(subcommand)]
    Labels(labels::Command),
    /// Decide every pending label by a policy.
    Curate(curate::CurateArgs),
    /// Build an iteration's training set from expert demonstrations and kept labels.
    #[command(subcommand)]
    Dataset(dataset::Command),
    /// Export training data as JSONL: SFT rows or DPO pairs.
    Export(dataset::ExportArgs),
    /// Evaluate a student on a split, beside its base model and the teacher acting alone.
    Eval(eval::Args),
    /// The LEAP loop: behaviour cloning, then rollouts, corrections, curation, training and
    /// evaluation per iteration; resumable.
    Iterate(iterate::Args),
    /// Write report.md and a chart of success per iteration.
    Report(report::ReportArgs),
    /// Which datasets and labels made each adapter, and how each adapter did.
    Lineage(report::LineageArgs),
    /// Train an iteration's LoRA adapter on its dataset through llama.cpp.
    Train(train::Args),
    /// Check a run: its database in full, and its model, datasets and adapters against what it
    /// recorded about them.
    Doctor(doctor::DoctorArgs),
}

/// Starts the process again with `OPENBLAS_CORETYPE` set when OpenBLAS chose its generic
/// kernels for a CPU that runs faster ones (`leap::train::blas`): the variable is read only when
/// the library loads. Nothing has happened yet; where the restart fails, this process goes on.
fn restart_for_blas() {
    #[cfg(unix)]
    if let Some(core) = leap::train::blas::better_core() {
        use std::os::unix::process::CommandExt;
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let _ = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("OPENBLAS_CORETYPE", core)
            .exec();
    }
}

pub fn main() -> ExitCode {
    restart_for_blas();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scenarios(cmd) => scenarios::run(cmd),
        Command::Play(args) => play::run(args),
        Command::Model(cmd) => model::run(cmd),
        Command::Rollout(args) => rollout::run(args),
        Command::Episodes(cmd) => episodes::run(cmd),
        #[cfg(feature = "tui")]
        Command::Tui(args) => tui::run(args),
        Command::Correct(args) => correct::run(args),
        Command::Labels(cmd) => labels::run(cmd),
        Command::Curate(args) => curate::run_curate(args),
        Command::Dataset(cmd) => dataset::run(cmd),
        Command::Export(args) => dataset::run_export(args),
        Command::Eval(args) => eval::run(args),
        Command::Iterate(args) => iterate::run(args),
        Command::Report(args) => report::run_report_cmd(args),
        Command::Lineage(args) => report::run_lineage(args),
        Command::Train(args) => train::run(args),
        Command::Doctor(args) => doctor::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) if print::is_broken_pipe(&err) => print::end_by_sigpipe(),
        Err(err) => {
            errln!("error: {}", message(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each once: many errors already say their cause in their own
/// message (`"{path}: {source}"`), and a cause said there is not said again.
fn message(err: &anyhow::Error) -> String {
    let mut out = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !out.contains(&cause) {
            out.push_str(": ");
            out.push_str(&cause);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::message;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Said {
        path: String,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("reading the run")]
    struct Unsaid {
        source: std::io::Error,
    }

    /// clap's own checks of every subcommand (unique argument names, valid defaults), which
    /// it otherwise makes only when that subcommand runs.
    #[test]
    fn every_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = || std::io::Error::other("disk full");
        let said = anyhow::Error::new(Said {
            path: "a.jsonl".into(),
            source: io(),
        });
        assert_eq!(message(&said), "a.jsonl: disk full");
        let unsaid = anyhow::Error::new(Unsaid { source: io() });
        assert_eq!(message(&unsaid), "reading the run: disk full");
        let context = anyhow::Error::new(io()).context("opening the store");
        assert_eq!(message(&context), "opening the store: disk full");
    }
}
