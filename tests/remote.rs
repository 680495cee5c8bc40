//! The remote backend: against a real llama-server (built once by `just llama-tools`) serving
//! the tiny model and the default student, and against tiny local listeners that misbehave on
//! purpose (503, stalls, echoing the key). Everything listens on 127.0.0.1 only.
//!
//! The llama-server binary is `$LEAP_LLAMA_SERVER`, else
//! `${XDG_CACHE_HOME:-~/.cache}/leap/llama-tools/bin/llama-server`; its absence fails the test.

mod common;
use common::default_model;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use leap::agent::remote::{RemoteConfig, RemotePolicy, Structured};
use leap::agent::{Message, Policy, PolicyError, Request, Response, Role, Sampling};
use leap::model::{TinySpec, write_tiny};
use leap::scenario::Scenario;
use leap::store::{EpisodeFilter, LabelFilter, Order, Store};
use leap::teacher::llm::{LlmSettings, TeacherMode};
use leap::teacher::{CorrectionReport, TeacherSpec, correct_and_store};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// A real llama-server (tests/common/llama_server.rs).

#[path = "common/llama_server.rs"]
mod llama_server;
use llama_server::{LlamaServer, free_port};

fn request(seq: usize, user: &str) -> Request {
    Request {
        format: Default::default(),
        seq,
        messages: vec![
            Message::new(
                Role::System,
                "You are in a kitchen. Answer with REASON: then ACTION:.",
            ),
            Message::new(Role::User, user),
        ],
        admissible: vec!["take mug".into(), "open fridge".into(), "look".into()],
        temperature: None,
        seed: None,
    }
}

/// Answers the requests, checking that each streamed text is the returned one.
fn respond(policy: &mut RemotePolicy, requests: &[Request], sampling: &Sampling) -> Vec<Response> {
    let mut streamed = vec![String::new(); requests.len()];
    let out = policy
        .respond(requests, sampling, &mut |i, piece| {
            streamed[i].push_str(piece)
        })
        .unwrap();
    assert_eq!(out.len(), requests.len());
    for (r, s) in out.iter().zip(&streamed) {
        assert_eq!(&r.text, s);
    }
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Asks the same thing three times (the first with a cold cache): the last answer and the
/// wall times in milliseconds.
fn timed(
    policy: &mut RemotePolicy,
    request: &Request,
    sampling: &Sampling,
) -> (Response, Vec<f64>) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let started = Instant::now();
        last = respond(policy, std::slice::from_ref(request), sampling).pop();
        times.push(ms(started.elapsed()));
    }
    (last.unwrap(), times)
}

#[test]
fn llama_server_answers_a_batch_of_the_tiny_model_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.gguf");
    write_tiny(&default_model(), &tiny, &TinySpec::default()).unwrap();
    let server = LlamaServer::start(&tiny);
    let mut policy = server.policy();
    let sampling = Sampling {
        max_tokens: 8,
        constrained: false,
        ..Sampling::default()
    };

    let (one, times) = timed(&mut policy, &request(0, "look"), &sampling);
    eprintln!("tiny model, a short completion, 3 times: {times:.0?} ms ({one:?})");

    // Each prompt is longer than the one before, so prompt token counts show the order.
    let requests: Vec<Request> = (0..6)
        .map(|i| request(i, &format!("look{}", " around the kitchen".repeat(i + 1))))
        .collect();
    let started = Instant::now();
    let out = respond(&mut policy, &requests, &sampling);
    eprintln!("tiny model, batch of 6: {:.0} ms", ms(started.elapsed()));
    for pair in out.windows(2) {
        assert!(pair[0].prompt_tokens < pair[1].prompt_tokens, "{out:#?}");
    }
    for r in &out {
        assert!(r.prompt_tokens > 10, "{r:?}");
        assert!((1..=8).contains(&r.gen_tokens), "{r:?}");
        assert!(r.gen_ms > 0.0, "{r:?}");
    }
}

