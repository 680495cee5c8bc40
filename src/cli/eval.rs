//! `leap eval`: the student (an iteration's adapter, or any adapter) on a split, beside the same
//! model without adapter and the teacher acting alone with its privileged state.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use leap::agent::local::{LocalConfig, LocalPolicy};
use leap::agent::prompt::Prompt;
use leap::eval::{EvalReport, EvalSpec, StepAgreement, evaluate, oracle_episodes, step_agreement};
use leap::rollout::RolloutEvent;
use leap::scenario::{self, Scenario, Split};
use leap::store::{self, Store};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TeacherAlone {
    /// The oracle at --privilege.
    Oracle,
    /// The student's own model and adapter, shown the privileged state in its prompt.
    #[value(name = "self")]
    SelfTeacher,
    None,
}

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
    /// The base model (default: $LEAP_MODEL or the cached SmolLM2-135M-Instruct).
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
    /// Steps before an episode ends (default: each scenario's horizon).
    #[arg(long)]
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
    #[arg(long, default_value_t = 0)]
    gpu_layers: u32,
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

/// The three rows of an evaluation.
#[derive(Debug, Serialize)]
pub struct EvalTable {
    pub student: EvalReport,
    pub baseline: Option<EvalReport>,
    pub teacher: Option<EvalReport>,
}

/// A progress bar driven by rollout events.
pub fn progress(what: &str) -> (ProgressBar, impl FnMut(RolloutEvent)) {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what:>14} {{bar:30}} {{pos}}/{{len}} episodes  {{msg}}  [{{elapsed_precise}}, eta {{eta}}]"
        ))
        .expect("a valid template"),
    );
    let handle = bar.clone();
    let (mut won, mut finished) = (0usize, 0usize);
    let on_event = move |event: RolloutEvent| match event {
        RolloutEvent::Progress { done, total } => {
            handle.set_length(total as u64);
            handle.set_position(done as u64);
        }
        RolloutEvent::EpisodeFinished { won: w, .. } => {
            finished += 1;
            won += usize::from(w);
            handle.set_message(format!("{won}/{finished} won"));
        }
        _ => {}
    };
    (bar, on_event)
}

/// Loads the model with `adapter` (or none) for `slots` parallel episodes.
pub fn load_student(
    model: &Path,
    adapter: Option<(PathBuf, f32)>,
    slots: usize,
    gpu_layers: u32,
) -> anyhow::Result<LocalPolicy> {
    let mut config = LocalConfig::new(model);
    config.adapters = adapter.into_iter().collect();
    config.slots = slots.max(1);
    config.gpu_layers = gpu_layers;
    Ok(LocalPolicy::load(&config)?)
}

/// Evaluates one policy with a progress bar.
pub fn run_eval(
    store: &mut Store,
    policy: &mut LocalPolicy,
    prompt: &Prompt,
    scenarios: &[Scenario],
    spec: &EvalSpec,
) -> anyhow::Result<EvalReport> {
    let (bar, mut on_event) = progress(&spec.label);
    let report = evaluate(
        store,
        policy,
        prompt,
        scenarios,
        spec,
        &AtomicBool::new(false),
        &mut on_event,
    )?;
    bar.finish_and_clear();
    Ok(report)
}

