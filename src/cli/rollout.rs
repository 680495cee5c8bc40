//! `leap rollout`: the student plays scenarios; every step goes to the run database.

use super::print::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use leap::agent::prompt::Prompt;
use leap::agent::remote::RemotePolicy;
use leap::agent::student::{StudentSpec, parse_adapter};
use leap::agent::{Policy, Sampling};
use leap::rollout::{RolloutConfig, spawn};
use leap::run::RunDir;
use leap::scenario::{self, Split};

use super::progress::Bars;
use super::remote::RemoteArgs;

#[derive(clap::Args)]
pub struct Args {
    /// Run folder: its database is DIR/leap.db.
    #[arg(long, default_value = "runs/default")]
    run: PathBuf,
    /// Scenario files or folders.
    #[arg(long, required = true, num_args = 1..)]
    scenarios: Vec<PathBuf>,
    /// Play only this split.
    #[arg(long, value_enum)]
    split: Option<SplitArg>,
    /// GGUF model (default: the run's model, else $LEAP_MODEL or the cached SmolLM2-135M-Instruct).
    #[arg(long)]
    model: Option<PathBuf>,
    /// LoRA adapter, as PATH or PATH@SCALE.
    #[arg(long)]
    adapter: Vec<String>,
    /// Episodes per scenario.
    #[arg(long, default_value_t = 1)]
    episodes: usize,
    /// Episodes played at once (sequences of one llama.cpp context).
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.0, value_parser = super::eval::temperature)]
    temperature: f32,
    /// The temperature of a step whose prompt the episode has shown before, word for word
    /// (0: the same as every other step).
    #[arg(long, default_value_t = 0.0, value_parser = super::eval::temperature)]
    repeat_temperature: f32,
    /// Play every step to the horizon even where a greedy episode is back in a state and prompt
    /// it has already answered (by default such an episode stops there as a failure, stored as
    /// `stopped: cycle at step N`).
    #[arg(long)]
    no_cycle_stop: bool,
    /// Turn off the grammar that forces REASON/ACTION with an admissible action.
    #[arg(long)]
    free: bool,
    /// Steps before an episode ends (default: each scenario's horizon).
    #[arg(long, value_parser = leap::scenario::horizon)]
    horizon: Option<u32>,
    /// Earlier steps shown in the prompt.
    #[arg(long, default_value_t = leap::agent::prompt::DEFAULT_HISTORY)]
    history: usize,
    /// Prompt template (minijinja, with `system` and `user` blocks).
    #[arg(long)]
    prompt: Option<PathBuf>,
    /// Layers offloaded to the GPU.
    #[arg(long, default_value_t = 0)]
    gpu_layers: u32,
    /// Tokens guessed ahead of each greedy answer and checked in the same decode call (0: none;
    /// the answers are the model's own either way, up to llama.cpp's rounding across batch sizes).
    /// By default 4 where guesses pay on this CPU, else none: the local backend times both
    /// once per machine (see README, The student).
    #[arg(long)]
    draft: Option<usize>,
    /// How the model's weights are held on the CPU: `file` as the file stores them, `q8_0`
    /// re-encoded as Q8_0 (once, kept in the cache; a finer copy of Q4_1 or Q5_1 weights, whose
    /// prompts have no many-token kernel without AMX). By default whichever this CPU's timing
    /// finds faster, for Q4_1 and Q5_1 models (see README, The student).
    #[arg(long, value_enum)]
    weights: Option<leap::agent::local::Weights>,
    /// Play through an OpenAI-compatible chat-completions server at this base URL (e.g.
    /// http://127.0.0.1:8080/v1) instead of a local model.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// The model name to ask the server for.
    #[arg(long, default_value = "default", requires = "server")]
    server_model: String,
    /// Environment variable that holds the server's API key (the key is never stored).
    #[arg(long, value_name = "VAR", requires = "server")]
    api_key_env: Option<String>,
    /// Requests in flight at once to the server.
    #[arg(long, default_value_t = 4, requires = "server")]
    concurrency: usize,
    #[command(flatten)]
    remote: RemoteArgs,
    /// The LEAP iteration of the student (stored with each episode; labels of its episodes go
    /// into the next iteration's dataset).
    #[arg(long)]
    iteration: Option<u32>,
    /// Names this rollout in the database; a rerun with the same label resumes it.
    #[arg(long)]
    label: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SplitArg {
    Train,
    Test,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut scenarios = scenario::load_all(&args.scenarios)?;
    if let Some(split) = args.split {
        let split = match split {
            SplitArg::Train => Split::Train,
            SplitArg::Test => Split::Test,
        };
        scenarios.retain(|s| s.split == split);
    }
    if scenarios.is_empty() {
        bail!("no scenario to play in {:?}", args.scenarios);
    }
    let kinds = scenarios.iter().map(|s| s.kind());
    let prompt = Prompt::file_or_builtin(args.prompt.as_deref(), args.history, kinds)?;
    let slots = args.parallel.max(1);
    let policy: Box<dyn Policy> = match &args.server {
        Some(url) => {
            let mut remote =
                args.remote
                    .config(url, &args.server_model, args.api_key_env.clone())?;
            remote.concurrency = args.concurrency.max(1);
            Box::new(RemotePolicy::new(remote))
        }
        None => {
            let run = RunDir::new(&args.run);
            let mut store = run.open()?;
            let model = run.model(&store, args.model.as_deref())?;
            let adapters: Result<Vec<_>, _> =
                args.adapter.iter().map(|a| parse_adapter(a)).collect();
            let spec = StudentSpec::new(&model).adapters(adapters?);
            let policy = spec
                .gpu_layers(args.gpu_layers)
                .draft(args.draft)
                .weights(args.weights)
                .slots(slots)
                .load()?;
            run.remember_model(&mut store, &model)?;
            Box::new(policy)
        }
    };
    let sampling = Sampling {
        temperature: args.temperature,
        seed: args.seed,
        constrained: !args.free,
        repeat_temperature: args.repeat_temperature,
        ..Sampling::default()
    };
    let label = args.label.clone().unwrap_or_else(|| {
        format!(
            "{}-t{}-s{}{}{}",
            policy.describe().replace(' ', ""),
            args.temperature,
            args.seed,
            if args.repeat_temperature > 0.0 {
                format!("-repeat{}", args.repeat_temperature)
            } else {
                String::new()
            },
            if args.free { "-free" } else { "" }
        )
    });
    let rollout_config = RolloutConfig {
        label,
        episodes: args.episodes,
        parallel: slots,
        sampling,
        iteration: args.iteration,
        horizon: args.horizon,
        privileged: false,
        stop_cycles: !args.no_cycle_stop,
    };
    let mut bars = Bars::default();
    bars.episodes("rollout");
    let job = spawn(policy, prompt, args.run.clone(), scenarios, rollout_config);
    for event in job.events.iter() {
        bars.rollout(event);
    }
    let (summary, _) = job.join()?;
    bars.finish();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        outln!(
            "{} episodes: success {:.1}%, mean reward {:.3}, mean steps {:.1}, invalid actions {:.1}%; {:.0} generated tokens/s, {:.2} steps/s ({} played now, {:.0}% of prompt tokens from cache)",
            summary.episodes,
            summary.success_rate * 100.0,
            summary.mean_reward,
            summary.mean_steps,
            summary.invalid_action_rate * 100.0,
            summary.gen_tokens_per_s,
            summary.steps_per_s,
            summary.played,
            summary.cached_share * 100.0
        );
    }
    Ok(ExitCode::SUCCESS)
}
