//! The student on real llama.cpp: the tiny model the project generates (random weights, the
//! default tokenizer) for the mechanics, the default SmolLM2-135M for the real thing.

mod common;
use common::default_model;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use leap::agent::local::{LocalConfig, LocalPolicy};
use leap::agent::parse::parse;
use leap::agent::prompt::{Past, Prompt, View};
use leap::agent::{Message, Policy, Request, Role, Sampling};
use leap::store::{EpisodeFilter, Order, Store};

/// One tiny model per test process.
fn tiny() -> &'static Path {
    common::shared_tiny("leap-student-test")
}

fn messages(user: &str) -> Vec<Message> {
    vec![
        Message::new(Role::System, "You act in a text world."),
        Message::new(Role::User, user),
    ]
}

fn admissible() -> Vec<String> {
    [
        "go to cabinet 1",
        "go to countertop 1",
        "go to fridge 1",
        "inventory",
        "look",
        "open fridge 1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn free() -> Sampling {
    Sampling {
        constrained: false,
        max_tokens: 24,
        ..Sampling::default()
    }
}

/// `p`'s answer to `messages` in slot 0, unconstrained (so every token is the model's choice:
/// under the grammar some are written for it).
fn ask_free(p: &mut LocalPolicy, messages: &[Message]) -> leap::agent::Response {
    let req = Request {
        format: Default::default(),
        seq: 0,
        messages: messages.to_vec(),
        admissible: Vec::new(),
        temperature: None,
        seed: None,
    };
    p.respond(&[req], &free(), &mut |_, _| {})
        .unwrap()
        .remove(0)
}

#[test]
fn the_grammar_forces_a_parseable_admissible_answer_even_from_random_weights() {
    let mut config = LocalConfig::new(tiny());
    config.slots = 3;
    let mut policy = LocalPolicy::load(&config).unwrap();
    let requests: Vec<Request> = (0..3)
        .map(|seq| Request {
            format: Default::default(),
            seq,
            messages: messages(&format!("Task {seq}: find the apple.")),
            admissible: admissible()[seq..].to_vec(),
            temperature: None,
            seed: None,
        })
        .collect();
    let sampling = Sampling {
        max_tokens: 64,
        ..Sampling::default()
    };
    let mut streamed = vec![String::new(); 3];
    let responses = policy
        .respond(&requests, &sampling, &mut |i, piece| {
            streamed[i].push_str(piece)
        })
        .unwrap();
    for ((r, req), s) in responses.iter().zip(&requests).zip(&streamed) {
        let parsed = parse(&r.text, &req.admissible);
        assert!(r.text.starts_with("REASON: "), "{:?}", r.text);
        let action = parsed
            .action
            .unwrap_or_else(|| panic!("no admissible action in {:?}", r.text));
        assert!(req.admissible.contains(&action));
        assert_eq!(
            s.trim_end(),
            r.text,
            "the streamed pieces make up the response"
        );
        assert!(r.gen_tokens > 0 && r.prompt_tokens > 0);
    }
}

#[test]
fn under_the_grammar_the_model_fills_a_templates_hole_with_its_own_words() {
    let mut config = LocalConfig::new(tiny());
    config.slots = 3;
    let mut policy = LocalPolicy::load(&config).unwrap();
    let admissible = vec!["search[...]".to_string()];
    let requests: Vec<Request> = (0..3)
        .map(|seq| Request {
            format: Default::default(),
            seq,
            messages: messages(&format!("Task {seq}: buy red running shoes.")),
            admissible: admissible.clone(),
            temperature: None,
            seed: None,
        })
        .collect();
    let sampling = Sampling {
        max_tokens: 64,
        ..Sampling::default()
    };
    let responses = policy
        .respond(&requests, &sampling, &mut |_, _| {})
        .unwrap();
    for r in &responses {
        let action = parse(&r.text, &admissible)
            .action
            .unwrap_or_else(|| panic!("no admitted action in {:?}", r.text));
        let fill = action
            .strip_prefix("search[")
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or_else(|| panic!("{action:?} is not a search"));
        assert!(!fill.trim().is_empty() && !fill.contains(']'), "{action:?}");
        assert_ne!(
            fill, "...",
            "the model wrote its own words, not the template's"
        );
    }
}

#[test]
fn reusing_the_cached_prefix_gives_the_same_answer_as_evaluating_it_all() {
    let first = messages("Task: find the apple.\nNow: You are in the middle of a room.");
    let second = messages(
        "Task: find the apple.\nNow: You are in the middle of a room.\n> look\nYou see a fridge 1.",
    );
    let mut reuse = LocalPolicy::load(&LocalConfig::new(tiny())).unwrap();
    ask_free(&mut reuse, &first);
    let warm = ask_free(&mut reuse, &second);
    assert!(
        warm.cached_tokens > 10,
        "cached {} of {}",
        warm.cached_tokens,
        warm.prompt_tokens
    );

    let mut config = LocalConfig::new(tiny());
    config.reuse_prefix = false;
    let mut cold_policy = LocalPolicy::load(&config).unwrap();
    let cold = ask_free(&mut cold_policy, &second);
    assert_eq!(cold.cached_tokens, 0);
    assert_eq!(warm.text, cold.text);
}

#[test]
fn a_batch_answers_like_one_request_at_a_time() {
    let prompts: Vec<Vec<Message>> = (0..3)
        .map(|i| messages(&format!("Step {i}: the fridge is closed.")))
        .collect();
    let mut config = LocalConfig::new(tiny());
    config.slots = 3;
    let mut batched = LocalPolicy::load(&config).unwrap();
    let requests: Vec<Request> = prompts
        .iter()
        .enumerate()
        .map(|(seq, m)| Request {
            format: Default::default(),
            seq,
            messages: m.clone(),
            admissible: Vec::new(),
            temperature: None,
            seed: None,
        })
        .collect();
    let together: Vec<String> = batched
        .respond(&requests, &free(), &mut |_, _| {})
        .unwrap()
        .into_iter()
        .map(|r| r.text)
        .collect();
    let mut single = LocalPolicy::load(&LocalConfig::new(tiny())).unwrap();
    for (i, m) in prompts.iter().enumerate() {
        single.release(0);
        let alone = single
            .respond(
                &[Request {
                    format: Default::default(),
                    seq: 0,
                    messages: m.clone(),
                    admissible: Vec::new(),
                    temperature: None,
                    seed: None,
                }],
                &free(),
                &mut |_, _| {},
            )
            .unwrap();
        assert_eq!(alone[0].text, together[i], "request {i}");
    }
}

/// Speculative decoding from n-grams: an answer the policy has written before is guessed ahead
/// and the guesses are kept, so the second answer to the same prompt takes fewer decode calls,
/// and every answer is the one a policy that never guesses writes.
#[test]
fn drafted_tokens_are_kept_only_where_the_model_chooses_them_itself() {
    let prompts = [
        "Task: find the apple.",
        "Task: find the apple.",
        "Task: find the pear.",
    ];
    let mut plain_config = LocalConfig::new(tiny());
    plain_config.draft = Some(0);
    let mut plain = LocalPolicy::load(&plain_config).unwrap();
    let mut config = LocalConfig::new(tiny());
    config.draft = Some(4);
    let mut drafting = LocalPolicy::load(&config).unwrap();
    let mut before = drafting.stats();
    for (i, text) in prompts.iter().enumerate() {
        let want = ask_free(&mut plain, &messages(text));
        let got = ask_free(&mut drafting, &messages(text));
        assert_eq!(got.text, want.text, "answer {i}");
        let now = drafting.stats();
        let (drafted, accepted) = (
            now.drafted_tokens - before.drafted_tokens,
            now.accepted_tokens - before.accepted_tokens,
        );
        before = now;
        if i == 1 {
            // The same prompt again: the first answer, learnt, is guessed and kept nearly whole.
            assert!(
                accepted * 2 >= u64::from(got.gen_tokens),
                "{accepted} of {drafted} drafted tokens kept, {} generated",
                got.gen_tokens
            );
        }
        assert!(accepted <= drafted);
    }
    assert_eq!(plain.stats().drafted_tokens, 0);
}

/// Several slots writing at once: each answer's row in a batch is padded with guesses to the
/// longest row, so that llama.cpp decodes the answers in one part (a KV buffer per sequence
/// cuts a batch into parts of equal rows), and every answer is still the model's own.
#[test]
fn guesses_pad_the_rows_of_answers_written_together_and_change_no_answer() {
    let texts = [
        "Task: find the apple.",
        "Task: find a mug.",
        "Task: heat the egg.",
    ];
    let requests = |texts: &[&str]| -> Vec<Request> {
        texts
            .iter()
            .enumerate()
            .map(|(seq, text)| Request {
                format: Default::default(),
                seq,
                messages: messages(text),
                admissible: Vec::new(),
                temperature: None,
                seed: None,
            })
            .collect()
    };
    let mut plain = LocalPolicy::load(&LocalConfig::new(tiny())).unwrap();
    let mut config = LocalConfig::new(tiny());
    config.slots = 3;
    config.draft = Some(4);
    let mut drafting = LocalPolicy::load(&config).unwrap();
    // Learn one answer, then ask it again beside two new prompts, all three at once: its rows
    // are guessed in full, theirs hardly at all.
    drafting
        .respond(&requests(&texts[..1]), &free(), &mut |_, _| {})
        .unwrap();
    let before = drafting.stats();
    let got = drafting
        .respond(&requests(&texts), &free(), &mut |_, _| {})
        .unwrap();
    for (text, got) in texts.iter().zip(&got) {
        let want = ask_free(&mut plain, &messages(text));
        assert_eq!(got.text, want.text, "{text}");
    }
    let now = drafting.stats();
    let calls = now.decode_calls - before.decode_calls;
    let parts = now.ubatches - before.ubatches;
    assert!(now.accepted_tokens > before.accepted_tokens);
    // The prompts' call may be cut into one part per prompt length; every later call, answers
    // only, is one part.
    assert!(
        parts <= calls + 2,
        "{calls} decode calls cut into {parts} parts"
    );
}

/// Continuous batching: a slot whose answers are short goes through its next requests while a
/// slot with a long answer is still writing, and every answer is what the request gets alone.
#[test]
fn a_slot_asks_again_while_another_is_still_answering() {
    use leap::agent::{Feed, Format, Next, Response};
    use std::sync::Arc;

    // Slot 0 must answer "yes" (two tokens with the end); slot 1 writes freely, 24 tokens.
    let short = Format::Json {
        name: "yes".into(),
        schema: Arc::new(serde_json::json!({"const": "yes"})),
        grammar: Arc::new("root ::= \"yes\"".into()),
    };
    let request = |seq: usize, step: usize| Request {
        format: if seq == 0 {
            short.clone()
        } else {
            Format::React
        },
        seq,
        messages: messages(&format!("Slot {seq}, step {step}: the fridge is closed.")),
        admissible: Vec::new(),
        temperature: None,
        seed: None,
    };
    struct Chains<'a> {
        request: &'a dyn Fn(usize, usize) -> Request,
        /// Answers so far, in the order they came: (slot, step, text).
        answers: Vec<(usize, usize, String)>,
    }
    impl Feed for Chains<'_> {
        fn token(&mut self, _: usize, _: &str) {}
        fn answered(&mut self, request: Request, response: Response) -> Next {
            let seq = request.seq;
            let step = self.answers.iter().filter(|a| a.0 == seq).count();
            self.answers.push((seq, step, response.text));
            match step + 1 < 3 {
                true => Next::Ask((self.request)(seq, step + 1)),
                false => Next::Done,
            }
        }
    }
    let mut config = LocalConfig::new(tiny());
    config.slots = 2;
    let mut policy = LocalPolicy::load(&config).unwrap();
    let mut chains = Chains {
        request: &request,
        answers: Vec::new(),
    };
    policy
        .serve(vec![request(0, 0), request(1, 0)], &free(), &mut chains)
        .unwrap();
    let order: Vec<(usize, usize)> = chains.answers.iter().map(|a| (a.0, a.1)).collect();
    assert_eq!(order.len(), 6, "{order:?}");
    // In lock-step rounds slot 0's second answer would wait for slot 1's first.
    assert_eq!(&order[..3], &[(0, 0), (0, 1), (0, 2)], "{order:?}");
    let mut alone = LocalPolicy::load(&LocalConfig::new(tiny())).unwrap();
    for (seq, step, text) in &chains.answers {
        let mut r = request(*seq, *step);
        r.seq = 0;
        alone.release(0);
        let answer = alone.respond(&[r], &free(), &mut |_, _| {}).unwrap();
        assert_eq!(&answer[0].text, text, "slot {seq}, step {step}");
    }
    assert_eq!(chains.answers[0].2, "yes");
    assert!(chains.answers[3].2.len() > 20, "{:?}", chains.answers[3]);
}

