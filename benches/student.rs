//! The student's speed, measured side by side with its peers in one run:
//! 1. generation tokens/s of our local backend against llama.cpp's own `llama-bench` on the same
//!    GGUF and thread count (llama-bench from `just llama-tools`);
//! 2. rollout throughput (environment steps per second over a fixed set of test scenarios) with
//!    prefix reuse and continuous batching, for 1, 2, 4, 8 and 16 parallel sequences, against
//!    re-sending the whole prompt every step one episode at a time (how the paper's Python code
//!    ran), against lock-step rounds (every answer of a round waits for the slowest, as leap's
//!    rollouts did before continuous batching), against llama.cpp's own batching ceiling, and
//!    against the same rollout through llama-server (`just llama-tools`: its own continuous
//!    batching and prompt cache) and leap's remote backend;
//! 3. the cost of one decode call with flash attention on and off, for 1 and 8 sequences and
//!    1 to 64 new tokens each: the table that shows where ggml's CPU flash attention is slow.

#[path = "../tests/common/llama_server.rs"]
mod llama_server;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use leap::agent::local::{DRAFT, LocalPolicy, Weights};
use leap::agent::prompt::Prompt;
use leap::agent::student::StudentSpec;
use leap::agent::{Policy, PolicyError, Request, Response, Sampling};
use leap::rollout::{RolloutConfig, rollout};
use leap::scenario;
use leap::store::Store;

/// Milliseconds per decode call of `k` new tokens in each of `seqs` sequences, 450 tokens
/// cached in each, with llama.cpp's flash attention on or off: on the CPU, flash attention
/// takes its tiled path (matrix products) only from 64 new tokens of a sequence on, and
/// attends one query row at a time below that.
fn decode_cost(
    model: &llama_cpp_2::model::LlamaModel,
    seqs: usize,
    flash: bool,
    ks: &[usize],
) -> Vec<f64> {
    use llama_cpp_2::context::params::LlamaContextParams;
    use llama_cpp_2::llama_batch::LlamaBatch;
    use std::num::NonZeroU32;
    let backend = leap::agent::local::backend();
    let depth = 450;
    let policy = if flash {
        llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED
    } else {
        llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED
    };
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(1536 * seqs as u32))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_seq_max(seqs as u32)
        .with_kv_unified(false)
        .with_flash_attention_policy(policy)
        .with_n_threads(threads() as i32)
        .with_n_threads_batch(threads() as i32);
    let mut ctx = model.new_context(backend, params).expect("a context");
    let text = "You are in the middle of a room. Looking quickly around you, you see a cabinet 2. ";
    let tokens = model
        .vocab()
        .tokenize(text.repeat(40).as_bytes(), true, true);
    let tokens = &tokens[..depth];
    let mut batch = LlamaBatch::new(512, seqs as i32);
    for s in 0..seqs {
        for (c, chunk) in tokens.chunks(256).enumerate() {
            batch.clear();
            for (j, &t) in chunk.iter().enumerate() {
                let pos = c * 256 + j;
                batch
                    .add(t, pos as i32, &[s as i32], pos + 1 == depth)
                    .expect("room");
            }
            ctx.decode(&mut batch).expect("decode");
        }
    }
    let reps = 6;
    ks.iter()
        .map(|&k| {
            let start = Instant::now();
            for r in 0..reps {
                batch.clear();
                for s in 0..seqs {
                    for j in 0..k {
                        let t = tokens[(r * 7 + j) % 64];
                        batch
                            .add(t, (depth + j) as i32, &[s as i32], true)
                            .expect("room");
                    }
                }
                ctx.decode(&mut batch).expect("decode");
                for s in 0..seqs {
                    ctx.clear_kv_cache_seq(Some(s as u32), Some(depth as u32), None)
                        .expect("trim");
                }
            }
            start.elapsed().as_secs_f64() * 1e3 / reps as f64
        })
        .collect()
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// One row of llama-bench's JSON output: tokens/s for `n_prompt` prompt or `n_gen` generated
/// tokens after `n_depth` tokens already in the cache.
struct BenchRow {
    n_prompt: u64,
    n_gen: u64,
    n_depth: u64,
    tokens_per_s: f64,
}

