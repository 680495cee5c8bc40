//! `leap iterate`: the LEAP loop ([`leap::leap`]), headless and resumable.

use super::print::{errln, out, outln};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use clap::ValueEnum;

use leap::curate::CurationRule;
use leap::dataset::build::Aggregate;
use leap::leap::{Curation, LoopEvent, LoopOptions, LoopOutcome, run_loop};
use leap::run::RunDir;
use leap::store;
use leap::train::record::{TrainOptions, UpdateOptions};

use super::correct::TeacherArgs;
use super::progress::Bars;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CuratePolicy {
    AcceptAll,
    AcceptUnlessLeak,
    AcceptIfChanged,
    /// Stop after correcting and wait for a person to decide every label (`leap labels`, or the
    /// workbench); rerun to go on.
    Manual,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    #[arg(long, num_args = 1.., default_value = "scenarios/household")]
    scenarios: Vec<PathBuf>,
    /// Iterations after iteration 0 (behaviour cloning): 2 runs iterations 0, 1 and 2.
    #[arg(long, default_value_t = 2)]
    iters: u32,
    #[command(flatten)]
    teacher: TeacherArgs,
    #[arg(long, value_enum, default_value = "accept-unless-leak")]
    curate: CuratePolicy,
    /// Train scenarios each student plays to collect corrections (seeded draw; 0: all).
    #[arg(long, default_value_t = 40)]
    episodes_per_iter: usize,
    /// An episode goes to the teacher when its reward is at most this (default: as its kind
    /// says: LEAP's 0.7 for the shell, else when it was not won).
    #[arg(long)]
    failed_at_most: Option<f64>,
    /// The oracle's privilege for the demonstrations (the teacher's `--privilege` is for its
    /// corrections). At 0 every demonstrated move follows from what the student can see.
    #[arg(long, default_value_t = 0.0)]
    expert_privilege: f64,
    /// Demonstration rows iteration 0 trains on (seeded draw; 0: all of them).
    #[arg(long, default_value_t = 0)]
    expert_rows: usize,
    /// Later iterations: at most this many rows from the expert and from each iteration's labels.
    #[arg(long, default_value_t = 400)]
    max_rows_per_part: usize,
    /// One row per distinct correction of an episode: a correction repeated at every step of a
    /// loop is kept once, at its first step.
    #[arg(long)]
    distinct_labels: bool,
    /// Each iteration after 0 trains on from the last student's adapter (`leap train --init`)
    /// instead of from a fresh one.
    #[arg(long)]
    warm_start: bool,
    #[arg(long, value_enum, default_value = "union")]
    aggregate: Aggregate,
    /// Test scenarios evaluated (0: the whole test split).
    #[arg(long, default_value_t = 0)]
    test_limit: usize,
    /// Also evaluate the teachers acting alone and the zero-shot student.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    baselines: bool,
    #[arg(long, default_value_t = 8)]
    parallel: usize,
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
    /// Earlier steps shown in the prompt.
    #[arg(long, default_value_t = leap::agent::prompt::DEFAULT_HISTORY)]
    history: usize,
    /// The student's prompt template (minijinja, with `system` and `user` blocks), in its
    /// training rows, rollouts and evaluations alike (`--prompt` of `leap dataset build`,
    /// `rollout` and `eval`; here `--prompt` is the LLM teacher's, `--teacher-prompt`).
    #[arg(long, value_name = "FILE")]
    student_prompt: Option<PathBuf>,
    /// Steps before an episode ends (default: each scenario's horizon).
    #[arg(long, value_parser = leap::scenario::horizon)]
    horizon: Option<u32>,
    /// The sampling temperature of every rollout and evaluation of the run (0: greedy). Keep
    /// one decoding for a run: its evaluations are found by name when it resumes.
    #[arg(long, default_value_t = 0.0, value_parser = super::eval::temperature)]
    temperature: f32,
    /// Every rollout and evaluation samples at this temperature the steps whose prompt the
    /// episode has shown before, word for word (0: as every other step).
    #[arg(long, default_value_t = 0.0, value_parser = super::eval::temperature)]
    repeat_temperature: f32,
    /// Play every step to the horizon even where a greedy episode is back in a state and prompt
    /// it has already answered (by default such an episode stops there as a failure, stored as
    /// `stopped: cycle at step N`).
    #[arg(long)]
    no_cycle_stop: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training: epochs per adapter.
    #[arg(long, default_value_t = 2)]
    epochs: u32,
    #[arg(long, default_value_t = 8)]
    rank: u32,
    #[arg(long, default_value_t = 16.0)]
    alpha: f32,
    #[arg(long, default_value_t = 2e-4, value_parser = super::train::learning_rate)]
    lr: f32,
    /// Learning rate of the iterations that go on from the last student (`--warm-start`);
    /// default: `--lr`. A smaller one moves the student less far from what it has learnt.
    #[arg(long, requires = "warm_start", value_parser = super::train::learning_rate)]
    warm_lr: Option<f32>,
    #[arg(long, default_value_t = 1024)]
    ctx: u32,
    /// How rows share a training window (`leap train --pack`): flat, or tree, their common
    /// starts stored once.
    #[arg(long, value_enum, default_value = "flat")]
    pack: leap::train::Pack,
    /// How iterations after 0 update the student: sft, on the iteration's dataset (the
    /// expert's rows beside the kept labels), or dpo, on the pairs of the last iteration's
    /// kept labels (the teacher's step over the student's), going on from the last student,
    /// which is also the reference. Iteration 0 is behaviour cloning either way.
    #[arg(long = "update", value_enum, default_value = "sft")]
    update: super::train::UpdateArg,
    #[command(flatten)]
    preference: super::train::PreferenceArgs,
    #[arg(long)]
    json: bool,
}

