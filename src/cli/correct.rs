//! `leap correct`: a teacher corrects stored episodes; each corrected step becomes a pending label.

use super::print::{errln, outln};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;

use leap::agent::Sampling;
use leap::agent::student::{StudentSpec, parse_adapter};
use leap::correct::{CorrectOptions, correct_episodes};
use leap::run::RunDir;
use leap::store::{self, EpisodeFilter, Order};
use leap::teacher::TeacherSpec;
use leap::teacher::llm::{LlmSettings, TeacherMode};
use leap::teacher::oracle::PrivilegeDraw;

use super::progress::Bars;
use super::remote::RemoteArgs;

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
    /// The teacher's privilege level in [0, 1]. The oracle: 0 uses only what the student
    /// observed, 1 goes straight to the hidden objects (default 0.5). An LLM teacher: the share
    /// of the hidden facts its prompt shows, drawn per episode and fact (default 1).
    #[arg(long)]
    pub privilege: Option<f64>,
    /// What one of the oracle's privilege draws decides: a whole episode, or one step.
    #[arg(long, value_enum, default_value = "episode")]
    pub privilege_draw: PrivilegeDraw,
    /// Seed of the privilege draws and of LLM sampling.
    #[arg(long, default_value_t = 0)]
    pub teacher_seed: u64,
    /// An LLM teacher's mode: one request per step, or one per episode in the LEAP paper's JSON.
    #[arg(
        long = "teacher-mode",
        visible_alias = "mode",
        value_enum,
        default_value = "step"
    )]
    pub mode: TeacherMode,
    /// An LLM teacher's prompt template (minijinja, `system` and `user` blocks), for every kind,
    /// instead of `assets/prompts/<kind>/correct_<mode>.j2`.
    #[arg(long = "teacher-prompt", visible_alias = "prompt", value_name = "FILE")]
    pub prompt: Option<PathBuf>,
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
    #[command(flatten)]
    pub remote: RemoteArgs,
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
        let privilege = match self.privilege {
            Some(p) if !(0.0..=1.0).contains(&p) => {
                bail!("--privilege {p}: expected a number in [0, 1]")
            }
            Some(p) => p,
            None if self.teacher == TeacherKind::Oracle => 0.5,
            None => 1.0,
        };
        if let Some(prompt) = &self.prompt
            && self.teacher == TeacherKind::Oracle
        {
            bail!(
                "--teacher-prompt {}: the oracle has no prompt (an LLM teacher does)",
                prompt.display()
            );
        }
        let settings = LlmSettings {
            mode: self.mode,
            prompt: self.prompt.clone(),
            privilege,
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
            TeacherKind::Oracle => TeacherSpec::Oracle {
                privilege,
                seed: self.teacher_seed,
                draw: self.privilege_draw,
            },
            TeacherKind::SelfTeacher => TeacherSpec::Local {
                role: "self".into(),
                config: local(model, &self.adapter)?,
                settings,
            },
            TeacherKind::Llm => match (&self.server, &self.teacher_model) {
                (Some(url), _) => {
                    let config =
                        self.remote
                            .config(url, &self.server_model, self.api_key_env.clone())?;
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
        for s in &summary.skipped {
            errln!("{s}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