#[test]
fn llama_server_constrains_the_default_model_with_a_grammar() {
    let server = LlamaServer::start(&default_model());
    let mut policy = server.policy();
    assert!(format!("{policy:?}").contains(&server.base_url));

    let short = Sampling {
        max_tokens: 16,
        constrained: false,
        ..Sampling::default()
    };
    let (one, times) = timed(&mut policy, &request(0, "Say hello."), &short);
    eprintln!("default model, a short completion, 3 times: {times:.0?} ms ({one:?})");
    assert!(!one.text.is_empty() && one.gen_tokens > 0, "{:?}", one);

    let sampling = Sampling {
        max_tokens: 128,
        constrained: true,
        ..Sampling::default()
    };
    let requests: Vec<Request> = ["You are thirsty.", "You want milk.", "Look around."]
        .iter()
        .enumerate()
        .map(|(i, u)| request(i, u))
        .collect();
    for r in respond(&mut policy, &requests, &sampling) {
        let (reason, _) = reason_and_action(&r.text);
        assert!(!reason.is_empty() && !reason.contains('\n'), "{:?}", r.text);
    }

    // A budget far too small for what these prompts make the model write (unbounded, the first
    // one rambles past 40 tokens without an action): the grammar bounds the reason (4
    // characters a token of the 8-token reason budget) so that the action still comes.
    let tight = Sampling {
        max_tokens: 40,
        ..sampling
    };
    assert_eq!(tight.reason_budget(), 8);
    let rambling: Vec<Request> = [
        "Describe the kitchen in great detail, every shelf and every object, before you act.",
        "Write a long story about a mug, then act.",
    ]
    .iter()
    .enumerate()
    .map(|(i, u)| request(i, u))
    .collect();
    for r in respond(&mut policy, &rambling, &tight) {
        let (reason, _) = reason_and_action(&r.text);
        assert!((1..=32).contains(&reason.chars().count()), "{:?}", r.text);
    }
}

/// The reason and the action of a constrained answer, which must be one of the test's three.
fn reason_and_action(text: &str) -> (&str, &str) {
    let (reason, action) = text
        .strip_prefix("REASON: ")
        .and_then(|t| t.split_once("\nACTION: "))
        .unwrap_or_else(|| panic!("not REASON/ACTION: {text:?}"));
    assert!(
        ["take mug", "open fridge", "look"].contains(&action),
        "{text:?}"
    );
    (reason, action)
}

// ---------------------------------------------------------------------------------------------
// A fake server: answers each request as its handler says, records what it saw.

/// One request as the fake server read it.
#[derive(Clone, Debug)]
struct Seen {
    head: String,
    body: String,
}

