//! `leap tui`: the workbench.

use std::path::PathBuf;
use std::process::ExitCode;

use leap::agent::Sampling;

#[derive(clap::Args)]
pub struct Args {
    /// Run folder: its database is DIR/leap.db.
    #[arg(long, default_value = "runs/default")]
    run: PathBuf,
    /// Scenario files or folders (watched: edits reload in place).
    #[arg(long, num_args = 1.., default_value = "scenarios")]
    scenarios: Vec<PathBuf>,
    /// GGUF model (default: $LEAP_MODEL or the cached SmolLM2-135M-Instruct).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Key bindings on top of the defaults (default: ~/.config/leap/keys.yaml if it exists).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Steps before an episode ends (default: each scenario's horizon).
    #[arg(long)]
    horizon: Option<u32>,
    /// Earlier steps shown in the prompt.
    #[arg(long, default_value_t = leap::agent::prompt::DEFAULT_HISTORY)]
    history: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Turn off the grammar that forces REASON/ACTION with an admissible action.
    #[arg(long)]
    free: bool,
    /// Offer a teacher behind this OpenAI-compatible server (e.g. http://127.0.0.1:8080/v1).
    #[arg(long, value_name = "URL")]
    teacher_server: Option<String>,
    /// The model name to ask the teacher server for.
    #[arg(long, default_value = "default", requires = "teacher_server")]
    teacher_model: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = leap::tui::Options {
        run_dir: args.run,
        scenarios: args.scenarios,
        model: args.model.unwrap_or_else(leap::model::default_model_path),
        keys: args.keys,
        horizon: args.horizon,
        history: args.history,
        sampling: Sampling {
            temperature: args.temperature,
            constrained: !args.free,
            ..Sampling::default()
        },
        teacher_server: args.teacher_server.map(|url| (url, args.teacher_model)),
    };
    leap::tui::run(options)?;
    Ok(ExitCode::SUCCESS)
}