#[test]
fn smollm_answers_in_format_under_the_grammar() {
    let mut policy = LocalPolicy::load(&LocalConfig::new(default_model())).unwrap();
    let prompt = Prompt::builtin(8);
    let history = vec![Past {
        action: "go to countertop 1".into(),
        observation: "On the countertop 1, you see a knife 1.".into(),
    }];
    let adm = admissible();
    let view = View {
        kind: leap::env::default_kind(),
        task: "put a clean apple in fridge.",
        start: "You are in the middle of a room. Looking quickly around you, you see a cabinet 1, a countertop 1, and a fridge 1.",
        history: &history,
        observation: "On the countertop 1, you see a knife 1.",
        admissible: &adm,
    };
    let req = Request {
        format: Default::default(),
        seq: 0,
        messages: prompt.render(&view).unwrap(),
        admissible: adm.clone(),
        temperature: None,
        seed: None,
    };
    let r = policy
        .respond(&[req], &Sampling::default(), &mut |_, _| {})
        .unwrap()
        .remove(0);
    let parsed = parse(&r.text, &adm);
    assert!(
        parsed.reason.is_some() && parsed.action.is_some(),
        "{:?}",
        r.text
    );
    assert!(policy.describe().starts_with("SmolLM2-135M-Instruct"));
}

