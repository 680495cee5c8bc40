//! Rollouts: the student plays scenarios, K episodes at a time, and every finished episode is
//! written to the run store in one transaction. A rerun with the same label skips the episodes
//! already stored, so a killed rollout resumes where it stopped.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::agent::parse::parse;
use crate::agent::prompt::{Past, Prompt, PromptError, View};
use crate::agent::{Feed, Next, Policy, PolicyError, Request, Response, Sampling};
use crate::env::{Environment, Kind, Outcome, command};
use crate::scenario::Scenario;
use crate::store::{
    Branch, EpisodeFilter, EpisodeRecord, StepRecord, Store, StoreError, Summary, now_ms,
};

#[derive(Debug, Error)]
pub enum RolloutError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cancelled")]
    Cancelled,
}

/// What to play and how.
#[derive(Debug, Clone)]
pub struct RolloutConfig {
    /// Names this rollout in the store: episode keys are `rollout/<label>/<scenario>/<n>`.
    pub label: String,
    /// Episodes per scenario.
    pub episodes: usize,
    /// Episodes played at once.
    pub parallel: usize,
    pub sampling: Sampling,
    /// The LEAP iteration the student comes from, if any.
    pub iteration: Option<u32>,
    /// Steps before an episode ends, instead of each scenario's own horizon.
    pub horizon: Option<u32>,
    /// Show the privileged state in every prompt: the policy plays as a teacher acting alone.
    pub privileged: bool,
    /// Stop an episode as a failure when, with greedy decoding (temperature 0 and no
    /// [`Sampling::repeat_temperature`]), its next prompt and its environment's state
    /// ([`Environment::fingerprint`]) equal those of one of its earlier steps: the policy would
    /// answer as it did then and go round the same steps to the horizon. Stored as `stopped:
    /// cycle at step N (a repeat of step M)`, counting from 1). Sound where the next prompt
    /// follows from the prompt shown and the step taken, as with the shipped templates: the
    /// window of earlier steps moves on by its own length, and the household's places not
    /// checked yet only shrink. Batched decoding is not bit-exact, so a run without the stop
    /// may answer a repeated prompt otherwise. Sampled decoding is never stopped.
    pub stop_cycles: bool,
}

impl RolloutConfig {
    pub fn key_prefix(&self) -> String {
        format!("rollout/{}/", self.label)
    }

    /// Whether a cycle ends an episode: asked for, and the policy's answers are greedy.
    pub fn stops_cycles(&self) -> bool {
        self.stop_cycles
            && self.sampling.temperature == 0.0
            && self.sampling.repeat_temperature == 0.0
    }
}

/// What a rollout reports while it runs.
#[derive(Debug, Clone)]
pub enum RolloutEvent {
    EpisodeStarted {
        slot: usize,
        key: String,
        scenario_id: String,
        task: String,
        observation: String,
    },
    Token {
        slot: usize,
        text: String,
    },
    StepFinished {
        slot: usize,
        index: usize,
        step: StepRecord,
    },
    EpisodeFinished {
        slot: usize,
        key: String,
        won: bool,
        steps: usize,
    },
    /// Episodes finished (this run and earlier ones) out of the total.
    Progress {
        done: usize,
        total: usize,
    },
}

/// The numbers a rollout ends with.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutSummary {
    pub episodes: u64,
    pub success_rate: f64,
    pub mean_reward: f64,
    pub mean_steps: f64,
    pub invalid_action_rate: f64,
    /// Generated tokens per second of wall time, this invocation.
    pub gen_tokens_per_s: f64,
    /// Environment steps per second of wall time, this invocation.
    pub steps_per_s: f64,
    /// Episodes played by this invocation (the rest were already stored).
    pub played: u64,
    /// Share of prompt tokens reused from the KV cache, this invocation.
    pub cached_share: f64,
}

/// One episode being played: its environment, what the next prompt needs and the steps so far.
/// The batch rollout and the workbench's live session both step episodes through this type, so
/// a step is built one way only.
pub struct Playing {
    /// The key the finished episode is stored under.
    pub key: String,
    /// The scenario's kind (which prompt renders its steps).
    pub kind: Kind,
    pub env: Box<dyn Environment>,
    /// The first observation (the prompt shows it on every step).
    pub start: String,
    pub history: Vec<Past>,
    pub steps: Vec<StepRecord>,
    pub started_at_ms: i64,
    started: Instant,
    /// Privileged facts appended to every prompt: set only to play a teacher acting alone.
    pub hint: Option<String>,
    /// Fingerprints of the prompts shown so far.
    prompts_seen: HashSet<[u8; 32]>,
    /// Fingerprints of (prompt, environment state) at every step so far, where the environment
    /// has one, with the step's index.
    states_seen: HashMap<([u8; 32], u64), usize>,
    /// The stored episode this one branched from, if any.
    pub branch: Option<Branch>,
    /// Why the episode was ended early, if it was ([`EpisodeRecord::stopped`]).
    pub stopped: Option<String>,
}