impl Seen {
    fn last_user_message(&self) -> String {
        let v: Value = serde_json::from_str(&self.body).unwrap();
        v["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// What to do with the `n`-th request (counting from 0).
enum Answer {
    Reply {
        status: u16,
        headers: &'static str,
        body: String,
    },
    /// Keep the connection open without answering.
    Stall,
}

type Handler = dyn Fn(usize, &Seen) -> Answer + Send + Sync;

struct FakeServer {
    base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    max_in_flight: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FakeServer {
    fn start(handler: impl Fn(usize, &Seen) -> Answer + Send + Sync + 'static) -> FakeServer {
        FakeServer::start_on(0, handler)
    }

    /// Listening on `port` (0: any free one).
    fn start_on(
        port: u16,
        handler: impl Fn(usize, &Seen) -> Answer + Send + Sync + 'static,
    ) -> FakeServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let accept = {
            let (seen, max_in_flight, stop) = (seen.clone(), max_in_flight.clone(), stop.clone());
            let in_flight = Arc::new(AtomicUsize::new(0));
            thread::spawn(move || {
                let started = Instant::now();
                let mut conns = Vec::new();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (seen, stop, handler) =
                                (seen.clone(), stop.clone(), handler.clone());
                            let (in_flight, max_in_flight) =
                                (in_flight.clone(), max_in_flight.clone());
                            conns.push(thread::spawn(move || {
                                serve(stream, &seen, &stop, &*handler, &in_flight, &max_in_flight)
                            }));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(2))
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                }
                stop.store(true, Ordering::Relaxed);
                for c in conns {
                    let _ = c.join();
                }
            })
        };
        FakeServer {
            base_url,
            seen,
            max_in_flight,
            stop,
            accept: Some(accept),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn config(&self) -> RemoteConfig {
        let mut config = RemoteConfig::new(&self.base_url, "fake");
        config.timeout = Duration::from_secs(5);
        config.retries = 0;
        config.backoff = Duration::from_millis(10);
        // Asked as plain text unless a test says otherwise: `Auto` would first ask `/props`.
        config.structured = Structured::Text;
        config
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    seen: &Mutex<Vec<Seen>>,
    stop: &AtomicBool,
    handler: &Handler,
    in_flight: &AtomicUsize,
    max_in_flight: &AtomicUsize,
) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let len = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = Seen {
        head,
        body: String::from_utf8(body).unwrap(),
    };
    let n = {
        let mut seen = seen.lock().unwrap();
        seen.push(request.clone());
        seen.len() - 1
    };
    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    max_in_flight.fetch_max(now, Ordering::SeqCst);
    match handler(n, &request) {
        Answer::Reply {
            status,
            headers,
            body,
        } => {
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\n{headers}\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Answer::Stall => {
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(10) {
                thread::sleep(Duration::from_millis(5));
            }
        }
    }
    in_flight.fetch_sub(1, Ordering::SeqCst);
}

fn completion(text: &str) -> String {
    json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    })
    .to_string()
}

fn ok(text: &str) -> Answer {
    Answer::Reply {
        status: 200,
        headers: "",
        body: completion(text),
    }
}

fn remote_message(e: PolicyError) -> (String, String) {
    match e {
        PolicyError::Remote { url, message } => (url, message),
        other => panic!("not a remote error: {other:?}"),
    }
}

#[test]
fn a_batch_goes_out_at_most_n_at_a_time_and_comes_back_in_order() {
    let server = FakeServer::start(|_, seen| {
        thread::sleep(Duration::from_millis(150));
        ok(&format!("echo: {}", seen.last_user_message()))
    });
    let mut config = server.config();
    config.concurrency = 3;
    let mut policy = RemotePolicy::new(config);
    let requests: Vec<Request> = (0..7).map(|i| request(i, &format!("prompt {i}"))).collect();
    let sampling = Sampling {
        temperature: 0.7,
        top_p: 0.9,
        seed: 40,
        max_tokens: 12,
        ..Sampling::default()
    };
    let started = Instant::now();
    let out = respond(&mut policy, &requests, &sampling);
    let elapsed = started.elapsed();
    for (i, r) in out.iter().enumerate() {
        assert_eq!(r.text, format!("echo: prompt {i}"));
        assert_eq!((r.prompt_tokens, r.gen_tokens), (11, 3));
        assert!(r.gen_ms >= 100.0, "{r:?}");
    }
    assert_eq!(server.max_in_flight.load(Ordering::SeqCst), 3);
    // 7 requests 3 at a time is 3 rounds of 150 ms, not 7.
    assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");

    let seen = server.seen();
    assert_eq!(seen.len(), 7);
    let body: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body["model"], "fake");
    assert_eq!(body["max_tokens"], 12);
    assert_eq!(body["stream"], false);
    assert!((body["temperature"].as_f64().unwrap() - 0.7).abs() < 1e-6);
    assert!((body["top_p"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(body["messages"][0]["role"], "system");
    // The grammar is llama-server's extension, off unless asked for.
    assert!(body.get("grammar").is_none());
    assert!(!seen[0].head.to_ascii_lowercase().contains("authorization"));
    let mut seeds: Vec<u64> = seen
        .iter()
        .map(|s| {
            serde_json::from_str::<Value>(&s.body).unwrap()["seed"]
                .as_u64()
                .unwrap()
        })
        .collect();
    seeds.sort();
    assert_eq!(
        seeds,
        (40..47).collect::<Vec<_>>(),
        "one seed per slot, as locally"
    );
}

#[test]
fn a_grammar_is_sent_when_asked_for() {
    let server = FakeServer::start(|_, _| ok("REASON: thirsty\nACTION: take mug"));
    let mut config = server.config();
    config.structured = Structured::Grammar;
    let mut policy = RemotePolicy::new(config);
    respond(&mut policy, &[request(0, "go")], &Sampling::default());
    let body: Value = serde_json::from_str(&server.seen()[0].body).unwrap();
    let grammar = body["grammar"].as_str().unwrap();
    assert!(
        grammar.contains("\"take mug\"") && grammar.contains("ACTION: "),
        "{grammar}"
    );
}

#[test]
fn server_errors_and_429_are_retried_until_an_answer() {
    let server = FakeServer::start(|n, _| match n {
        0 => Answer::Reply {
            status: 503,
            headers: "",
            body: "loading model".into(),
        },
        1 => Answer::Reply {
            status: 429,
            headers: "Retry-After: 0\r\n",
            body: "slow down".into(),
        },
        _ => ok("fine"),
    });
    let mut config = server.config();
    config.retries = 3;
    let mut policy = RemotePolicy::new(config);
    let out = respond(&mut policy, &[request(0, "go")], &Sampling::default());
    assert_eq!(out[0].text, "fine");
    assert_eq!(server.seen().len(), 3);
}

#[test]
fn retries_give_up_with_the_last_status_and_body() {
    let server = FakeServer::start(|_, _| Answer::Reply {
        status: 502,
        headers: "",
        body: "upstream\n   gone".into(),
    });
    let mut config = server.config();
    config.retries = 2;
    let mut policy = RemotePolicy::new(config);
    let (url, message) = remote_message(
        policy
            .respond(&[request(0, "go")], &Sampling::default(), &mut |_, _| {})
            .unwrap_err(),
    );
    assert_eq!(url, format!("{}/chat/completions", server.base_url));
    assert!(
        message.contains("HTTP 502") && message.contains("upstream gone"),
        "{message}"
    );
    assert!(message.contains("after 3 attempts"), "{message}");
    assert_eq!(server.seen().len(), 3);
}

#[test]
fn client_errors_are_not_retried() {
    let server = FakeServer::start(|_, _| Answer::Reply {
        status: 400,
        headers: "",
        body: r#"{"error": {"message": "max_tokens is too large"}}"#.into(),
    });
    let mut config = server.config();
    config.retries = 3;
    let mut policy = RemotePolicy::new(config);
    let err = policy
        .respond(&[request(0, "go")], &Sampling::default(), &mut |_, _| {})
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("HTTP 400") && text.contains("max_tokens is too large"),
        "{text}"
    );
    assert!(text.starts_with(&server.base_url), "{text}");
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn a_stalled_server_times_out_with_a_clear_error() {
    let server = FakeServer::start(|_, _| Answer::Stall);
    let mut config = server.config();
    config.timeout = Duration::from_millis(300);
    config.retries = 1;
    let mut policy = RemotePolicy::new(config);
    let started = Instant::now();
    let err = policy
        .respond(&[request(0, "go")], &Sampling::default(), &mut |_, _| {})
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let (url, message) = remote_message(err);
    assert!(url.starts_with(&server.base_url), "{url}");
    assert!(
        message.contains("timed out") && message.contains("300ms"),
        "{message}"
    );
    assert!(message.contains("after 2 attempts"), "{message}");
    assert_eq!(server.seen().len(), 2);
}

#[test]
fn a_refused_connection_names_the_url() {
    let base_url = format!("http://127.0.0.1:{}/v1", free_port());
    let mut config = RemoteConfig::new(&base_url, "nobody");
    config.retries = 2;
    config.backoff = Duration::from_millis(5);
    config.wait_unreachable = Duration::ZERO;
    let mut policy = RemotePolicy::new(config);
    let started = Instant::now();
    let err = policy
        .respond(&[request(0, "go")], &Sampling::default(), &mut |_, _| {})
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{base_url}/chat/completions: ")),
        "{text}"
    );
    assert!(
        text.contains("connection refused") && text.contains("after 3 attempts"),
        "{text}"
    );
}

#[test]
fn a_missing_key_variable_is_an_error_before_anything_is_sent() {
    let server = FakeServer::start(|_, _| ok("never"));
    let mut config = server.config();
    config.api_key_env = Some("LEAP_TEST_REMOTE_KEY_THAT_IS_NEVER_SET".into());
    let mut policy = RemotePolicy::new(config);
    let text = policy
        .respond(&[request(0, "go")], &Sampling::default(), &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("LEAP_TEST_REMOTE_KEY_THAT_IS_NEVER_SET is not set"),
        "{text}"
    );
    assert!(server.seen().is_empty());
}

const KEY_ENV: &str = "LEAP_TEST_REMOTE_KEY";
const KEY: &str = "sk-leap-test-0123456789abcdef";

/// Setting an environment variable while other test threads run is unsound, so the check runs in
/// a copy of this test binary that starts with the key in its environment.
#[test]
fn the_api_key_goes_out_as_a_bearer_header_and_nowhere_else() {
    if std::env::var(KEY_ENV).as_deref() == Ok(KEY) {
        // This is the copy with the key set.
        return api_key_checks();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_api_key_goes_out_as_a_bearer_header_and_nowhere_else",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KEY_ENV, KEY)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

/// Runs in the copy of the test binary that has the key in its environment.
fn api_key_checks() {
    // The second request is refused with the key echoed back, as a careless proxy might.
    let server = FakeServer::start(|n, seen| match n {
        0 => ok("hi"),
        _ => {
            let auth = seen
                .head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("authorization"));
            Answer::Reply {
                status: 401,
                headers: "",
                body: format!("bad key: {auth:?}"),
            }
        }
    });
    let mut config = server.config();
    config.api_key_env = Some(KEY_ENV.into());
    let mut policy = RemotePolicy::new(config);
    respond(&mut policy, &[request(0, "go")], &Sampling::default());
    let head = &server.seen()[0].head;
    let auth = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
        .unwrap_or_else(|| panic!("no Authorization header in\n{head}"));
    assert_eq!(
        auth.split_once(':').unwrap().1.trim(),
        format!("Bearer {KEY}")
    );

    let err = policy
        .respond(&[request(0, "go")], &Sampling::default(), &mut |_, _| {})
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("HTTP 401") && text.contains("<api key>"),
        "{text}"
    );
    for shown in [
        text,
        format!("{err:?}"),
        format!("{policy:?}"),
        format!("{:?}", policy.config()),
        policy.describe(),
    ] {
        assert!(!shown.contains(KEY), "the key leaked into: {shown}");
    }
    assert!(format!("{policy:?}").contains(KEY_ENV));

    // A teacher behind a server that echoes the key in its refusals: the failures it records
    // name the refusal, never the key, and nothing in the run's files holds it.
    let echo = FakeServer::start(|_, seen| Answer::Reply {
        status: 400,
        headers: "",
        body: format!("refused: {}", seen.head.replace("\r\n", " ")),
    });
    let mut config = echo.config();
    config.api_key_env = Some(KEY_ENV.into());
    let (run, scenarios) = played(2);
    let reports = correct_all(
        run.path(),
        &scenarios,
        &remote_teacher(config, "keyed", TeacherMode::Trajectory),
    );
    assert!(reports.iter().all(|r| r.failures == r.steps), "{reports:?}");
    let store = Store::open_existing(run.path()).unwrap();
    let summaries = format!("{:?}", store.correction_summaries().unwrap());
    assert!(summaries.contains("<api key>"), "{summaries}");
    drop(store);
    for entry in std::fs::read_dir(run.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
                "the key is in {}",
                path.display()
            );
        }
    }
}

/// `leap rollout --server`: the student plays through a real llama-server, and every step lands
/// in the run database like a local rollout's.
#[test]
fn leap_rollout_plays_through_a_real_llama_server() {
    let dir = tempfile::tempdir().unwrap();
    // The default model: random weights would ramble past the token limit, and a server cannot
    // be made to cut a reason short the way the local backend does.
    let server = LlamaServer::start(&default_model());
    let run = dir.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_leap"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["rollout", "--run"])
        .arg(&run)
        .args([
            "--scenarios",
            "scenarios/showcase.yaml",
            "--server",
            &server.base_url,
        ])
        .args([
            "--server-api",
            "grammar",
            "--parallel",
            "2",
            "--horizon",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["episodes"], 4);
    assert_eq!(summary["mean_steps"], 3.0);
    // llama-server applied the grammar: every action is admissible.
    assert_eq!(summary["invalid_action_rate"], 0.0, "{summary}");
    let store = leap::store::Store::open_existing(&run).unwrap();
    let episodes = store
        .list_episodes(&leap::store::EpisodeFilter::default())
        .unwrap();
    assert_eq!(episodes.len(), 4);
    assert!(episodes.iter().all(|e| e.steps == 3 && e.gen_tokens > 0));
}

// ---------------------------------------------------------------------------------------------
// Constrained answers and the remote teacher (issue 21).

/// Two household test scenarios played for `horizon` steps by the tiny model into a fresh run.
fn played(horizon: u32) -> (tempfile::TempDir, Vec<Scenario>) {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = common::shipped_scenarios("household", "test", 2);
    let config = common::rollout_config("t", horizon);
    common::play(
        common::shared_tiny("remote-teacher"),
        2048,
        dir.path(),
        &scenarios,
        &config,
    );
    (dir, scenarios)
}

/// Corrects every episode of the run at `dir` with `spec`: the reports, in episode order.
fn correct_all(dir: &Path, scenarios: &[Scenario], spec: &TeacherSpec) -> Vec<CorrectionReport> {
    let mut teacher = spec.build().unwrap();
    let mut store = Store::open_existing(dir).unwrap();
    let episodes = store
        .list_episodes(&EpisodeFilter {
            order: Order::ById,
            ..EpisodeFilter::default()
        })
        .unwrap();
    episodes
        .iter()
        .map(|e| {
            let s = scenarios.iter().find(|s| s.id == e.scenario_id).unwrap();
            correct_and_store(&mut store, s, e.id, teacher.as_mut()).unwrap()
        })
        .collect()
}

fn remote_teacher(config: RemoteConfig, role: &str, mode: TeacherMode) -> TeacherSpec {
    TeacherSpec::Remote {
        config,
        settings: LlmSettings {
            role: role.into(),
            mode,
            retries: 1,
            sampling: common::short(),
            ..LlmSettings::default()
        },
    }
}

/// Every stored label of `teacher` names an action admissible at its step, and with the
/// failures covers every step.
fn check_labels(dir: &Path, teacher_role: &str, reports: &[CorrectionReport]) {
    let store = Store::open_existing(dir).unwrap();
    let labels = store.labels(&LabelFilter::default()).unwrap();
    let mine: Vec<_> = labels
        .iter()
        .filter(|l| l.teacher.starts_with(&format!("{teacher_role}:")))
        .collect();
    for l in &mine {
        assert!(l.admissible.contains(&l.teacher_action), "{l:?}");
    }
    for r in reports {
        assert!(r.correction_id.is_some());
        assert_eq!(r.labels + r.failures, r.steps, "{r:?}");
    }
    assert_eq!(
        mine.len() as u32,
        reports.iter().map(|r| r.labels).sum::<u32>()
    );
}

#[test]
fn auto_finds_llama_server_and_a_teacher_corrects_through_it_in_both_modes_and_constraints() {
    // Slots of 4096 tokens: a trajectory prompt holds every step and its commands.
    let server = LlamaServer::start_sized(common::shared_tiny("remote-teacher"), 8192, 2);
    let mut auto = RemoteConfig::new(&server.base_url, "teacher");
    auto.timeout = Duration::from_secs(120);
    assert_eq!(
        RemotePolicy::new(auto.clone()).structured(None),
        Structured::Grammar,
        "llama-server answers /props"
    );
    let (run, scenarios) = played(3);
    for (structured, mode) in [
        (Structured::Grammar, TeacherMode::Step),
        (Structured::JsonSchema, TeacherMode::Step),
        (Structured::Grammar, TeacherMode::Trajectory),
        (Structured::JsonSchema, TeacherMode::Trajectory),
    ] {
        let role = format!("{}-{mode:?}", structured.as_str()).to_lowercase();
        let mut config = auto.clone();
        config.structured = structured;
        let reports = correct_all(run.path(), &scenarios, &remote_teacher(config, &role, mode));
        // The server took every request: no failure is an HTTP error.
        let store = Store::open_existing(run.path()).unwrap();
        let text = format!("{:?}", store.correction_summaries().unwrap());
        assert!(!text.contains("HTTP "), "{role}: {text}");
        check_labels(run.path(), &role, &reports);
        assert!(
            reports.iter().map(|r| r.labels).sum::<u32>() > 0,
            "{role}: {reports:?}\n{text}"
        );
    }
}

/// An OpenAI-style server: a 404 for `/props`, 400 for any field OpenAI's API does not take,
/// 429 for the first completion; then answers `response_format` requests with JSON.
fn openai_style(n_post: &AtomicUsize, seen: &Seen) -> Answer {
    const FIELDS: [&str; 8] = [
        "model",
        "messages",
        "temperature",
        "top_p",
        "seed",
        "max_tokens",
        "stream",
        "response_format",
    ];
    if seen.head.starts_with("GET ") {
        return Answer::Reply {
            status: 404,
            headers: "",
            body: "{\"error\": \"not found\"}".into(),
        };
    }
    let body: Value = serde_json::from_str(&seen.body).unwrap();
    if let Some(field) = body
        .as_object()
        .unwrap()
        .keys()
        .find(|k| !FIELDS.contains(&k.as_str()))
    {
        return Answer::Reply {
            status: 400,
            headers: "",
            body: format!(
                "{{\"error\": {{\"message\": \"Unrecognized request argument supplied: {field}\"}}}}"
            ),
        };
    }
    if n_post.fetch_add(1, Ordering::SeqCst) == 0 {
        return Answer::Reply {
            status: 429,
            headers: "Retry-After: 0\r\n",
            body: "{\"error\": \"rate limited\"}".into(),
        };
    }
    let schema = &body["response_format"]["json_schema"]["schema"];
    let action = schema["properties"]["action"]["enum"][0].as_str().unwrap();
    ok(&json!({"reason": "I check the likeliest place first.", "action": action}).to_string())
}

#[test]
fn an_openai_style_server_gets_only_its_own_fields_and_a_429_is_retried() {
    let posts = Arc::new(AtomicUsize::new(0));
    let server = {
        let posts = posts.clone();
        FakeServer::start(move |_, seen| openai_style(&posts, seen))
    };
    let mut config = server.config();
    config.structured = Structured::Auto;
    config.retries = 2;
    let (run, scenarios) = played(2);
    let reports = correct_all(
        run.path(),
        &scenarios,
        &remote_teacher(config, "openai", TeacherMode::Step),
    );
    check_labels(run.path(), "openai", &reports);
    assert_eq!(
        reports.iter().map(|r| r.failures).sum::<u32>(),
        0,
        "{reports:?}"
    );
    let seen = server.seen();
    assert!(seen[0].head.starts_with("GET /props"), "{:?}", seen[0].head);
    for s in &seen[1..] {
        assert!(s.body.contains("\"response_format\""), "{}", s.body);
        assert!(!s.body.contains("\"grammar\""), "{}", s.body);
    }
    // The first completion was refused with 429 and sent again.
    assert_eq!(
        seen.len(),
        1 + 1 + 4,
        "/props, the 429, then one request per step"
    );
}

#[test]
fn a_server_that_refuses_response_format_is_asked_in_plain_text() {
    let server = FakeServer::start(|_, seen| {
        if seen.head.starts_with("GET ") {
            return Answer::Reply {
                status: 404,
                headers: "",
                body: String::new(),
            };
        }
        if seen.body.contains("response_format") {
            return Answer::Reply {
                status: 400,
                headers: "",
                body: "{\"error\": \"response_format is not supported\"}".into(),
            };
        }
        ok("REASON: thirsty\nACTION: take mug")
    });
    let mut config = server.config();
    config.structured = Structured::Auto;
    let mut policy = RemotePolicy::new(config);
    let mut req = request(0, "go");
    req.admissible = vec!["take mug".into(), "look".into()];
    let out = respond(&mut policy, &[req.clone()], &Sampling::default());
    assert_eq!(out[0].text, "REASON: thirsty\nACTION: take mug");
    assert_eq!(policy.structured(None), Structured::Text);
    respond(&mut policy, &[req], &Sampling::default());
    let seen = server.seen();
    assert_eq!(seen.len(), 4, "/props, refused, plain, plain");
    assert!(!seen[3].body.contains("response_format"));
}

#[test]
fn a_restarting_server_is_waited_for() {
    let port = free_port();
    let base_url = format!("http://127.0.0.1:{port}/v1");
    let up = thread::spawn(move || {
        thread::sleep(Duration::from_millis(1500));
        FakeServer::start_on(port, |_, _| ok("back"))
    });
    let mut config = RemoteConfig::new(&base_url, "restarting");
    config.structured = Structured::Text;
    config.retries = 0;
    config.backoff = Duration::from_millis(100);
    config.max_backoff = Duration::from_millis(400);
    config.wait_unreachable = Duration::from_secs(20);
    let mut policy = RemotePolicy::new(config);
    let started = Instant::now();
    let out = respond(&mut policy, &[request(0, "go")], &Sampling::default());
    assert_eq!(out[0].text, "back");
    assert!(started.elapsed() >= Duration::from_millis(1400));
    drop(up.join().unwrap());
}

#[test]
fn a_trajectory_answer_keeps_inadmissible_actions_as_not_corrected_and_records_gaps() {
    // Step 0 corrected to a command that does nothing, step 1 to an admissible one, step 2 left
    // out: the paper's rules keep step 0 as the student's, and step 2 has no correction.
    let server = FakeServer::start(|_, seen| {
        let prompt = seen.last_user_message();
        // The first admissible command the prompt lists for step 1.
        let step1 = prompt.split("Step 1.").nth(1).unwrap();
        let command = step1
            .lines()
            .find_map(|l| l.strip_prefix("Commands: "))
            .unwrap()
            .split(", ")
            .next()
            .unwrap()
            .to_string();
        let answer = json!({
            "summary": "The student wandered.",
            "trajectory": [
                {"timestep": 0, "is_corrected": true, "corrected_reason": "Fly.", "corrected_action": "fly to the moon"},
                {"timestep": 1, "is_corrected": true, "corrected_reason": "This helps.", "corrected_action": command},
            ],
        });
        ok(&answer.to_string())
    });
    let (run, scenarios) = played(3);
    let reports = correct_all(
        run.path(),
        &scenarios,
        &remote_teacher(server.config(), "paper", TeacherMode::Trajectory),
    );
    let store = Store::open_existing(run.path()).unwrap();
    for r in &reports {
        assert_eq!((r.steps, r.labels, r.failures), (3, 2, 1), "{r:?}");
    }
    let labels = store.labels(&LabelFilter::default()).unwrap();
    for l in labels.iter().filter(|l| l.idx == 0) {
        assert_eq!(l.teacher_action, l.student_action, "{l:?}");
        assert!(!l.changed, "{l:?}");
    }
    for l in labels.iter().filter(|l| l.idx == 1) {
        assert!(l.admissible.contains(&l.teacher_action), "{l:?}");
        assert_eq!(l.teacher_reason, "This helps.");
    }
    let summaries = format!("{:?}", store.correction_summaries().unwrap());
    assert!(summaries.contains("The student wandered."), "{summaries}");
    assert!(summaries.contains("not admissible"), "{summaries}");
    assert!(summaries.contains("no entry for this step"), "{summaries}");
}

#[test]
fn a_teacher_whose_server_runs_out_of_retries_records_failures_and_goes_on() {
    let server = FakeServer::start(|_, _| Answer::Reply {
        status: 503,
        headers: "",
        body: "overloaded".into(),
    });
    let mut config = server.config();
    config.retries = 1;
    let (run, scenarios) = played(2);
    for mode in [TeacherMode::Step, TeacherMode::Trajectory] {
        let role = format!("down-{mode:?}").to_lowercase();
        let reports = correct_all(
            run.path(),
            &scenarios,
            &remote_teacher(config.clone(), &role, mode),
        );
        assert_eq!(reports.len(), 2, "both episodes were tried");
        for r in &reports {
            assert_eq!((r.labels, r.failures), (0, r.steps), "{role}: {r:?}");
        }
    }
    let store = Store::open_existing(run.path()).unwrap();
    let summaries = format!("{:?}", store.correction_summaries().unwrap());
    assert!(summaries.contains("HTTP 503"), "{summaries}");
}

#[test]
fn an_llm_teacher_shows_the_notes_and_a_share_of_the_facts_drawn_once_per_episode() {
    let server = FakeServer::start(|_, _| ok("REASON: I look around.\nACTION: look"));
    let scenarios: Vec<Scenario> =
        leap::scenario::load_all(&[PathBuf::from("scenarios/showcase.yaml")])
            .unwrap()
            .into_iter()
            .filter(|s| s.kind().as_str() == "household")
            .collect();
    let facts = |s: &Scenario| s.body.privileged(s.horizon).facts.len();
    assert!(scenarios.iter().any(|s| facts(s) >= 2));
    // The prompts of one correction pass, by task: the hidden-facts and notes lines of each.
    let prompts = |privilege: f64| -> Vec<(String, String, String)> {
        let before = server.seen().len();
        let dir = tempfile::tempdir().unwrap();
        let config = common::rollout_config("t", 3);
        common::play(
            common::shared_tiny("remote-teacher"),
            2048,
            dir.path(),
            &scenarios,
            &config,
        );
        let spec = TeacherSpec::Remote {
            config: server.config(),
            settings: LlmSettings {
                privilege,
                sampling: Sampling {
                    seed: 5,
                    ..common::short()
                },
                ..LlmSettings::default()
            },
        };
        let reports = correct_all(dir.path(), &scenarios, &spec);
        assert!(reports.iter().all(|r| r.labels == r.steps), "{reports:?}");
        server.seen()[before..]
            .iter()
            .map(|seen| {
                let prompt = seen.last_user_message();
                let line = |prefix: &str| {
                    prompt
                        .lines()
                        .find(|l| l.starts_with(prefix))
                        .unwrap_or_default()
                        .to_string()
                };
                (
                    line("Task: "),
                    line("Hidden facts"),
                    line("Notes on this task"),
                )
            })
            .collect()
    };
    let full = prompts(1.0);
    for (task, hidden, notes) in &full {
        let s = scenarios.iter().find(|s| task.ends_with(&s.task)).unwrap();
        assert_eq!(hidden.matches(" is in ").count(), facts(s), "{hidden}");
        if s.id == "showcase-morning-coffee" {
            assert!(
                notes.contains("mugs in the cabinet by the window"),
                "{notes}"
            );
        }
    }
    let half = prompts(0.5);
    assert_eq!(half, prompts(0.5), "the same draws for the same seed");
    let mut by_task: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
        Default::default();
    for (task, hidden, _) in &half {
        by_task.entry(task).or_default().insert(hidden);
    }
    for (task, lines) in &by_task {
        assert_eq!(lines.len(), 1, "{task}: one draw per episode: {lines:?}");
    }
    let shown: usize = by_task
        .values()
        .map(|l| l.iter().next().unwrap().matches(" is in ").count())
        .sum();
    let all: usize = scenarios.iter().map(facts).sum();
    assert!(shown < all, "{shown} of {all} facts at privilege 0.5");
    for (_, hidden, _) in prompts(0.0) {
        assert_eq!(hidden.matches(" is in ").count(), 0, "{hidden}");
    }
}

#[test]
fn an_answer_is_cut_at_max_tokens_and_a_huge_one_is_refused() {
    use leap::agent::remote::{BYTES_PER_TOKEN, MAX_ANSWER_BYTES};
    let sampling = Sampling {
        max_tokens: 96,
        ..Sampling::default()
    };
    // Half a megabyte of text for 96 tokens: kept only up to the documented bound.
    let long = format!("REASON: {}\nACTION: look", "é".repeat(250_000));
    let server = FakeServer::start(move |_, _| ok(&long));
    let mut policy = RemotePolicy::new(server.config());
    let out = respond(&mut policy, &[request(0, "go")], &sampling);
    let bound = 96 * BYTES_PER_TOKEN;
    assert!(
        out[0].text.len() <= bound && out[0].text.len() > bound - 4,
        "{} bytes kept",
        out[0].text.len()
    );
    assert!(out[0].text.starts_with("REASON: éé"));

    // Five megabytes are refused unread, without a retry.
    let huge = "x".repeat(5 << 20);
    let server = FakeServer::start(move |_, _| ok(&huge));
    let mut config = server.config();
    config.retries = 2;
    let mut policy = RemotePolicy::new(config);
    let err = policy
        .respond(&[request(0, "go")], &sampling, &mut |_, _| {})
        .unwrap_err();
    let (_, message) = remote_message(err);
    assert_eq!(
        message,
        format!("answer of more than {MAX_ANSWER_BYTES} bytes; refused")
    );
    assert_eq!(server.seen().len(), 1);
}