#[test]
fn a_missing_or_broken_model_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.gguf");
    let err = LocalPolicy::load(&LocalConfig::new(&missing))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("nope.gguf"), "{err}");
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"not a model at all").unwrap();
    let err = LocalPolicy::load(&LocalConfig::new(&junk))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("junk.gguf") && err.contains("GGUF"), "{err}");
}

#[test]
fn a_requests_own_temperature_is_sampled_and_the_rest_of_the_batch_stays_greedy() {
    let prompts = [
        messages("Task: find the apple."),
        messages("Task: heat the mug."),
    ];
    let ask = |sampling: &Sampling, temperatures: [Option<f32>; 2]| -> Vec<String> {
        let mut config = LocalConfig::new(tiny());
        config.slots = 2;
        let mut policy = LocalPolicy::load(&config).unwrap();
        let requests: Vec<Request> = prompts
            .iter()
            .zip(temperatures)
            .enumerate()
            .map(|(seq, (m, temperature))| Request {
                format: Default::default(),
                seq,
                messages: m.clone(),
                admissible: Vec::new(),
                temperature,
                seed: None,
            })
            .collect();
        policy
            .respond(&requests, sampling, &mut |_, _| {})
            .unwrap()
            .into_iter()
            .map(|r| r.text)
            .collect()
    };
    let greedy_sampling = Sampling { seed: 7, ..free() };
    let hot_sampling = Sampling {
        temperature: 1.5,
        ..greedy_sampling.clone()
    };
    let greedy = ask(&greedy_sampling, [None, None]);
    // The second request hot, the first greedy: once by the batch's setting and the first's
    // own 0, once by the second's own temperature in a greedy batch.
    let by_batch = ask(&hot_sampling, [Some(0.0), None]);
    let by_request = ask(&greedy_sampling, [None, Some(1.5)]);
    assert_ne!(
        by_batch[1], greedy[1],
        "sampling at 1.5 from random weights gives another answer than greedy"
    );
    assert_eq!(by_request[1], by_batch[1]);
    assert_eq!(by_request[0], greedy[0]);
    assert_eq!(by_batch[0], greedy[0]);
}

