//! The LLM teacher: any policy (a local GGUF model, a remote server) prompted with the
//! privileged state and the student's episode. The "self" teacher is this teacher with the
//! student's own model and adapter: LEAP's self-improvement with a privileged version of itself.
//!
//! Two modes ([`TeacherMode`]):
//! - **step**: one request per step, every step of an episode at once as a batch (a local model
//!   decodes them as parallel sequences). A step-sized answer is what a small model can give
//!   reliably. Each answer is in the student's own `REASON:`/`ACTION:` form, which a local model
//!   decodes under the grammar that admits only the step's admissible commands.
//! - **trajectory**: the LEAP paper's format, one request per episode answered in JSON (see
//!   [`super::trajectory`]), for a teacher strong enough to read a whole episode.
//!
//! Every answer is validated (a reason of sensible length, an admissible action, the JSON's
//! schema); a bad one is retried with the error in the prompt, and after the last retry the
//! step is recorded as a failed correction, never an error. A backend that fails (a server
//! whose retries ran out) is recorded the same way for the episode's steps, so a run goes on.
//!
//! The privileged state is graded by `privilege` (the paper's graded prompts): each hidden fact
//! is shown with that probability, drawn once per episode and fact, and the expert's plan only
//! when every fact is. The scenario's privileged notes always are.

use std::collections::BTreeMap;
use std::path::PathBuf;

use minijinja::context;
use minijinja::value::{Serde, merge_maps};
use serde::Serialize;

use super::trajectory::{self, AnswerStep};
use super::{Corrections, Replay, StepCorrection, StepFailure, Teacher, TeacherError, drawn_facts};
use crate::agent::parse::parse;
use crate::agent::prompt::{Blocks, Past};
use crate::agent::{Policy, PolicyError, Request, Sampling};
use crate::env::text::clip;
use crate::env::{Kind, Privileged};
use crate::scenario::Scenario;
use crate::store::EpisodeRecord;

/// Longest corrected reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 400;

/// A trajectory prompt shows each observation to this many lines and characters...
const TRAJECTORY_CLIP: (usize, usize) = (12, 600);
/// ...and at most this many of each step's commands (the grammar still admits them all).
const TRAJECTORY_COMMANDS: usize = 40;

/// How an LLM teacher asks for corrections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TeacherMode {
    /// One request per step, answered `REASON:` then `ACTION:` (small teachers).
    #[default]
    Step,
    /// One request per episode, answered in the LEAP paper's JSON (strong teachers).
    Trajectory,
}

/// Settings of an LLM teacher.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// "self" or "llm": the first word of `describe`.
    pub role: String,
    /// Attempts after the first for an answer that is invalid (a step's, or an episode's).
    pub retries: u32,
    /// Earlier steps shown in the prompt (step mode).
    pub history: usize,
    /// Requests sent at once (the local model's slots).
    pub parallel: usize,
    /// `sampling.max_tokens` bounds one step's answer; a trajectory answer gets that much per
    /// step and some for its summary.
    pub sampling: Sampling,
    pub mode: TeacherMode,
    /// The prompt template for every kind, instead of each kind's shipped one for the mode.
    pub prompt: Option<PathBuf>,
    /// The share of the privileged facts the prompt shows, in [0, 1].
    pub privilege: f64,
}

impl Default for LlmSettings {
    fn default() -> Self {
        LlmSettings {
            role: "llm".into(),
            retries: 2,
            history: 6,
            parallel: 4,
            sampling: Sampling::default(),
            mode: TeacherMode::Step,
            prompt: None,
            privilege: 1.0,
        }
    }
}

/// One step of the student's episode as the trajectory prompt shows it.
#[derive(Serialize)]
struct ShownStep {
    timestep: usize,
    observation: String,
    admissible: Vec<String>,
    reason: Option<String>,
    action: String,
    result: String,
}

