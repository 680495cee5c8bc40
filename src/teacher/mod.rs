//! The privileged teacher. It reads the student's whole episode and the privileged state, and
//! returns, for every step, a corrected reason and action, assuming the student followed its own
//! trajectory up to that step (LEAP's correction format). Corrections are stored as labels that
//! a person or a policy then accepts, rejects or edits.
//!
//! Three teachers: [`oracle::OracleTeacher`] (the environment's rules plus the privileged state,
//! with a privilege level), [`llm::LlmTeacher`] (any policy prompted with the privileged state;
//! the "self" teacher is this with the student's own model and adapter).

pub mod leak;
pub mod live;
pub mod llm;
pub mod oracle;
pub mod trajectory;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::agent::PolicyError;
use crate::env::{Fact, Guided};
use crate::scenario::Scenario;
use crate::store::{EpisodeRecord, Store, StoreError};

pub use leak::Leak;

/// Which teacher to build: what the CLI's `--teacher` and the workbench's picker choose.
#[derive(Debug, Clone)]
pub enum TeacherSpec {
    Oracle {
        privilege: f64,
        seed: u64,
        draw: oracle::PrivilegeDraw,
    },
    /// An LLM teacher over a local model: the student's own model and adapters for `self`.
    Local {
        role: String,
        config: crate::agent::local::LocalConfig,
        settings: llm::LlmSettings,
    },
    /// An LLM teacher over an OpenAI-compatible server.
    Remote {
        config: crate::agent::remote::RemoteConfig,
        settings: llm::LlmSettings,
    },
}

impl TeacherSpec {
    /// The teacher's name before it is built: the oracle's as it describes itself, an LLM
    /// teacher's role.
    pub fn label(&self) -> String {
        match self {
            TeacherSpec::Oracle {
                privilege,
                seed,
                draw,
            } => oracle::OracleTeacher::new(*privilege, *seed)
                .drawing(*draw)
                .describe(),
            TeacherSpec::Local { role, .. } => role.clone(),
            TeacherSpec::Remote { settings, .. } => settings.role.clone(),
        }
    }

    /// Loads the teacher (for LLM teachers this loads the model or checks the server settings).
    pub fn build(&self) -> Result<Box<dyn Teacher>, TeacherError> {
        Ok(match self {
            TeacherSpec::Oracle {
                privilege,
                seed,
                draw,
            } => Box::new(oracle::OracleTeacher::new(*privilege, *seed).drawing(*draw)),
            TeacherSpec::Local {
                role,
                config,
                settings,
            } => {
                let mut config = config.clone();
                config.slots = settings.parallel.max(1);
                let policy = crate::agent::local::LocalPolicy::load(&config)?;
                let settings = llm::LlmSettings {
                    role: role.clone(),
                    ..settings.clone()
                };
                Box::new(llm::LlmTeacher::new(Box::new(policy), settings)?)
            }
            TeacherSpec::Remote { config, settings } => {
                let policy = crate::agent::remote::RemotePolicy::new(config.clone());
                // A missing key is the user's to fix, not a failure of every episode.
                policy.check_key()?;
                Box::new(llm::LlmTeacher::new(Box::new(policy), settings.clone())?)
            }
        })
    }
}

/// The facts of `facts` (an episode's privileged state at its start) a teacher at `privilege`
/// is told in the episode keyed `key`: each drawn once, the same for every teacher at `seed`
/// (the LLM teacher's graded prompt and the oracle's per-fact expert).
pub fn drawn_facts(privilege: f64, seed: u64, key: &str, facts: &[Fact]) -> Vec<Fact> {
    facts
        .iter()
        .enumerate()
        .filter(|(i, _)| draw(privilege, seed, key, "fact", *i))
        .map(|(_, f)| f.clone())
        .collect()
}

/// A reproducible draw with probability `privilege`: the same for the same (seed, episode key,
/// what, index). 1 always holds and 0 never does.
pub fn draw(privilege: f64, seed: u64, key: &str, what: &str, index: usize) -> bool {
    if privilege >= 1.0 {
        return true;
    }
    if privilege <= 0.0 || privilege.is_nan() {
        return false;
    }
    let digest = Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(key.as_bytes())
        .chain_update([0])
        .chain_update(what.as_bytes())
        .chain_update((index as u64).to_le_bytes())
        .finalize();
    ChaCha8Rng::from_seed(digest.into()).random::<f64>() < privilege
}

#[derive(Debug, Error)]
pub enum TeacherError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Template(String),
    #[error("episode {episode}: {what}")]
    Episode { episode: String, what: String },
    #[error("cancelled")]
    Cancelled,
}

/// One step's correction, in the shape of LEAP's teacher output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepCorrection {
    pub timestep: u32,
    /// The teacher's action differs from the student's.
    pub is_corrected: bool,
    pub corrected_reason: String,
    pub corrected_action: String,
    /// Privileged facts the corrected reason gives away (see [`leak`]).
    #[serde(default)]
    pub leaks: Vec<Leak>,
}

/// A step the teacher could not correct (no valid answer after its retries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFailure {
    pub timestep: u32,
    pub error: String,
}

/// The teacher's answer for one episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Corrections {
    pub summary: String,
    pub trajectory: Vec<StepCorrection>,
    /// Steps without a valid correction.
    #[serde(default)]
    pub failures: Vec<StepFailure>,
}

