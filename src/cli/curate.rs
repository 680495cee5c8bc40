//! `leap curate`: decide every pending label by a rule ([`leap::curate`]).

use super::print::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use leap::curate::{CurationRule, curate};
use leap::store::{self, Store};

use super::text::{counts_line, label_line};

#[derive(Args)]
pub struct CurateArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    #[arg(long, value_enum)]
    policy: CurationRule,
    /// Only pending labels of episodes played by this iteration's student.
    #[arg(long)]
    iteration: Option<u32>,
    #[arg(long)]
    json: bool,
    /// Print a line for each decision once it is stored.
    #[arg(long)]
    verbose: bool,
}

pub fn run_curate(args: CurateArgs) -> anyhow::Result<ExitCode> {
    let mut store = Store::open_existing(&args.run)?;
    let verbose = args.verbose;
    let summary = curate(&mut store, args.policy, args.iteration, &mut |l| {
        if verbose {
            outln!("decided {}", label_line(l));
        }
    })?;
    if summary.decided_elsewhere > 0 {
        eprintln!(
            "{} labels were decided by another decider while this pass ran; left as it decided them",
            summary.decided_elsewhere
        );
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        outln!(
            "{}: accepted {}, rejected {}. {}",
            summary.policy,
            summary.accepted,
            summary.rejected,
            counts_line(&summary.counts)
        );
    }
    Ok(ExitCode::SUCCESS)
}
