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
use crate::agent::{Policy, PolicyError, Request, Response, Sampling};
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
    /// Generated tokens per second of generation time, this invocation.
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
    /// as it is, marks included. `None` when the environment does not answer as recorded.
    pub fn replay(&mut self, step: StepRecord) -> Option<Outcome> {
        let outcome = self.env.step(&step.action);
        if self.env.observation() != step.observation {
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

struct Active {
    scenario: usize,
    index: usize,
    playing: Playing,
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
    let mut pending: VecDeque<(usize, usize, String)> = VecDeque::new();
    for (i, s) in scenarios.iter().enumerate() {
        store.upsert_scenario(&s.hash, &s.id, s.kind().as_str(), s.split.as_str(), &s.json)?;
        for n in 0..config.episodes {
            let key = format!("{prefix}{}/{n}", s.id);
            if !finished.contains(&key) {
                pending.push_back((i, n, key));
            }
        }
    }
    let mut done = total - pending.len();
    on_event(RolloutEvent::Progress { done, total });

    let start = Instant::now();
    let (
        mut env_steps,
        mut gen_tokens,
        mut gen_ms,
        mut prompt_tokens,
        mut cached_tokens,
        mut played_now,
    ) = (0u64, 0u64, 0f64, 0u64, 0u64, 0u64);
    let mut slots: Vec<Option<Active>> = (0..config.parallel.max(1)).map(|_| None).collect();
    let describe = policy.describe();
    let sampling_json = serde_json::to_value(&config.sampling).unwrap_or_default();
    let played = |index: usize| Played {
        policy: describe.clone(),
        seed: config.sampling.seed.wrapping_add(index as u64),
        iteration: config.iteration,
        sampling: sampling_json.clone(),
    };
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(RolloutError::Cancelled);
        }
        for (slot, a) in slots.iter_mut().enumerate() {
            if a.is_none()
                && let Some((scenario, index, key)) = pending.pop_front()
            {
                policy.release(slot);
                let env = env_for(&scenarios[scenario], config.horizon);
                on_event(RolloutEvent::EpisodeStarted {
                    slot,
                    key: key.clone(),
                    scenario_id: scenarios[scenario].id.clone(),
                    task: env.task().to_string(),
                    observation: env.observation().to_string(),
                });
                *a = Some(Active {
                    scenario,
                    index,
                    playing: Playing {
                        hint: config
                            .privileged
                            .then(|| privileged_hint(&scenarios[scenario])),
                        ..Playing::new(key, scenarios[scenario].kind(), env)
                    },
                });
            }
        }
        let occupied: Vec<usize> = (0..slots.len()).filter(|&i| slots[i].is_some()).collect();
        if occupied.is_empty() {
            break;
        }
        let mut live = Vec::with_capacity(occupied.len());
        let mut requests = Vec::with_capacity(occupied.len());
        // Episodes over, by slot, with their last outcome: stopped in a cycle, or done.
        let mut ended = Vec::new();
        for slot in occupied {
            let a = slots[slot].as_mut().expect("occupied");
            let mut request = a.playing.request(prompt, slot)?;
            if config.stops_cycles() && a.playing.repeats(&request) {
                ended.push((slot, a.playing.stopped_outcome()));
                continue;
            }
            let repeat = config.sampling.repeat_temperature;
            if repeat > 0.0 && a.playing.seen_before(&request) {
                request.temperature = Some(repeat);
            }
            live.push(slot);
            requests.push(request);
        }
        let mut sampling = config.sampling.clone();
        sampling.seed = config.sampling.seed.wrapping_add(env_steps);
        let responses = match live.is_empty() {
            true => Vec::new(),
            false => policy.respond(&requests, &sampling, &mut |i, text| {
                on_event(RolloutEvent::Token {
                    slot: live[i],
                    text: text.to_string(),
                });
            })?,
        };
        // The batch shares one generation time.
        gen_ms += responses.first().map_or(0.0, |r| r.gen_ms);
        for ((&slot, request), response) in live.iter().zip(requests).zip(responses) {
            let a = slots[slot].as_mut().expect("live");
            let (step, outcome) = a.playing.advance(request, &response);
            env_steps += 1;
            gen_tokens += u64::from(response.gen_tokens);
            prompt_tokens += u64::from(response.prompt_tokens);
            cached_tokens += u64::from(response.cached_tokens);
            on_event(RolloutEvent::StepFinished {
                slot,
                index: a.playing.steps.len() - 1,
                step,
            });
            if outcome.done {
                ended.push((slot, outcome));
            }
        }
        for (slot, outcome) in ended {
            let a = slots[slot].take().expect("ended");
            let record = a
                .playing
                .record(&scenarios[a.scenario], played(a.index), outcome);
            store.insert_episode(&record)?;
            played_now += 1;
            done += 1;
            on_event(RolloutEvent::EpisodeFinished {
                slot,
                key: record.key,
                won: outcome.won,
                steps: record.steps.len(),
            });
            on_event(RolloutEvent::Progress { done, total });
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let all: Summary = store.summary(&EpisodeFilter::prefix(prefix))?;
    Ok(RolloutSummary {
        episodes: all.episodes,
        success_rate: all.success_rate,
        mean_reward: all.mean_reward,
        mean_steps: all.mean_steps,
        invalid_action_rate: all.invalid_action_rate,
        gen_tokens_per_s: if gen_ms > 0.0 {
            gen_tokens as f64 / (gen_ms / 1e3)
        } else {
            0.0
        },
        steps_per_s: if elapsed > 0.0 {
            env_steps as f64 / elapsed
        } else {
            0.0
        },
        played: played_now,
        cached_share: if prompt_tokens > 0 {
            cached_tokens as f64 / prompt_tokens as f64
        } else {
            0.0
        },
    })
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
