//! `leap tui`: the workbench.

use std::path::PathBuf;
use std::process::ExitCode;

use leap::agent::Sampling;
use leap::agent::local::LocalConfig;
use leap::run::RunDir;
use leap::tui::keys::Keymap;

use super::print::{errln, outln};

#[derive(clap::Args)]
pub struct Args {
    /// Run folder: its database is DIR/leap.db.
    #[arg(long, default_value = "runs/default")]
    run: PathBuf,
    /// Scenario files or folders (watched: edits reload in place).
    #[arg(long, num_args = 1.., default_value = "scenarios")]
    scenarios: Vec<PathBuf>,
    /// GGUF model (default: the run's model, else $LEAP_MODEL or the cached
    /// SmolLM2-135M-Instruct).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Key bindings on top of the defaults (default: ~/.config/leap/keys.yaml if it exists).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Check the key file and exit: its problems are printed as FILE:LINE:COL lines (exit
    /// status 1 when there are any).
    #[arg(long)]
    check_keys: bool,
    /// Steps before an episode ends (default: each scenario's horizon).
    #[arg(long, value_parser = leap::scenario::horizon)]
    horizon: Option<u32>,
    /// Earlier steps shown in the prompt.
    #[arg(long, default_value_t = leap::agent::prompt::DEFAULT_HISTORY)]
    history: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.0, value_parser = super::eval::temperature)]
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
    /// Environment variable that holds the teacher server's API key (never stored).
    #[arg(long, value_name = "VAR", requires = "teacher_server")]
    teacher_api_key_env: Option<String>,
    #[command(flatten)]
    remote: super::remote::RemoteArgs,
    /// Layers of the student (and the self teacher) offloaded to the GPU.
    #[arg(long, default_value_t = 0)]
    gpu_layers: u32,
    /// Context of the student (and the self teacher), in tokens.
    #[arg(long, default_value_t = LocalConfig::new("").ctx_per_slot)]
    ctx: u32,
    /// The Iterations screen also counts the evaluations recorded in these run folders, as
    /// `leap report --evaluations-from` does.
    #[arg(long, value_name = "DIR")]
    evaluations_from: Vec<PathBuf>,
    /// The Iterations screen shows another run's students beside this run's, as `leap report
    /// --compare` does: NAME=DIR.
    #[arg(long, value_name = "NAME=DIR", value_parser = leap::report::parse_compared)]
    compare: Vec<(String, PathBuf)>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // The key file's problems go to stderr before the screen is taken (they are there again
    // when the workbench ends, and in its first message); one that leaves no way out stops here.
    let keyfile = args.keys.clone().or_else(Keymap::user_file);
    let (_, problems) = Keymap::load(keyfile.as_deref())?;
    for problem in &problems {
        errln!("warning: {problem}");
    }
    if args.check_keys {
        if !problems.is_empty() {
            return Ok(ExitCode::FAILURE);
        }
        outln!(
            "{}: no problems",
            keyfile.map_or("no key file".into(), |f| f.display().to_string())
        );
        return Ok(ExitCode::SUCCESS);
    }
    // An existing run goes on with its own model unless told otherwise.
    let model = match leap::store::Store::open_existing(&args.run) {
        Ok(store) => RunDir::new(&args.run).model(&store, args.model.as_deref())?,
        Err(_) => args.model.unwrap_or_else(leap::model::default_model_path),
    };
    let options = leap::tui::Options {
        run_dir: args.run,
        scenarios: args.scenarios,
        model,
        keys: args.keys,
        horizon: args.horizon,
        history: args.history,
        sampling: Sampling {
            temperature: args.temperature,
            constrained: !args.free,
            ..Sampling::default()
        },
        teacher_server: args
            .teacher_server
            .map(|url| {
                args.remote
                    .config(&url, &args.teacher_model, args.teacher_api_key_env.clone())
            })
            .transpose()?,
        gpu_layers: args.gpu_layers,
        ctx: args.ctx,
        report: leap::report::Sources {
            evaluations_from: args.evaluations_from,
            name: None,
            compare: args.compare,
        },
    };
    leap::tui::run(options)?;
    Ok(ExitCode::SUCCESS)
}