impl Playing {
    /// A fresh episode in `env` (already reset) of a `kind` scenario, to be stored under `key`.
    pub fn new(key: String, kind: Kind, env: Box<dyn Environment>) -> Playing {
        Playing {
            kind,
            start: env.observation().to_string(),
            key,
            env,
            history: Vec::new(),
            steps: Vec::new(),
            started_at_ms: now_ms(),
            started: Instant::now(),
            hint: None,
            prompts_seen: HashSet::new(),
            states_seen: HashMap::new(),
            branch: None,
            stopped: None,
        }
    }

    /// The prompt for the next step, as a request for slot `seq`.
    pub fn request(&self, prompt: &Prompt, seq: usize) -> Result<Request, PromptError> {
        let admissible = self.env.admissible();
        let view = View {
            kind: self.kind,
            task: self.env.task(),
            start: &self.start,
            history: &self.history,
            observation: self.env.observation(),
            admissible: &admissible,
        };
        let mut messages = prompt.render(&view)?;
        if let (Some(hint), Some(last)) = (&self.hint, messages.last_mut()) {
            last.content.push_str("\n\n");
            last.content.push_str(hint);
        }
        Ok(Request {
            format: Default::default(),
            seq,
            messages,
            admissible,
            temperature: None,
            seed: None,
        })
    }

    /// Whether this episode has already shown the policy `request`'s prompt, word for word;
    /// remembers it for the next steps.
    pub fn seen_before(&mut self, request: &Request) -> bool {
        !self.prompts_seen.insert(prompt_hash(request))
    }

    /// Whether `request` would repeat one of this episode's steps exactly, the same prompt in
    /// the same environment state; remembers it for the next steps. Never where the
    /// environment has no [`Environment::fingerprint`]. When it does, the episode is marked
    /// [`Playing::stopped`] (`cycle at step 7 (a repeat of step 5)`, counting from 1 as
    /// traces do) and should be recorded as it stands.
    pub fn repeats(&mut self, request: &Request) -> bool {
        let Some(state) = self.env.fingerprint() else {
            return false;
        };
        let now = self.steps.len();
        match self.states_seen.entry((prompt_hash(request), state)) {
            Entry::Vacant(v) => {
                v.insert(now);
                false
            }
            Entry::Occupied(o) => {
                let then = *o.get();
                self.stopped = Some(format!(
                    "cycle at step {} (a repeat of step {})",
                    now + 1,
                    then + 1
                ));
                true
            }
        }
    }

    /// The outcome an episode stopped early is recorded with: the last step's reward, over,
    /// not won (a cycle never reaches the goal).
    pub fn stopped_outcome(&self) -> Outcome {
        Outcome {
            reward: self.steps.last().map_or(0.0, |s| s.reward as f32),
            done: true,
            won: false,
        }
    }

    /// Parses the policy's answer to `request`, sends the action to the environment and records
    /// the step. Returns the step (also kept in `steps`) and what the environment said.
    pub fn advance(&mut self, request: Request, response: &Response) -> (StepRecord, Outcome) {
        let parsed = parse(&response.text, &request.admissible);
        let valid = parsed.action.is_some();
        let action = parsed.action.unwrap_or_else(|| response.text.clone());
        self.apply(request, response, parsed.reason, action, valid, None)
    }

    /// Takes `action` (with `reason`, if any) at the step `request` prompts for, chosen by `by`
    /// instead of the policy: the step is recorded as an intervention, with the prompt the
    /// policy would have answered and no tokens or timings. An admitted action is sent as the
    /// list admits it (a template's fill trimmed); one outside a non-empty admissible list is
    /// sent anyway and recorded as not valid, as a student's would be.
    pub fn intervene(
        &mut self,
        request: Request,
        reason: Option<String>,
        action: String,
        by: String,
    ) -> (StepRecord, Outcome) {
        let admitted = command::admits(&request.admissible, &action);
        let valid = request.admissible.is_empty() || admitted.is_some();
        let action = admitted.unwrap_or(action);
        let response = Response {
            text: crate::agent::parse::format(reason.as_deref().unwrap_or(""), &action),
            prompt_tokens: 0,
            cached_tokens: 0,
            gen_tokens: 0,
            prompt_ms: 0.0,
            gen_ms: 0.0,
        };
        self.apply(request, &response, reason, action, valid, Some(by))
    }

