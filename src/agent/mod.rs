//! The student: the prompt it reads, the parser for what it writes, and the policies (a local
//! GGUF model through llama.cpp, a remote OpenAI-compatible server) that turn a prompt into a
//! reason and an action.

pub mod draft;
pub mod local;
pub mod parse;
pub mod prompt;
pub mod remote;
pub mod student;
pub mod tune;
pub mod weights;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Who says a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role's name in chat templates and chat-completions requests.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
        }
    }
}

/// How to sample a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// 0 is greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u64,
    /// Longest response, in tokens.
    pub max_tokens: u32,
    /// Constrain the response to `REASON: ...` then `ACTION: <an admissible command>` where the
    /// backend can (a GBNF grammar for local models).
    pub constrained: bool,
    /// In a rollout, the temperature of a step whose prompt the episode has already shown the
    /// policy word for word (0: off). A greedy policy answers a repeated prompt as it did
    /// before, so once its history window holds nothing but a cycle it never leaves it; sampling
    /// only there leaves every other step greedy.
    #[serde(default)]
    pub repeat_temperature: f32,
}

impl Sampling {
    /// Refuses settings llama.cpp's samplers cannot take (they assert or return NaN on them).
    pub fn check(&self) -> Result<(), String> {
        let temperature = |name: &str, t: f32| {
            if t.is_finite() && t >= 0.0 {
                Ok(())
            } else {
                Err(format!(
                    "sampling: {name} is {t}, expected a finite number 0 or more"
                ))
            }
        };
        temperature("temperature", self.temperature)?;
        temperature("repeat temperature", self.repeat_temperature)?;
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!(
                "sampling: top_p is {}, expected more than 0 and at most 1",
                self.top_p
            ));
        }
        Ok(())
    }

    /// Tokens a reason may take before the backend moves on to the action, leaving room for the
    /// longest admissible command.
    pub fn reason_budget(&self) -> u32 {
        self.max_tokens.saturating_sub(32).max(8)
    }
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            max_tokens: 96,
            constrained: true,
            repeat_temperature: 0.0,
        }
    }
}

/// The shape an answer must take.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Format {
    /// `REASON:` then `ACTION:` one of the request's admissible commands: the student's form,
    /// constrained where the backend can and [`Sampling::constrained`] asks for it.
    #[default]
    React,
    /// One JSON document, always constrained where the backend can: `schema` (a JSON Schema,
    /// for servers that take OpenAI's `response_format`) and the same shape as a GBNF `grammar`
    /// (local models and llama-server), which may be stricter than the schema.
    Json {
        name: String,
        schema: Arc<serde_json::Value>,
        grammar: Arc<String>,
    },
}

/// One prompt for one episode at one step.
#[derive(Debug, Clone)]
pub struct Request {
    /// The episode slot this prompt belongs to. Consecutive requests with the same `seq` are
    /// usually the same episode one step further, so a backend may keep per-slot state (the
    /// KV cache of a local model) and reuse what the new prompt shares with the last one.
    pub seq: usize,
    pub messages: Vec<Message>,
    /// The commands that do something now.
    pub admissible: Vec<String>,
    /// This request's temperature instead of [`Sampling::temperature`] (a repeated prompt in a
    /// rollout, see [`Sampling::repeat_temperature`]).
    pub temperature: Option<f32>,
    /// This request's sampling seed instead of one derived from [`Sampling::seed`] and the
    /// slot: a rollout seeds each step of each episode on its own, so that what an episode
    /// samples does not depend on which other episodes share its batches.
    pub seed: Option<u64>,
    pub format: Format,
}

/// What a policy answered to one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The text exactly as generated.
    pub text: String,
    pub prompt_tokens: u32,
    /// Prompt tokens that did not have to be evaluated again (reused from the cache).
    pub cached_tokens: u32,
    pub gen_tokens: u32,
    /// Wall time spent evaluating the prompt and generating, in milliseconds.
    pub prompt_ms: f64,
    pub gen_ms: f64,
}

#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("model {path}: {message}")]
    Model { path: String, message: String },
    #[error("llama.cpp: {0}")]
    Llama(String),
    #[error("prompt of {tokens} tokens does not fit the context of {ctx} tokens")]
    PromptTooLong { tokens: usize, ctx: usize },
    #[error(
        "model {model}: its vocabulary turns the prompt ({chars} characters) into no tokens at all; \
         the model's tokenizer cannot read this text"
    )]
    NoTokens { model: String, chars: usize },
    #[error("{url}: {message}")]
    Remote { url: String, message: String },
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Adapter(Box<student::AdapterError>),
    /// A model or adapter file llama.cpp must not be given.
    #[error(transparent)]
    Check(Box<crate::model::CheckError>),
}

impl From<crate::model::CheckError> for PolicyError {
    fn from(e: crate::model::CheckError) -> Self {
        PolicyError::Check(Box::new(e))
    }
}

