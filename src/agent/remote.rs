//! A policy served over HTTP by any OpenAI-compatible chat-completions server: llama.cpp's
//! `llama-server`, vLLM, SGLang or a hosted API.
//!
//! The requests of one `respond` call go out concurrently (at most `concurrency` at a time), and
//! in `serve` a slot's next request goes out as soon as its last is answered. Each request is
//! retried with exponential backoff and jitter when the failure may pass: no connection, a
//! timeout, 429 or 5xx. Responses are not streamed: `on_token` gets each whole text as soon as
//! its request is answered.
//!
//! An answer is bounded: a body over [`MAX_ANSWER_BYTES`] is refused unread, and an answer's
//! text is cut at [`BYTES_PER_TOKEN`] bytes per token of the request's `max_tokens` (no
//! tokenizer of the server's model is at hand to count its tokens), so a server that ignores
//! `max_tokens` cannot fill the run store.
//!
//! The API key is read from the named environment variable at every call and lives only in the
//! `Authorization` header of the request being sent; it is never kept in the policy, its `Debug`
//! output or an error.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

use super::local::grammar;
use super::{Feed, Format, Next, Policy, PolicyError, Request, Response, Sampling};
use crate::env::command;

/// The largest answer body read from a server. A chat completion of a few hundred tokens is a
/// few kilobytes; llama-server's timings and usage add little.
pub const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// The bytes of answer text kept per token of `max_tokens`: four times the average of English
/// text (about four bytes a token), so an answer cut by it had run past `max_tokens`.
pub const BYTES_PER_TOKEN: usize = 16;

/// Where the server is and how to talk to it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteConfig {
    /// Up to and including the API version: `http://127.0.0.1:8080/v1`. `/chat/completions`
    /// is appended.
    pub base_url: String,
    /// Sent as `model`; llama-server ignores it and answers with the model it serves.
    pub model: String,
    /// Name of the environment variable that holds the API key, sent as `Authorization:
    /// Bearer <key>`. `None` sends no key (a local llama-server).
    pub api_key_env: Option<String>,
    /// Longest wait for one attempt, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// Attempts after the first one fails in a way that may pass.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further retry, up to `max_backoff`, and
    /// scaled by a random factor in [0.5, 1) so that clients that failed together do not
    /// retry together.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Most requests in flight at once.
    pub concurrency: usize,
    /// How answers are constrained: the request carries only fields the server accepts.
    pub structured: Structured,
    /// How long a server that cannot be reached (refused, reset: restarting) is waited for,
    /// retrying with backoff, before the request fails; on top of `retries`.
    pub wait_unreachable: Duration,
}

/// How a server is asked for an answer of the right shape ([`Format`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Structured {
    /// Ask the server: llama-server (it answers `/props`) gets `grammar`; any other gets
    /// `response_format`, and plain text from the first time it refuses that field.
    #[default]
    Auto,
    /// llama.cpp's `grammar` field (GBNF): llama-server only (OpenAI's API rejects it).
    Grammar,
    /// OpenAI's `response_format: {"type": "json_schema", ...}` (llama-server, vLLM, OpenAI).
    JsonSchema,
    /// Neither: the answer is parsed and validated as text, with retries.
    Text,
}

impl Structured {
    pub fn as_str(self) -> &'static str {
        match self {
            Structured::Auto => "auto",
            Structured::Grammar => "grammar",
            Structured::JsonSchema => "json-schema",
            Structured::Text => "text",
        }
    }
}

impl RemoteConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        RemoteConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key_env: None,
            timeout: Duration::from_secs(120),
            retries: 3,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            concurrency: 4,
            structured: Structured::Auto,
            wait_unreachable: Duration::from_secs(60),
        }
    }

    /// The server's root, where llama-server answers `/props`: the base URL without `/v1`.
    fn root(&self) -> &str {
        let base = self.base_url.trim_end_matches('/');
        base.strip_suffix("/v1").unwrap_or(base)
    }

    /// The chat-completions endpoint.
    pub fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

/// A policy answered by an OpenAI-compatible server.
pub struct RemotePolicy {
    config: RemoteConfig,
    url: String,
    agent: ureq::Agent,
    /// What `Structured::Auto` resolved to, once asked.
    resolved: Mutex<Option<Structured>>,
}