/// Corrects a student's episode.
pub trait Teacher: Send {
    /// Names the teacher in the store: "oracle@0.5", "self:SmolLM2-135M-Instruct.Q4_1 + iter-1.gguf".
    fn describe(&self) -> String;
    /// The privilege level, for teachers that have one.
    fn privilege(&self) -> Option<f64> {
        None
    }
    /// One correction per step the teacher could answer; what it could not is in `failures`.
    fn correct(
        &mut self,
        scenario: &Scenario,
        episode: &EpisodeRecord,
    ) -> Result<Corrections, TeacherError>;
    /// The correction of step `step` alone, of an episode that may not be over (nor stored):
    /// what the workbench shows beside each live step. `partial` holds the steps so far, `step`
    /// among them. `None` when the teacher has no answer there (the goal already holds, or no
    /// valid answer after its retries). This default corrects the whole episode and keeps that
    /// step; a teacher that can answer one step alone does so.
    fn correct_step(
        &mut self,
        scenario: &Scenario,
        partial: &EpisodeRecord,
        step: usize,
    ) -> Result<Option<StepCorrection>, TeacherError> {
        let corrections = self.correct(scenario, partial)?;
        Ok(corrections
            .trajectory
            .into_iter()
            .find(|c| c.timestep as usize == step))
    }
}

/// The student's episode replayed step by step, in a scenario of any kind: the environment
/// before each step (so the teacher answers from the student's actual state, the expert knowing
/// what the student had seen), and what the student had read by then.
pub struct Replay {
    pub env: Box<dyn Guided>,
    /// Every observation so far, the first one included: what the student has read.
    pub observed: String,
    /// The first observation.
    pub start: String,
}

impl Replay {
    /// Replays `episode` in `scenario`, calling `visit(step, &replay)` before each step's action
    /// is applied. The environment gets a horizon past the episode's end, so it never stops early.
    pub fn run(
        scenario: &Scenario,
        episode: &EpisodeRecord,
        visit: &mut dyn FnMut(usize, &Replay) -> Result<(), TeacherError>,
    ) -> Result<(), TeacherError> {
        let mut replay = Replay::start(scenario, episode);
        for i in 0..episode.steps.len() {
            if replay.env.won() {
                break;
            }
            visit(i, &replay)?;
            replay.apply(scenario, episode, i)?;
        }
        Ok(())
    }

    /// The replay as it stands before step `step` of `episode` (the steps before it applied),
    /// as [`Replay::run`] would visit it; `None` when the episode has no such step or the goal
    /// already holds there.
    pub fn before(
        scenario: &Scenario,
        episode: &EpisodeRecord,
        step: usize,
    ) -> Result<Option<Replay>, TeacherError> {
        if step >= episode.steps.len() {
            return Ok(None);
        }
        let mut replay = Replay::start(scenario, episode);
        for i in 0..step {
            if replay.env.won() {
                return Ok(None);
            }
            replay.apply(scenario, episode, i)?;
        }
        Ok((!replay.env.won()).then_some(replay))
    }

    fn start(scenario: &Scenario, episode: &EpisodeRecord) -> Replay {
        let horizon = episode.steps.len() as u32 + 1;
        let env = scenario.body.guided(horizon.max(scenario.horizon));
        Replay {
            observed: format!("{}\n{}", env.task(), env.observation()),
            start: env.observation().to_string(),
            env,
        }
    }

    /// Applies step `i`'s action, checking that a deterministic environment answers as
    /// recorded; what the student read is the recorded observation.
    fn apply(
        &mut self,
        scenario: &Scenario,
        episode: &EpisodeRecord,
        i: usize,
    ) -> Result<(), TeacherError> {
        let step = &episode.steps[i];
        self.env.step(&step.action);
        if !self.env.answers_as_recorded(&step.observation) {
            return Err(TeacherError::Episode {
                episode: episode.key.clone(),
                what: format!(
                    "step {i} does not replay in scenario {} (was the scenario edited since?)",
                    scenario.id
                ),
            });
        }
        self.observed.push('\n');
        self.observed.push_str(&step.observation);
        Ok(())
    }
}

/// What `correct_and_store` did for one episode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CorrectionReport {
    pub episode_id: i64,
    /// `None` when this teacher had already corrected the episode (nothing was written).
    pub correction_id: Option<i64>,
    pub steps: u32,
    pub labels: u32,
    pub changed: u32,
    pub leaks: u32,
    pub failures: u32,
}

/// Asks `teacher` to correct stored episode `episode_id` and writes the corrections and one
/// pending label per corrected step in one transaction. An episode this teacher has already
/// corrected is left as it is.
pub fn correct_and_store(
    store: &mut Store,
    scenario: &Scenario,
    episode_id: i64,
    teacher: &mut dyn Teacher,
) -> Result<CorrectionReport, TeacherError> {
    let describe = teacher.describe();
    if store.correction_id(episode_id, &describe)?.is_some() {
        return Ok(CorrectionReport {
            episode_id,
            ..CorrectionReport::default()
        });
    }
    let episode = store
        .episode(episode_id)?
        .ok_or_else(|| TeacherError::Episode {
            episode: episode_id.to_string(),
            what: "no such episode in the run".into(),
        })?;
    let corrections = teacher.correct(scenario, &episode.record)?;
    let correction_id = store.insert_corrections(
        episode_id,
        &describe,
        teacher.privilege(),
        &episode.record,
        &corrections,
    )?;
    let labels = corrections.trajectory.len() as u32;
    Ok(CorrectionReport {
        episode_id,
        correction_id,
        steps: episode.record.steps.len() as u32,
        labels,
        changed: corrections
            .trajectory
            .iter()
            .filter(|c| c.is_corrected)
            .count() as u32,
        leaks: corrections
            .trajectory
            .iter()
            .filter(|c| !c.leaks.is_empty())
            .count() as u32,
        failures: corrections.failures.len() as u32,
    })
}