/// Looks around at every step, and notes the temperature each request asked for.
struct Looker {
    temperatures: Vec<Option<f32>>,
}

impl Policy for Looker {
    fn describe(&self) -> String {
        "looker".into()
    }

    fn respond(
        &mut self,
        requests: &[Request],
        _sampling: &Sampling,
        _on_token: &mut dyn FnMut(usize, &str),
    ) -> Result<Vec<leap::agent::Response>, leap::agent::PolicyError> {
        self.temperatures
            .extend(requests.iter().map(|r| r.temperature));
        Ok(requests
            .iter()
            .map(|_| leap::agent::Response {
                text: "REASON: I look around.\nACTION: look".into(),
                ..leap::agent::Response::default()
            })
            .collect())
    }
}

#[test]
fn a_rollout_samples_only_the_steps_whose_prompt_repeats() {
    let scenario = leap::scenario::load_all(&[PathBuf::from("scenarios/household")])
        .unwrap()
        .into_iter()
        .find(|s| s.split == leap::scenario::Split::Test)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let history = 4;
    let prompt = Prompt::builtin(history);
    let play = |store: &mut Store, label: &str, repeat_temperature: f32, stop_cycles: bool| {
        let mut policy = Looker {
            temperatures: Vec::new(),
        };
        let config = leap::rollout::RolloutConfig {
            label: label.into(),
            episodes: 1,
            parallel: 1,
            sampling: Sampling {
                repeat_temperature,
                ..Sampling::default()
            },
            iteration: None,
            horizon: Some(9),
            privileged: false,
            stop_cycles,
        };
        let cancel = std::sync::atomic::AtomicBool::new(false);
        leap::rollout::rollout(
            &mut policy,
            &prompt,
            store,
            std::slice::from_ref(&scenario),
            &config,
            &cancel,
            &mut |_| {},
        )
        .unwrap();
        policy.temperatures
    };
    // Looking changes nothing, so the prompt only changes while the history window fills:
    // from step `history` + 1 on, each prompt is the one before, word for word.
    let temperatures = play(&mut store, "repeat", 1.0, false);
    let fresh = history + 1;
    assert_eq!(temperatures.len(), 9);
    assert!(
        temperatures[..fresh].iter().all(Option::is_none),
        "{temperatures:?}"
    );
    assert!(
        temperatures[fresh..].iter().all(|&t| t == Some(1.0)),
        "{temperatures:?}"
    );
    // Off by default: greedy throughout.
    let temperatures = play(&mut store, "greedy", 0.0, false);
    assert!(temperatures.iter().all(Option::is_none), "{temperatures:?}");
    // The episode keeps the setting it was played with.
    let filter = EpisodeFilter {
        key_prefix: Some("rollout/repeat/".into()),
        ..EpisodeFilter::default()
    };
    let episodes = store.list_episodes(&filter).unwrap();
    assert_eq!(episodes.len(), 1);
    let episode = store.episode(episodes[0].id).unwrap().unwrap();
    assert_eq!(episode.record.sampling["repeat_temperature"], 1.0);

    // With the cycle stop, the greedy episode ends at the first prompt it had already answered
    // in the same state, as a failure that says so; sampling there never stops. (Step 6 shows
    // the same three looks as step 4: the window has just jumped on by two.)
    let temperatures = play(&mut store, "stopped", 0.0, true);
    assert_eq!(temperatures.len(), fresh, "{temperatures:?}");
    let temperatures = play(&mut store, "sampled", 1.0, true);
    assert_eq!(temperatures.len(), 9, "{temperatures:?}");
    let stored = |label: &str| {
        let filter = EpisodeFilter::prefix(format!("rollout/{label}/"));
        let id = store.list_episodes(&filter).unwrap()[0].id;
        store.episode(id).unwrap().unwrap()
    };
    let stopped = stored("stopped");
    assert_eq!(
        stopped.record.stopped.as_deref(),
        Some("cycle at step 6 (a repeat of step 4)")
    );
    assert_eq!(stopped.record.steps.len(), fresh);
    assert!(!stopped.record.won);
    assert_eq!(stored("sampled").record.stopped, None);
    assert_eq!(stored("greedy").record.stopped, None);
    // `episodes show` says why it ended.
    let out = leap()
        .args(["episodes", "show", "--run"])
        .arg(dir.path())
        .arg(stopped.id.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("stopped: cycle at step 6 (a repeat of step 4)"),
        "{text}"
    );
}