/// A hidden fact as the prompts show it.
#[derive(Serialize)]
struct ShownFact<'a> {
    subject: &'a str,
    relation: &'a str,
    detail: &'a str,
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
    /// A teacher over `policy` with each kind's shipped template for the mode, or the one in
    /// `settings.prompt` if given.
    pub fn new(policy: Box<dyn Policy>, settings: LlmSettings) -> Result<LlmTeacher, TeacherError> {
        let custom = settings
            .prompt
            .as_deref()
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
                let t = match self.settings.mode {
                    TeacherMode::Step => kind.teacher_template(),
                    TeacherMode::Trajectory => kind.trajectory_template(),
                };
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
        shown: &Shown,
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
            notes => &shown.notes,
            // The first map wins: what a partial privilege hides, over the kind's variables.
            ..merge_maps([shown.overrides(), replay.env.teacher_vars(&shown.hidden)])
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
                    format: Default::default(),
                    seq,
                    messages,
                    admissible: p.admissible.clone(),
                    temperature: None,
                    seed: None,
                });
            }
            let responses =
                match self
                    .policy
                    .respond(&requests, &self.settings.sampling, &mut |_, _| {})
                {
                    Ok(responses) => responses,
                    Err(PolicyError::Cancelled) => return Err(TeacherError::Cancelled),
                    // The backend gave up (a server out of retries): the steps not answered yet
                    // are recorded as failed, and the run goes on.
                    Err(e) => {
                        let error = format!("the teacher's backend failed: {e}");
                        failures.extend(batch.iter().chain(&pending).map(|p| StepFailure {
                            timestep: p.step as u32,
                            error: error.clone(),
                        }));
                        pending.clear();
                        break;
                    }
                };
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

/// What an LLM teacher's prompt shows of the privileged state for one episode.
struct Shown {
    /// The privileged state with only the drawn facts, and the plan only when all were drawn.
    hidden: Privileged,
    /// Every fact was drawn.
    full: bool,
    notes: Vec<String>,
}

impl Shown {
    /// The graded privileged state of `episode`: each fact of `hidden` drawn with probability
    /// `privilege`, once per episode and fact.
    fn new(hidden: Privileged, privilege: f64, seed: u64, scenario: &Scenario, key: &str) -> Shown {
        let total = hidden.facts.len();
        let facts = drawn_facts(privilege, seed, key, &hidden.facts);
        let full = facts.len() == total && privilege > 0.0;
        Shown {
            hidden: Privileged {
                facts,
                plan: if full { hidden.plan } else { None },
            },
            full,
            notes: scenario.body.notes(),
        }
    }

    /// Template variables that a partial privilege hides whatever the kind puts there: the
    /// expert's plan, and an external environment's own privileged text and expert action.
    fn overrides(&self) -> minijinja::Value {
        if self.full {
            return context! {};
        }
        context! {
            plan => Option::<Vec<String>>::None,
            expert => Option::<String>::None,
            privileged => "",
        }
    }

    fn facts(&self) -> Vec<ShownFact<'_>> {
        self.hidden
            .facts
            .iter()
            .map(|f| ShownFact {
                subject: &f.subject,
                relation: &f.relation,
                detail: &f.detail,
            })
            .collect()
    }
}

impl LlmTeacher {
    /// What the prompt shows of `hidden`, the episode's privileged state (computed once by the
    /// caller: it runs the expert, or asks an external environment).
    fn shown(&self, scenario: &Scenario, episode: &EpisodeRecord, hidden: &Privileged) -> Shown {
        Shown::new(
            hidden.clone(),
            self.settings.privilege,
            self.settings.sampling.seed,
            scenario,
            &episode.key,
        )
    }

