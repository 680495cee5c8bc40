//! The household as an environment kind: how its scenarios are read and described, its prompts,
//! and its leak guard.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator};

use super::scenario::{HouseholdPrivileged, HouseholdScenario, HouseholdTask, HouseholdWorld};
use crate::agent::prompt::Past;
use crate::env::{EnvKind, Privileged, World};
use crate::scenario::{Report, Split, YamlPath};
use crate::teacher::Leak;

/// ALFWorld-style household tasks.
pub struct Household;

/// A household scenario as its file holds it: the JSON Schema's shape. The enum makes `kind` a
/// constant, as in the scenario files.
#[derive(JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
#[allow(dead_code)]
enum Doc {
    /// An ALFWorld-style household task.
    Household {
        /// Unique across all loaded scenarios: letters, digits, `-`, `_`, `.`.
        id: String,
        split: Split,
        task: HouseholdTask,
        /// Steps before the episode ends unsolved.
        horizon: u32,
        world: HouseholdWorld,
        #[serde(default)]
        privileged: Option<HouseholdPrivileged>,
    },
}

impl EnvKind for Household {
    fn name(&self) -> &'static str {
        "household"
    }

    fn read(
        &self,
        report: &mut Report,
        path: &YamlPath,
        task: serde_yaml::Value,
        world: serde_yaml::Value,
        privileged: serde_yaml::Value,
    ) -> Option<(String, Arc<dyn World>)> {
        let s = HouseholdScenario::read(report, path, task, world, privileged)?;
        Some((s.task_text(), Arc::new(s)))
    }

    fn schema(&self, generator: &mut SchemaGenerator) -> Schema {
        crate::scenario::schema::kind_variant::<Doc>(generator)
    }

    prompt_templates!("household");

    fn prompt_vars(&self, history: &[Past], admissible: &[String]) -> minijinja::Value {
        super::prompt::vars(history, admissible)
    }

    fn leaks(&self, reason: &str, hidden: &Privileged, observed: &str) -> Vec<Leak> {
        super::leak::guard(reason, hidden, observed)
    }

    fn generate(
        &self,
        dir: &Path,
        count: usize,
        seed: u64,
        split: Split,
        _data: Option<&Path>,
    ) -> Option<std::io::Result<Vec<PathBuf>>> {
        Some(super::generate::write_household(dir, count, seed, split))
    }
}
