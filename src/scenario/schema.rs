//! The JSON Schema of scenario files, generated from the types that read them. The shipped copy
//! is `assets/schema/scenario.json`; a test fails when it is stale.

use schemars::JsonSchema;

use super::Split;
use super::household::{HouseholdPrivileged, HouseholdTask, HouseholdWorld};

/// One scenario. The fields after `kind` depend on the kind.
#[derive(JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
#[allow(dead_code)]
enum ScenarioDoc {
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

/// A scenario file: one scenario or a list of them.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ScenarioFile {
    One(ScenarioDoc),
    Many(Vec<ScenarioDoc>),
}

/// The schema as pretty JSON, with a trailing newline.
pub fn scenario_schema() -> String {
    let schema = schemars::schema_for!(ScenarioFile);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}