/// Runs llama-bench on `model` with our thread count and `args`; `None` (and why on stderr)
/// when it is missing or fails.
fn llama_bench(model: &PathBuf, args: &[&str]) -> Option<Vec<BenchRow>> {
    let cache = std::env::var("XDG_CACHE_HOME")
        .ok()
        .filter(|c| c.starts_with('/'))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache"));
    let bin = std::env::var_os("LEAP_LLAMA_BENCH")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("leap/llama-tools/bin/llama-bench"));
    let out = Command::new(&bin)
        .args(["-m"])
        .arg(model)
        .args(["-t", &threads().to_string(), "-r", "3", "-o", "json"])
        .args(args)
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!("llama-bench failed: {}", String::from_utf8_lossy(&o.stderr));
            return None;
        }
        Err(e) => {
            eprintln!("{}: {e}; run `just llama-tools`", bin.display());
            return None;
        }
    };
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    rows.as_array()?
        .iter()
        .map(|row| {
            Some(BenchRow {
                n_prompt: row["n_prompt"].as_u64()?,
                n_gen: row["n_gen"].as_u64()?,
                n_depth: row["n_depth"].as_u64().unwrap_or(0),
                tokens_per_s: row["avg_ts"].as_f64()?,
            })
        })
        .collect()
}

/// llama-bench's prompt tokens/s (pp `pp`, empty cache) and generation tokens/s (tg `tg` after
/// `pp` cached tokens: ours generates after the prompt, where attention reads the cache, and
/// for a model this small that costs about 40% of the speed, so compare at the same depth),
/// each the better of flash attention on and off.
fn their_speeds(model: &PathBuf, pp: usize, tg: usize) -> Option<(f64, f64)> {
    let (p, n, d) = (pp.to_string(), tg.to_string(), format!("0,{pp}"));
    let rows = llama_bench(model, &["-p", &p, "-n", &n, "-d", &d, "-fa", "0,1"])?;
    let find = |generating: bool, depth: u64| {
        rows.iter()
            .filter(|r| (r.n_gen > 0) == generating && r.n_depth == depth)
            .map(|r| r.tokens_per_s)
            .reduce(f64::max)
    };
    Some((find(false, 0)?, find(true, pp as u64)?))
}

/// How much faster llama.cpp itself runs 8 tokens in one batch than 1, with `depth` tokens
/// cached and flash attention off, as the local backend runs on the CPU: the most that
/// decoding 8 episodes as one batch can gain on this machine.
fn batch_gain(model: &PathBuf, depth: usize) -> Option<f64> {
    let d = depth.to_string();
    let rows = llama_bench(model, &["-p", "1,8", "-n", "0", "-d", &d, "-fa", "0"])?;
    let speed = |n: u64| {
        rows.iter()
            .find(|r| r.n_prompt == n)
            .map(|r| r.tokens_per_s)
    };
    Some(speed(8)? / speed(1)?)
}

fn ours(model: &PathBuf, pp: usize, tg: usize) -> (f64, f64) {
    let mut policy = StudentSpec::new(model).load().expect("the model loads");
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(pp);
    let tokens: Vec<_> = policy.tokenize(&text).into_iter().take(pp).collect();
    policy.timed_generation(&tokens, 8).expect("warm-up");
    let mut best = (0.0f64, 0.0f64);
    let mut in_decode = 0.0f64;
    for _ in 0..3 {
        let (p, g, d) = policy.timed_generation(&tokens, tg).expect("generation");
        best.0 = best.0.max(pp as f64 / p);
        best.1 = best.1.max(tg as f64 / g);
        in_decode = in_decode.max(d / g);
    }
    println!(
        "    ours: {:.1}% of the generation loop is inside llama_decode",
        100.0 * in_decode
    );
    best
}

/// A policy that answers only in lock-step rounds: [`Policy::serve`]'s default over the local
/// backend's `respond`, as rollouts ran before continuous batching.
struct Rounds(LocalPolicy);

impl Policy for Rounds {
    fn describe(&self) -> String {
        format!("{} in lock-step rounds", self.0.describe())
    }

    fn respond(
        &mut self,
        requests: &[Request],
        sampling: &Sampling,
        on_token: &mut dyn FnMut(usize, &str),
    ) -> Result<Vec<Response>, PolicyError> {
        self.0.respond(requests, sampling, on_token)
    }
}

