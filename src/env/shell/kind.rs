//! The shell as an environment kind: how its scenarios are read and described, its prompts and
//! its leak guard. Its scenarios come from InterCode-Bash's task files (`import.rs`), not from a
//! generator.

use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator};

use super::scenario::{ShellPrivileged, ShellScenario, ShellWorld};
use crate::agent::prompt::Past;
use crate::env::{EnvKind, Privileged, World};
use crate::scenario::{Report, Split, YamlPath};
use crate::teacher::Leak;

/// InterCode-Bash-style shell tasks.
pub struct ShellKind;

/// A shell scenario as its file holds it: the JSON Schema's shape. The enum makes `kind` a
/// constant, as in the scenario files.
#[derive(JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
#[allow(dead_code)]
enum Doc {
    /// An InterCode-Bash-style task: answer a request by running bash commands, then submit.
    Shell {
        /// Unique across all loaded scenarios: letters, digits, `-`, `_`, `.`.
        id: String,
        split: Split,
        /// The request the student reads ("Count the lines of every .txt file under /testbed").
        task: String,
        /// Commands before the episode ends unsubmitted (10 in LEAP's runs).
        horizon: u32,
        world: ShellWorld,
        privileged: ShellPrivileged,
    },
}

impl EnvKind for ShellKind {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn read(
        &self,
        report: &mut Report,
        path: &YamlPath,
        task: serde_yaml::Value,
        world: serde_yaml::Value,
        privileged: serde_yaml::Value,
    ) -> Option<(String, Arc<dyn World>)> {
        let s = ShellScenario::read(report, path, task, world, privileged)?;
        Some((s.task.clone(), Arc::new(s)))
    }

    fn schema(&self, generator: &mut SchemaGenerator) -> Schema {
        crate::scenario::schema::kind_variant::<Doc>(generator)
    }

    prompt_templates!("shell");

    fn prompt_vars(&self, history: &[Past], admissible: &[String]) -> minijinja::Value {
        super::prompt::vars(history, admissible)
    }

    fn leaks(&self, reason: &str, hidden: &Privileged, observed: &str) -> Vec<Leak> {
        super::leak::guard(reason, hidden, observed)
    }

    /// LEAP sends InterCode episodes with reward at most 0.7 to the teacher: a partial reward
    /// (the right files changed, a similar output) is still a failure worth correcting.
    fn failed_at_most(&self) -> Option<f64> {
        Some(0.7)
    }
}
