//! The LEAP paper's whole-trajectory correction: one answer per failed episode, in JSON,
//! `{summary, trajectory: [{timestep, is_corrected, corrected_reason, corrected_action}]}`.
//!
//! The answer's shape goes to the backend twice: as a JSON Schema (OpenAI's `response_format`)
//! and as a GBNF grammar (local models and llama-server), the grammar stricter than the schema:
//! every step in order, each action one of that step's admissible commands. Whatever the
//! backend enforced, the answer is checked here against the schema and against the episode; a
//! corrected action that was not admissible at its step is kept as not corrected, as the
//! paper's code does.

use std::sync::{Arc, LazyLock};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::agent::Format;
use crate::env::command::{self, Template};

/// The answer's JSON Schema, each text at most `max_text` characters. Given the commands of
/// each step (`admissible[i]`), it asks for exactly one entry per step, in order, each with its
/// own timestep and, where the step's commands are all literal, one of them as its action: as
/// strict as the grammar, for servers that turn a schema into one.
pub fn schema(max_text: usize, admissible: Option<&[Vec<String>]>) -> Value {
    let text = json!({ "type": "string", "maxLength": max_text });
    let entry = |timestep: Value, action: Value| {
        json!({
            "type": "object",
            "properties": {
                "timestep": timestep,
                "is_corrected": { "type": "boolean" },
                "corrected_reason": text,
                "corrected_action": action,
            },
            "required": ["timestep", "is_corrected", "corrected_reason", "corrected_action"],
            "additionalProperties": false,
        })
    };
    let any_action = json!({ "type": "string", "maxLength": max_text.max(command::MAX_FILL) });
    let trajectory = match admissible {
        None => json!({
            "type": "array",
            "items": entry(json!({ "type": "integer", "minimum": 0 }), any_action),
        }),
        Some(steps) => json!({
            "type": "array",
            "prefixItems": steps
                .iter()
                .enumerate()
                .map(|(i, commands)| {
                    let action = if literal(commands) {
                        json!({ "type": "string", "enum": commands })
                    } else {
                        any_action.clone()
                    };
                    entry(json!({ "type": "integer", "const": i }), action)
                })
                .collect::<Vec<_>>(),
            "minItems": steps.len(),
            "maxItems": steps.len(),
        }),
    };
    json!({
        "type": "object",
        "properties": { "summary": text, "trajectory": trajectory },
        "required": ["summary", "trajectory"],
        "additionalProperties": false,
    })
}

/// What an answer is checked against: the schema with texts of any length (a reason too long
/// for a label is the caller's to judge).
static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    jsonschema::validator_for(&schema(usize::MAX >> 12, None)).expect("the answer schema is valid")
});

/// The request format of a trajectory answer for an episode whose step `i` had the commands
/// `admissible[i]`, its summary and reasons at most `max_text` characters; and the most tokens
/// such an answer can take short of escapes (every token writes at least one character, so the
/// longest answer in characters bounds it), so that a constrained answer is not cut off.
pub fn format(admissible: &[Vec<String>], max_text: usize) -> (Format, u32) {
    let format = Format::Json {
        name: "corrections".into(),
        schema: Arc::new(schema(max_text, Some(admissible))),
        grammar: Arc::new(grammar(admissible, max_text)),
    };
    // The fixed text of one step's entry, with a two-digit timestep and `false`.
    const STEP: usize = r#"{"timestep": 00, "is_corrected": false, "corrected_reason": "", "corrected_action": ""}, "#.len();
    let longest: usize = r#"{"summary": "", "trajectory": []}"#.len()
        + max_text
        + admissible
            .iter()
            .map(|a| {
                let action = if literal(a) {
                    command::longest(a)
                } else {
                    max_text
                };
                STEP + max_text + action
            })
            .sum::<usize>();
    (format, longest.min(u32::MAX as usize) as u32)
}

