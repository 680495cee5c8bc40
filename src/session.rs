//! A live episode: one scenario played step by step on a worker thread, for the workbench (and
//! anything else that wants to watch a student act one step at a time).
//!
//! The worker owns the student (a [`Policy`]) and the episode; the caller sends [`Command`]s and
//! receives [`SessionEvent`]s through a callback: tokens as they are generated, each finished
//! step, and the finished episode once it is stored. Steps are built by the same
//! [`Playing`] the batch rollout uses, and a finished episode goes to the run store in one
//! transaction under the key `tui/<scenario>/<n>`.
//!
//! Someone other than the student can choose a step's action: [`Command::Intervene`] replaces
//! step t's action with theirs by rebuilding the environment from the first t steps (the
//! environments are deterministic) and taking it there, marked with who chose it; play goes on
//! from there. On an episode already over (and stored) it starts a branch instead:
//! [`Command::Branch`] plays a stored episode's first steps again into a new live episode that
//! records where it came from.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;

use crate::agent::local::{LocalConfig, LocalPolicy};
use crate::agent::prompt::Prompt;
use crate::agent::remote::{RemoteConfig, RemotePolicy};
use crate::agent::{Policy, PolicyError, Sampling};
use crate::env::{Outcome, command};
use crate::rollout::{Played, Playing, env_for};
use crate::scenario::Scenario;
use crate::store::{Branch, EpisodeRecord, StepRecord, Store, StoreError};

/// Key prefix of the episodes a session stores.
pub const KEY_PREFIX: &str = "tui/";

/// A live episode's `steps` so far as a teacher reads them (see
/// [`crate::teacher::Teacher::correct_step`]), under the key prefix its finished episode will
/// be stored under.
pub fn partial(scenario: &Scenario, seed: u64, steps: &[StepRecord]) -> EpisodeRecord {
    EpisodeRecord {
        key: format!("{KEY_PREFIX}{}/", scenario.id),
        scenario_hash: scenario.hash.clone(),
        scenario_id: scenario.id.clone(),
        policy: String::new(),
        seed,
        iteration: None,
        sampling: serde_json::Value::Null,
        started_at_ms: 0,
        finished_at_ms: 0,
        won: false,
        reward: 0.0,
        wall_ms: 0,
        steps: steps.to_vec(),
        branch: None,
        stopped: None,
    }
}

/// The student to load: built on the worker, so a slow model load never blocks the caller.
pub enum Student {
    /// A GGUF model (and adapters) through llama.cpp.
    Local(LocalConfig),
    /// An OpenAI-compatible chat-completions server.
    Remote(RemoteConfig),
    /// A policy built by the caller.
    Ready(Box<dyn Policy>),
}

impl Student {
    /// What is being loaded, for a progress message.
    pub fn label(&self) -> String {
        match self {
            Student::Local(c) => {
                let mut text = file_name(&c.model);
                for (path, scale) in &c.adapters {
                    text.push_str(&format!(" + {}@{scale}", file_name(path)));
                }
                text
            }
            Student::Remote(c) => format!("{} at {}", c.model, c.base_url),
            Student::Ready(p) => p.describe(),
        }
    }

