//! The oracle teacher: from the student's actual state at each step, the best next command
//! under the environment's rules, with a templated reason stating a general principle. The
//! environment kind's expert gives both ([`crate::env::Guided::advise`]).
//!
//! `privilege` in [0, 1] sets how much of the privileged state it uses. At 0 it is the best
//! policy that uses only what the student has observed; at 1 it follows the expert's shortest
//! plan over the true state, going straight to what is hidden. In between, draws from a
//! generator seeded by the seed and the episode's key (deterministic for a seed) decide what it
//! knows; [`PrivilegeDraw`] says what one draw decides. By default each hidden fact of the
//! episode's start is told with probability `privilege`, once per episode and fact (the same
//! draws as the LLM teacher's graded prompt, so at one seed both know the same facts), and the
//! expert acts on the facts told and on what the student observed: one episode's labels never
//! disagree about a hidden fact. A kind whose expert cannot act on part of the state
//! ([`crate::env::Guided::per_fact`]) gets all of it or none, drawn once per episode. With
//! [`PrivilegeDraw::Step`], each step draws all or nothing on its own.
//!
//! A kind may have no expert that acts on what the student observed (an external environment
//! gives only its privileged expert's action): the oracle then corrects a step with probability
//! `privilege` and leaves the others as the student wrote them, and demonstrates with the
//! privileged expert throughout.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::{Corrections, Replay, StepCorrection, Teacher, TeacherError};
use crate::agent::Message;
use crate::agent::prompt::{Past, Prompt, PromptError, View};
use crate::env::{Advice, Fact, Guided, Kind, Privileged};
use crate::scenario::Scenario;
use crate::store::EpisodeRecord;

/// What one privilege draw of the oracle decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PrivilegeDraw {
    /// One draw per episode and hidden fact: every step of an episode knows the same facts
    /// (all or none, once per episode, for a kind whose expert cannot act on part of them).
    #[default]
    Episode,
    /// One draw per step, all or nothing (how leap drew before: neighbouring labels may
    /// disagree).
    Step,
}

/// What the expert is told of the privileged state at one step.
#[derive(Debug, Clone, PartialEq)]
pub enum Told {
    Nothing,
    Everything,
    /// Some of the hidden facts of the episode's start, not all.
    Facts(Vec<Fact>),
}

impl Told {
    /// The expert's advice in `env` knowing this.
    pub fn advise(&self, env: &dyn Guided) -> Option<Advice> {
        match self {
            Told::Nothing => env.advise(false),
            Told::Everything => env.advise(true),
            Told::Facts(facts) => env.advise_told(facts),
        }
    }
}

pub struct OracleTeacher {
    privilege: f64,
    seed: u64,
    draw: PrivilegeDraw,
}

impl OracleTeacher {
    /// `privilege` is clamped to [0, 1]; one draw per episode.
    pub fn new(privilege: f64, seed: u64) -> OracleTeacher {
        OracleTeacher {
            privilege: privilege.clamp(0.0, 1.0),
            seed,
            draw: PrivilegeDraw::Episode,
        }
    }

    /// The same teacher drawing as `draw` says.
    pub fn drawing(mut self, draw: PrivilegeDraw) -> OracleTeacher {
        self.draw = draw;
        self
    }

    /// What the expert in `env` is told at step `step` of the episode keyed `key`, whose hidden
    /// facts at the start are `hidden`.
    pub fn told(&self, env: &dyn Guided, hidden: &[Fact], key: &str, step: usize) -> Told {
        let per_fact = self.draw == PrivilegeDraw::Episode && env.per_fact();
        if !per_fact || self.privilege <= 0.0 || self.privilege >= 1.0 {
            return match self.privileged_at(key, step) {
                true => Told::Everything,
                false => Told::Nothing,
            };
        }
        let told = super::drawn_facts(self.privilege, self.seed, key, hidden);
        match told.len() {
            0 => Told::Nothing,
            n if n == hidden.len() => Told::Everything,
            _ => Told::Facts(told),
        }
    }