/// How the local backend plays the bench's rollout.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Prefix reuse and continuous batching.
    Continuous,
    /// Prefix reuse, lock-step rounds.
    Rounds,
    /// The whole prompt every step, lock-step.
    Whole,
}

/// How the local backend is set: `None` leaves it to this CPU's timing.
#[derive(Clone, Copy, Default)]
struct Set {
    flash_attention: Option<bool>,
    draft: Option<usize>,
    weights: Option<Weights>,
}

fn rollout_steps_per_s(
    model: &PathBuf,
    parallel: usize,
    mode: Mode,
    set: Set,
    scenarios: &[scenario::Scenario],
) -> (f64, f64) {
    let mut config = StudentSpec::new(model).slots(parallel).config();
    config.reuse_prefix = mode != Mode::Whole;
    config.flash_attention = set.flash_attention;
    config.draft = set.draft;
    config.weights = set.weights;
    let policy = LocalPolicy::load(&config).expect("the model loads");
    let (flash, guessed, _) = policy.decoding();
    let weights = policy.weights();
    let (steps_per_s, success, st) = match mode {
        Mode::Continuous => {
            let mut policy = policy;
            let (a, b) = timed_rollout(&mut policy, parallel, scenarios);
            (a, b, policy.stats())
        }
        Mode::Rounds | Mode::Whole => {
            let mut policy = Rounds(policy);
            let (a, b) = timed_rollout(&mut policy, parallel, scenarios);
            (a, b, policy.0.stats())
        }
    };
    println!(
        "      weights {}, flash attention {}, up to {guessed} tokens guessed",
        weights.name(),
        match flash {
            Some(true) => "on",
            Some(false) => "off",
            None => "llama.cpp's choice",
        }
    );
    println!(
        "      prompt {} tokens ({} cached) in {:.1} s; {} generated: decode {:.1} s, sampling {:.1} s ({} grammar fallbacks); {} tokens drafted, {} of them kept; {} decode calls, cut into {} parts",
        st.prompt_tokens,
        st.cached_tokens,
        st.prompt_s,
        st.gen_tokens,
        st.decode_s,
        st.sample_s,
        st.grammar_fallbacks,
        st.drafted_tokens,
        st.accepted_tokens,
        st.decode_calls,
        st.ubatches
    );
    (steps_per_s, success)
}

/// The same rollout through llama-server serving `model` with `parallel` slots of the local
/// backend's context on the same threads, `parallel` requests at once; `None` (and why) when
/// llama-server is missing.
fn server_steps_per_s(
    model: &PathBuf,
    parallel: usize,
    args: &[&str],
    scenarios: &[scenario::Scenario],
) -> Option<(f64, f64)> {
    if let Err(e) = std::panic::catch_unwind(llama_server::llama_server_bin) {
        let why = e.downcast_ref::<String>().cloned().unwrap_or_default();
        println!("    llama-server: {why}");
        return None;
    }
    let ctx = StudentSpec::new(model).config().ctx_per_slot * parallel as u32;
    let server =
        llama_server::LlamaServer::start_with(model, ctx, parallel as u32, threads(), args);
    let mut config = server.policy().config().clone();
    config.concurrency = parallel;
    config.timeout = std::time::Duration::from_secs(300);
    let mut policy = leap::agent::remote::RemotePolicy::new(config);
    Some(timed_rollout(&mut policy, parallel, scenarios))
}

/// Plays every scenario once for 10 steps, `parallel` at a time: steps per second and success.
fn timed_rollout(
    policy: &mut dyn leap::agent::Policy,
    parallel: usize,
    scenarios: &[scenario::Scenario],
) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut store = Store::open(dir.path()).expect("a store");
    let rc = RolloutConfig {
        label: "bench".into(),
        episodes: 1,
        parallel,
        sampling: Sampling::default(),
        iteration: None,
        horizon: Some(10),
        privileged: false,
        // Every episode plays its 10 steps, so that each configuration does the same work.
        stop_cycles: false,
    };
    let start = Instant::now();
    let s = rollout(
        policy,
        &Prompt::builtin(8),
        &mut store,
        scenarios,
        &rc,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .expect("rollout");
    println!(
        "    {} ({parallel} parallel): {:.1} s, {} steps",
        policy.describe(),
        start.elapsed().as_secs_f64(),
        s.mean_steps * s.episodes as f64
    );
    (s.steps_per_s, s.success_rate)
}

