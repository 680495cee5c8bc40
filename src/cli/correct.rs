//! `leap correct`: a teacher corrects stored episodes; each corrected step becomes a pending label.

use super::print::outln;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;

use leap::agent::Sampling;
use leap::agent::remote::RemoteConfig;
use leap::agent::student::{StudentSpec, parse_adapter};
use leap::correct::{CorrectOptions, correct_episodes};
use leap::run::RunDir;
use leap::store::{self, EpisodeFilter, Order};
use leap::teacher::TeacherSpec;
use leap::teacher::llm::LlmSettings;

use super::progress::Bars;

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
    /// The student's model, for the self teacher (default: the run's model, else $LEAP_MODEL or
    /// the cached SmolLM2).
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
    /// The teacher, with the run's model for the self teacher unless `--model` says otherwise.
    pub fn spec_for_run(&self, run: &RunDir) -> anyhow::Result<TeacherSpec> {
        let model = match self.teacher {
            TeacherKind::SelfTeacher => run.model(&run.open()?, self.model.as_deref())?,
            _ => PathBuf::new(),
        };
        self.spec(&model)
    }

    /// The teacher; `model` is the student's, for the self teacher.
    pub fn spec(&self, model: &Path) -> anyhow::Result<TeacherSpec> {
        let settings = LlmSettings {
            retries: self.retries,
            parallel: self.teacher_parallel.max(1),
            sampling: Sampling {
                seed: self.teacher_seed,
                ..Sampling::default()
            },
            ..LlmSettings::default()
        };
        let local = |model: &Path, adapters: &[String]| -> anyhow::Result<_> {
            let adapters = adapters.iter().map(|a| parse_adapter(a));
            let spec = StudentSpec::new(model).adapters(adapters.collect::<Result<Vec<_>, _>>()?);
            Ok(spec.gpu_layers(self.gpu_layers).config())
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
                config: local(model, &self.adapter)?,
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
                    config: local(model, &[])?,
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
    /// An episode has failed when its reward is at most this (default: as its kind says:
    /// LEAP's 0.7 for the shell, else when it was not won).
    #[arg(long, conflicts_with = "all")]
    failed_at_most: Option<f64>,
    /// At most this many episodes.
    #[arg(long)]
    limit: Option<u32>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let run = RunDir::new(&args.run);
    let mut store = leap::store::Store::open_existing(run.root())?;
    let spec = args.teacher.spec_for_run(&run)?;
    let options = CorrectOptions {
        filter: EpisodeFilter {
            key_prefix: args.prefix.clone(),
            iteration: args.iteration,
            order: Order::ById,
            limit: args.limit,
            ..EpisodeFilter::default()
        },
        failed_only: !args.all,
        max_reward: args.failed_at_most,
    };
    let mut bars = Bars::default();
    let summary = correct_episodes(&mut store, &spec, &options, &mut |done, total| {
        bars.corrected(done, total)
    })?;
    bars.finish();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        outln!(
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