fn leap() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leap"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn rollout_args(run: &Path, scenarios: &Path) -> Vec<String> {
    let model = tiny().display().to_string();
    let mut args: Vec<String> = ["rollout", "--run"].iter().map(|s| s.to_string()).collect();
    args.push(run.display().to_string());
    args.extend([
        "--scenarios".into(),
        scenarios.display().to_string(),
        "--model".into(),
        model,
    ]);
    args.extend(
        [
            "--parallel",
            "2",
            "--horizon",
            "6",
            "--label",
            "kill-test",
            "--json",
            // Every episode plays to its horizon, so the rollout is still running when killed.
            "--no-cycle-stop",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args
}

#[test]
fn a_killed_rollout_resumes_without_losing_or_repeating_episodes() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    let test_set = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/household/test");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&test_set)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files.iter().take(8) {
        std::fs::copy(f, scenarios.join(f.file_name().unwrap())).unwrap();
    }
    let run = dir.path().join("run");

    // Kill it once at least one episode is stored and before all are.
    let mut child = leap()
        .args(rollout_args(&run, &scenarios))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Generous: the random-weight model is slow under the grammar on a loaded 2-core machine.
    let deadline = Instant::now() + Duration::from_secs(300);
    let stored = loop {
        assert!(Instant::now() < deadline, "no episode finished in time");
        std::thread::sleep(Duration::from_millis(50));
        if let Ok(store) = Store::open_existing(&run) {
            let n = store
                .list_episodes(&EpisodeFilter::default())
                .unwrap()
                .len();
            if n >= 1 {
                break n;
            }
        }
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(stored < 8, "the rollout finished before it could be killed");

    let out = leap()
        .args(rollout_args(&run, &scenarios))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["episodes"], 8);
    assert!(summary["played"].as_u64().unwrap() <= 8 - stored as u64);

    let store = Store::open_existing(&run).unwrap();
    let episodes = store
        .list_episodes(&EpisodeFilter {
            order: Order::ById,
            ..EpisodeFilter::default()
        })
        .unwrap();
    assert_eq!(episodes.len(), 8);
    let keys: std::collections::BTreeSet<_> = episodes.iter().map(|e| e.key.clone()).collect();
    assert_eq!(keys.len(), 8, "no episode is stored twice");
    for e in &episodes {
        let full = store.episode(e.id).unwrap().unwrap();
        assert_eq!(full.record.steps.len() as u32, e.steps);
        assert_eq!(
            e.steps, 6,
            "random weights never win, so every episode runs to the horizon"
        );
        assert!(
            full.record
                .steps
                .iter()
                .all(|s| !s.prompt.is_empty() && !s.raw_output.is_empty())
        );
    }
}

