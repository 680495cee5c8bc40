//! `leap iterate`: the LEAP loop, headless and resumable.
//!
//! Iteration 0 trains on the oracle's demonstrations (behaviour cloning). Each later iteration
//! rolls the latest student out on the train split, has the teacher correct its failed
//! episodes, curates the labels (or waits for a person), builds the aggregated dataset, trains
//! the next adapter and evaluates it on the test split. Every stage is idempotent against the
//! run database and the files it writes, so a rerun after a kill redoes no finished stage:
//! stored episodes are skipped, corrected episodes are not corrected again, decided labels stay
//! decided, a recorded adapter is not retrained and a recorded evaluation is not replayed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use serde::Serialize;

use leap::agent::prompt::Prompt;
use leap::dataset::build::{Aggregate, BuildSettings, ExpertSettings, build_iteration};
use leap::eval::{EvalReport, EvalSpec};
use leap::scenario::{Scenario, Split};
use leap::store::{self, EpisodeFilter, LabelFilter, LabelStatus, Order, Store};

use super::correct::{TeacherArgs, correct_episodes};
use super::eval::{load_student, oracle_alone, run_eval, split_scenarios};
use super::labels::{Policy, curate};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
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
    /// Earlier steps shown in the prompt (must match the student's training).
    #[arg(long, default_value_t = leap::agent::prompt::DEFAULT_HISTORY)]
    history: usize,
    /// Steps before an episode ends (default: each scenario's horizon).
    #[arg(long)]
    horizon: Option<u32>,
    /// The sampling temperature of every rollout and evaluation of the run (0: greedy). Keep
    /// one decoding for a run: its evaluations are found by name when it resumes.
    #[arg(long, default_value_t = 0.0, value_parser = super::eval::temperature)]
    temperature: f32,
    /// Every rollout and evaluation samples at this temperature the steps whose prompt the
    /// episode has shown before, word for word (0: as every other step).
    #[arg(long, default_value_t = 0.0, value_parser = super::eval::temperature)]
    repeat_temperature: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training: epochs per adapter.
    #[arg(long, default_value_t = 2)]
    epochs: u32,
    #[arg(long, default_value_t = 8)]
    rank: u32,
    #[arg(long, default_value_t = 16.0)]
    alpha: f32,
    #[arg(long, default_value_t = 2e-4)]
    lr: f32,
    /// Learning rate of the iterations that go on from the last student (`--warm-start`);
    /// default: `--lr`. A smaller one moves the student less far from what it has learnt.
    #[arg(long, requires = "warm_start")]
    warm_lr: Option<f32>,
    #[arg(long, default_value_t = 1024)]
    ctx: u32,
    #[arg(long)]
    json: bool,
}

#[derive(Parser)]
struct TrainCli {
    #[command(flatten)]
    args: super::train::Args,
}

/// Runs one stage and records its wall time in the run as soon as it has finished.
fn timed<T>(
    store: &mut Store,
    iteration: Option<u32>,
    stage: &str,
    f: impl FnOnce(&mut Store) -> anyhow::Result<T>,
) -> anyhow::Result<T>
where
    T: Serialize,
{
    eprintln!(
        "== {}{stage}",
        iteration.map_or(String::new(), |i| format!("iteration {i}: "))
    );
    let start = Instant::now();
    let value = f(store)?;
    let detail = serde_json::to_value(&value).unwrap_or_default();
    store.record_stage_once(iteration, stage, start.elapsed().as_secs_f64(), &detail)?;
    Ok(value)
}

