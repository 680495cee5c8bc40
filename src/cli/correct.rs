//! `leap correct`: a teacher corrects stored episodes; each corrected step becomes a pending label.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use leap::agent::Sampling;
use leap::agent::local::LocalConfig;
use leap::agent::remote::RemoteConfig;
use leap::scenario::{self, Scenario};
use leap::store::{self, EpisodeFilter, Order, Store};
use leap::teacher::llm::LlmSettings;
use leap::teacher::{TeacherSpec, correct_and_store};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TeacherKind {
    /// The environment's rules and the privileged state, with --privilege.
    Oracle,
    /// The student's own model and adapters, shown the privileged state.
    #[value(name = "self")]
    SelfTeacher,
    /// Another model: --teacher-model FILE, or --server URL.
    Llm,
}

/// The teacher options shared by `leap correct` and `leap iterate`.
#[derive(clap::Args, Clone)]
pub struct TeacherArgs {
    /// Which teacher corrects.
    #[arg(long, value_enum, default_value = "oracle")]
    pub teacher: TeacherKind,
    /// The oracle's privilege level in [0, 1]: 0 uses only what the student observed, 1 goes
    /// straight to the hidden objects.
    #[arg(long, default_value_t = 0.5)]
    pub privilege: f64,
    /// Seed of the oracle's per-step privilege draws and of LLM sampling.
    #[arg(long, default_value_t = 0)]
    pub teacher_seed: u64,
    /// The student's model, for the self teacher (default: $LEAP_MODEL or the cached SmolLM2).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The student's adapter (PATH or PATH@SCALE), for the self teacher.
    #[arg(long)]
    pub adapter: Vec<String>,
    /// The llm teacher's GGUF model.
    #[arg(long)]
    pub teacher_model: Option<PathBuf>,
    /// The llm teacher's OpenAI-compatible server (base URL).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    #[arg(long, default_value = "default")]
    pub server_model: String,
    /// Environment variable that holds the server's API key (never stored).
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Attempts after the first for an invalid LLM answer.
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// Steps an LLM teacher corrects at once.
    #[arg(long, default_value_t = 4)]
    pub teacher_parallel: usize,
    #[arg(long, default_value_t = 0)]
    pub gpu_layers: u32,
}

impl TeacherArgs {
    pub fn spec(&self) -> anyhow::Result<TeacherSpec> {
        let settings = LlmSettings {
            retries: self.retries,
            parallel: self.teacher_parallel.max(1),
            sampling: Sampling {
                seed: self.teacher_seed,
                ..Sampling::default()
            },
            ..LlmSettings::default()
        };
        let local = |model: PathBuf, adapters: &[String]| -> anyhow::Result<LocalConfig> {
            let mut config = LocalConfig::new(model);
            config.adapters = super::rollout::adapters(adapters)?;
            config.gpu_layers = self.gpu_layers;
            Ok(config)
        };
        Ok(match self.teacher {
            TeacherKind::Oracle => {
                if !(0.0..=1.0).contains(&self.privilege) {
                    bail!(
                        "--privilege {}: expected a number in [0, 1]",
                        self.privilege
                    );
                }
                TeacherSpec::Oracle {
                    privilege: self.privilege,
                    seed: self.teacher_seed,
                }
            }
            TeacherKind::SelfTeacher => TeacherSpec::Local {
                role: "self".into(),
                config: local(
                    self.model
                        .clone()
                        .unwrap_or_else(leap::model::default_model_path),
                    &self.adapter,
                )?,
                settings,
            },
            TeacherKind::Llm => match (&self.server, &self.teacher_model) {
                (Some(url), _) => {
                    let mut config = RemoteConfig::new(url.clone(), self.server_model.clone());
                    config.api_key_env = self.api_key_env.clone();
                    config.llama_grammar = true;
                    TeacherSpec::Remote { config, settings }
                }
                (None, Some(model)) => TeacherSpec::Local {
                    role: "llm".into(),
                    config: local(model.clone(), &[])?,
                    settings,
                },
                (None, None) => bail!("--teacher llm needs --teacher-model FILE or --server URL"),
            },
        })
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_RUN_DIR)]
    run: PathBuf,
    #[command(flatten)]
    teacher: TeacherArgs,
    /// Only episodes whose key starts with this (e.g. `rollout/base/`).
    #[arg(long)]
    prefix: Option<String>,
    /// Only episodes played by the student of this LEAP iteration.
    #[arg(long)]
    iteration: Option<u32>,
    /// Also correct won episodes (LEAP corrects the failed ones).
    #[arg(long)]
    all: bool,
    /// At most this many episodes.
    #[arg(long)]
    limit: Option<u32>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// What a correction pass did, summed over its episodes.