    fn correct_steps(
        &mut self,
        scenario: &Scenario,
        episode: &EpisodeRecord,
    ) -> Result<Corrections, TeacherError> {
        let kind = scenario.kind();
        let hidden = scenario.body.privileged(scenario.horizon);
        let shown = self.shown(scenario, episode, &hidden);
        let mut pending: Vec<Pending> = Vec::new();
        let mut observed: Vec<String> = Vec::new();
        Replay::run(scenario, episode, &mut |i, replay| {
            pending.push(self.pending(episode, i, replay, &shown));
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

    /// The whole episode in one request, answered in the paper's JSON, retried with the error
    /// in the prompt while the answer is unreadable.
    fn correct_trajectory(
        &mut self,
        scenario: &Scenario,
        episode: &EpisodeRecord,
    ) -> Result<Corrections, TeacherError> {
        let kind = scenario.kind();
        let hidden = scenario.body.privileged(scenario.horizon);
        let shown = self.shown(scenario, episode, &hidden);
        let mut steps: Vec<ShownStep> = Vec::new();
        let mut observed: Vec<String> = Vec::new();
        let mut start = String::new();
        let mut task = String::new();
        Replay::run(scenario, episode, &mut |i, replay| {
            let step = &episode.steps[i];
            if i == 0 {
                start = replay.start.clone();
                task = replay.env.task().to_string();
            }
            let (lines, chars) = TRAJECTORY_CLIP;
            steps.push(ShownStep {
                timestep: i,
                observation: clip(replay.env.observation(), lines, chars),
                admissible: replay.env.admissible(),
                reason: step.reason.clone(),
                action: step.action.clone(),
                result: clip(&step.observation, lines, chars),
            });
            observed.push(replay.observed.clone());
            Ok(())
        })?;
        if steps.is_empty() {
            return Ok(Corrections {
                summary: "no step to correct".into(),
                ..Corrections::default()
            });
        }
        let admissible: Vec<Vec<String>> = steps.iter().map(|s| s.admissible.clone()).collect();
        // Each reason may take what a step's answer may (about four characters a token), and the
        // answer as many tokens as its longest possible text: a constrained answer always ends.
        let max_text = (4 * self.settings.sampling.reason_budget() as usize).min(MAX_REASON_CHARS);
        let (format, longest) = trajectory::format(&admissible, max_text);
        for step in &mut steps {
            step.admissible.truncate(TRAJECTORY_COMMANDS);
        }
        let sampling = Sampling {
            max_tokens: longest,
            ..self.settings.sampling.clone()
        };
        let all_failed = |error: String| Corrections {
            summary: error.clone(),
            trajectory: Vec::new(),
            failures: (0..steps.len() as u32)
                .map(|timestep| StepFailure {
                    timestep,
                    error: error.clone(),
                })
                .collect(),
        };
        let mut error: Option<String> = None;
        let mut attempts = 0;
        let answer = loop {
            attempts += 1;
            let ctx = context! {
                task => &task,
                start => &start,
                steps => Serde(&steps),
                facts => Serde(&shown.facts()),
                plan => Serde(&shown.hidden.plan),
                notes => &shown.notes,
                error => error.as_deref(),
            };
            let messages = self
                .template(kind)?
                .render(ctx)
                .map_err(|e| TeacherError::Template(e.to_string()))?;
            let request = Request {
                seq: 0,
                messages,
                admissible: Vec::new(),
                temperature: None,
                seed: None,
                format: format.clone(),
            };
            let text = match self.policy.respond(&[request], &sampling, &mut |_, _| {}) {
                Ok(mut responses) => responses.remove(0).text,
                Err(PolicyError::Cancelled) => return Err(TeacherError::Cancelled),
                Err(e) => {
                    self.policy.release(0);
                    return Ok(all_failed(format!("the teacher's backend failed: {e}")));
                }
            };
            match trajectory::parse(&text) {
                Ok(answer) => break answer,
                Err(e) if attempts > self.settings.retries => {
                    self.policy.release(0);
                    let shown_text: String = text.chars().take(300).collect();
                    return Ok(all_failed(format!(
                        "no valid answer in {attempts} attempts: {e} (answer: {shown_text:?})"
                    )));
                }
                Err(e) => error = Some(e),
            }
        };
        self.policy.release(0);

        // The paper's rules: a step the answer leaves out has no correction; a corrected action
        // that was not admissible at its step is kept as not corrected (the student's own step).
        let mut by_step: BTreeMap<usize, AnswerStep> = BTreeMap::new();
        let mut failures = Vec::new();
        for step in answer.trajectory {
            let i = step.timestep as usize;
            if i >= steps.len() {
                continue;
            }
            if by_step.contains_key(&i) {
                failures.push(StepFailure {
                    timestep: i as u32,
                    error: "the answer has two entries for this step".into(),
                });
                continue;
            }
            by_step.insert(i, step);
        }
        let mut trajectory = Vec::new();
        let mut inadmissible = 0;
        for (i, shown_step) in steps.iter().enumerate() {
            if failures.iter().any(|f| f.timestep as usize == i) {
                continue;
            }
            let Some(step) = by_step.remove(&i) else {
                failures.push(StepFailure {
                    timestep: i as u32,
                    error: "the answer has no entry for this step".into(),
                });
                continue;
            };
            let reason = step.corrected_reason.trim();
            let reason = if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
                shown_step.reason.clone().unwrap_or_default()
            } else {
                reason.to_string()
            };
            let action = step.corrected_action.trim();
            let admissible_action = trajectory::admissible(action, &shown_step.admissible);
            let (reason, action) = if !step.is_corrected {
                (reason, shown_step.action.clone())
            } else if admissible_action {
                (reason, action.to_string())
            } else {
                inadmissible += 1;
                (
                    shown_step.reason.clone().unwrap_or_default(),
                    shown_step.action.clone(),
                )
            };
            trajectory.push(StepCorrection {
                timestep: i as u32,
                is_corrected: action != shown_step.action,
                leaks: kind.leaks(&reason, &hidden, &observed[i]),
                corrected_reason: reason,
                corrected_action: action,
            });
        }
        failures.sort_by_key(|f| f.timestep);
        let mut summary = answer.summary.trim().to_string();
        if inadmissible > 0 {
            summary.push_str(&format!(
                " [leap: {inadmissible} corrected actions were not admissible at their step and were kept as not corrected]"
            ));
        }
        Ok(Corrections {
            summary,
            trajectory,
            failures,
        })
    }
}

impl Teacher for LlmTeacher {
    fn describe(&self) -> String {
        let mut name = format!("{}:{}", self.settings.role, self.policy.describe());
        if self.settings.mode == TeacherMode::Trajectory {
            name.push_str(" [trajectory]");
        }
        if self.settings.privilege < 1.0 {
            name.push_str(&format!(
                " [privilege {}]",
                self.settings.privilege.max(0.0)
            ));
        }
        name
    }

    fn privilege(&self) -> Option<f64> {
        (self.settings.privilege < 1.0).then_some(self.settings.privilege.max(0.0))
    }

    fn correct(
        &mut self,
        scenario: &Scenario,
        episode: &EpisodeRecord,
    ) -> Result<Corrections, TeacherError> {
        self.template(scenario.kind())?;
        match self.settings.mode {
            TeacherMode::Step => self.correct_steps(scenario, episode),
            TeacherMode::Trajectory => self.correct_trajectory(scenario, episode),
        }
    }

    /// Step mode prompts for that step alone; trajectory mode corrects the episode so far and
    /// keeps that step.
    fn correct_step(
        &mut self,
        scenario: &Scenario,
        partial: &EpisodeRecord,
        step: usize,
    ) -> Result<Option<StepCorrection>, TeacherError> {
        let kind = scenario.kind();
        if self.settings.mode == TeacherMode::Trajectory {
            return Ok(self
                .correct(scenario, partial)?
                .trajectory
                .into_iter()
                .find(|c| c.timestep as usize == step));
        }
        self.template(kind)?;
        let Some(replay) = Replay::before(scenario, partial, step)? else {
            return Ok(None);
        };
        let hidden = scenario.body.privileged(scenario.horizon);
        let shown = self.shown(scenario, partial, &hidden);
        let pending = vec![self.pending(partial, step, &replay, &shown)];
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