/// Anything that maps prompts to responses: a local model, a remote server, a scripted replay.
pub trait Policy: Send {
    /// Identifies the model (and adapters) in the run store: "SmolLM2-135M-Instruct.Q4_1 + iter-1.gguf@1.0".
    fn describe(&self) -> String;

    /// Answers every request, in order. `on_token(i, piece)` is called as text for request `i`
    /// is generated (backends that cannot stream call it once with the whole text).
    fn respond(
        &mut self,
        requests: &[Request],
        sampling: &Sampling,
        on_token: &mut dyn FnMut(usize, &str),
    ) -> Result<Vec<Response>, PolicyError>;

    /// Forgets what is kept for slot `seq` (its episode is over).
    fn release(&mut self, _seq: usize) {}

    /// Continuous batching: answers `first` (one request per slot at most), hands each answer
    /// to `feed` as soon as it is ready, and answers the slot's next request that `feed` gives
    /// back while the other slots go on. Ends once no slot has a request, or when `feed` says
    /// [`Next::Stop`].
    ///
    /// This default answers in rounds through [`Policy::respond`]: every request of a round
    /// waits for the slowest one. Backends that can take a request while others are being
    /// answered (the local model, a server) override it.
    fn serve(
        &mut self,
        first: Vec<Request>,
        sampling: &Sampling,
        feed: &mut dyn Feed,
    ) -> Result<(), PolicyError> {
        let mut round = first;
        while !round.is_empty() {
            let responses = self.respond(&round, sampling, &mut |i, piece| {
                feed.token(round[i].seq, piece)
            })?;
            let mut next = Vec::with_capacity(round.len());
            for (request, response) in round.into_iter().zip(responses) {
                match feed.answered(request, response) {
                    Next::Ask(r) => next.push(r),
                    Next::Done => {}
                    Next::Stop => return Ok(()),
                }
            }
            round = next;
        }
        Ok(())
    }
}

/// What [`Policy::serve`] hands its answers to.
pub trait Feed {
    /// Text generated for the request of slot `seq`, as it comes.
    fn token(&mut self, seq: usize, piece: &str);

    /// The answer to `request`: what the slot asks next.
    fn answered(&mut self, request: Request, response: Response) -> Next;
}

/// What a slot asks after an answer (see [`Feed::answered`]).
#[derive(Debug)]
pub enum Next {
    /// This request, in the same slot.
    Ask(Request),
    /// Nothing: the slot is free from now on.
    Done,
    /// Nothing more for any slot: `serve` returns at once, leaving unanswered requests.
    Stop,
}

/// The [`Feed`] that [`Policy::respond`] is over [`Policy::serve`]: it collects one answer per
/// request, in the requests' order, and asks nothing more.
pub struct Collect<'a> {
    /// Request index by slot.
    index: Vec<Option<usize>>,
    responses: Vec<Option<Response>>,
    on_token: &'a mut dyn FnMut(usize, &str),
}

impl<'a> Collect<'a> {
    /// Refuses two requests for one slot: their answers would share a cache.
    pub fn new(
        requests: &[Request],
        on_token: &'a mut dyn FnMut(usize, &str),
    ) -> Result<Collect<'a>, PolicyError> {
        let slots = requests.iter().map(|r| r.seq + 1).max().unwrap_or(0);
        let mut index = vec![None; slots];
        for (i, r) in requests.iter().enumerate() {
            if index[r.seq].replace(i).is_some() {
                return Err(PolicyError::Llama(format!(
                    "two requests for slot {} in one call",
                    r.seq
                )));
            }
        }
        Ok(Collect {
            index,
            responses: vec![None; requests.len()],
            on_token,
        })
    }

    /// The answers in the requests' order; an error if one is missing.
    pub fn responses(self) -> Result<Vec<Response>, PolicyError> {
        self.responses
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.ok_or_else(|| PolicyError::Llama(format!("request {i} unanswered"))))
            .collect()
    }
}

impl Feed for Collect<'_> {
    fn token(&mut self, seq: usize, piece: &str) {
        if let Some(i) = self.index[seq] {
            (self.on_token)(i, piece);
        }
    }

    fn answered(&mut self, request: Request, response: Response) -> Next {
        if let Some(i) = self.index[request.seq] {
            self.responses[i] = Some(response);
        }
        Next::Done
    }
}

#[cfg(test)]
mod tests {
    use super::Sampling;

    #[test]
    fn sampling_settings_llama_cpp_cannot_take_are_refused() {
        assert!(Sampling::default().check().is_ok());
        let bad = [
            Sampling {
                temperature: f32::NAN,
                ..Sampling::default()
            },
            Sampling {
                temperature: -1.0,
                ..Sampling::default()
            },
            Sampling {
                repeat_temperature: f32::INFINITY,
                ..Sampling::default()
            },
            Sampling {
                top_p: 0.0,
                ..Sampling::default()
            },
            Sampling {
                top_p: f32::NAN,
                ..Sampling::default()
            },
        ];
        for s in bad {
            let err = s.check().unwrap_err();
            assert!(err.starts_with("sampling: "), "{err}");
        }
    }
}