impl Args {
    fn options(&self, run: &RunDir) -> anyhow::Result<LoopOptions> {
        let curation = match self.curate {
            CuratePolicy::AcceptAll => Curation::Rule(CurationRule::AcceptAll),
            CuratePolicy::AcceptUnlessLeak => Curation::Rule(CurationRule::AcceptUnlessLeak),
            CuratePolicy::AcceptIfChanged => Curation::Rule(CurationRule::AcceptIfChanged),
            CuratePolicy::Manual => Curation::Manual,
        };
        let mut train = TrainOptions {
            epochs: self.epochs,
            lr: self.lr,
            ctx: self.ctx,
            pack: self.pack,
            gpu_layers: self.teacher.gpu_layers,
            objective: self.preference.objective(self.update)?,
            ..TrainOptions::default()
        };
        (train.lora.rank, train.lora.alpha) = (self.rank, self.alpha);
        Ok(LoopOptions {
            scenarios: self.scenarios.clone(),
            iters: self.iters,
            model: self.teacher.model.clone(),
            teacher: self.teacher.spec_for_run(run)?,
            privilege: self.teacher.privilege.unwrap_or(0.5),
            curation,
            episodes_per_iter: self.episodes_per_iter,
            failed_at_most: self.failed_at_most,
            test_limit: self.test_limit,
            baselines: self.baselines,
            parallel: self.parallel,
            history: self.history,
            prompt: self.student_prompt.clone(),
            horizon: self.horizon,
            temperature: self.temperature,
            repeat_temperature: self.repeat_temperature,
            stop_cycles: !self.no_cycle_stop,
            seed: self.seed,
            gpu_layers: self.teacher.gpu_layers,
            draft: self.draft,
            weights: self.weights,
            update: UpdateOptions {
                expert_privilege: self.expert_privilege,
                expert_rows: self.expert_rows,
                max_rows_per_part: self.max_rows_per_part,
                distinct_labels: self.distinct_labels,
                aggregate: self.aggregate,
                warm_start: self.warm_start,
                warm_lr: self.warm_lr,
                seed: self.seed,
                train,
            },
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let run = RunDir::new(&args.run);
    let options = args.options(&run)?;
    let mut bars = Bars::default();
    let mut on_event = |event| match event {
        LoopEvent::Stage { iteration, stage } => {
            bars.finish();
            let at = iteration.map_or(String::new(), |i| format!("iteration {i}: "));
            errln!("== {at}{stage}");
        }
        LoopEvent::Eval(e) => bars.eval(e),
        LoopEvent::Corrected { done, total } => bars.corrected(done, total),
        LoopEvent::Skipped(s) => errln!("{s}"),
        LoopEvent::Train(e) => bars.train(e),
    };
    let outcome = run_loop(&run, &options, &AtomicBool::new(false), &mut on_event)?;
    bars.finish();
    if let LoopOutcome::WaitingForLabels { iteration, pending } = outcome {
        errln!(
            "{pending} labels of iteration {iteration} wait for a decision: review them with `leap labels` or `leap tui --run {}`, then run this command again",
            args.run.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let store = run.open()?;
    let report = leap::report::run_report(&store)?;
    let stages = store.stages()?;
    if args.json {
        let out = serde_json::json!({ "report": report, "stages": stages });
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        out!("{}", leap::report::markdown(&report, None));
        for s in &stages {
            errln!(
                "{:>5} {:<36} {:>8.1} s",
                s.iteration.map_or("–".into(), |i| i.to_string()),
                s.stage,
                s.seconds
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