fn main() {
    let model = leap::model::default_model_path();
    assert!(
        model.exists(),
        "{} is missing: run `just model`",
        model.display()
    );
    println!(
        "student benchmarks on {} ({} threads)",
        model.display(),
        threads()
    );

    let cpu = leap::agent::tune::cpu_model().unwrap_or_else(|| "unknown CPU".into());
    println!("  {cpu}; llama.cpp: {}", leap::agent::local::system_info());
    let (pp, tg) = (256, 64);
    let (our_pp, our_tg) = ours(&model, pp, tg);
    match their_speeds(&model, pp, tg) {
        Some((their_pp, their_tg)) => {
            println!(
                "  generation (tg{tg} after {pp} prompt tokens):  ours {our_tg:7.1} tok/s, llama-bench {their_tg:7.1} tok/s  ratio {:.2} (target >= 0.95)",
                our_tg / their_tg
            );
            println!(
                "  prompt (pp{pp}):     ours {our_pp:7.1} tok/s, llama-bench {their_pp:7.1} tok/s  ratio {:.2}",
                our_pp / their_pp
            );
        }
        None => println!(
            "  generation (tg{tg}): ours {our_tg:.1} tok/s; prompt (pp{pp}): ours {our_pp:.1} tok/s (no llama-bench to compare)"
        ),
    }

    println!(
        "  decode cost, ms per call (450 tokens cached per sequence), new tokens per sequence 1 / 8 / 63 / 64:"
    );
    let llama = llama_cpp_2::model::LlamaModel::load_from_file(
        leap::agent::local::backend(),
        &model,
        &llama_cpp_2::model::params::LlamaModelParams::default(),
    )
    .expect("the model loads");
    for seqs in [1, 8] {
        for flash in [true, false] {
            let ms = decode_cost(&llama, seqs, flash, &[1, 8, 63, 64]);
            let ms: Vec<String> = ms.iter().map(|m| format!("{m:.1}")).collect();
            println!(
                "    {seqs} sequence(s), flash attention {}: {}",
                if flash { "on " } else { "off" },
                ms.join(" / ")
            );
        }
    }
    drop(llama);

    rollout_bench(&model);
}

