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

use std::sync::Arc;

use crate::env::{Environment, Outcome};
use exec::Semantics;

/// What episodes of one task share: the request, the file system, the gold command and how
/// actions run.
#[derive(Debug)]
pub struct Task {
    /// The request, the first observation.
    pub query: String,
    pub gold: String,
    pub fs: Arc<fs::Template>,
    pub semantics: Semantics,
}

impl Task {
    /// What the gold command prints on a fresh copy of the file system (the privileged state's
    /// answer), run once and kept. `Err` is one line: the sandbox cannot run here.
    pub fn gold_output(&self) -> Result<&str, String> {
        todo!("SKELETON")
    }
}

/// SKELETON (owner: the episode helper). One InterCode-Bash episode over a fresh [`fs::Tree`].
pub struct ShellEnv {}

impl ShellEnv {
    /// A fresh episode of `task`, ending after `horizon` actions.
    pub fn new(_task: Arc<Task>, _horizon: u32) -> ShellEnv {
        todo!("SKELETON")
    }

    /// The working directory now.
    pub fn cwd(&self) -> &str {
        todo!("SKELETON")
    }

    /// The submission's reward breakdown, once submitted.
    pub fn breakdown(&self) -> Option<&reward::Breakdown> {
        todo!("SKELETON")
    }
}

impl Environment for ShellEnv {
    fn task(&self) -> &str {
        todo!("SKELETON")
    }
    fn observation(&self) -> &str {
        todo!("SKELETON")
    }
    fn step(&mut self, _action: &str) -> Outcome {
        todo!("SKELETON")
    }
    /// Free text: one command line, any command.
    fn admissible(&self) -> Vec<String> {
        vec![crate::env::command::HOLE.to_string()]
    }
    fn steps_taken(&self) -> u32 {
        todo!("SKELETON")
    }
    fn reset(&mut self) {
        todo!("SKELETON")
    }
}