/// A tiny model whose vocabulary holds none of the prompt's pieces, not even its bytes: a
/// byte-level BPE without the byte tokens, whose tokenizer drops every piece it cannot spell.
fn tiny_with_a_vocabulary_that_reads_nothing(dir: &Path) -> PathBuf {
    use leap::model::gguf::{GgufFile, GgufWriter, Value, ValueType};
    let source = GgufFile::open(&default_model()).unwrap();
    let mut w = GgufWriter::new();
    let n = 64;
    for (key, value) in &source.metadata {
        let value = match key.as_str() {
            "tokenizer.ggml.tokens" => Value::Array(
                ValueType::Str,
                (0..n)
                    .map(|i| Value::str(&format!("\u{e000}{i}")))
                    .collect(),
            ),
            "tokenizer.ggml.token_type" => Value::Array(ValueType::I32, vec![Value::I32(1); n]),
            "tokenizer.ggml.merges" => {
                Value::Array(ValueType::Str, vec![Value::str("\u{e000}1 \u{e000}2")])
            }
            "tokenizer.ggml.add_bos_token" => Value::Bool(false),
            k if k.starts_with("tokenizer.ggml.") && k.ends_with("_token_id") => Value::U32(0),
            k if k.starts_with("tokenizer.") => value.clone(),
            _ => continue,
        };
        w.set(key, value);
    }
    let source_file = dir.join("reads-nothing-tokenizer.gguf");
    w.write(&source_file).unwrap();
    let model = dir.join("reads-nothing.gguf");
    leap::model::write_tiny(&source_file, &model, &leap::model::TinySpec::default()).unwrap();
    model
}

#[test]
fn a_vocabulary_that_turns_the_prompt_into_no_tokens_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_with_a_vocabulary_that_reads_nothing(dir.path());
    let mut policy = LocalPolicy::load(&LocalConfig::new(&model)).unwrap();
    let request = Request {
        format: Default::default(),
        seq: 0,
        messages: messages("Task: find the apple."),
        admissible: admissible(),
        temperature: None,
        seed: None,
    };
    let err = policy
        .respond(&[request], &common::short(), &mut |_, _| {})
        .expect_err("no tokens to evaluate is an error")
        .to_string();
    assert!(
        err.contains("reads-nothing") && err.contains("into no tokens"),
        "{err}"
    );
}

/// `--draft 0` turns the guesses off from the CLI; with or without them, a rollout of the same
/// scenarios writes the same answers.
#[test]
fn the_draft_flag_turns_guesses_off_and_the_episodes_are_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/showcase.yaml");
    let answers = |draft: &str| -> Vec<String> {
        let run = dir.path().join(format!("draft-{draft}"));
        let out = leap()
            .args(["rollout", "--run"])
            .arg(&run)
            .arg("--scenarios")
            .arg(&scenarios)
            .arg("--model")
            .arg(tiny())
            .args(["--parallel", "4", "--horizon", "2", "--draft", draft])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "--draft {draft}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let store = Store::open_existing(&run).unwrap();
        let mut answers = Vec::new();
        for e in store.list_episodes(&EpisodeFilter::default()).unwrap() {
            let full = store.episode(e.id).unwrap().unwrap();
            for step in &full.record.steps {
                answers.push(format!("{} {}", e.key, step.raw_output));
            }
        }
        answers.sort();
        answers
    };
    let without = answers("0");
    assert!(!without.is_empty());
    assert_eq!(answers("4"), without);
    refused(&scenarios, &["--draft", "-1"]);
}