/// The rollout rows: the curve over the number of sequences, and the peers.
fn rollout_bench(model: &PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut scenarios =
        scenario::load_all(&[root.join("scenarios/household/test")]).expect("shipped scenarios");
    scenarios.truncate(16);
    let n = scenarios.len();
    println!("  rollout, {n} test scenarios x 10 steps, greedy under the grammar:");
    for slots in [1, 8] {
        let policy = StudentSpec::new(model)
            .slots(slots)
            .load()
            .expect("the model loads");
        if let (_, _, Some(t)) = policy.decoding() {
            println!(
                "    this CPU's timing, {}: {}",
                if slots == 1 {
                    "one sequence"
                } else {
                    "several"
                },
                t.describe()
            );
        }
    }
    let mut curve = Vec::new();
    for k in [1, 2, 4, 8, 16] {
        let (speed, _) =
            rollout_steps_per_s(model, k, Mode::Continuous, Set::default(), &scenarios);
        println!("    continuous batching, {k:2} sequences: {speed:.2} steps/s");
        curve.push((k, speed));
    }
    let (best_k, fast) = curve
        .iter()
        .copied()
        .fold((0, 0.0), |b, (k, v)| if v > b.1 { (k, v) } else { b });
    // Every way of decoding at the best point, so that the timing's choice can be checked: each
    // flash-attention setting with and without guesses for the weights chosen, and the other
    // weights the way the timing sets them.
    let chosen = StudentSpec::new(model)
        .slots(best_k)
        .load()
        .expect("the model loads")
        .weights();
    let mut ways = Vec::new();
    let mut way = |set: Set| {
        let (speed, _) = rollout_steps_per_s(model, best_k, Mode::Continuous, set, &scenarios);
        let on_off = |b: bool| if b { "on" } else { "off" };
        ways.push(format!(
            "weights {}{}: {speed:.2}",
            set.weights.map_or("as timed", Weights::name),
            set.flash_attention.map_or(String::new(), |f| format!(
                ", flash attention {}, {} guessed",
                on_off(f),
                set.draft.unwrap_or(0)
            )),
        ));
    };
    for flash in [false, true] {
        for draft in [0, DRAFT] {
            way(Set {
                flash_attention: Some(flash),
                draft: Some(draft),
                weights: Some(chosen),
            });
        }
    }
    let other = match chosen {
        Weights::File => Weights::Q8_0,
        Weights::Q8_0 => Weights::File,
    };
    way(Set {
        weights: Some(other),
        ..Set::default()
    });
    let set = |flash, draft| Set {
        flash_attention: flash,
        draft,
        weights: Some(chosen),
    };
    let (rounds, _) = rollout_steps_per_s(model, 8, Mode::Rounds, set(None, Some(0)), &scenarios);
    // The baseline: the whole prompt every step, one episode at a time, a token per call, the
    // weights as chosen, with flash attention off and with llama.cpp's default on the CPU (on);
    // the faster counts.
    let (slow_off, _) =
        rollout_steps_per_s(model, 1, Mode::Whole, set(Some(false), Some(0)), &scenarios);
    let (slow_on, _) =
        rollout_steps_per_s(model, 1, Mode::Whole, set(Some(true), Some(0)), &scenarios);
    let slow = slow_off.max(slow_on);
    let at8 = curve.iter().find(|c| c.0 == 8).map_or(0.0, |c| c.1);
    println!(
        "  rollout: continuous batching {fast:.2} steps/s at its best ({best_k} sequences), {at8:.2} at 8; at {best_k}: {}; lock-step rounds at 8 {rounds:.2}; whole prompt one at a time (weights {}) {slow_off:.2} with flash attention off, {slow_on:.2} on (llama.cpp's default)",
        ways.join(", "),
        chosen.name()
    );
    println!(
        "    local / one at a time {:.2} (target >= 3.0; against the faster one-at-a-time setting); continuous / lock-step at 8 {:.2}",
        fast / slow,
        at8 / rounds,
    );
    if let Some(gain) = batch_gain(model, 300) {
        println!(
            "    llama-bench: 8 tokens in one batch run {gain:.2}x as fast as 1 (300 tokens cached, flash attention off): the most that batching 8 episodes can gain in decoding here; local / one at a time over that ceiling {:.2}",
            fast / slow / gain
        );
    }
    // llama-server's own default (flash attention on, on the CPU), and the same setting as ours;
    // the better of the two is the peer.
    // llama-server's own speculative decoding from n-grams (none by default) is tried too.
    let draft_max = DRAFT.to_string();
    let settings: [(&str, &[&str]); 4] = [
        ("flash attention on", &["--flash-attn", "on"]),
        ("flash attention off", &["--flash-attn", "off"]),
        (
            "flash attention off, --spec-type ngram-simple",
            &[
                "--flash-attn",
                "off",
                "--spec-type",
                "ngram-simple",
                "--spec-draft-n-max",
                &draft_max,
            ],
        ),
        (
            "flash attention off, --spec-type ngram-cache",
            &[
                "--flash-attn",
                "off",
                "--spec-type",
                "ngram-cache",
                "--spec-draft-n-max",
                &draft_max,
            ],
        ),
    ];
    // The weights as the local backend holds them, where it re-encodes them: the same model for
    // both.
    let copy = (chosen == Weights::Q8_0)
        .then(|| leap::agent::weights::q8_0_copy(model).expect("the Q8_0 copy"));
    let mut best_server: Option<(f64, String)> = None;
    for (name, args) in settings {
        // The copy with llama-server's two flash-attention settings (its speculation gained
        // nothing in any run).
        let copy = copy.iter().filter(|_| !args.contains(&"--spec-type"));
        let files = std::iter::once((model, "")).chain(copy.map(|c| (c, "the Q8_0 copy, ")));
        for (file, which) in files {
            if let Some((server, _)) = server_steps_per_s(file, best_k, args, &scenarios) {
                let name = format!("{which}{name}");
                println!("    llama-server, {name}: {server:.2} steps/s");
                if best_server.as_ref().is_none_or(|(s, _)| server > *s) {
                    best_server = Some((server, name));
                }
            }
        }
    }
    if let Some((server, name)) = best_server {
        println!(
            "  rollout through llama-server ({best_k} slots, its continuous batching and prompt cache, leap's remote backend keeping every slot busy, {name}, the fastest): {server:.2} steps/s; local / llama-server ratio {:.2} (target >= 1.2)",
            fast / server
        );
    }
}