    /// Whether step `step` of the episode keyed `key` uses the whole privileged state, where a
    /// draw is all or nothing (per step, or per episode for a kind without per-fact advice).
    pub fn privileged_at(&self, key: &str, step: usize) -> bool {
        if self.privilege >= 1.0 {
            return true;
        }
        if self.privilege <= 0.0 {
            return false;
        }
        if self.draw == PrivilegeDraw::Episode {
            return super::draw(self.privilege, self.seed, key, "episode", 0);
        }
        let digest = Sha256::new()
            .chain_update(self.seed.to_le_bytes())
            .chain_update(key.as_bytes())
            .chain_update((step as u64).to_le_bytes())
            .finalize();
        let mut rng = ChaCha8Rng::from_seed(digest.into());
        rng.random::<f64>() < self.privilege
    }
}

/// The oracle playing a scenario from its start: what behaviour cloning learns from, what the
/// oracle acting alone is measured by, and the states the student is tested in step by step.
#[derive(Debug, Clone)]
pub struct Demonstration {
    /// The scenario's kind (which prompt renders its steps).
    pub kind: Kind,
    pub task: String,
    /// The first observation.
    pub start: String,
    pub steps: Vec<DemoStep>,
    pub won: bool,
    pub reward: f32,
}

/// One step of a [`Demonstration`].
#[derive(Debug, Clone)]
pub struct DemoStep {
    /// What the player read before acting, and the commands that did something then.
    pub observation: String,
    pub admissible: Vec<String>,
    pub reason: String,
    pub action: String,
    /// Whether the action came from the privileged plan.
    pub privileged: bool,
    /// Every command the oracle gives in this state with or without the privileged state
    /// (`action` among them): a move that makes progress either way. Only `action` unless the
    /// demonstration was asked for them (each costs a plan).
    pub good_actions: Vec<String>,
    /// The action's result.
    pub next_observation: String,
    pub reward: f32,
    pub done: bool,
    /// What the environment reported beyond the reward (`Environment::info`).
    pub info: Option<serde_json::Value>,
}

impl Demonstration {
    /// The student's prompt before each step, as `prompt` renders it.
    pub fn prompts(&self, prompt: &Prompt) -> Result<Vec<Vec<Message>>, PromptError> {
        let mut history: Vec<Past> = Vec::with_capacity(self.steps.len());
        let mut prompts = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            prompts.push(prompt.render(&View {
                kind: self.kind,
                task: &self.task,
                start: &self.start,
                history: &history,
                observation: &step.observation,
                admissible: &step.admissible,
            })?);
            history.push(Past {
                action: step.action.clone(),
                observation: step.next_observation.clone(),
            });
        }
        Ok(prompts)
    }
}

impl OracleTeacher {
    /// Plays `scenario` from its start to the goal or the horizon, drawing privilege for the
    /// episode keyed `key`; with `alternatives`, also notes every step's good actions.
    pub fn demonstrate(&self, scenario: &Scenario, key: &str, alternatives: bool) -> Demonstration {
        let mut env = scenario.body.guided(scenario.horizon);
        let hidden = self.hidden_facts(&*env);
        let mut demo = Demonstration {
            kind: scenario.kind(),
            task: env.task().to_string(),
            start: env.observation().to_string(),
            steps: Vec::new(),
            won: false,
            reward: 0.0,
        };
        for i in 0..scenario.horizon as usize {
            let told = self.told(&*env, &hidden, key, i);
            // A kind whose only expert uses the privileged state (an external environment's)
            // is followed by it at every step of a demonstration.
            let advice = told.advise(&*env).or_else(|| match told {
                Told::Everything => None,
                _ => env.advise(true),
            });
            let Some(advice) = advice else {
                break;
            };
            let observation = env.observation().to_string();
            let admissible = env.admissible();
            let mut good_actions = vec![advice.action.clone()];
            let modes: &[bool] = if alternatives { &[false, true] } else { &[] };
            for &privileged in modes {
                if let Some(other) = env.advise(privileged)
                    && !good_actions.contains(&other.action)
                {
                    good_actions.push(other.action);
                }
            }
            let outcome = env.step(&advice.action);
            demo.steps.push(DemoStep {
                observation,
                admissible,
                reason: advice.reason,
                action: advice.action,
                privileged: advice.privileged,
                good_actions,
                next_observation: env.observation().to_string(),
                reward: outcome.reward,
                done: outcome.done,
                info: env.info(),
            });
            // The last reward counts even where the expert stops short of the end (a kind with
            // partial rewards whose expert has no more to offer).
            demo.won = outcome.won;
            demo.reward = outcome.reward;
            if outcome.done {
                break;
            }
        }
        demo
    }
}