    /// Plays a step already recorded (a branch's first steps, the steps before an intervention)
    /// as it is, marks included. `None` when a deterministic environment does not answer as
    /// recorded (see [`Environment::deterministic`]).
    pub fn replay(&mut self, step: StepRecord) -> Option<Outcome> {
        let outcome = self.env.step(&step.action);
        if !self.env.answers_as_recorded(&step.observation) {
            return None;
        }
        self.history.push(Past {
            action: step.action.clone(),
            observation: step.observation.clone(),
        });
        self.steps.push(step);
        Some(outcome)
    }

    fn apply(
        &mut self,
        request: Request,
        response: &Response,
        reason: Option<String>,
        action: String,
        valid: bool,
        intervention: Option<String>,
    ) -> (StepRecord, Outcome) {
        let outcome = self.env.step(&action);
        let step = StepRecord {
            prompt: request
                .messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n\n"),
            messages: request.messages,
            raw_output: response.text.clone(),
            reason,
            action: action.clone(),
            observation: self.env.observation().to_string(),
            reward: f64::from(outcome.reward),
            done: outcome.done,
            valid,
            admissible: request.admissible,
            prompt_tokens: response.prompt_tokens,
            cached_tokens: response.cached_tokens,
            gen_tokens: response.gen_tokens,
            prompt_ms: response.prompt_ms.round() as u64,
            gen_ms: response.gen_ms.round() as u64,
            intervention,
            info: self.env.info(),
        };
        self.history.push(Past {
            action,
            observation: step.observation.clone(),
        });
        self.steps.push(step.clone());
        (step, outcome)
    }

    /// The finished episode as the store keeps it; `last` is the outcome of its final step.
    pub fn record(&self, scenario: &Scenario, played: Played, last: Outcome) -> EpisodeRecord {
        EpisodeRecord {
            key: self.key.clone(),
            scenario_hash: scenario.hash.clone(),
            scenario_id: scenario.id.clone(),
            policy: played.policy,
            seed: played.seed,
            iteration: played.iteration,
            sampling: played.sampling,
            started_at_ms: self.started_at_ms,
            finished_at_ms: now_ms(),
            won: last.won,
            reward: f64::from(last.reward),
            wall_ms: self.started.elapsed().as_millis() as u64,
            steps: self.steps.clone(),
            branch: self.branch,
            stopped: self.stopped.clone(),
        }
    }
}

/// A digest of `request`'s messages, roles included.
fn prompt_hash(request: &Request) -> [u8; 32] {
    let mut hash = Sha256::new();
    for m in &request.messages {
        hash.update(m.role.as_str().as_bytes());
        hash.update([0]);
        hash.update(m.content.as_bytes());
        hash.update([0]);
    }
    hash.finalize().into()
}

/// Who played an episode and with which settings, as its record keeps them.
#[derive(Debug, Clone)]
pub struct Played {
    /// The policy's description.
    pub policy: String,
    pub seed: u64,
    pub iteration: Option<u32>,
    /// The sampling settings as JSON.
    pub sampling: serde_json::Value,
}

/// The privileged state as a line of the prompt, for a teacher acting alone.
pub fn privileged_hint(s: &Scenario) -> String {
    s.body.hint()
}

/// A fresh environment for `s`, ending after `horizon` steps instead of the scenario's own.
pub fn env_for(s: &Scenario, horizon: Option<u32>) -> Box<dyn Environment> {
    s.body.env(horizon.unwrap_or(s.horizon))
}

