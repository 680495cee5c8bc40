//! A policy served over HTTP by any OpenAI-compatible chat-completions server: llama.cpp's
//! `llama-server`, vLLM, SGLang or a hosted API.
//!
//! The requests of one `respond` call go out concurrently (at most `concurrency` at a time), each
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
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

use super::local::grammar;
use super::{Policy, PolicyError, Request, Response, Sampling};
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
    /// With `Sampling::constrained`, send llama-server's `grammar` field (GBNF for `REASON:`
    /// then `ACTION: <an admissible command>`). Only llama-server understands it (OpenAI's API
    /// rejects unknown fields), so it is off by default and constraint is skipped.
    pub llama_grammar: bool,
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
            llama_grammar: false,
        }
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

    fn body(&self, request: &Request, sampling: &Sampling) -> Value {
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
            // The same seed per slot as the local backend; llama-server takes 32 bits.
            "seed": sampling.seed.wrapping_add(request.seq as u64) as u32,
            "max_tokens": sampling.max_tokens,
            "stream": false,
        });
        if self.config.llama_grammar && sampling.constrained && !request.admissible.is_empty() {
            // A server cannot cut a reason short the way the local backend does, so the grammar
            // bounds it: about four characters a token of the reason budget. Every token writes
            // at least one character, so raising `max_tokens` to the grammar's longest answer
            // means an answer is never cut off before its action.
            let max_reason = 4 * sampling.reason_budget() as usize;
            let longest_action = command::longest(&request.admissible);
            let longest = "REASON: ".len() + max_reason + "\nACTION: ".len() + longest_action;
            body["grammar"] = Value::String(grammar(&request.admissible, Some(max_reason)));
            body["max_tokens"] = json!(sampling.max_tokens.max(longest as u32));
        }
        body
    }

    /// One request, retried while the failure may pass.
    fn ask(
        &self,
        body: &Value,
        key: Option<&str>,
        cancel: &AtomicBool,
    ) -> Result<Response, PolicyError> {
        let attempts = self.config.retries.saturating_add(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let outcome = self.attempt(body, key);
            let wall_ms = started.elapsed().as_secs_f64() * 1e3;
            let failure = match outcome {
                Ok(reply) => {
                    let max_tokens = body["max_tokens"].as_u64().unwrap_or(u64::MAX);
                    return self.read_reply(&reply, key, wall_ms, max_tokens);
                }
                Err(failure) => failure,
            };
            if !failure.retry || attempt >= attempts || cancel.load(Ordering::Relaxed) {
                let mut message = failure.message;
                if attempt > 1 {
                    message.push_str(&format!(" (after {attempt} attempts)"));
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
        })
    }

    fn failure(&self, e: ureq::Error) -> Failure {
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
        Failure {
            message,
            retry,
            retry_after: None,
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
        let mut text = choice.message.content.unwrap_or_default();
        let bound = usize::try_from(max_tokens)
            .unwrap_or(usize::MAX)
            .saturating_mul(BYTES_PER_TOKEN);
        if text.len() > bound {
            text.truncate(text.floor_char_boundary(bound));
        }
        Ok(Response {
            text,
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
        let bodies: Vec<Value> = requests.iter().map(|r| self.body(r, sampling)).collect();
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
                let (bodies, next, failed, key) = (&bodies, &next, &failed, key.as_deref());
                scope.spawn(move || {
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { break };
                        let result = this.ask(body, key, failed);
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
}

/// Why an attempt failed, and whether trying again may help.
struct Failure {
    message: String,
    retry: bool,
    retry_after: Option<Duration>,
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
