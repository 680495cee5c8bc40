//! External environments: any environment that runs as an OpenEnv server (another process, any
//! language) is stepped, corrected, trained on and evaluated like the built-in kinds. leap is the
//! client: a scenario names the server (a URL, a command, or one of the adapters shipped in
//! `assets/envs/`) and the reset arguments; every episode opens its own session.
//!
//! What an observation holds follows leap's convention (`protocol.rs`, the README's "External
//! environments"): the student's text and task, the admissible commands if the engine knows
//! them, and what only the teacher may see, the privileged state and the privileged expert's
//! next action. Nothing here knows any particular environment.
//!
//! A server that cannot start, dies, stalls or answers outside the protocol ends that episode
//! with reward 0 and one clear line as its last observation (also in the step's info); other
//! episodes go on, and the next one starts the server again.

pub mod client;
pub mod kind;
pub mod leak;
pub mod prompt;
pub mod protocol;
pub mod scenario;
pub mod server;

use std::sync::Arc;

use minijinja::context;
use minijinja::value::Serde;

use crate::env::{Advice, Environment, Fact, Guided, Outcome, Privileged, command};
use client::Session;
use protocol::{Observation, Step};
use server::Spec;

/// What an episode starts from: the server and the reset's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub server: Spec,
    pub reset: serde_json::Map<String, serde_json::Value>,
}

/// One episode in an external environment; the expert is the environment's own, so the same
/// type is both the plain and the guided episode.
pub struct ExternalEnv {
    start: Arc<Start>,
    horizon: u32,
    session: Option<Session>,
    /// The last answer, or the line that ended the episode.
    last: Result<Step, String>,
    /// The task as the server gave it (the scenario's until it has).
    task: String,
    steps: u32,
    done: bool,
    won: bool,
    /// Every observation after an action, for the teacher's prompt.
    observations: Vec<String>,
}

impl ExternalEnv {
    /// Starts the server if needed, opens a session and resets it; `task` is the scenario's,
    /// shown until the server gives its own. A failure leaves an episode that is over, with the
    /// failure as its observation.
    pub fn new(start: Arc<Start>, horizon: u32, task: &str) -> ExternalEnv {
        let mut env = ExternalEnv {
            start,
            horizon,
            session: None,
            last: Err(String::new()),
            task: task.to_string(),
            steps: 0,
            done: false,
            won: false,
            observations: Vec::new(),
        };
        env.begin();
        env
    }

    /// The line that ended the episode, if the environment failed.
    pub fn failure(&self) -> Option<&str> {
        self.last.as_ref().err().map(String::as_str)
    }

    /// The last observation as the server sent it.
    pub fn last(&self) -> Option<&Observation> {
        self.last.as_ref().ok().map(|s| &s.observation)
    }

    fn begin(&mut self) {
        self.steps = 0;
        self.done = false;
        self.won = false;
        self.observations.clear();
        let result = self.open().and_then(|session| {
            self.session = Some(session);
            self.request(protocol::reset(&self.start.reset))
        });
        self.settle(result);
    }

    /// Sends `message` on the episode's session. A failure says why the server died, if it has
    /// (a failure to start one already says so).
    fn request(&mut self, message: String) -> Result<Step, String> {
        let session = self.session.as_mut().ok_or("the session is gone")?;
        session
            .request(message)
            .map_err(|line| match server::get_running(&self.start.server) {
                Some(server) => explain(&server, line),
                None => line,
            })
    }

    /// A new session, on a running server (started if need be).
    fn open(&mut self) -> Result<Session, String> {
        if let Some(old) = self.session.take() {
            old.close();
        }
        let server = server::get(&self.start.server)?;
        Session::open(&server.ws_url(), self.start.server.step)
    }

    /// Takes the answer (or the failure) as the episode's state.
    fn settle(&mut self, result: Result<Step, String>) {
        match result {
            Ok(mut step) => {
                // Sorted once here: every prompt, grammar and check reads them.
                if let Some(list) = step.observation.admissible_actions.as_mut() {
                    list.sort();
                    list.dedup();
                }
                self.task.clone_from(&step.observation.task);
                self.won = step
                    .observation
                    .won
                    .unwrap_or(step.done && step.reward >= 1.0);
                self.done = step.done;
                self.last = Ok(step);
            }
            Err(line) => {
                self.session = None;
                self.done = true;
                self.won = false;
                self.last = Err(format!("leap: {line}"));
            }
        }
    }

    fn reward(&self) -> f32 {
        self.last.as_ref().map_or(0.0, |s| s.reward)
    }

    fn privileged_state(&self) -> Option<&protocol::PrivilegedState> {
        self.last().and_then(|o| o.privileged.as_ref())
    }
}

