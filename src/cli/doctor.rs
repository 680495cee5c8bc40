//! `leap doctor`: checks a run folder ([`leap::doctor`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use leap::store;

#[derive(Args)]
pub struct DoctorArgs {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    #[arg(long)]
    json: bool,
}

/// Prints what was checked; exits 1 when anything is wrong.
pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let report = leap::doctor::doctor(&args.run)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &report.findings {
            match &f.problem {
                None => println!("ok       {}", f.what),
                Some(p) => println!("DAMAGED  {}: {p}", f.what),
            }
        }
    }
    if report.sound() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{}: the run is damaged (see above)", args.run.display());
        Ok(ExitCode::FAILURE)
    }
}
