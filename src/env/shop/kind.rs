//! The shop as an environment kind: how its scenarios are read and described, its prompts, its
//! leak guard and its generator.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator};

use super::scenario::{ShopPrivileged, ShopScenario, ShopTask, ShopWorld};
use crate::agent::prompt::Past;
use crate::env::{EnvKind, Privileged, World};
use crate::scenario::{Report, Split, YamlPath};
use crate::teacher::Leak;

/// WebShop-style shopping tasks.
pub struct ShopKind;

/// A shop scenario as its file holds it: the JSON Schema's shape. The enum makes `kind` a
/// constant, as in the scenario files.
#[derive(JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
#[allow(dead_code)]
enum Doc {
    /// A WebShop-style shopping task.
    Shop {
        /// Unique across all loaded scenarios: letters, digits, `-`, `_`, `.`.
        id: String,
        split: Split,
        task: ShopTask,
        /// Actions before the episode ends unbought (15 in LEAP's training rollouts).
        horizon: u32,
        world: ShopWorld,
        #[serde(default)]
        privileged: Option<ShopPrivileged>,
    },
}

impl EnvKind for ShopKind {
    fn name(&self) -> &'static str {
        "shop"
    }

    fn read(
        &self,
        report: &mut Report,
        path: &YamlPath,
        task: serde_yaml::Value,
        world: serde_yaml::Value,
        privileged: serde_yaml::Value,
    ) -> Option<(String, Arc<dyn World>)> {
        let s = ShopScenario::read(report, path, task, world, privileged)?;
        Some((s.task.text.clone(), Arc::new(s)))
    }

    fn schema(&self, generator: &mut SchemaGenerator) -> Schema {
        crate::scenario::schema::kind_variant::<Doc>(generator)
    }

    prompt_templates!("shop");

    fn prompt_vars(&self, history: &[Past], admissible: &[String]) -> minijinja::Value {
        super::prompt::vars(history, admissible)
    }

    fn leaks(&self, reason: &str, hidden: &Privileged, observed: &str) -> Vec<Leak> {
        super::leak::guard(reason, hidden, observed)
    }

    /// Goals from WebShop's data folder (`data`, by default `tests/data/webshop` of a clone):
    /// the seed fixes the catalogue and every goal; the split's goals come in a fixed order and
    /// `count` takes the first ones (see `generate.rs`).
    fn generate(
        &self,
        dir: &Path,
        count: usize,
        seed: u64,
        split: Split,
        data: Option<&Path>,
    ) -> Option<std::io::Result<Vec<PathBuf>>> {
        let data = data.unwrap_or(Path::new(super::generate::DEFAULT_DATA));
        Some(super::generate::write_shop(data, dir, count, seed, split))
    }
}
