//! A live episode: one scenario played step by step on a worker thread, for the workbench (and
//! anything else that wants to watch a student act one step at a time).
//!
//! The worker owns the student (a [`Policy`]) and the episode; the caller sends [`Command`]s and
//! receives [`SessionEvent`]s through a callback: tokens as they are generated, each finished
//! step, and the finished episode once it is stored. Steps are built by the same
//! [`Playing`] the batch rollout uses, and a finished episode goes to the run store in one
//! transaction under the key `tui/<scenario>/<n>`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;

use crate::agent::local::{LocalConfig, LocalPolicy};
use crate::agent::prompt::Prompt;
use crate::agent::remote::{RemoteConfig, RemotePolicy};
use crate::agent::{Policy, PolicyError, Sampling};
use crate::env::Outcome;
use crate::rollout::{Played, Playing, env_for};
use crate::scenario::Scenario;
use crate::store::{StepRecord, Store, StoreError};

/// Key prefix of the episodes a session stores.
pub const KEY_PREFIX: &str = "tui/";

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
        };
        let key = format!("{KEY_PREFIX}{}/", scenario.id);
        self.episode = Some(Live {
            scenario,
            seed,
            playing: Playing::new(key, env),
            last: None,
        });
        self.emit(started);
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
            Ok((episode_id, key, steps)) => self.emit(SessionEvent::Finished {
                episode_id,
                key,
                won: outcome.won,
                steps,
            }),
            Err(e) => self.error(format!("storing the episode: {e}")),
        }
        false
    }

    fn store_episode(&mut self, outcome: Outcome) -> Result<(i64, String, usize), StoreError> {
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
            policy: self
                .policy
                .as_ref()
                .map_or_else(String::new, |p| p.describe()),
            seed: live.seed,
            iteration: self.config.iteration,
            sampling: serde_json::to_value(&self.config.sampling).unwrap_or_default(),
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
