//! The LLM teacher: any policy (a local GGUF model, a remote server) prompted with the
//! privileged state and the student's episode. The "self" teacher is this teacher with the
//! student's own model and adapter: LEAP's self-improvement with a privileged version of itself.
//!
//! It corrects one step per request, every step of an episode at once as a batch (a local model
//! decodes them as parallel sequences). A step-sized answer is what a small model can give
//! reliably; the whole trajectory in one answer would not fit a 2k context. Each answer is in
//! the student's own `REASON:`/`ACTION:` form, which a local model decodes under the grammar
//! that admits only the step's admissible commands. Every answer is validated (a reason of
//! sensible length, an admissible action); a bad one is retried with the error in the prompt,
//! and after the last retry the step is recorded as a failed correction, never an error.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::context;
use minijinja::value::Serde;

use super::{Corrections, Replay, StepCorrection, StepFailure, Teacher, TeacherError};
use crate::agent::parse::parse;
use crate::agent::prompt::{Blocks, Past};
use crate::agent::{Policy, Request, Sampling};
use crate::env::{Kind, Privileged};
use crate::scenario::Scenario;
use crate::store::EpisodeRecord;

/// Longest corrected reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 400;

/// Settings of an LLM teacher.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// "self" or "llm": the first word of `describe`.
    pub role: String,
    /// Attempts after the first for a step whose answer is invalid.
    pub retries: u32,
    /// Earlier steps shown in the prompt.
    pub history: usize,
    /// Requests sent at once (the local model's slots).
    pub parallel: usize,
    pub sampling: Sampling,
}

impl Default for LlmSettings {
    fn default() -> Self {
        LlmSettings {
            role: "llm".into(),
            retries: 2,
            history: 6,
            parallel: 4,
            sampling: Sampling::default(),
        }
    }
}

pub struct LlmTeacher {
    policy: Box<dyn Policy>,
    /// The user's template, for scenarios of every kind.
    custom: Option<Blocks>,
    /// Each kind's shipped template, compiled when first needed.
    shipped: Vec<(Kind, Blocks)>,
    settings: LlmSettings,
}

/// Valid answers, (reason, action), by step.
type Answers = BTreeMap<usize, (String, String)>;

/// One step waiting for a valid answer.
struct Pending {
    step: usize,
    ctx: minijinja::Value,
    admissible: Vec<String>,
    attempts: u32,
    error: Option<String>,
}

impl LlmTeacher {
    /// A teacher over `policy` with each kind's shipped template, or the one in `template` if
    /// given.
    pub fn new(
        policy: Box<dyn Policy>,
        template: Option<&Path>,
        settings: LlmSettings,
    ) -> Result<LlmTeacher, TeacherError> {
        let custom = template
            .map(Blocks::from_file)
            .transpose()
            .map_err(|e| TeacherError::Template(e.to_string()))?;
        Ok(LlmTeacher {
            policy,
            custom,
            shipped: Vec::new(),
            settings,
        })
    }

    /// The template for scenarios of `kind`.
    fn template(&mut self, kind: Kind) -> Result<&Blocks, TeacherError> {
        if let Some(custom) = &self.custom {
            return Ok(custom);
        }
        let at = match self.shipped.iter().position(|(k, _)| *k == kind) {
            Some(at) => at,
            None => {
                let t = kind.teacher_template();
                let blocks = Blocks::compile(t.name, t.source.to_string())
                    .map_err(|e| TeacherError::Template(e.to_string()))?;
                self.shipped.push((kind, blocks));
                self.shipped.len() - 1
            }
        };
        Ok(&self.shipped[at].1)
    }

    /// Gives the policy back (its model stays loaded).
    pub fn into_policy(self) -> Box<dyn Policy> {
        self.policy
    }

    /// Checks one answer; the error is what the retry prompt tells the model.
    fn validate(text: &str, admissible: &[String]) -> Result<(String, String), String> {
        let parsed = parse(text, admissible);
        let Some(action) = parsed.action else {
            return Err("the ACTION line was missing or not one of the commands".into());
        };
        let reason = parsed.reason.unwrap_or_default();
        let reason = reason.trim();
        if reason.is_empty() {
            return Err("the REASON line was empty".into());
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(format!(
                "the reason was longer than {MAX_REASON_CHARS} characters"
            ));
        }
        Ok((reason.to_string(), action))
    }
}

impl LlmTeacher {
    /// The prompt's variables for step `i` of `episode`, from `replay` standing before it.
    fn pending(
        &self,
        episode: &EpisodeRecord,
        i: usize,
        replay: &Replay,
        hidden: &Privileged,
    ) -> Pending {
        let from = i.saturating_sub(self.settings.history);
        let history: Vec<Past> = episode.steps[from..i]
            .iter()
            .map(|s| Past {
                action: s.action.clone(),
                observation: s.observation.clone(),
            })
            .collect();
        let admissible = replay.env.admissible();
        let step = &episode.steps[i];
        let ctx = context! {
            task => replay.env.task(),
            start => &replay.start,
            history => Serde(&history),
            observation => replay.env.observation(),
            admissible => Serde(&admissible),
            student_reason => step.reason.as_deref(),
            student_action => &step.action,
            ..replay.env.teacher_vars(hidden)
        };
        Pending {
            step: i,
            ctx,
            admissible,
            attempts: 0,
            error: None,
        }
    }