impl OracleTeacher {
    /// The hidden facts of `env` at its start, where the draws are per fact (else none: they are
    /// not read).
    fn hidden_facts(&self, env: &dyn Guided) -> Vec<Fact> {
        let drawn = self.privilege > 0.0 && self.privilege < 1.0;
        if drawn && self.draw == PrivilegeDraw::Episode && env.per_fact() {
            env.privileged().facts
        } else {
            Vec::new()
        }
    }
}

impl Teacher for OracleTeacher {
    fn describe(&self) -> String {
        let per_step =
            self.draw == PrivilegeDraw::Step && self.privilege > 0.0 && self.privilege < 1.0;
        format!(
            "oracle@{}{}",
            self.privilege,
            if per_step { " (per step)" } else { "" }
        )
    }

    fn privilege(&self) -> Option<f64> {
        Some(self.privilege)
    }

    fn correct(
        &mut self,
        scenario: &Scenario,
        episode: &EpisodeRecord,
    ) -> Result<Corrections, TeacherError> {
        let hidden = scenario.body.privileged(scenario.horizon);
        let mut trajectory = Vec::with_capacity(episode.steps.len());
        Replay::run(scenario, episode, &mut |i, replay| {
            trajectory.extend(self.advise(scenario, &hidden, episode, i, replay));
            Ok(())
        })?;
        let changed = trajectory.iter().filter(|c| c.is_corrected).count();
        let summary = format!(
            "{} of {} steps corrected; the student {}.",
            changed,
            trajectory.len(),
            if episode.won {
                "reached the goal"
            } else {
                "did not reach the goal"
            }
        );
        Ok(Corrections {
            summary,
            trajectory,
            failures: Vec::new(),
        })
    }

    /// Replays only the steps before `step` and advises there.
    fn correct_step(
        &mut self,
        scenario: &Scenario,
        partial: &EpisodeRecord,
        step: usize,
    ) -> Result<Option<StepCorrection>, TeacherError> {
        let Some(replay) = Replay::before(scenario, partial, step)? else {
            return Ok(None);
        };
        let hidden = scenario.body.privileged(scenario.horizon);
        Ok(self.advise(scenario, &hidden, partial, step, &replay))
    }
}

impl OracleTeacher {
    /// The expert's correction of step `i` of `episode`, from `replay` standing before it.
    fn advise(
        &self,
        scenario: &Scenario,
        hidden: &Privileged,
        episode: &EpisodeRecord,
        i: usize,
        replay: &Replay,
    ) -> Option<StepCorrection> {
        let told = self.told(&*replay.env, &hidden.facts, &episode.key, i);
        let advice = told.advise(&*replay.env)?;
        let leaks = scenario
            .kind()
            .leaks(&advice.reason, hidden, &replay.observed);
        Some(StepCorrection {
            timestep: i as u32,
            is_corrected: advice.action != episode.steps[i].action,
            corrected_reason: advice.reason,
            corrected_action: advice.action,
            leaks,
        })
    }
}
