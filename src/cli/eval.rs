//! `leap eval`: the student (an iteration's adapter, or any adapter) on a split, beside the same
//! model without adapter and the teacher acting alone with its privileged state
//! ([`leap::eval::compare`]).

use super::print::{out, outln};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use leap::agent::prompt::Prompt;
use leap::agent::student::parse_adapter;
use leap::eval::{EvalOptions, StudentAdapter, TeacherAlone, compare, split_scenarios, stepwise};
use leap::run::RunDir;
use leap::scenario::Split;
use leap::store;

use super::progress::Bars;
use super::text::{eval_table, stepwise_table};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    #[arg(long, num_args = 1.., default_value = "scenarios/household")]
    scenarios: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "test")]
    split: SplitArg,
    /// Evaluate this iteration's adapter (DIR/adapters/iter-N.gguf).
    #[arg(long, conflicts_with = "adapter")]
    iter: Option<u32>,
    /// Evaluate this adapter (PATH or PATH@SCALE).
    #[arg(long)]
    adapter: Option<String>,
    /// The base model (default: the run's model, else $LEAP_MODEL or the cached
    /// SmolLM2-135M-Instruct).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Episodes per scenario.
    #[arg(long, default_value_t = 1)]
    episodes: usize,
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Skip the baseline (the model without adapter).
    #[arg(long)]
    no_baseline: bool,
    /// The teacher acting alone with its privileged state.
    #[arg(long, value_enum, default_value = "oracle")]
    teacher: TeacherAlone,
    #[arg(long, default_value_t = 0.5)]
    privilege: f64,
    /// Earlier steps shown in the prompt (must match the student's training).
    #[arg(long, default_value_t = leap::agent::prompt::DEFAULT_HISTORY)]
    history: usize,
    /// The student's prompt template (must match the student's training, `leap dataset build
    /// --prompt`).
    #[arg(long)]
    prompt: Option<PathBuf>,
    /// Steps before an episode ends (default: each scenario's horizon).
    #[arg(long, value_parser = leap::scenario::horizon)]
    horizon: Option<u32>,
    /// Sampling temperature (0: greedy). The evaluations are named with it
    /// (`eval-test-iter-2-t0.7`), so that each decoding has its own.
    #[arg(long, default_value_t = 0.0, value_parser = temperature, conflicts_with = "stepwise")]
    temperature: f32,
    /// Sample at this temperature the steps whose prompt the episode has shown before, word for
    /// word (a greedy student would repeat itself there); every other step as `--temperature`.
    /// 0: off. Named like `--temperature` (`eval-test-iter-2-repeat1`).
    #[arg(long, default_value_t = 0.0, value_parser = temperature, conflicts_with = "stepwise")]
    repeat_temperature: f32,
    /// Play every step to the horizon even where a greedy episode is back in a state and prompt
    /// it has already answered (by default such an episode stops there as a failure, stored as
    /// `stopped: cycle at step N`).
    #[arg(long)]
    no_cycle_stop: bool,
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
    /// Instead of playing episodes, put the policy in every state of the oracle's
    /// demonstrations (at --privilege) and count how often its one answer is a good move: quick,
    /// and it shows which kind of step fails. Nothing is recorded in the run.
    #[arg(long)]
    stepwise: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SplitArg {
    Train,
    Test,
}

/// A sampling temperature: a finite number, 0 or more.
pub fn temperature(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(t) if t.is_finite() && t >= 0.0 => Ok(t),
        _ => Err(format!(
            "{text:?}: expected a temperature, a number 0 or more"
        )),
    }
}

impl Args {
    fn options(&self) -> anyhow::Result<EvalOptions> {
        let student = match (&self.adapter, self.iter) {
            (Some(spec), _) => {
                let (path, scale) = parse_adapter(spec)?;
                StudentAdapter::File(path, scale)
            }
            (None, Some(n)) => StudentAdapter::Iteration(n),
            (None, None) => StudentAdapter::None,
        };
        Ok(EvalOptions {
            split: match self.split {
                SplitArg::Train => Split::Train,
                SplitArg::Test => Split::Test,
            },
            student,
            model: self.model.clone(),
            episodes: self.episodes,
            parallel: self.parallel,
            baseline: !self.no_baseline,
            teacher: self.teacher,
            privilege: self.privilege,
            horizon: self.horizon,
            temperature: self.temperature,
            repeat_temperature: self.repeat_temperature,
            stop_cycles: !self.no_cycle_stop,
            gpu_layers: self.gpu_layers,
            draft: self.draft,
            weights: self.weights,
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = args.options()?;
    let scenarios = split_scenarios(&args.scenarios, options.split)?;
    let run = RunDir::new(&args.run);
    let mut store = run.open()?;
    let kinds = scenarios.iter().map(|s| s.kind());
    let prompt = Prompt::file_or_builtin(args.prompt.as_deref(), args.history, kinds)?;
    let mut bars = Bars::default();
    if args.stepwise {
        let reports = stepwise(&run, &mut store, &prompt, &scenarios, &options, &mut |e| {
            bars.eval(e)
        })?;
        bars.finish();
        if args.json {
            outln!("{}", serde_json::to_string_pretty(&reports)?);
        } else {
            out!("{}", stepwise_table(&reports));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let cancel = AtomicBool::new(false);
    let table = compare(
        &run,
        &mut store,
        &prompt,
        &scenarios,
        &options,
        &cancel,
        &mut |e| bars.eval(e),
    )?;
    bars.finish();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&table)?);
    } else {
        let rows = [
            Some(&table.student),
            table.baseline.as_ref(),
            table.teacher.as_ref(),
        ];
        out!("{}", eval_table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}