/// Plays every (scenario, episode) not yet in the store.
///
/// Each of the `parallel` slots plays one episode at a time. The policy answers by continuous
/// batching ([`Policy::serve`]): as soon as one slot's answer is ready, its environment steps and
/// its next prompt (or the first of its next episode) joins the batch while the other slots
/// keep generating.
pub fn rollout(
    policy: &mut dyn Policy,
    prompt: &Prompt,
    store: &mut Store,
    scenarios: &[Scenario],
    config: &RolloutConfig,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(RolloutEvent),
) -> Result<RolloutSummary, RolloutError> {
    let prefix = config.key_prefix();
    let finished = store.finished_keys(&prefix)?;
    let total = scenarios.len() * config.episodes;
    let mut pending: VecDeque<Pending> = VecDeque::new();
    for (i, s) in scenarios.iter().enumerate() {
        store.upsert_scenario(&s.hash, &s.id, s.kind().as_str(), s.split.as_str(), &s.json)?;
        for n in 0..config.episodes {
            let key = format!("{prefix}{}/{n}", s.id);
            if !finished.contains(&key) {
                pending.push_back(Pending {
                    scenario: i,
                    index: n,
                    key,
                });
            }
        }
    }
    let done = total - pending.len();
    on_event(RolloutEvent::Progress { done, total });
    if cancel.load(Ordering::Relaxed) {
        return Err(RolloutError::Cancelled);
    }
    let start = Instant::now();
    let mut driver = Driver {
        prompt,
        store,
        scenarios,
        config,
        cancel,
        on_event,
        pending,
        slots: (0..config.parallel.max(1)).map(|_| None).collect(),
        played: Played {
            policy: policy.describe(),
            seed: config.sampling.seed,
            iteration: config.iteration,
            sampling: serde_json::to_value(&config.sampling).unwrap_or_default(),
        },
        done,
        total,
        counts: Counts::default(),
        error: None,
    };
    let mut first = Vec::new();
    for slot in 0..driver.slots.len() {
        if let Some(request) = driver.next(slot)? {
            first.push(request);
        }
    }
    let served = match first.is_empty() {
        true => Ok(()),
        false => policy.serve(first, &config.sampling, &mut driver),
    };
    if let Some(e) = driver.error.take() {
        return Err(e);
    }
    served?;
    let counts = driver.counts;
    let elapsed = start.elapsed().as_secs_f64();
    let all: Summary = store.summary(&EpisodeFilter::prefix(prefix))?;
    let per_s = |n: u64| {
        if elapsed > 0.0 {
            n as f64 / elapsed
        } else {
            0.0
        }
    };
    Ok(RolloutSummary {
        episodes: all.episodes,
        success_rate: all.success_rate,
        mean_reward: all.mean_reward,
        mean_steps: all.mean_steps,
        invalid_action_rate: all.invalid_action_rate,
        gen_tokens_per_s: per_s(counts.gen_tokens),
        steps_per_s: per_s(counts.env_steps),
        played: counts.played,
        cached_share: if counts.prompt_tokens > 0 {
            counts.cached_tokens as f64 / counts.prompt_tokens as f64
        } else {
            0.0
        },
    })
}

/// An episode still to play.
struct Pending {
    scenario: usize,
    /// The episode's number among its scenario's.
    index: usize,
    key: String,
}

struct Active {
    scenario: usize,
    index: usize,
    playing: Playing,
}

/// What this invocation has played, for the summary.
#[derive(Default)]
struct Counts {
    env_steps: u64,
    gen_tokens: u64,
    prompt_tokens: u64,
    cached_tokens: u64,
    played: u64,
}

/// The rollout as the policy's [`Feed`]: each answer steps its slot's episode, and the slot's
/// next prompt is the episode's next step or the first of the next episode.
struct Driver<'a> {
    prompt: &'a Prompt,
    store: &'a mut Store,
    scenarios: &'a [Scenario],
    config: &'a RolloutConfig,
    cancel: &'a AtomicBool,
    on_event: &'a mut dyn FnMut(RolloutEvent),
    pending: VecDeque<Pending>,
    slots: Vec<Option<Active>>,
    /// Who plays; `seed` is the rollout's, each episode's adds its number.
    played: Played,
    done: usize,
    total: usize,
    counts: Counts,
    /// What stopped the rollout from inside [`Feed::answered`].
    error: Option<RolloutError>,
}