impl fmt::Debug for RemotePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemotePolicy")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RemotePolicy {
    pub fn new(config: RemoteConfig) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            // Statuses are answers to read (for the body excerpt and Retry-After), not errors.
            .http_status_as_error(false)
            .max_idle_connections_per_host(config.concurrency.max(1))
            .build()
            .into();
        RemotePolicy {
            url: config.endpoint(),
            resolved: Mutex::new(
                (config.structured != Structured::Auto).then_some(config.structured),
            ),
            config,
            agent,
        }
    }

    pub fn config(&self) -> &RemoteConfig {
        &self.config
    }

    fn error(&self, message: impl Into<String>) -> PolicyError {
        PolicyError::Remote {
            url: self.url.clone(),
            message: message.into(),
        }
    }

    /// Fails when the key's variable is named but not set: before anything is sent.
    pub fn check_key(&self) -> Result<(), PolicyError> {
        self.api_key().map(drop)
    }

    /// The key, read now; `None` when no variable is configured.
    fn api_key(&self) -> Result<Option<String>, PolicyError> {
        let Some(name) = &self.config.api_key_env else {
            return Ok(None);
        };
        match std::env::var(name) {
            Ok(key) if !key.is_empty() => Ok(Some(key)),
            Ok(_) | Err(std::env::VarError::NotPresent) => {
                Err(self.error(format!("the API key variable {name} is not set")))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(self.error(format!("the API key variable {name} is not valid UTF-8")))
            }
        }
    }

    /// How this server takes constraints: as configured, or for `Auto` what `/props` says (asked
    /// once). llama-server answers `/props` with its generation settings; a server that does
    /// not is taken to speak OpenAI's API.
    pub fn structured(&self, key: Option<&str>) -> Structured {
        let mut resolved = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = *resolved {
            return s;
        }
        let url = format!("{}/props", self.config.root());
        let mut request = self
            .agent
            .get(&url)
            .config()
            .timeout_global(Some(self.config.timeout.min(Duration::from_secs(10))))
            .build();
        if let Some(key) = key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let llama = request.call().ok().is_some_and(|mut r| {
            r.status().is_success()
                && r.body_mut()
                    .read_json::<Value>()
                    .is_ok_and(|v| v.get("default_generation_settings").is_some())
        });
        let s = if llama {
            Structured::Grammar
        } else {
            Structured::JsonSchema
        };
        *resolved = Some(s);
        s
    }

    /// A server found not to take `response_format` (it refused a request that had one) is
    /// sent plain text from now on; only when `Auto` chose `response_format`.
    fn downgrade(&self) -> bool {
        if self.config.structured != Structured::Auto {
            return false;
        }
        let mut resolved = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        let was = *resolved == Some(Structured::JsonSchema);
        if was {
            *resolved = Some(Structured::Text);
        }
        was
    }

    fn body(&self, request: &Request, sampling: &Sampling, structured: Structured) -> Value {
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| {
                let role = m.role.as_str();
                json!({ "role": role, "content": m.content })
            })
            .collect();
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "temperature": request.temperature.unwrap_or(sampling.temperature),
            "top_p": sampling.top_p,
            // The same seed as the local backend; llama-server takes 32 bits.
            "seed": request.seed.unwrap_or_else(|| sampling.seed.wrapping_add(request.seq as u64)) as u32,
            "max_tokens": sampling.max_tokens,
            "stream": false,
        });
        match (&request.format, structured) {
            (Format::React, _) if !sampling.constrained || request.admissible.is_empty() => {}
            (Format::React, Structured::Grammar) => {
                // A server cannot cut a reason short the way the local backend does, so the
                // grammar bounds it: about four characters a token of the reason budget. Every
                // token writes at least one character, so raising `max_tokens` to the grammar's
                // longest answer means an answer is never cut off before its action.
                let max_reason = 4 * sampling.reason_budget() as usize;
                let longest_action = command::longest(&request.admissible);
                let longest = "REASON: ".len() + max_reason + "\nACTION: ".len() + longest_action;
                body["grammar"] = Value::String(grammar(&request.admissible, Some(max_reason)));
                body["max_tokens"] = json!(sampling.max_tokens.max(longest as u32));
            }
            (Format::React, Structured::JsonSchema) => {
                // As with the grammar: the reason bounded, `max_tokens` raised to the longest
                // answer, so that the action is always written.
                let max_reason = 4 * sampling.reason_budget() as usize;
                let longest_action = command::longest(&request.admissible);
                let longest = r#"{"reason": "", "action": ""}"#.len() + max_reason + longest_action;
                body["response_format"] =
                    response_format("step", &react_schema(&request.admissible, max_reason));
                body["max_tokens"] = json!(sampling.max_tokens.max(longest as u32));
            }
            (Format::Json { grammar, .. }, Structured::Grammar) => {
                body["grammar"] = Value::String(grammar.to_string());
            }
            (Format::Json { name, schema, .. }, Structured::JsonSchema) => {
                body["response_format"] = response_format(name, schema);
            }
            _ => {}
        }
        body
    }

    /// One request, retried while the failure may pass: `retries` times, and for as long as
    /// `wait_unreachable` while the server cannot be reached at all.
    fn ask(
        &self,
        request: &Request,
        sampling: &Sampling,
        key: Option<&str>,
        cancel: &AtomicBool,
    ) -> Result<Response, PolicyError> {
        let mut structured = self.structured(key);
        let mut body = self.body(request, sampling, structured);
        let attempts = self.config.retries.saturating_add(1);
        let mut attempt = 0;
        let first = Instant::now();
        loop {
            attempt += 1;
            let started = Instant::now();
            let outcome = self.attempt(&body, key);
            let wall_ms = started.elapsed().as_secs_f64() * 1e3;
            let failure = match outcome {
                Ok(reply) => {
                    let react_json =
                        request.format == Format::React && body.get("response_format").is_some();
                    let max_tokens = body["max_tokens"].as_u64().unwrap_or(u64::MAX);
                    return self.read_reply(&reply, key, wall_ms, react_json, max_tokens);
                }
                Err(failure) => failure,
            };
            // A server that refuses `response_format` is asked again in plain text (once).
            if matches!(failure.status, Some(400 | 422))
                && body.get("response_format").is_some()
                && self.downgrade()
            {
                structured = Structured::Text;
                body = self.body(request, sampling, structured);
                attempt -= 1;
                continue;
            }
            let waiting = failure.unreachable && first.elapsed() < self.config.wait_unreachable;
            let give_up = !waiting && (!failure.retry || attempt >= attempts);
            if give_up || cancel.load(Ordering::Relaxed) {
                let mut message = failure.message;
                if attempt > 1 {
                    message.push_str(&format!(
                        " (after {attempt} attempts in {:.1} s)",
                        first.elapsed().as_secs_f64()
                    ));
                }
                return Err(self.error(message));
            }
            thread::sleep(self.delay(attempt, failure.retry_after));
        }
    }

    fn attempt(&self, body: &Value, key: Option<&str>) -> Result<String, Failure> {
        let mut request = self
            .agent
            .post(&self.url)
            .header("Accept", "application/json");
        if let Some(key) = key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let mut response = request.send_json(body).map_err(|e| self.failure(e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => Failure {
                    message: format!("answer of more than {MAX_ANSWER_BYTES} bytes; refused"),
                    retry: false,
                    retry_after: None,
                    status: None,
                    unreachable: false,
                },
                e => self.failure(e),
            })?;
        if status.is_success() {
            return Ok(text);
        }
        let code = status.as_u16();
        let reason = status.canonical_reason().unwrap_or("");
        Err(Failure {
            message: format!("HTTP {code} {reason}: {}", excerpt(&text, key)),
            retry: code == 429 || status.is_server_error(),
            retry_after,
            status: Some(code),
            unreachable: false,
        })
    }

    fn failure(&self, e: ureq::Error) -> Failure {
        use std::io::ErrorKind as K;
        use ureq::Error as E;
        let (message, retry) = match &e {
            E::Timeout(_) => (
                format!("no answer within {:?} (timed out)", self.config.timeout),
                true,
            ),
            E::Io(io) => (connection_message(io), true),
            E::ConnectionFailed => ("could not connect".to_string(), true),
            // A server that closes mid-answer (restarting, overloaded) may answer next time.
            E::Protocol(_) => (format!("broken answer: {e}"), true),
            E::HostNotFound => ("host not found".to_string(), false),
            _ => (e.to_string(), false),
        };
        // Nobody listening, or the connection dropped: a server restarting.
        let unreachable = match &e {
            E::ConnectionFailed => true,
            E::Io(io) => matches!(
                io.kind(),
                K::ConnectionRefused | K::ConnectionReset | K::ConnectionAborted
            ),
            _ => false,
        };
        Failure {
            message,
            retry,
            retry_after: None,
            status: None,
            unreachable,
        }
    }

    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .config
            .backoff
            .saturating_mul(1 << (attempt - 1).min(16));
        let jittered = exp
            .min(self.config.max_backoff)
            .mul_f64(rand::rng().random_range(0.5..1.0));
        // A server that says when to come back knows better, within reason.
        match retry_after {
            Some(after) => after.min(self.config.max_backoff).max(jittered),
            None => jittered,
        }
    }

    fn read_reply(
        &self,
        text: &str,
        key: Option<&str>,
        wall_ms: f64,
        react_json: bool,
        max_tokens: u64,
    ) -> Result<Response, PolicyError> {
        let reply: Reply = serde_json::from_str(text)
            .map_err(|e| self.error(format!("unreadable answer ({e}): {}", excerpt(text, key))))?;
        let Some(choice) = reply.choices.into_iter().next() else {
            return Err(self.error(format!("answer has no choices: {}", excerpt(text, key))));
        };
        let usage = reply.usage.unwrap_or_default();
        let cached = usage
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .or(reply.timings.as_ref().and_then(|t| t.cache_n))
            .unwrap_or(0);
        // llama-server reports its prompt time; the rest of the wall time counts as generation.
        let prompt_ms = reply
            .timings
            .and_then(|t| t.prompt_ms)
            .unwrap_or(0.0)
            .clamp(0.0, wall_ms);
        let mut content = choice.message.content.unwrap_or_default();
        let bound = usize::try_from(max_tokens)
            .unwrap_or(usize::MAX)
            .saturating_mul(BYTES_PER_TOKEN);
        if content.len() > bound {
            content.truncate(content.floor_char_boundary(bound));
        }
        if react_json {
            content = react_from_json(&content).unwrap_or(content);
        }
        Ok(Response {
            text: content,
            prompt_tokens: usage.prompt_tokens,
            cached_tokens: cached,
            gen_tokens: usage.completion_tokens,
            prompt_ms,
            gen_ms: wall_ms - prompt_ms,
        })
    }
}

