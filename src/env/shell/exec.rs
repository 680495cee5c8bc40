//! SKELETON (owner: the episode helper). One action as InterCode runs it: `cd` kept, the rest
//! through `bash -c` in the sandbox, with InterCode's quirks (Python `shlex` splitting of
//! `/bin/bash -c "<action>"`, `cd` taking the rest of the line) where a scenario asks for them.

use crate::env::shell::sandbox::{Limits, Sandbox};
use std::path::Path;

/// How an action string becomes a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Semantics {
    /// Plain bash: the action is the script of `bash -c`, `cd` is bash's own.
    #[default]
    Bash,
    /// InterCode-Bash as its benchmark ran, quirks included (imported scenarios).
    Intercode,
}

/// One executed action.
#[derive(Debug, Clone)]
pub struct Executed {
    pub observation: String,
    /// The command ran and exited 0 (InterCode's `action_executed`).
    pub ok: bool,
}

/// Runs `action` in `tree` at `cwd`, updating `cwd` after a successful `cd`.
pub fn run(
    _sandbox: &Sandbox,
    _tree: &Path,
    _cwd: &mut String,
    _action: &str,
    _semantics: Semantics,
    _limits: &Limits,
) -> Executed {
    todo!("SKELETON")
}