impl Driver<'_> {
    /// The next request of `slot`: its episode's next step, or the first of a new episode when
    /// the last one ended (a cycle ends it here). `None` once nothing is left to play.
    fn next(&mut self, slot: usize) -> Result<Option<Request>, RolloutError> {
        loop {
            if self.slots[slot].is_none() {
                let Some(p) = self.pending.pop_front() else {
                    return Ok(None);
                };
                let scenario = &self.scenarios[p.scenario];
                let env = env_for(scenario, self.config.horizon);
                (self.on_event)(RolloutEvent::EpisodeStarted {
                    slot,
                    key: p.key.clone(),
                    scenario_id: scenario.id.clone(),
                    task: env.task().to_string(),
                    observation: env.observation().to_string(),
                });
                self.slots[slot] = Some(Active {
                    scenario: p.scenario,
                    index: p.index,
                    playing: Playing {
                        hint: self.config.privileged.then(|| privileged_hint(scenario)),
                        ..Playing::new(p.key, scenario.kind(), env)
                    },
                });
            }
            let a = self.slots[slot].as_mut().expect("filled above");
            let mut request = a.playing.request(self.prompt, slot)?;
            if self.config.stops_cycles() && a.playing.repeats(&request) {
                let outcome = a.playing.stopped_outcome();
                self.finish(slot, outcome)?;
                continue;
            }
            let repeat = self.config.sampling.repeat_temperature;
            if repeat > 0.0 && a.playing.seen_before(&request) {
                request.temperature = Some(repeat);
            }
            // Each step of each episode has its own seed, whatever shares its batches: from
            // the episode's place among all the rollout's episodes, played or not.
            let order = (a.scenario * self.config.episodes + a.index) as u64;
            request.seed = Some(
                self.config
                    .sampling
                    .seed
                    .wrapping_add(order.wrapping_mul(1 << 20))
                    .wrapping_add(a.playing.steps.len() as u64),
            );
            return Ok(Some(request));
        }
    }

    /// Stores `slot`'s episode, over with `outcome`, and frees the slot.
    fn finish(&mut self, slot: usize, outcome: Outcome) -> Result<(), RolloutError> {
        let a = self.slots[slot].take().expect("an episode to finish");
        let played = Played {
            seed: self.played.seed.wrapping_add(a.index as u64),
            ..self.played.clone()
        };
        let record = a
            .playing
            .record(&self.scenarios[a.scenario], played, outcome);
        self.store.insert_episode(&record)?;
        self.counts.played += 1;
        self.done += 1;
        (self.on_event)(RolloutEvent::EpisodeFinished {
            slot,
            key: record.key,
            won: outcome.won,
            steps: record.steps.len(),
        });
        (self.on_event)(RolloutEvent::Progress {
            done: self.done,
            total: self.total,
        });
        Ok(())
    }

    /// Steps `request`'s episode with `response`; the slot's next request.
    fn step(
        &mut self,
        request: Request,
        response: Response,
    ) -> Result<Option<Request>, RolloutError> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(RolloutError::Cancelled);
        }
        let slot = request.seq;
        let a = self.slots[slot]
            .as_mut()
            .expect("an answer for a playing slot");
        let (step, outcome) = a.playing.advance(request, &response);
        let index = a.playing.steps.len() - 1;
        self.counts.env_steps += 1;
        self.counts.gen_tokens += u64::from(response.gen_tokens);
        self.counts.prompt_tokens += u64::from(response.prompt_tokens);
        self.counts.cached_tokens += u64::from(response.cached_tokens);
        (self.on_event)(RolloutEvent::StepFinished { slot, index, step });
        if outcome.done {
            self.finish(slot, outcome)?;
        }
        self.next(slot)
    }
}

impl Feed for Driver<'_> {
    fn token(&mut self, seq: usize, piece: &str) {
        (self.on_event)(RolloutEvent::Token {
            slot: seq,
            text: piece.to_string(),
        });
    }

    fn answered(&mut self, request: Request, response: Response) -> Next {
        match self.step(request, response) {
            Ok(Some(next)) => Next::Ask(next),
            Ok(None) => Next::Done,
            Err(e) => {
                self.error = Some(e);
                Next::Stop
            }
        }
    }
}

/// What a finished rollout job gives back: the summary and the policy, its model still loaded.
pub type RolloutOutcome = Result<(RolloutSummary, Box<dyn Policy>), RolloutError>;

/// A rollout running on its own thread.
pub struct RolloutJob {
    /// Everything the rollout reports, in order; closed when it ends.
    pub events: std::sync::mpsc::Receiver<RolloutEvent>,
    /// Set to stop the rollout after the current step (finished episodes stay stored).
    pub cancel: std::sync::Arc<AtomicBool>,
    handle: std::thread::JoinHandle<RolloutOutcome>,
}

impl RolloutJob {
    /// Waits for the end; gives back the policy (its model stays loaded) with the summary.
    pub fn join(self) -> RolloutOutcome {
        self.handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// Runs [`rollout`] off the caller's thread: generation, environment steps and database writes
/// happen on a worker that streams [`RolloutEvent`]s back.
pub fn spawn(
    mut policy: Box<dyn Policy>,
    prompt: Prompt,
    run_dir: std::path::PathBuf,
    scenarios: Vec<Scenario>,
    config: RolloutConfig,
) -> RolloutJob {
    let (tx, events) = std::sync::mpsc::channel();
    let cancel = std::sync::Arc::new(AtomicBool::new(false));
    let stop = cancel.clone();
    let handle = std::thread::spawn(move || {
        let mut store = Store::open(&run_dir)?;
        let summary = rollout(
            policy.as_mut(),
            &prompt,
            &mut store,
            &scenarios,
            &config,
            &stop,
            &mut |e| {
                let _ = tx.send(e);
            },
        )?;
        Ok((summary, policy))
    });
    RolloutJob {
        events,
        cancel,
        handle,
    }
}