/// A seeded draw of `n` scenarios (all when `n` is 0 or more than there are), in file order.
fn draw(scenarios: &[Scenario], n: usize, seed: u64) -> Vec<Scenario> {
    use rand::SeedableRng;
    use rand::seq::index::sample;
    if n == 0 || n >= scenarios.len() {
        return scenarios.to_vec();
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut picked = sample(&mut rng, scenarios.len(), n).into_vec();
    picked.sort_unstable();
    picked.into_iter().map(|i| scenarios[i].clone()).collect()
}

fn adapter_path(run: &Path, iteration: u32) -> PathBuf {
    run.join("adapters").join(format!("iter-{iteration}.gguf"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let train_all = split_scenarios(&args.scenarios, Split::Train)?;
    let test = draw(
        &split_scenarios(&args.scenarios, Split::Test)?,
        args.test_limit,
        args.seed,
    );
    let model = args
        .teacher
        .model
        .clone()
        .unwrap_or_else(leap::model::default_model_path);
    let prompt = Prompt::builtin(args.history);
    let spec = args.teacher.spec()?;
    let privilege = args.teacher.privilege;
    let mut store = Store::open(&args.run)?;
    let eval_spec = |label: String,
                     adapter_id: Option<i64>,
                     iteration: Option<u32>,
                     privileged: bool| EvalSpec {
        label,
        split: "test".into(),
        episodes: 1,
        parallel: args.parallel,
        privileged,
        adapter_id,
        iteration,
        seed: args.seed,
        horizon: args.horizon,
        temperature: args.temperature,
        repeat_temperature: args.repeat_temperature,
    };

    for i in 0..=args.iters {
        // 1. The dataset: expert demonstrations, plus the corrected failures of each student so far.
        if i > 0 {
            let prev = i - 1;
            let label = format!("iter-{prev}-train");
            let played = draw(
                &train_all,
                args.episodes_per_iter,
                args.seed.wrapping_add(u64::from(prev)),
            );
            timed(&mut store, Some(i), "student rollouts on train", |store| {
                let adapter = adapter_path(&args.run, prev);
                let adapter_id = store
                    .adapter_by_path(&adapter.display().to_string())?
                    .map(|a| a.id);
                let mut student = load_student(
                    &model,
                    Some((adapter, 1.0)),
                    args.parallel,
                    args.teacher.gpu_layers,
                )?;
                let spec = EvalSpec {
                    label: label.clone(),
                    split: "train".into(),
                    ..eval_spec(label.clone(), adapter_id, Some(prev), false)
                };
                let report = run_eval(store, &mut student, &prompt, &played, &spec)?;
                // The same numbers, under the name the report looks for.
                store.record_evaluation(
                    &format!("eval-train-iter-{prev}"),
                    adapter_id,
                    Some(prev),
                    &report.policy,
                    "train",
                    &serde_json::to_value(&report)?,
                )?;
                Ok(report)
            })?;
            timed(
                &mut store,
                Some(i),
                "teacher corrects failed episodes",
                |store| {
                    let filter = EpisodeFilter {
                        key_prefix: Some(format!("rollout/{label}/")),
                        order: Order::ById,
                        ..EpisodeFilter::default()
                    };
                    correct_episodes(store, &spec, &filter, true, true)
                },
            )?;
            let pending = store
                .label_counts(&LabelFilter {
                    status: Some(LabelStatus::Pending),
                    iteration: Some(prev),
                    ..LabelFilter::default()
                })?
                .total;
            let policy = match args.curate {
                CuratePolicy::AcceptAll => Some(Policy::AcceptAll),
                CuratePolicy::AcceptUnlessLeak => Some(Policy::AcceptUnlessLeak),
                CuratePolicy::AcceptIfChanged => Some(Policy::AcceptIfChanged),
                CuratePolicy::Manual => None,
            };
            match policy {
                Some(policy) => {
                    timed(&mut store, Some(i), "curation", |store| {
                        curate(store, policy, Some(prev), &mut |_| {})
                    })?;
                }
                None if pending > 0 => {
                    eprintln!(
                        "{pending} labels of iteration {prev} wait for a decision: review them with `leap labels` or `leap tui --run {}`, then run this command again",
                        args.run.display()
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                None => {}
            }
        }
        let cap = if i == 0 {
            args.expert_rows
        } else {
            args.max_rows_per_part
        };
        let settings = BuildSettings {
            expert: ExpertSettings {
                privilege: args.expert_privilege,
                seed: args.seed,
            },
            aggregate: args.aggregate,
            seed: args.seed,
            max_rows_per_part: (cap > 0).then_some(cap),
            distinct_labels: args.distinct_labels,
        };
        let adapter = adapter_path(&args.run, i);
        let trained = store
            .adapter_by_path(&adapter.display().to_string())?
            .filter(|_| adapter.is_file());
        if trained.is_none() {
            timed(&mut store, Some(i), "dataset", |store| {
                Ok(build_iteration(
                    store, &args.run, &train_all, &prompt, i, &settings,
                )?)
            })?;
            // 2. Train the next student.
            let warm = args.warm_start && i > 0;
            let lr = match args.warm_lr {
                Some(lr) if warm => lr,
                _ => args.lr,
            };
            timed(&mut store, Some(i), "training", |_| {
                let mut argv: Vec<String> = ["leap", "--run"].map(String::from).to_vec();
                argv.push(args.run.display().to_string());
                argv.extend(
                    [
                        ("--iter", i.to_string()),
                        ("--model", model.display().to_string()),
                        ("--epochs", args.epochs.to_string()),
                        ("--rank", args.rank.to_string()),
                        ("--alpha", args.alpha.to_string()),
                        ("--lr", lr.to_string()),
                        ("--ctx", args.ctx.to_string()),
                        ("--seed", args.seed.to_string()),
                        ("--gpu-layers", args.teacher.gpu_layers.to_string()),
                    ]
                    .into_iter()
                    .flat_map(|(k, v)| [k.to_string(), v]),
                );
                if warm {
                    argv.push("--init".into());
                    argv.push(adapter_path(&args.run, i - 1).display().to_string());
                }
                let cli = TrainCli::try_parse_from(argv).context("the training settings")?;
                super::train::train_iteration(cli.args, false)?;
                Ok(adapter.display().to_string())
            })?;
        }
        // 3. Evaluate it on the test split.
        let label = format!("eval-test-iter-{i}");
        let done = store
            .evaluation(&label)?
            .and_then(|e| e.summary.get("episodes").and_then(|v| v.as_u64()))
            == Some(test.len() as u64);
        if !done {
            timed(
                &mut store,
                Some(i),
                "evaluation on test",
                |store| -> anyhow::Result<EvalReport> {
                    let adapter_id = store
                        .adapter_by_path(&adapter.display().to_string())?
                        .map(|a| a.id);
                    let mut student = load_student(
                        &model,
                        Some((adapter.clone(), 1.0)),
                        args.parallel,
                        args.teacher.gpu_layers,
                    )?;
                    run_eval(
                        store,
                        &mut student,
                        &prompt,
                        &test,
                        &eval_spec(label.clone(), adapter_id, Some(i), false),
                    )
                },
            )?;
        }
    }

    // The comparisons come last: the loop's own results first.
    if args.baselines {
        timed(&mut store, None, "oracle alone on test", |store| {
            oracle_alone(store, &test, "test", privilege)
        })?;
        // One load of the base model serves both: with the privileged facts (the comparison the
        // loop has to beat), then plain.
        let mut base = load_student(&model, None, args.parallel, args.teacher.gpu_layers)?;
        for (stage, label, privileged) in [
            ("self teacher alone on test", "eval-test-self-base", true),
            ("zero-shot student on test", "eval-test-base", false),
        ] {
            timed(&mut store, None, stage, |store| {
                run_eval(
                    store,
                    &mut base,
                    &prompt,
                    &test,
                    &eval_spec(label.into(), None, None, privileged),
                )
            })?;
        }
    }

    let report = leap::report::run_report(&store)?;
    let stages = store.stages()?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "report": report, "stages": stages })
            )?
        );
    } else {
        print!("{}", leap::report::markdown(&report, None));
        for s in &stages {
            eprintln!(
                "{:>5} {:<36} {:>8.1} s",
                s.iteration.map_or("–".into(), |i| i.to_string()),
                s.stage,
                s.seconds
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