    /// Asks the policy for every pending step, `parallel` at a time, retrying invalid answers:
    /// the valid answers (reason, action) by step, and the steps that had none.
    fn answer(
        &mut self,
        kind: Kind,
        mut pending: Vec<Pending>,
    ) -> Result<(Answers, Vec<StepFailure>), TeacherError> {
        let mut answers = BTreeMap::new();
        let mut failures = Vec::new();
        let parallel = self.settings.parallel.max(1);
        while !pending.is_empty() {
            let batch: Vec<Pending> = pending.drain(..pending.len().min(parallel)).collect();
            let mut requests = Vec::with_capacity(batch.len());
            for (seq, p) in batch.iter().enumerate() {
                let ctx = context! { error => p.error.as_deref(), ..p.ctx.clone() };
                let messages = self
                    .template(kind)?
                    .render(ctx)
                    .map_err(|e| TeacherError::Template(e.to_string()))?;
                requests.push(Request {
                    seq,
                    messages,
                    admissible: p.admissible.clone(),
                    temperature: None,
                });
            }
            let responses =
                self.policy
                    .respond(&requests, &self.settings.sampling, &mut |_, _| {})?;
            for (mut p, response) in batch.into_iter().zip(responses) {
                p.attempts += 1;
                match Self::validate(&response.text, &p.admissible) {
                    Ok(answer) => {
                        answers.insert(p.step, answer);
                    }
                    Err(error) if p.attempts > self.settings.retries => {
                        failures.push(StepFailure {
                            timestep: p.step as u32,
                            error: format!("{error} (answer: {:?})", response.text),
                        });
                    }
                    Err(error) => {
                        p.error = Some(error);
                        pending.push(p);
                    }
                }
            }
        }

        // Each slot kept the shared prefix of the prompts between batches; the episode is done.
        for seq in 0..parallel {
            self.policy.release(seq);
        }
        failures.sort_by_key(|f| f.timestep);
        Ok((answers, failures))
    }
}

impl Teacher for LlmTeacher {
    fn describe(&self) -> String {
        format!("{}:{}", self.settings.role, self.policy.describe())
    }

    fn correct(
        &mut self,
        scenario: &Scenario,
        episode: &EpisodeRecord,
    ) -> Result<Corrections, TeacherError> {
        let kind = scenario.kind();
        self.template(kind)?;
        let hidden = scenario.body.privileged(scenario.horizon);
        let mut pending: Vec<Pending> = Vec::new();
        let mut observed: Vec<String> = Vec::new();
        Replay::run(scenario, episode, &mut |i, replay| {
            pending.push(self.pending(episode, i, replay, &hidden));
            observed.push(replay.observed.clone());
            Ok(())
        })?;
        let (answers, failures) = self.answer(kind, pending)?;

        let trajectory: Vec<StepCorrection> = answers
            .into_iter()
            .map(|(i, (reason, action))| StepCorrection {
                timestep: i as u32,
                is_corrected: action != episode.steps[i].action,
                leaks: kind.leaks(&reason, &hidden, &observed[i]),
                corrected_reason: reason,
                corrected_action: action,
            })
            .collect();
        let changed = trajectory.iter().filter(|c| c.is_corrected).count();
        Ok(Corrections {
            summary: format!(
                "{changed} of {} steps corrected, {} failed.",
                episode.steps.len(),
                failures.len()
            ),
            trajectory,
            failures,
        })
    }

    /// Prompts for that step alone, as [`Teacher::correct`] prompts for each.
    fn correct_step(
        &mut self,
        scenario: &Scenario,
        partial: &EpisodeRecord,
        step: usize,
    ) -> Result<Option<StepCorrection>, TeacherError> {
        let kind = scenario.kind();
        self.template(kind)?;
        let Some(replay) = Replay::before(scenario, partial, step)? else {
            return Ok(None);
        };
        let hidden = scenario.body.privileged(scenario.horizon);
        let pending = vec![self.pending(partial, step, &replay, &hidden)];
        let (mut answers, _) = self.answer(kind, pending)?;
        Ok(answers
            .remove(&step)
            .map(|(reason, action)| StepCorrection {
                timestep: step as u32,
                is_corrected: action != partial.steps[step].action,
                leaks: kind.leaks(&reason, &hidden, &replay.observed),
                corrected_reason: reason,
                corrected_action: action,
            }))
    }
}