impl Policy for RemotePolicy {
    fn describe(&self) -> String {
        format!("{} @ {}", self.config.model, self.config.base_url)
    }

    fn respond(
        &mut self,
        requests: &[Request],
        sampling: &Sampling,
        on_token: &mut dyn FnMut(usize, &str),
    ) -> Result<Vec<Response>, PolicyError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.api_key()?;
        let next = AtomicUsize::new(0);
        // Set on the first failure: the batch fails, so the requests not yet sent are not.
        let failed = AtomicBool::new(false);
        let workers = self.config.concurrency.clamp(1, requests.len());
        let mut out: Vec<Option<Response>> = vec![None; requests.len()];
        let mut first_error: Option<(usize, PolicyError)> = None;
        let this = &*self;
        thread::scope(|scope| {
            let (tx, rx) = mpsc::channel();
            for _ in 0..workers {
                let tx = tx.clone();
                let (next, failed, key) = (&next, &failed, key.as_deref());
                scope.spawn(move || {
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(request) = requests.get(i) else {
                            break;
                        };
                        let result = this.ask(request, sampling, key, failed);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        if tx.send((i, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            // The callback is not Send; it runs here, as each answer arrives.
            for (i, result) in rx {
                match result {
                    Ok(response) => {
                        on_token(i, &response.text);
                        out[i] = Some(response);
                    }
                    Err(e) => {
                        if first_error.as_ref().is_none_or(|(j, _)| i < *j) {
                            first_error = Some((i, e));
                        }
                    }
                }
            }
        });
        if let Some((_, e)) = first_error {
            return Err(e);
        }
        Ok(out
            .into_iter()
            .map(|r| r.expect("every request is answered when none failed"))
            .collect())
    }

    /// Continuous batching over HTTP: `concurrency` workers take requests as they come, and a
    /// slot's next request is queued as soon as its last is answered, so a server with its own
    /// continuous batching (llama-server's `--parallel`) always has work.
    fn serve(
        &mut self,
        first: Vec<Request>,
        sampling: &Sampling,
        feed: &mut dyn Feed,
    ) -> Result<(), PolicyError> {
        if first.is_empty() {
            return Ok(());
        }
        let key = self.api_key()?;
        // Set on a failure or a stop: requests being retried give up.
        let stop = AtomicBool::new(false);
        let this = &*self;
        let (jobs, queue) = mpsc::channel::<Request>();
        let queue = Mutex::new(queue);
        let (tx, answers) = mpsc::channel();
        thread::scope(|scope| {
            for _ in 0..self.config.concurrency.clamp(1, first.len()) {
                let tx = tx.clone();
                let (queue, stop, key) = (&queue, &stop, key.as_deref());
                scope.spawn(move || {
                    loop {
                        let job = queue
                            .lock()
                            .map_err(|_| ())
                            .and_then(|q| q.recv().map_err(|_| ()));
                        let Ok(request) = job else { break };
                        let result = this.ask(&request, sampling, key, stop);
                        if result.is_err() {
                            stop.store(true, Ordering::Relaxed);
                        }
                        if tx.send((request, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            let mut waiting = first.len();
            for request in first {
                let _ = jobs.send(request);
            }
            let mut outcome = Ok(());
            while waiting > 0 {
                let Ok((request, result)) = answers.recv() else {
                    break;
                };
                waiting -= 1;
                let response = match result {
                    Ok(response) => response,
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                };
                feed.token(request.seq, &response.text);
                match feed.answered(request, response) {
                    Next::Ask(next) => {
                        let _ = jobs.send(next);
                        waiting += 1;
                    }
                    Next::Done => {}
                    Next::Stop => break,
                }
            }
            stop.store(true, Ordering::Relaxed);
            drop(jobs);
            outcome
        })
    }
}

/// Why an attempt failed, and whether trying again may help.
struct Failure {
    message: String,
    retry: bool,
    retry_after: Option<Duration>,
    /// The HTTP status, when the server answered.
    status: Option<u16>,
    /// The server could not be reached: waited for up to `wait_unreachable`.
    unreachable: bool,
}

/// OpenAI's structured-output field for `schema`. Not strict: OpenAI's strict mode refuses
/// the bounds leap's schemas set (`maxLength`, `minItems`), and every answer is checked here.
fn response_format(name: &str, schema: &Value) -> Value {
    json!({
        "type": "json_schema",
        "json_schema": { "name": name, "schema": schema, "strict": false },
    })
}

/// The JSON shape of one `REASON:`/`ACTION:` answer, for servers that take a schema but not a
/// grammar: the action one of the admissible commands when they are all literal.
fn react_schema(admissible: &[String], max_reason: usize) -> Value {
    let literal = admissible
        .iter()
        .all(|a| command::Template::of(a).is_none());
    let action = if literal {
        json!({ "type": "string", "enum": admissible })
    } else {
        json!({ "type": "string" })
    };
    json!({
        "type": "object",
        "properties": {
            "reason": { "type": "string", "minLength": 1, "maxLength": max_reason },
            "action": action,
        },
        "required": ["reason", "action"],
        "additionalProperties": false,
    })
}

/// A `{"reason", "action"}` answer in the student's own form, `REASON:` then `ACTION:`.
fn react_from_json(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Step {
        reason: String,
        action: String,
    }
    let step: Step = serde_json::from_str(text.trim()).ok()?;
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(format!(
        "REASON: {}\nACTION: {}",
        one_line(&step.reason),
        one_line(&step.action)
    ))
}

fn connection_message(io: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match io.kind() {
        K::ConnectionRefused => "connection refused (is the server running?)".to_string(),
        K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof => {
            format!("connection dropped by the server ({io})")
        }
        K::TimedOut => "timed out".to_string(),
        _ => format!("connection failed: {io}"),
    }
}

/// The start of a body on one line, for an error message. A server that echoes the request
/// back must not put the key into an error, not even part of it.
fn excerpt(body: &str, key: Option<&str>) -> String {
    const MAX: usize = 200;
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let flat = match key {
        Some(key) if !key.is_empty() => flat.replace(key, "<api key>"),
        _ => flat,
    };
    match flat.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None if flat.is_empty() => "(empty body)".to_string(),
        None => flat,
    }
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
    /// llama-server's own measurements.
    timings: Option<Timings>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
    prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Deserialize)]
struct PromptTokensDetails {
    cached_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct Timings {
    prompt_ms: Option<f64>,
    cache_n: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_one_short_line() {
        assert_eq!(
            excerpt("  {\"error\":\n  \"bad\"}  ", None),
            "{\"error\": \"bad\"}"
        );
        assert_eq!(excerpt("", None), "(empty body)");
        let long = "é".repeat(500);
        assert_eq!(excerpt(&long, None).chars().count(), 201);
    }

    #[test]
    fn backoff_doubles_within_bounds() {
        let mut config = RemoteConfig::new("http://127.0.0.1:1/v1/", "m");
        config.backoff = Duration::from_millis(100);
        config.max_backoff = Duration::from_millis(350);
        let policy = RemotePolicy::new(config);
        assert_eq!(policy.url, "http://127.0.0.1:1/v1/chat/completions");
        for (attempt, lo, hi) in [(1, 50, 100), (2, 100, 200), (3, 175, 350), (9, 175, 350)] {
            let d = policy.delay(attempt, None).as_millis();
            assert!((lo..hi).contains(&d), "attempt {attempt}: {d} ms");
        }
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(60))),
            Duration::from_millis(350)
        );
    }

    #[test]
    fn key_is_redacted_before_the_cut() {
        let body = format!("{}Bearer sk-0123456789", "x".repeat(190));
        let shown = excerpt(&body, Some("sk-0123456789"));
        assert!(!shown.contains("sk-0"), "{shown}");
        assert!(shown.ends_with("Bearer <ap…"), "{shown}");
    }
}
