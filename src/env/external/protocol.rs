//! The messages of OpenEnv's WebSocket protocol (openenv-core 0.3.0, `/ws`) and leap's convention
//! for what an observation holds (`assets/envs/observation.schema.json`).
//!
//! The client sends `{"type":"reset","data":{..}}`, `{"type":"step","data":{"command":".."}}`
//! (the action's own fields are the data) and `{"type":"close"}`; the server answers
//! `{"type":"observation","data":{"observation":{..},"reward":r,"done":d}}` or
//! `{"type":"error","data":{"message":"..","code":".."}}`.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::env::text::shorten;

/// A reset with the scenario's arguments.
pub fn reset(args: &serde_json::Map<String, Value>) -> String {
    json!({"type": "reset", "data": args}).to_string()
}

/// One command of the player.
pub fn step(command: &str) -> String {
    json!({"type": "step", "data": {"command": command}}).to_string()
}

/// The end of a session.
pub fn close() -> String {
    json!({"type": "close"}).to_string()
}

/// What the environment answered to a reset or a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub observation: Observation,
    /// The episode's score so far, in [0, 1] (clamped; none counts as 0).
    pub reward: f32,
    pub done: bool,
}

/// An observation in leap's convention.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Observation {
    /// What the player reads after the last action.
    pub text: String,
    /// The task as the student reads it.
    pub task: String,
    /// The commands that do something now; `None`: any text.
    #[serde(default)]
    pub admissible_actions: Option<Vec<String>>,
    /// What the student must never see.
    #[serde(default)]
    pub privileged: Option<PrivilegedState>,
    /// The privileged expert's next action.
    #[serde(default)]
    pub expert_action: Option<ExpertAction>,
    #[serde(default)]
    pub won: Option<bool>,
    /// What the step did beyond its reward, stored with it.
    #[serde(default)]
    pub info: Option<Value>,
}

/// The privileged state as the environment gives it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct PrivilegedState {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub facts: Vec<NamedFact>,
    /// The expert's remaining actions from this state, when known.
    #[serde(default)]
    pub plan: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NamedFact {
    pub name: String,
    pub value: String,
}

/// The expert's next action: `{"action", "reason"}`, or the action alone as a string.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ExpertAction {
    Bare(String),
    Full {
        action: String,
        #[serde(default)]
        reason: Option<String>,
    },
}

impl ExpertAction {
    pub fn action(&self) -> &str {
        match self {
            ExpertAction::Bare(action) | ExpertAction::Full { action, .. } => action,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            ExpertAction::Bare(_) => None,
            ExpertAction::Full { reason, .. } => reason.as_deref(),
        }
    }
}

/// Why a reply could not be used: one line.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyError {
    /// The server reported an error (`{"type":"error"}`).
    Server(String),
    /// The reply is not what the protocol or the convention says.
    Malformed(String),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize)]
struct ObservationData {
    observation: Value,
    #[serde(default)]
    reward: Option<f64>,
    #[serde(default)]
    done: bool,
}

