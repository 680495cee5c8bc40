//! External environments as a kind: how their scenarios are read and described, their prompts
//! and their leak guard. Every environment behind an OpenEnv server shares this one kind.

use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator};

use super::scenario::{ExternalScenario, ExternalWorld};
use crate::agent::prompt::Past;
use crate::env::{EnvKind, Privileged, World};
use crate::scenario::{Report, Split, YamlPath};
use crate::teacher::Leak;

/// Environments served over OpenEnv.
pub struct ExternalKind;

/// An external scenario as its file holds it: the JSON Schema's shape.
#[derive(JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
#[allow(dead_code)]
enum Doc {
    /// An environment behind an OpenEnv server: its server and its reset's arguments.
    External {
        /// Unique across all loaded scenarios: letters, digits, `-`, `_`, `.`.
        id: String,
        split: Split,
        /// The environment's task sentence for this reset (lists and previews show it; the
        /// student reads the one the environment sends).
        task: String,
        /// Steps before the episode ends.
        horizon: u32,
        world: ExternalWorld,
    },
}

impl EnvKind for ExternalKind {
    fn name(&self) -> &'static str {
        "external"
    }

    fn read(
        &self,
        report: &mut Report,
        path: &YamlPath,
        task: serde_yaml::Value,
        world: serde_yaml::Value,
        privileged: serde_yaml::Value,
    ) -> Option<(String, Arc<dyn World>)> {
        let s = ExternalScenario::read(report, path, task, world, privileged)?;
        Some((s.task.clone(), Arc::new(s)))
    }

    fn schema(&self, generator: &mut SchemaGenerator) -> Schema {
        crate::scenario::schema::kind_variant::<Doc>(generator)
    }

    prompt_templates!("external");

    fn prompt_vars(&self, history: &[Past], admissible: &[String]) -> minijinja::Value {
        super::prompt::vars(history, admissible)
    }

    fn leaks(&self, reason: &str, hidden: &Privileged, observed: &str) -> Vec<Leak> {
        super::leak::guard(reason, hidden, observed)
    }
}
