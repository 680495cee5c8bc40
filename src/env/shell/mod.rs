//! The shell environment: InterCode-Bash (Yang et al., 2023) as LEAP ran it, with real bash in a
//! bubblewrap sandbox instead of Docker. The student answers a request by running commands on a
//! prepared file system and submits; the reward compares its file system and last output with
//! the gold command's on a fresh copy.

pub mod exec;
pub mod expert;
pub mod fs;
pub mod gold;
pub mod guided;
pub mod import;
pub mod kind;
pub mod leak;
pub mod prompt;
pub mod reward;
pub mod sandbox;
pub mod scenario;
pub mod shlex;

use std::sync::{Arc, OnceLock};

use crate::env::{Environment, Outcome};
use exec::Semantics;
use sandbox::{Limits, Sandbox};

/// What episodes of one task share: the request, the file system, the gold command and how
/// actions run.
#[derive(Debug)]
pub struct Task {
    /// The request, the first observation.
    pub query: String,
    pub gold: String,
    /// The file system every episode copies, or why it could not be put on disk (a full disk,
    /// an unwritable temporary folder): then every episode fails at its first step with that
    /// line, as one whose own copy failed does.
    fs: Result<Arc<fs::Template>, String>,
    pub semantics: Semantics,
    gold_output: OnceLock<Result<String, String>>,
}

impl Task {
    pub fn new(query: String, gold: String, fs: Arc<fs::Template>, semantics: Semantics) -> Task {
        Task::with_fs(query, gold, Ok(fs), semantics)
    }

    /// A task whose file system could not be put on disk, for the reason `why`.
    pub fn without_fs(query: String, gold: String, why: String, semantics: Semantics) -> Task {
        Task::with_fs(query, gold, Err(why), semantics)
    }

    fn with_fs(
        query: String,
        gold: String,
        fs: Result<Arc<fs::Template>, String>,
        semantics: Semantics,
    ) -> Task {
        Task {
            query,
            gold,
            fs,
            semantics,
            gold_output: OnceLock::new(),
        }
    }

    /// The file system every episode copies (`Err`: why it is not on disk).
    pub fn template(&self) -> Result<&fs::Template, &str> {
        self.fs.as_deref().map_err(String::as_str)
    }

    /// A fresh copy of the file system, or why there is none.
    fn fresh(&self) -> Result<fs::Tree, String> {
        let template = self.template().map_err(str::to_string)?;
        template
            .fresh()
            .map_err(|e| format!("cannot copy the task's file system: {e}"))
    }

    /// What the gold command prints on a fresh copy of the file system (the privileged state's
    /// answer), run once and kept. `Err` is one line: the sandbox cannot run here.
    pub fn gold_output(&self) -> Result<&str, String> {
        self.gold_output
            .get_or_init(|| {
                let sandbox = Sandbox::get().map_err(|e| e.to_string())?;
                let tree = self.fresh()?;
                Ok(self
                    .run_gold(sandbox, &tree, &Limits::default())
                    .unwrap_or_default())
            })
            .as_deref()
            .map_err(Clone::clone)
    }

    /// Runs the gold command in `tree` from `/`, as the evaluation does: its output, or `None`
    /// where InterCode's run of it raised (its `corrupt_gold`: `shlex` could not split it, or
    /// its output was not UTF-8).
    fn run_gold(&self, sandbox: &Sandbox, tree: &fs::Tree, limits: &Limits) -> Option<String> {
        let done = exec::evaluate(sandbox, tree.root(), &self.gold, self.semantics, limits);
        // InterCode's `try` around the gold's run is the one `exec` reports as malformed.
        let corrupt = self.semantics == Semantics::Intercode && done.observation == exec::MALFORMED;
        (!corrupt).then_some(done.observation)
    }
}

/// One InterCode-Bash episode over a fresh [`fs::Tree`] (`ic_env.py` with `bash_env.py`): the
/// first observation is the query; `skip` ends it with reward 0; an action that starts with
/// `submit` ends it with the reward; any other runs through [`exec::run`] in the kept working
/// directory.
///
/// At the horizon without a submit the episode ends and is scored as if the last action had
/// been followed by `submit` (LEAP counts its episodes that way; InterCode's own loop scores
/// every turn so).
pub struct ShellEnv {
    task: Arc<Task>,
    horizon: u32,
    /// The episode's tree, or why it could not be made.
    tree: Result<fs::Tree, String>,
    cwd: String,
    steps: u32,
    observation: String,
    /// The output the reward compares with the gold's: InterCode's `self.observation`, the
    /// query until an action has run.
    last_output: String,
    done: bool,
    breakdown: Option<reward::Breakdown>,
    /// The line that ended the episode, if it could not go on (no sandbox, no file system).
    failure: Option<String>,
    limits: Limits,
}

impl ShellEnv {
    /// A fresh episode of `task`, ending after `horizon` actions.
    pub fn new(task: Arc<Task>, horizon: u32) -> ShellEnv {
        ShellEnv::with_limits(task, horizon, Limits::default())
    }