/// Reads the server's answer to a reset or a step.
pub fn parse(text: &str) -> Result<Step, ReplyError> {
    let envelope: Envelope = serde_json::from_str(text).map_err(|e| {
        ReplyError::Malformed(format!(
            "not a protocol message ({e}): {}",
            shorten(text, 200)
        ))
    })?;
    match envelope.kind.as_str() {
        "observation" => {}
        "error" => {
            let message = envelope.data["message"]
                .as_str()
                .unwrap_or("(no message)")
                .to_string();
            let code = envelope.data["code"].as_str().unwrap_or("");
            let mut line = if code.is_empty() {
                message
            } else {
                format!("{message} ({code})")
            };
            // A validation error lists what failed; keep the first.
            if let Some(first) = envelope.data["errors"].get(0) {
                line.push_str(&format!(": {}", shorten(&first.to_string(), 200)));
            }
            return Err(ReplyError::Server(line));
        }
        other => {
            return Err(ReplyError::Malformed(format!(
                "a message of type `{other}`, expected `observation` or `error`"
            )));
        }
    }
    let data: ObservationData = serde_path_to_error::deserialize(envelope.data)
        .map_err(|e| ReplyError::Malformed(format!("`data.{}`: {}", e.path(), e.inner())))?;
    let observation: Observation =
        serde_path_to_error::deserialize(data.observation).map_err(|e| {
            ReplyError::Malformed(format!(
                "`observation.{}`: {} (leap's convention: `text` and `task` are strings)",
                e.path(),
                e.inner()
            ))
        })?;
    let reward = data.reward.unwrap_or(0.0);
    if !reward.is_finite() {
        return Err(ReplyError::Malformed(format!("`reward` is {reward}")));
    }
    Ok(Step {
        observation,
        reward: reward.clamp(0.0, 1.0) as f32,
        done: data.done,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_observation_with_every_field() {
        let text = r#"{"type":"observation","data":{"observation":{"text":"You see a box.","task":"open the box","admissible_actions":["open box","look"],"privileged":{"text":"the key is in the box","facts":[{"name":"key","value":"in the box"}],"plan":["open box"]},"expert_action":{"action":"open box","reason":null},"won":false,"info":{"score":0}},"reward":0.25,"done":false}}"#;
        let step = parse(text).unwrap();
        assert_eq!(step.reward, 0.25);
        assert!(!step.done);
        let obs = step.observation;
        assert_eq!(obs.text, "You see a box.");
        assert_eq!(obs.admissible_actions.unwrap(), ["open box", "look"]);
        let hidden = obs.privileged.unwrap();
        assert_eq!(hidden.facts[0].value, "in the box");
        assert_eq!(hidden.plan.unwrap(), ["open box"]);
        assert_eq!(obs.expert_action.unwrap().action(), "open box");
    }

    #[test]
    fn a_bare_expert_action_and_missing_optionals_read() {
        let text = r#"{"type":"observation","data":{"observation":{"text":"t","task":"k","expert_action":"look"},"reward":null,"done":true}}"#;
        let step = parse(text).unwrap();
        assert_eq!(step.reward, 0.0);
        assert!(step.done);
        assert_eq!(step.observation.expert_action.unwrap().action(), "look");
        assert_eq!(step.observation.admissible_actions, None);
    }

    #[test]
    fn rewards_outside_the_unit_interval_are_clamped() {
        let text = r#"{"type":"observation","data":{"observation":{"text":"t","task":"k"},"reward":-1.0,"done":true}}"#;
        assert_eq!(parse(text).unwrap().reward, 0.0);
    }

    #[test]
    fn a_server_error_keeps_its_message_and_code() {
        let text = r#"{"type":"error","data":{"message":"Invalid message","code":"VALIDATION_ERROR","errors":[{"loc":["command"],"msg":"Field required"}]}}"#;
        let Err(ReplyError::Server(line)) = parse(text) else {
            panic!("expected a server error");
        };
        assert!(
            line.starts_with("Invalid message (VALIDATION_ERROR): "),
            "{line}"
        );
        assert!(line.contains("Field required"), "{line}");
    }

    #[test]
    fn a_malformed_observation_names_the_field() {
        let text =
            r#"{"type":"observation","data":{"observation":{"text":3,"task":"k"},"done":false}}"#;
        let Err(ReplyError::Malformed(line)) = parse(text) else {
            panic!("expected a malformed reply");
        };
        assert!(
            line.starts_with("`observation.text`: invalid type"),
            "{line}"
        );
        let Err(ReplyError::Malformed(line)) = parse("not json") else {
            panic!("expected a malformed reply");
        };
        assert!(line.contains("not a protocol message"), "{line}");
        let Err(ReplyError::Malformed(line)) = parse(r#"{"type":"state","data":{}}"#) else {
            panic!("expected a malformed reply");
        };
        assert!(line.contains("`state`"), "{line}");
    }

    #[test]
    fn messages_are_the_protocol_s() {
        let mut args = serde_json::Map::new();
        args.insert("task".into(), json!("boil"));
        let read = |text: String| serde_json::from_str::<Value>(&text).unwrap();
        assert_eq!(
            read(reset(&args)),
            json!({"type": "reset", "data": {"task": "boil"}})
        );
        assert_eq!(
            read(step("go north")),
            json!({"type": "step", "data": {"command": "go north"}})
        );
        assert_eq!(read(close()), json!({"type": "close"}));
    }
}