/// GBNF for the answer: the summary, then every step in order with its own timestep, the
/// action one of its admissible commands (any string where a command has a hole, or none is
/// known). Compact JSON, one space after each separator.
pub fn grammar(admissible: &[Vec<String>], max_text: usize) -> String {
    let quote = command::gbnf_literal;
    let mut rules = Vec::new();
    let mut steps = Vec::new();
    for (i, commands) in admissible.iter().enumerate() {
        let action = if literal(commands) {
            let alternatives: Vec<String> = commands
                .iter()
                .map(|c| quote(&serde_json::to_string(c).expect("a string serializes")))
                .collect();
            rules.push(format!("a{i} ::= {}", alternatives.join(" | ")));
            format!("a{i}")
        } else {
            "text".to_string()
        };
        rules.push(format!(
            "s{i} ::= {} bool {} text {} {action} \"}}\"",
            quote(&format!("{{\"timestep\": {i}, \"is_corrected\": ")),
            quote(", \"corrected_reason\": "),
            quote(", \"corrected_action\": "),
        ));
        steps.push(format!("s{i}"));
    }
    let body = if steps.is_empty() {
        String::new()
    } else {
        steps.join(" \", \" ")
    };
    let mut out = format!(
        "root ::= {} text {} {body} \"]}}\"\n",
        quote("{\"summary\": "),
        quote(", \"trajectory\": ["),
    );
    for rule in rules {
        out.push_str(&rule);
        out.push('\n');
    }
    out.push_str("bool ::= \"true\" | \"false\"\n");
    out.push_str(&format!(
        "text ::= \"\\\"\" char{{1,{}}} \"\\\"\"\nchar ::= [^\"\\\\\\x00-\\x1f] | \"\\\\\" [\"\\\\/bfnrt]\n",
        max_text.max(1)
    ));
    out
}

/// Whether every command of a non-empty list is literal (no hole to fill): then the grammar
/// lists them; otherwise an action is any text.
fn literal(commands: &[String]) -> bool {
    !commands.is_empty() && commands.iter().all(|c| Template::of(c).is_none())
}

/// One step of a parsed answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AnswerStep {
    pub timestep: u32,
    pub is_corrected: bool,
    pub corrected_reason: String,
    pub corrected_action: String,
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Answer {
    pub summary: String,
    pub trajectory: Vec<AnswerStep>,
}

/// Reads an answer: the JSON object in `text` (a code fence or words around it are ignored),
/// checked against the schema. The error is what the retry prompt tells the model.
pub fn parse(text: &str) -> Result<Answer, String> {
    let start = text.find('{').ok_or("the answer has no JSON object")?;
    let end = text.rfind('}').ok_or("the JSON object is not closed")?;
    if end < start {
        return Err("the JSON object is not closed".into());
    }
    let value: Value = serde_json::from_str(&text[start..=end])
        .map_err(|e| format!("the answer is not valid JSON: {e}"))?;
    let problems: Vec<String> = VALIDATOR
        .iter_errors(&value)
        .take(3)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    if !problems.is_empty() {
        return Err(format!(
            "the JSON does not match the format: {}",
            problems.join("; ")
        ));
    }
    serde_json::from_value(value).map_err(|e| format!("the JSON does not match the format: {e}"))
}

/// Whether `action` is one of `admissible` (a template's fill counts).
pub fn admissible(action: &str, admissible: &[String]) -> bool {
    command::admits(admissible, action).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fenced_answer_parses_and_a_wrong_one_says_where() {
        let text = "```json\n{\"summary\": \"s\", \"trajectory\": [{\"timestep\": 0, \"is_corrected\": true, \"corrected_reason\": \"r\", \"corrected_action\": \"look\"}]}\n```";
        let answer = parse(text).unwrap();
        assert_eq!(answer.trajectory[0].corrected_action, "look");
        let err = parse("{\"summary\": \"s\", \"trajectory\": [{\"timestep\": -1}]}").unwrap_err();
        assert!(err.contains("/trajectory/0"), "{err}");
        assert!(parse("no json").is_err());
    }

    #[test]
    fn the_grammar_names_every_step_and_its_commands() {
        let g = grammar(
            &[
                vec!["go to fridge 1".into(), "say \"hi\"".into()],
                vec!["search[...]".into()],
            ],
            400,
        );
        assert!(g.contains("char{1,400}"), "{g}");
        assert!(
            g.contains("a0 ::= \"\\\"go to fridge 1\\\"\" | \"\\\"say \\\\\\\"hi\\\\\\\"\\\"\""),
            "{g}"
        );
        assert!(g.contains("s1 ::= \"{\\\"timestep\\\": 1,"), "{g}");
        assert!(g.contains("\\\"corrected_action\\\": \" text"), "{g}");
        assert!(g.starts_with("root ::= \"{\\\"summary\\\": \" text"), "{g}");
    }
}