    fn load(self) -> Result<Box<dyn Policy>, PolicyError> {
        Ok(match self {
            Student::Local(config) => Box::new(LocalPolicy::load(&config)?),
            Student::Remote(config) => Box::new(RemotePolicy::new(config)),
            Student::Ready(policy) => policy,
        })
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// How a session plays.
#[derive(Debug, Clone, Default)]
pub struct SessionConfig {
    /// Sampling; each step uses `seed + step index` from the episode's seed.
    pub sampling: Sampling,
    /// Steps before an episode ends, instead of the scenario's own horizon.
    pub horizon: Option<u32>,
    /// The LEAP iteration the student comes from, recorded with each episode.
    pub iteration: Option<u32>,
}

/// What the caller asks of a session.
pub enum Command {
    /// Replace the student (another model, another adapter); the old one stays on failure.
    Load(Student),
    /// Start a fresh episode of `scenario`, dropping the unfinished one, if any.
    Reset { scenario: Box<Scenario>, seed: u64 },
    /// Play one step.
    Step,
    /// Play steps until the episode ends or `Pause` comes.
    Run,
    /// Stop running after the current step.
    Pause,
    /// Sets the iteration recorded with the episodes that finish from now on.
    SetIteration(Option<u32>),
    /// Replaces step `at`'s action (`at` = the steps so far: the next one) with `action`,
    /// chosen by `by` (`teacher:oracle@0.5`, `researcher:<user>@workbench`): the first `at`
    /// steps are replayed, `action` is taken and recorded as an intervention, and play goes on
    /// from there. On an episode that is over and stored, this plays a branch of it.
    Intervene {
        at: usize,
        reason: Option<String>,
        action: String,
        by: String,
    },
    /// Starts a new live episode from stored episode `episode`'s first `at` steps (copied as
    /// they were, intervention marks included), recorded as its branch; play goes on from step
    /// `at` with the student (or an intervention).
    Branch { episode: i64, at: usize },
}

/// What a session reports, in order.
#[derive(Debug, Clone)]
pub enum SessionEvent {
    Loading {
        what: String,
    },
    Loaded {
        policy: String,
    },
    Started {
        scenario_id: String,
        seed: u64,
        task: String,
        observation: String,
        horizon: u32,
        /// Where a branch comes from; `None` for a fresh episode.
        branch: Option<Branch>,
    },
    /// The episode was rebuilt from these steps (a branch's first steps, or those before an
    /// intervention): they replace every step reported so far.
    Replayed {
        steps: Vec<StepRecord>,
    },
    /// Step `index` is being generated.
    Generating {
        index: usize,
    },
    /// Text generated for the step in progress.
    Token {
        text: String,
    },
    StepFinished {
        index: usize,
        step: Box<StepRecord>,
    },
    /// The episode ended and is in the run store as `episode_id`.
    Finished {
        episode_id: i64,
        key: String,
        won: bool,
        steps: usize,
    },
    /// Running stopped (paused, finished, or an error).
    Idle,
    /// Something failed; the session goes on (the old student, the same episode).
    Error {
        message: String,
    },
}

/// A live session on its worker thread. Dropping it stops the worker after the current step.
pub struct Session {
    commands: Option<Sender<Command>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Session {
    /// Starts the worker: it opens (or creates) the run store in `run_dir` and waits for
    /// commands. Every event goes to `on_event`, called on the worker thread.
    pub fn spawn(
        run_dir: PathBuf,
        prompt: Prompt,
        config: SessionConfig,
        on_event: Box<dyn FnMut(SessionEvent) + Send>,
    ) -> Session {
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            run_dir,
            store: None,
            prompt,
            config,
            policy: None,
            episode: None,
            stop: stop.clone(),
            on_event,
        };
        let handle = std::thread::Builder::new()
            .name("leap-session".into())
            .spawn(move || worker.run(rx))
            .expect("a thread starts");
        Session {
            commands: Some(tx),
            stop,
            handle: Some(handle),
        }
    }

    /// Queues a command; false when the worker has ended.
    pub fn send(&self, command: Command) -> bool {
        if matches!(command, Command::Pause) {
            // Seen between two steps even when the queue is not read yet.
            self.stop.store(true, Ordering::Relaxed);
        }
        self.commands
            .as_ref()
            .is_some_and(|tx| tx.send(command).is_ok())
    }

    /// Stops the worker after the current step and waits for it.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.commands = None; // the worker sees the channel close
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

struct Live {
    scenario: Box<Scenario>,
    seed: u64,
    playing: Playing,
    last: Option<Outcome>,
    /// The id it was stored under, once over.
    stored: Option<i64>,
}

struct Worker {
    run_dir: PathBuf,
    store: Option<Store>,
    prompt: Prompt,
    config: SessionConfig,
    policy: Option<Box<dyn Policy>>,
    episode: Option<Live>,
    stop: Arc<AtomicBool>,
    on_event: Box<dyn FnMut(SessionEvent) + Send>,
}

impl Worker {
    fn run(mut self, rx: Receiver<Command>) {
        let mut running = false;
        loop {
            let command = if running {
                match rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return,
                }
            } else {
                match rx.recv() {
                    Ok(c) => Some(c),
                    Err(_) => return,
                }
            };
            match command {
                Some(Command::Load(student)) => self.load(student),
                Some(Command::Reset { scenario, seed }) => {
                    running = false;
                    self.reset(scenario, seed);
                }
                Some(Command::Step) => {
                    running = false;
                    self.stop.store(false, Ordering::Relaxed);
                    self.step();
                    self.emit(SessionEvent::Idle);
                }
                Some(Command::Run) => {
                    self.stop.store(false, Ordering::Relaxed);
                    running = true;
                }
                Some(Command::Pause) if running => {
                    running = false;
                    self.emit(SessionEvent::Idle);
                }
                Some(Command::SetIteration(i)) => self.config.iteration = i,
                Some(Command::Intervene {
                    at,
                    reason,
                    action,
                    by,
                }) => {
                    running = false;
                    self.intervene(at, reason, action, by);
                    self.emit(SessionEvent::Idle);
                }
                Some(Command::Branch { episode, at }) => {
                    running = false;
                    self.branch(episode, at);
                    self.emit(SessionEvent::Idle);
                }
                Some(Command::Pause) | None => {}
            }
            if running {
                if self.stop.load(Ordering::Relaxed) {
                    running = false;
                    self.emit(SessionEvent::Idle);
                    continue;
                }
                let more = self.step();
                if !more {
                    running = false;
                    self.emit(SessionEvent::Idle);
                }
            }
        }
    }

    fn emit(&mut self, event: SessionEvent) {
        (self.on_event)(event);
    }

    fn error(&mut self, message: impl Into<String>) {
        let message = message.into();
        self.emit(SessionEvent::Error { message });
    }

    fn load(&mut self, student: Student) {
        let what = student.label();
        self.emit(SessionEvent::Loading { what: what.clone() });
        match student.load() {
            Ok(policy) => {
                let description = policy.describe();
                self.policy = Some(policy);
                self.emit(SessionEvent::Loaded {
                    policy: description,
                });
            }
            Err(e) => self.error(format!("cannot load {what}: {e}")),
        }
    }

    fn reset(&mut self, scenario: Box<Scenario>, seed: u64) {
        self.start(scenario, seed, None);
    }

    /// A fresh live episode of `scenario`, reported as started.
    fn start(&mut self, scenario: Box<Scenario>, seed: u64, branch: Option<Branch>) {
        if let Some(policy) = self.policy.as_mut() {
            policy.release(0);
        }
        let env = env_for(&scenario, self.config.horizon);
        let horizon = self.config.horizon.unwrap_or(scenario.horizon);
        let started = SessionEvent::Started {
            scenario_id: scenario.id.clone(),
            seed,
            task: env.task().to_string(),
            observation: env.observation().to_string(),
            horizon,
            branch,
        };
        let key = format!("{KEY_PREFIX}{}/", scenario.id);
        let mut playing = Playing::new(key, scenario.kind(), env);
        playing.branch = branch;
        self.episode = Some(Live {
            scenario,
            seed,
            playing,
            last: None,
            stored: None,
        });
        self.emit(started);
    }

    /// Plays `steps` again in the live episode (fresh from [`Worker::start`]) and reports them;
    /// false (with the error reported) when the environment does not answer as recorded or
    /// the episode ends before the last of them.
    fn replay(&mut self, steps: Vec<StepRecord>) -> bool {
        let live = self.episode.as_mut().expect("an episode is live");
        let n = steps.len();
        for (i, step) in steps.into_iter().enumerate() {
            match live.playing.replay(step) {
                Some(outcome) if !outcome.done || i + 1 == n => live.last = Some(outcome),
                Some(_) => {
                    let message = format!(
                        "step {} ends the episode here (horizon {}): nothing to play after it",
                        i + 1,
                        live.playing.env.steps_taken()
                    );
                    self.error(message);
                    return false;
                }
                None => {
                    let message = format!(
                        "step {} does not replay in scenario {} (was the scenario edited since?)",
                        i + 1,
                        live.scenario.id
                    );
                    self.error(message);
                    return false;
                }
            }
        }
        let steps = live.playing.steps.clone();
        self.emit(SessionEvent::Replayed { steps });
        true
    }

    /// Step `at` chosen by `by`: see [`Command::Intervene`].
    fn intervene(&mut self, at: usize, reason: Option<String>, action: String, by: String) {
        let Some(live) = self.episode.as_ref() else {
            return self.error("no episode: choose a scenario first");
        };
        let len = live.playing.steps.len();
        if at > len {
            return self.error(format!("no step {} yet: the episode has {len}", at + 1));
        }
        let over = live.last.is_some_and(|o| o.done);
        if over && at == len {
            return self.error("the episode is over: reset for a new one");
        }
        if over || at < len {
            let (scenario, seed) = (live.scenario.clone(), live.seed);
            let branch = match live.stored {
                Some(from) => Some(Branch {
                    from,
                    at: at as u32,
                }),
                None => live.playing.branch,
            };
            let before = live.playing.steps[..at].to_vec();
            self.start(scenario, seed, branch);
            if !self.replay(before) {
                return;
            }
        }
        let live = self.episode.as_mut().expect("an episode is live");
        let request = match live.playing.request(&self.prompt, 0) {
            Ok(r) => r,
            Err(e) => return self.error(format!("prompt: {e}")),
        };
        if !request.admissible.is_empty() && command::admits(&request.admissible, &action).is_none()
        {
            return self.error(format!(
                "{action:?} is not one of the admissible commands at step {}",
                at + 1
            ));
        }
        let reason = reason.filter(|r| !r.trim().is_empty());
        let (step, outcome) = live.playing.intervene(request, reason, action, by);
        live.last = Some(outcome);
        self.emit(SessionEvent::StepFinished {
            index: at,
            step: Box::new(step),
        });
        if outcome.done {
            self.finish(outcome);
        }
    }

    /// A branch of stored episode `id` at step `at`: see [`Command::Branch`].
    fn branch(&mut self, id: i64, at: usize) {
        let (scenario, episode) = match self.stored_episode(id) {
            Ok(found) => found,
            Err(message) => return self.error(message),
        };
        let len = episode.record.steps.len();
        if at >= len {
            return self.error(format!(
                "episode {id} has {len} steps: branch at one of steps 1 to {len}"
            ));
        }
        let branch = Branch {
            from: id,
            at: at as u32,
        };
        let mut steps = episode.record.steps;
        steps.truncate(at);
        self.start(Box::new(scenario), episode.record.seed, Some(branch));
        self.replay(steps);
    }

    /// Stored episode `id` and the scenario it was played in, from the run's snapshot.
    fn stored_episode(&mut self, id: i64) -> Result<(Scenario, crate::store::Episode), String> {
        let reading = |e: StoreError| format!("reading episode {id}: {e}");
        if self.store.is_none() {
            self.store = Some(Store::open(&self.run_dir).map_err(reading)?);
        }
        let store = self.store.as_ref().expect("opened above");
        let episode = store
            .episode(id)
            .map_err(reading)?
            .ok_or_else(|| format!("no episode {id} in this run"))?;
        let hash = &episode.record.scenario_hash;
        let snapshot = store
            .scenario(hash)
            .map_err(reading)?
            .ok_or_else(|| format!("episode {id}: no snapshot of its scenario {hash}"))?;
        let name = format!(
            "{}: scenario {}",
            store.path().display(),
            snapshot.scenario_id
        );
        let scenario =
            crate::scenario::from_snapshot(&name, &snapshot.json).map_err(|problems| {
                format!("episode {id}: its scenario snapshot does not load: {problems}")
            })?;
        Ok((scenario, episode))
    }

    /// Plays one step; false when nothing more can be played (done, or an error).
    fn step(&mut self) -> bool {
        let Some(live) = self.episode.as_ref() else {
            self.error("no episode: choose a scenario first");
            return false;
        };
        if live.last.is_some_and(|o| o.done) {
            self.error("the episode is over: reset for a new one");
            return false;
        }
        if self.policy.is_none() {
            self.error("no student loaded");
            return false;
        }
        let index = live.playing.steps.len();
        let request = match live.playing.request(&self.prompt, 0) {
            Ok(r) => r,
            Err(e) => {
                self.error(format!("prompt: {e}"));
                return false;
            }
        };
        let mut sampling = self.config.sampling.clone();
        sampling.seed = live.seed.wrapping_add(index as u64);
        self.emit(SessionEvent::Generating { index });
        let on_event = &mut self.on_event;
        let policy = self.policy.as_mut().expect("checked above");
        let result = policy.respond(std::slice::from_ref(&request), &sampling, &mut |_, text| {
            on_event(SessionEvent::Token {
                text: text.to_string(),
            })
        });
        let response = match result {
            Ok(mut r) if !r.is_empty() => r.swap_remove(0),
            Ok(_) => {
                self.error("the student answered nothing");
                return false;
            }
            Err(e) => {
                self.error(format!("student: {e}"));
                return false;
            }
        };
        let live = self.episode.as_mut().expect("checked above");
        let (step, outcome) = live.playing.advance(request, &response);
        live.last = Some(outcome);
        self.emit(SessionEvent::StepFinished {
            index,
            step: Box::new(step),
        });
        if outcome.done {
            return self.finish(outcome);
        }
        true
    }

    /// Stores the finished episode under the next free key; false (the episode is over either
    /// way).
    fn finish(&mut self, outcome: Outcome) -> bool {
        match self.store_episode(outcome) {
            Ok((episode_id, key, steps)) => {
                if let Some(live) = self.episode.as_mut() {
                    live.stored = Some(episode_id);
                }
                self.emit(SessionEvent::Finished {
                    episode_id,
                    key,
                    won: outcome.won,
                    steps,
                })
            }
            Err(e) => self.error(format!("storing the episode: {e}")),
        }
        false
    }

    fn store_episode(&mut self, outcome: Outcome) -> Result<(i64, String, usize), StoreError> {
        let policy = self
            .policy
            .as_ref()
            .map_or_else(String::new, |p| p.describe());
        let (seed, iteration) = (
            self.episode.as_ref().map_or(0, |l| l.seed),
            self.config.iteration,
        );
        let sampling = serde_json::to_value(&self.config.sampling).unwrap_or_default();
        if self.store.is_none() {
            self.store = Some(Store::open(&self.run_dir)?);
        }
        let store = self.store.as_mut().expect("opened above");
        let live = self.episode.as_ref().expect("an episode is live");
        let s = &live.scenario;
        store.upsert_scenario(&s.hash, &s.id, s.kind().as_str(), s.split.as_str(), &s.json)?;
        let prefix = live.playing.key.clone();
        let taken = store.finished_keys(&prefix)?;
        let played = Played {
            policy,
            seed,
            iteration,
            sampling,
        };
        let mut record = live.playing.record(s, played, outcome);
        // Another workbench on the same run may take a key between our read and our write.
        for n in 0.. {
            let key = format!("{prefix}{n}");
            if taken.contains(&key) {
                continue;
            }
            record.key = key.clone();
            if let Some(id) = store.insert_episode(&record)? {
                return Ok((id, key, record.steps.len()));
            }
        }
        unreachable!("some key is free")
    }
}
