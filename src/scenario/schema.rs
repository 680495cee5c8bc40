//! The JSON Schema of scenario files, generated from the types that read them: each kind gives
//! the schema of its own scenarios ([`crate::env::EnvKind::schema`]). The shipped copy is
//! `assets/schema/scenario.json`; a test fails when it is stale.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// One scenario, of any registered kind.
struct ScenarioDoc;

impl JsonSchema for ScenarioDoc {
    fn schema_name() -> Cow<'static, str> {
        "ScenarioDoc".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let kinds: Vec<Schema> = crate::env::registry()
            .iter()
            .map(|k| k.schema(generator))
            .collect();
        json_schema!({
            "description": "One scenario. The fields after `kind` depend on the kind.",
            "oneOf": kinds,
        })
    }
}

/// A scenario file: one scenario or a list of them.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ScenarioFile {
    One(ScenarioDoc),
    Many(Vec<ScenarioDoc>),
}

/// The schema of one kind's scenarios from `T`, an enum with that kind as its one variant,
/// tagged by `kind` (which makes `kind` a constant): the variant's schema.
pub fn kind_variant<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let mut doc = T::json_schema(generator);
    let variant = doc
        .get_mut("oneOf")
        .and_then(|v| v.as_array_mut())
        .and_then(|variants| variants.pop())
        .expect("one variant");
    Schema::try_from(variant).expect("a variant is a schema")
}

/// The schema as pretty JSON, with a trailing newline.
pub fn scenario_schema() -> String {
    let schema = schemars::schema_for!(ScenarioFile);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}
