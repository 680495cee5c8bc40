//! A shell episode the expert follows: the environment and the commands the agent has run in it
//! (see `expert.rs`).

use std::sync::Arc;

use minijinja::context;
use minijinja::value::Serde;

use super::expert::{self, Layout, Memory, State};
use super::leak::{GOLD, GOLD_OUTPUT, GOLD2, detail};
use super::prompt::{clip, outputs};
use super::{ShellEnv, Task};
use crate::env::{Advice, Environment, Fact, Guided, Outcome, Privileged};

/// Lines and characters of the gold output the teacher's prompt shows.
const TEACHER_OUTPUT: (usize, usize) = (20, 1200);

/// A shell episode with its expert.
pub struct GuidedShell {
    env: ShellEnv,
    task: Arc<Task>,
    memory: Memory,
    /// The observations after each command, for the teacher's prompt.
    observations: Vec<String>,
    gold2: Option<String>,
    layout: Arc<Layout>,
    /// Where the episode starts (InterCode: `/`).
    start: String,
    horizon: u32,
    done: bool,
}

impl GuidedShell {
    /// A fresh episode of `task`, ending after `horizon` commands; `gold2` is a second gold
    /// command for the teacher, `layout` the file system's paths.
    pub fn new(
        task: Arc<Task>,
        horizon: u32,
        gold2: Option<String>,
        layout: Arc<Layout>,
    ) -> GuidedShell {
        let env = ShellEnv::new(task.clone(), horizon);
        let start = env.cwd().to_string();
        GuidedShell {
            env,
            task,
            memory: Memory::default(),
            observations: Vec::new(),
            gold2,
            layout,
            start,
            horizon,
            done: false,
        }
    }

    pub fn env(&self) -> &ShellEnv {
        &self.env
    }

    fn state(&self) -> State<'_> {
        State {
            request: self.env.task(),
            gold: self.gold(),
            memory: &self.memory,
            cwd: self.env.cwd(),
            start: &self.start,
            left: self.horizon.saturating_sub(self.env.steps_taken()),
            layout: &self.layout,
        }
    }

    fn gold(&self) -> &str {
        &self.task.gold
    }
}

impl Environment for GuidedShell {
    fn task(&self) -> &str {
        self.env.task()
    }

    fn observation(&self) -> &str {
        self.env.observation()
    }

    fn step(&mut self, action: &str) -> Outcome {
        let outcome = self.env.step(action);
        self.memory.actions.push(action.trim().to_string());
        self.observations.push(self.env.observation().to_string());
        self.done = outcome.done;
        outcome
    }

    fn admissible(&self) -> Vec<String> {
        self.env.admissible()
    }

    fn steps_taken(&self) -> u32 {
        self.env.steps_taken()
    }

    fn reset(&mut self) {
        self.env.reset();
        self.memory = Memory::default();
        self.observations.clear();
        self.done = false;
    }

    fn info(&self) -> Option<serde_json::Value> {
        self.env.info()
    }

    fn deterministic(&self) -> bool {
        self.env.deterministic()
    }
}

impl Guided for GuidedShell {
    fn won(&self) -> bool {
        self.env.breakdown().is_some_and(|b| b.won())
    }

    fn advise(&self, privileged: bool) -> Option<Advice> {
        if self.done {
            return None;
        }
        Some(expert::advise(&self.state(), !privileged))
    }

    fn plan(&self) -> Option<Vec<String>> {
        if self.done {
            return self.won().then(Vec::new);
        }
        let plan = expert::plan(&self.state());
        (plan.len() as u32 <= self.horizon.saturating_sub(self.env.steps_taken())).then_some(plan)
    }

    /// The gold command, its output on a fresh file system (when the sandbox runs here) and the
    /// second gold command, if any.
    fn privileged(&self) -> Privileged {
        let fact = |subject: &str, detail: String| Fact {
            subject: subject.to_string(),
            relation: "is".to_string(),
            detail,
        };
        let task = &self.task;
        let mut facts = vec![fact(GOLD, task.gold.clone())];
        if let Ok(out) = task.gold_output() {
            facts.push(fact(GOLD_OUTPUT, out.to_string()));
        }
        if let Some(gold2) = &self.gold2 {
            facts.push(fact(GOLD2, gold2.clone()));
        }
        Privileged {
            facts,
            plan: self.plan(),
        }
    }

    /// `gold`, `gold_output` (clipped; `none` when the sandbox could not run it), `gold2` (or
    /// none), `plan` (from here), `outputs` (every command's output so far, clipped as the
    /// student saw it; the template shows the last ones beside `history`) and `cwd`.
    fn teacher_vars(&self, hidden: &Privileged) -> minijinja::Value {
        let detail = |subject: &str| detail(hidden, subject);
        let (lines, chars) = TEACHER_OUTPUT;
        context! {
            gold => detail(GOLD),
            gold_output => detail(GOLD_OUTPUT).map(|o| clip(o, lines, chars)),
            gold2 => detail(GOLD2),
            plan => Serde(&self.plan()),
            outputs => Serde(&outputs(&self.observations)),
            cwd => self.env.cwd(),
        }
    }
}