/// `leap rollout` of `scenarios` with `args` is refused as a usage error; its stderr.
fn refused(scenarios: &Path, args: &[&str]) -> String {
    let out = leap()
        .args(["rollout", "--scenarios"])
        .arg(scenarios)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `--weights q8_0` plays on the Q8_0 copy of the model's weights, which is then in the cache;
/// a value it does not know is refused with the values it takes.
#[test]
fn the_weights_flag_holds_the_weights_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/showcase.yaml");
    let model = dir.path().join("own.gguf");
    leap::model::write_tiny(
        &default_model(),
        &model,
        &leap::model::TinySpec {
            seed: 7,
            ..Default::default()
        },
    )
    .unwrap();
    let copy = leap::agent::weights::q8_0_copy(&model).unwrap();
    std::fs::remove_file(&copy).unwrap();
    let out = leap()
        .args(["rollout", "--run"])
        .arg(dir.path().join("run"))
        .arg("--scenarios")
        .arg(&scenarios)
        .arg("--model")
        .arg(&model)
        .args(["--parallel", "2", "--horizon", "2", "--weights", "q8_0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(copy.exists(), "{} was not made", copy.display());
    let stderr = refused(&scenarios, &["--weights", "q4"]);
    assert!(
        stderr.contains("--weights") && stderr.contains("q8_0"),
        "{stderr}"
    );
}

/// On the CPU, flash attention and the guesses that the configuration leaves open are chosen by
/// timing this machine once: the timing is kept in the cache folder and read back, one sequence
/// is timed apart from several, the policy decodes as chosen, and what the configuration sets
/// wins. The tiny model's weights are F16, which has its many-token kernels: only they are
/// timed.
#[test]
fn what_the_configuration_leaves_open_is_decided_by_this_cpus_timing_and_kept() {
    use leap::agent::local::DRAFT;
    use leap::agent::tune;
    use leap::agent::weights::Weights;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
    let mut config = LocalConfig::new(tiny());
    config.slots = 3;
    let policy = LocalPolicy::load(&config).unwrap();
    let (flash, draft, tuning) = policy.decoding();
    let t = tuning.expect("timed on the CPU");
    assert_eq!(t.sequences, 8);
    assert_eq!(
        (policy.weights(), t.weights),
        (Weights::File, Weights::File)
    );
    assert_eq!(flash, Some(t.flash_attention));
    let guessed = |t: &tune::Tuning, flash| if t.guesses(flash) { DRAFT } else { 0 };
    assert_eq!(draft, guessed(&t, t.flash_attention));
    assert_eq!(t.ways.len(), 2, "{t:?}");
    for w in &t.ways {
        let c = w.costs;
        assert!(c.token > 0.0 && c.guessed > 0.0 && c.prompt > 0.0, "{t:?}");
        // Five tokens of each of 8 sequences cost more than one of each.
        assert!(c.guessed > c.token, "{t:?}");
    }
    let file = tune::tuning_file(tiny(), threads, config.slots, &[Weights::File]);
    let kept: tune::Tuning = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(kept, t, "{}", file.display());

    // One sequence has its own timing; the same file serves any number of several.
    let one = LocalPolicy::load(&LocalConfig::new(tiny()))
        .unwrap()
        .decoding()
        .2;
    assert_eq!(one.expect("timed").sequences, 1);
    assert_ne!(
        tune::tuning_file(tiny(), threads, 1, &[Weights::File]),
        file
    );
    assert_eq!(
        tune::tuning_file(tiny(), threads, 16, &[Weights::File]),
        file
    );

    // Set, flash attention is as set, and the guesses follow the timing for that setting.
    config.flash_attention = Some(!t.flash_attention);
    let (flash, draft, _) = LocalPolicy::load(&config).unwrap().decoding();
    assert_eq!(flash, Some(!t.flash_attention));
    assert_eq!(draft, guessed(&t, !t.flash_attention));
    config.draft = Some(2);
    let (_, draft, tuning) = LocalPolicy::load(&config).unwrap().decoding();
    assert_eq!(
        (draft, tuning),
        (2, None),
        "nothing left open, nothing timed"
    );
}

/// A Q4_1 model's weights (an encoding without a many-token kernel on a CPU without AMX) are
/// timed as they are and re-encoded as Q8_0, together, and held the faster way; the copy is
/// made once, whole, in the cache, its matrices Q8_0; set, the weights are as set; and the copy
/// answers as a model does.
#[test]
fn a_q4_1_models_weights_are_held_as_this_cpus_timing_finds_faster() {
    use leap::agent::tune;
    use leap::agent::weights::{self, Weights};
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
    let dir = tempfile::tempdir().unwrap();
    let q4_1 = dir.path().join("tiny-q4_1.gguf");
    weights::quantize(tiny(), &q4_1, llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_1).unwrap();
    let mut config = LocalConfig::new(&q4_1);
    config.slots = 3;
    let policy = LocalPolicy::load(&config).unwrap();
    let t = policy.decoding().2.expect("timed on the CPU");
    let encodings = [Weights::File, Weights::Q8_0];
    for w in encodings {
        for flash in [false, true] {
            assert!(t.costs(w, flash).is_some(), "{w:?}, flash {flash}: {t:?}");
        }
    }
    assert_eq!(policy.weights(), t.weights);
    eprintln!("{}", t.describe());
    assert_eq!(policy.decoding().0, Some(t.flash_for(t.weights)));
    let file = tune::tuning_file(&q4_1, threads, 3, &encodings);
    let kept: tune::Tuning = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(kept, t, "{}", file.display());

    // The copy: one file in the cache, named by the model's sha256, its matrices Q8_0.
    let copy = weights::q8_0_copy(&q4_1).unwrap();
    let header = leap::model::GgufFile::open(&copy).unwrap();
    let source = leap::model::GgufFile::open(&q4_1).unwrap();
    let q4_1_matrices: Vec<&str> = source
        .tensors
        .iter()
        .filter(|t| t.type_name() == "q4_1")
        .map(|t| t.name.as_str())
        .collect();
    assert!(!q4_1_matrices.is_empty());
    for name in q4_1_matrices {
        let t = header.tensor(name).unwrap();
        assert_eq!(t.type_name(), "q8_0", "{name} in {}", copy.display());
    }
    assert!(weights::worth_timing(&source) && !weights::worth_timing(&header));
    // Named by content, not place: the same file elsewhere finds the same copy.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let same = elsewhere.join("tiny-q4_1.gguf");
    std::fs::copy(&q4_1, &same).unwrap();
    assert_eq!(
        weights::q8_0_copy(&same).unwrap(),
        copy,
        "equal files share one copy"
    );

    // Set, the weights are as set and only that way is timed; both answer.
    for w in encodings {
        config.weights = Some(w);
        let mut policy = LocalPolicy::load(&config).unwrap();
        assert_eq!(policy.weights(), w);
        let t = policy.decoding().2.expect("timed on the CPU");
        assert_eq!((t.weights, t.ways.len()), (w, 2), "{t:?}");
        let req = Request {
            format: Default::default(),
            seq: 0,
            messages: messages("Task: put a clean mug on the table."),
            admissible: admissible(),
            temperature: None,
            seed: None,
        };
        let answer = policy
            .respond(&[req], &common::short(), &mut |_, _| {})
            .unwrap();
        let action = parse(&answer[0].text, &admissible()).action;
        assert!(
            action.is_some_and(|a| admissible().contains(&a)),
            "{w:?}: {answer:?}"
        );
    }

    // A kept choice loads its weights alone: with no copy in the cache, the file's weights
    // chosen make none; the copy chosen makes it. (A file of another name for each choice:
    // this process holds the tuning it used for a name.)
    for (w, made) in [(Weights::File, false), (Weights::Q8_0, true)] {
        let model = dir.path().join(format!("kept-{w:?}.gguf"));
        std::fs::copy(&q4_1, &model).unwrap();
        let copy = weights::copy_path(&model).unwrap();
        let _ = std::fs::remove_file(&copy);
        let mut chosen = kept.clone();
        chosen.weights = w;
        chosen.flash_attention = chosen.flash_for(w);
        let file = tune::tuning_file(&model, threads, 3, &encodings);
        std::fs::write(&file, serde_json::to_vec(&chosen).unwrap()).unwrap();
        let mut config = LocalConfig::new(&model);
        config.slots = 3;
        let policy = LocalPolicy::load(&config).unwrap();
        assert_eq!((policy.weights(), copy.exists()), (w, made), "{chosen:?}");
        assert_eq!(policy.decoding().2, Some(chosen));
    }
}