/// The oracle acting alone, recorded as an evaluation.
pub fn oracle_alone(
    store: &mut Store,
    scenarios: &[Scenario],
    split: &str,
    privilege: f64,
) -> anyhow::Result<EvalReport> {
    let label = format!("eval-{split}-oracle@{privilege}");
    oracle_episodes(store, scenarios, privilege, 0, &label)?;
    let spec = EvalSpec {
        label,
        split: split.into(),
        episodes: 1,
        parallel: 1,
        privileged: true,
        adapter_id: None,
        iteration: None,
        seed: 0,
        horizon: None,
        temperature: 0.0,
        repeat_temperature: 0.0,
    };
    Ok(leap::eval::record(store, &spec, scenarios)?)
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

pub fn split_scenarios(paths: &[PathBuf], split: Split) -> anyhow::Result<Vec<Scenario>> {
    let mut all = scenario::load_all(paths)?;
    all.retain(|s| s.split == split);
    if all.is_empty() {
        bail!("no {} scenario in {paths:?}", split.as_str());
    }
    Ok(all)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let split = match args.split {
        SplitArg::Train => Split::Train,
        SplitArg::Test => Split::Test,
    };
    let scenarios = split_scenarios(&args.scenarios, split)?;
    let split = split.as_str();
    let mut store = Store::open(&args.run)?;
    let model = args
        .model
        .clone()
        .unwrap_or_else(leap::model::default_model_path);
    let prompt = Prompt::builtin(args.history);
    let (adapter, name) = match (&args.adapter, args.iter) {
        (Some(spec), _) => {
            let parsed = super::rollout::adapters(std::slice::from_ref(spec))?.remove(0);
            let stem = parsed
                .0
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (Some(parsed), stem)
        }
        (None, Some(n)) => {
            let path = args.run.join("adapters").join(format!("iter-{n}.gguf"));
            if !path.is_file() {
                bail!(
                    "{}: no adapter for iteration {n} (train it first: leap train --iter {n})",
                    path.display()
                );
            }
            (Some((path, 1.0)), format!("iter-{n}"))
        }
        (None, None) => (None, "base".to_string()),
    };
    let adapter_id = match &adapter {
        Some((path, _)) => store
            .adapter_by_path(&path.display().to_string())?
            .map(|a| a.id),
        None => None,
    };
    let spec = |label: String, privileged: bool| EvalSpec {
        label,
        split: split.into(),
        episodes: args.episodes,
        parallel: args.parallel,
        privileged,
        adapter_id,
        iteration: args.iter,
        seed: 0,
        horizon: args.horizon,
        temperature: args.temperature,
        repeat_temperature: args.repeat_temperature,
    };
    // Another decoding is another evaluation: it gets its own name and episodes.
    let mut decoding = String::new();
    if args.temperature > 0.0 {
        decoding.push_str(&format!("-t{}", args.temperature));
    }
    if args.repeat_temperature > 0.0 {
        decoding.push_str(&format!("-repeat{}", args.repeat_temperature));
    }
    let mut student = load_student(&model, adapter.clone(), args.parallel, args.gpu_layers)
        .with_context(|| format!("loading {}", model.display()))?;
    if args.stepwise {
        let mut reports = vec![stepwise(&mut student, &prompt, &scenarios, &args, &name)?];
        drop(student);
        if !args.no_baseline && adapter.is_some() {
            let mut base = load_student(&model, None, args.parallel, args.gpu_layers)?;
            reports.push(stepwise(&mut base, &prompt, &scenarios, &args, "base")?);
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&reports)?);
        } else {
            print_stepwise(&reports);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let student_report = run_eval(
        &mut store,
        &mut student,
        &prompt,
        &scenarios,
        &spec(format!("eval-{split}-{name}{decoding}"), false),
    )?;
    let teacher = match args.teacher {
        TeacherAlone::None => None,
        TeacherAlone::Oracle => Some(oracle_alone(&mut store, &scenarios, split, args.privilege)?),
        TeacherAlone::SelfTeacher => Some(run_eval(
            &mut store,
            &mut student,
            &prompt,
            &scenarios,
            &spec(format!("eval-{split}-self-{name}{decoding}"), true),
        )?),
    };
    drop(student);
    let baseline = if args.no_baseline || adapter.is_none() {
        None
    } else {
        let mut base = load_student(&model, None, args.parallel, args.gpu_layers)?;
        let mut s = spec(format!("eval-{split}-base{decoding}"), false);
        s.adapter_id = None;
        s.iteration = None;
        Some(run_eval(&mut store, &mut base, &prompt, &scenarios, &s)?)
    };
    let table = EvalTable {
        student: student_report,
        baseline,
        teacher,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&table)?);
    } else {
        print_table(&[
            Some(&table.student),
            table.baseline.as_ref(),
            table.teacher.as_ref(),
        ]);
    }
    Ok(ExitCode::SUCCESS)
}

/// One policy's teacher-forced agreement on the oracle's demonstrations, with a progress bar.
fn stepwise(
    policy: &mut LocalPolicy,
    prompt: &Prompt,
    scenarios: &[Scenario],
    args: &Args,
    name: &str,
) -> anyhow::Result<StepAgreement> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{name:>14} {{bar:30}} {{pos}}/{{len}} steps  [{{elapsed_precise}}, eta {{eta}}]"
        ))
        .expect("a valid template"),
    );
    let report = step_agreement(
        policy,
        prompt,
        scenarios,
        args.privilege,
        args.parallel,
        &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    )?;
    bar.finish_and_clear();
    Ok(report)
}

fn print_stepwise(reports: &[StepAgreement]) {
    println!(
        "{:<44} {:>6} {:>7} {:>15} {:>7} {:>8} {:>14}",
        "policy", "steps", "good", "95% Wilson", "same", "invalid", "good^steps"
    );
    for r in reports {
        let n = r.steps.max(1) as f64;
        println!(
            "{:<44} {:>6} {:>6.1}% {:>6.1}–{:>5.1}% {:>6.1}% {:>7.1}% {:>13.1}%",
            r.policy,
            r.steps,
            r.good_rate * 100.0,
            r.good_low * 100.0,
            r.good_high * 100.0,
            r.same as f64 / n * 100.0,
            r.invalid as f64 / n * 100.0,
            r.good_rate.powf(r.mean_demo_steps) * 100.0,
        );
        let verbs: Vec<String> = r
            .by_verb
            .iter()
            .map(|(v, a)| format!("{v} {}/{}", a.good, a.steps))
            .collect();
        println!("{:<44} {}", "", verbs.join(", "));
    }
}

/// Prints evaluations as an aligned table.
pub fn print_table(rows: &[Option<&EvalReport>]) {
    println!(
        "{:<28} {:>5} {:>9} {:>15} {:>7} {:>7} {:>8}",
        "evaluation", "n", "success", "95% Wilson", "reward", "steps", "invalid"
    );
    for r in rows.iter().flatten() {
        println!(
            "{:<28} {:>5} {:>8.1}% {:>6.1}–{:>5.1}% {:>7.3} {:>7.1} {:>7.1}%",
            r.label,
            r.episodes,
            r.success_rate * 100.0,
            r.success_low * 100.0,
            r.success_high * 100.0,
            r.mean_reward,
            r.mean_steps,
            r.invalid_action_rate * 100.0
        );
        let tasks: Vec<String> = r
            .per_task
            .iter()
            .map(|(k, t)| format!("{k} {}/{}", t.wins, t.episodes))
            .collect();
        println!("{:<28} {}", "", tasks.join(", "));
    }
}