#[derive(Debug, Default, Serialize)]
pub struct CorrectSummary {
    pub teacher: String,
    /// Episodes the filter selected.
    pub episodes: u64,
    /// Of those, corrected by this invocation (the rest already were).
    pub corrected_now: u64,
    pub steps: u64,
    pub labels: u64,
    pub changed: u64,
    /// Changed steps per corrected step.
    pub changed_share: f64,
    pub leaks: u64,
    /// Labels with a leak flag per label.
    pub leak_rate: f64,
    pub failures: u64,
}

/// Corrects every selected episode not yet corrected by this teacher.
pub fn correct_episodes(
    store: &mut Store,
    spec: &TeacherSpec,
    filter: &EpisodeFilter,
    failed_only: bool,
    progress: bool,
) -> anyhow::Result<CorrectSummary> {
    let mut episodes = store.list_episodes(filter)?;
    if failed_only {
        episodes.retain(|e| !e.won);
    }
    let mut teacher = spec.build()?;
    let describe = teacher.describe();
    let bar = if progress {
        ProgressBar::new(episodes.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} episodes corrected  {msg}  [{elapsed_precise}, eta {eta}]",
        )
        .expect("a valid template"),
    );
    let mut cache: HashMap<String, Scenario> = HashMap::new();
    let mut summary = CorrectSummary {
        teacher: describe,
        episodes: episodes.len() as u64,
        ..CorrectSummary::default()
    };
    for e in &episodes {
        if !cache.contains_key(&e.scenario_hash) {
            let snapshot = store
                .scenario(&e.scenario_hash)?
                .with_context(|| format!("episode {}: its scenario snapshot is missing", e.id))?;
            let name = format!(
                "{}: scenario {}",
                store.path().display(),
                snapshot.scenario_id
            );
            let s = scenario::from_snapshot(&name, &snapshot.json)?;
            cache.insert(e.scenario_hash.clone(), s);
        }
        let report = correct_and_store(store, &cache[&e.scenario_hash], e.id, teacher.as_mut())
            .with_context(|| format!("correcting episode {} ({})", e.id, e.key))?;
        if report.correction_id.is_some() {
            summary.corrected_now += 1;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    // The totals cover every selected episode this teacher has corrected, now or before.
    for e in &episodes {
        let counts = store.label_counts(&leap::store::LabelFilter {
            episode_id: Some(e.id),
            teacher: Some(summary.teacher.clone()),
            ..Default::default()
        })?;
        if store.correction_id(e.id, &summary.teacher)?.is_some() {
            summary.steps += u64::from(e.steps);
        }
        summary.labels += counts.total;
        summary.changed += counts.changed;
        summary.leaks += counts.leaking;
    }
    summary.failures = store.correction_failures(&summary.teacher)?;
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    summary.changed_share = ratio(summary.changed, summary.labels);
    summary.leak_rate = ratio(summary.leaks, summary.labels);
    Ok(summary)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut store = Store::open_existing(&args.run)?;
    let spec = args.teacher.spec()?;
    let filter = EpisodeFilter {
        key_prefix: args.prefix.clone(),
        iteration: args.iteration,
        order: Order::ById,
        limit: args.limit,
        ..EpisodeFilter::default()
    };
    let summary = correct_episodes(&mut store, &spec, &filter, !args.all, true)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{}: {} episodes ({} corrected now), {} labels over {} steps: {} changed ({:.1}%), {} with leak flags ({:.1}%), {} failed steps",
            summary.teacher,
            summary.episodes,
            summary.corrected_now,
            summary.labels,
            summary.steps,
            summary.changed,
            summary.changed_share * 100.0,
            summary.leaks,
            summary.leak_rate * 100.0,
            summary.failures
        );
    }
    Ok(ExitCode::SUCCESS)
}