/// How long a failed episode waits to see whether its server is dying.
const DYING: std::time::Duration = std::time::Duration::from_secs(2);

/// `line`, with why the server died when it has.
fn explain(server: &server::Server, line: String) -> String {
    match server.death_within(DYING) {
        Some(death) => format!("{line}: {death}"),
        None => line,
    }
}

impl Drop for ExternalEnv {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            session.close();
        }
    }
}

impl Environment for ExternalEnv {
    fn task(&self) -> &str {
        &self.task
    }

    fn observation(&self) -> &str {
        match &self.last {
            Ok(step) => &step.observation.text,
            Err(line) => line,
        }
    }

    fn step(&mut self, action: &str) -> Outcome {
        if self.done {
            return Outcome {
                reward: self.reward(),
                done: true,
                won: self.won,
            };
        }
        self.steps += 1;
        let result = self.request(protocol::step(action));
        self.settle(result);
        self.observations.push(self.observation().to_string());
        if self.steps >= self.horizon {
            self.done = true;
        }
        Outcome {
            reward: self.reward(),
            done: self.done,
            won: self.won,
        }
    }

    /// The server's admissible commands, or free text (one hole) when it gives none.
    fn admissible(&self) -> Vec<String> {
        match self.last().and_then(|o| o.admissible_actions.as_ref()) {
            Some(list) => list.clone(),
            None => vec![command::HOLE.to_string()],
        }
    }

    fn steps_taken(&self) -> u32 {
        self.steps
    }

    fn reset(&mut self) {
        // On the same session; a broken one (its error goes unread) gets a new one.
        let again = self
            .session
            .as_mut()
            .map(|s| s.request(protocol::reset(&self.start.reset)));
        match again {
            Some(Ok(step)) => {
                self.steps = 0;
                self.observations.clear();
                self.settle(Ok(step));
            }
            _ => self.begin(),
        }
    }

    /// The step's `info` as the server sent it, or `{"error": line}` when the environment failed.
    fn info(&self) -> Option<serde_json::Value> {
        match &self.last {
            Ok(step) => step.observation.info.clone(),
            Err(line) => Some(serde_json::json!({ "error": line })),
        }
    }
}

impl Guided for ExternalEnv {
    fn won(&self) -> bool {
        self.won
    }

    /// The environment's expert (`expert_action`) when `privileged`; an external environment has
    /// no expert that uses only what the student observed, so otherwise none.
    fn advise(&self, privileged: bool) -> Option<Advice> {
        if self.done || !privileged {
            return None;
        }
        let expert = self.last()?.expert_action.as_ref()?;
        let action = expert.action().trim().to_string();
        if action.is_empty() {
            return None;
        }
        let reason = match expert.reason() {
            Some(reason) if !reason.trim().is_empty() => reason.trim().to_string(),
            _ => format!("The next step toward the task is to {action}."),
        };
        Some(Advice {
            action,
            reason,
            privileged: true,
        })
    }

    fn plan(&self) -> Option<Vec<String>> {
        if self.done {
            return self.won.then(Vec::new);
        }
        self.privileged_state().and_then(|p| p.plan.clone())
    }

    /// The environment's named facts; its privileged text is one more fact when it adds to them.
    fn privileged(&self) -> Privileged {
        let mut facts = Vec::new();
        if let Some(p) = self.privileged_state() {
            facts.extend(p.facts.iter().map(|f| Fact {
                subject: f.name.clone(),
                relation: "is".to_string(),
                detail: f.value.clone(),
            }));
            if facts.is_empty() && !p.text.trim().is_empty() {
                facts.push(Fact {
                    subject: leak::TEXT.to_string(),
                    relation: "is".to_string(),
                    detail: p.text.trim().to_string(),
                });
            }
        }
        Privileged {
            facts,
            plan: self.plan(),
        }
    }

    /// `privileged` (the environment's privileged text now), `facts` (name, value pairs),
    /// `expert` (its next action, or none), `plan`, `outputs` (every observation so far) and
    /// `admissible`.
    fn teacher_vars(&self, _hidden: &Privileged) -> minijinja::Value {
        let hidden = self.privileged_state();
        let facts: Vec<(&str, &str)> = hidden
            .map(|p| {
                p.facts
                    .iter()
                    .map(|f| (f.name.as_str(), f.value.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        let expert = self
            .last()
            .and_then(|o| o.expert_action.as_ref())
            .map(|e| e.action().to_string());
        context! {
            privileged => hidden.map(|p| p.text.as_str()).unwrap_or(""),
            facts => Serde(&facts),
            expert => expert,
            plan => Serde(&self.plan()),
            outputs => Serde(&prompt::outputs(&self.observations)),
            admissible => Serde(&self.admissible()),
        }
    }
}