    /// As [`ShellEnv::new`], with the agent's and the gold's commands under `limits`.
    pub fn with_limits(task: Arc<Task>, horizon: u32, limits: Limits) -> ShellEnv {
        let tree = task.fresh();
        ShellEnv {
            cwd: "/".to_string(),
            steps: 0,
            observation: task.query.clone(),
            last_output: task.query.clone(),
            done: false,
            breakdown: None,
            failure: None,
            limits,
            tree,
            task,
            horizon,
        }
    }

    /// The working directory now.
    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    /// The submission's reward breakdown, once submitted.
    pub fn breakdown(&self) -> Option<&reward::Breakdown> {
        self.breakdown.as_ref()
    }

    /// The episode's tree (`Err`: why it could not be made).
    pub fn tree(&self) -> Result<&fs::Tree, &str> {
        self.tree.as_ref().map_err(String::as_str)
    }

    /// The reward if the agent submitted now (InterCode's `get_reward`), without ending the
    /// episode: a fresh evaluation copy where the gold command runs from `/`, both copies'
    /// `git status`, the hashes of the paths both added, and the last output against the gold's.
    /// `Err` is one line: the sandbox or the copy failed.
    pub fn evaluate(&self) -> Result<reward::Breakdown, String> {
        let sandbox = Sandbox::get().map_err(|e| e.to_string())?;
        let tree = self.tree.as_ref().map_err(Clone::clone)?;
        let eval = self.task.fresh()?;
        let gold_output = self.task.run_gold(sandbox, &eval, &self.limits);
        let failed = |e: std::io::Error| format!("the sandbox failed while scoring: {e}");
        let agent = tree.status(sandbox).map_err(failed)?;
        let gold = eval.status(sandbox).map_err(failed)?;
        let mut same = |path: &str| match (tree.hash(sandbox, path), eval.hash(sandbox, path)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        Ok(reward::score(
            &agent,
            &gold,
            &mut same,
            &self.last_output,
            gold_output.as_deref(),
        ))
    }

    /// Ends the episode with the reward of a submission now.
    fn submit(&mut self) -> Outcome {
        self.done = true;
        match self.evaluate() {
            Ok(breakdown) => {
                let outcome = Outcome {
                    reward: breakdown.reward as f32,
                    done: true,
                    won: breakdown.won(),
                };
                self.breakdown = Some(breakdown);
                outcome
            }
            Err(line) => self.fail(line),
        }
    }

    /// The line that ended the episode, if it could not go on.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Ends the episode with reward 0, observing `line`.
    fn fail(&mut self, line: String) -> Outcome {
        self.done = true;
        self.observation.clone_from(&line);
        self.failure = Some(line);
        Outcome {
            reward: 0.0,
            done: true,
            won: false,
        }
    }
}

impl Environment for ShellEnv {
    fn task(&self) -> &str {
        &self.task.query
    }

    fn observation(&self) -> &str {
        &self.observation
    }

    fn step(&mut self, action: &str) -> Outcome {
        let over = Outcome {
            reward: 0.0,
            done: true,
            won: false,
        };
        if self.done {
            return over;
        }
        self.steps += 1;
        let sandbox = match Sandbox::get() {
            Ok(sandbox) => sandbox,
            Err(e) => return self.fail(e.to_string()),
        };
        if action == "skip" {
            self.done = true;
            self.observation = "skipped".to_string();
            return over;
        }
        if action.starts_with("submit") {
            return self.submit();
        }
        let root = match &self.tree {
            Ok(tree) => tree.root(),
            Err(line) => return self.fail(line.clone()),
        };
        let done = exec::run(
            sandbox,
            root,
            &mut self.cwd,
            action,
            self.task.semantics,
            &self.limits,
        );
        self.observation = done.observation.clone();
        self.last_output = done.observation;
        if self.steps >= self.horizon {
            return self.submit();
        }
        Outcome {
            reward: 0.0,
            done: false,
            won: false,
        }
    }

    /// Free text: one command line, any command.
    fn admissible(&self) -> Vec<String> {
        vec![crate::env::command::HOLE.to_string()]
    }

    fn steps_taken(&self) -> u32 {
        self.steps
    }

    fn reset(&mut self) {
        // The old tree goes before the new one is copied.
        self.tree = Err(String::new());
        self.tree = self.task.fresh();
        self.cwd = "/".to_string();
        self.steps = 0;
        self.observation = self.task.query.clone();
        self.last_output = self.task.query.clone();
        self.done = false;
        self.breakdown = None;
        self.failure = None;
    }

    /// The reward breakdown, once submitted, or `{"error": line}` when the episode could not
    /// go on.
    fn info(&self) -> Option<serde_json::Value> {
        if let Some(line) = &self.failure {
            return Some(serde_json::json!({ "error": line }));
        }
        self.breakdown
            .as_ref()
            .map(|b| serde_json::to_value(b).expect("a breakdown serializes"))
    }

    /// Pipelines interleave their processes' output, and commands read the clock and the
    /// process table.
    fn deterministic(&self) -> bool {
        false
    }
}
