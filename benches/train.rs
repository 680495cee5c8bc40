//! LoRA training speed and memory, side by side with the Python route a user would otherwise
//! take: PyTorch + PEFT on CPU (`benches/peft_peer.py`), on the same weights (the default
//! student's Q4_1 values: leap reads the GGUF as it is, or its F32 copy for ggml's own kernels;
//! transformers dequantises the same GGUF to F32), the same rank, alpha, target projections,
//! window length and thread count.
//!
//! Each measurement runs in a child process of its own, so peak memory is one run's. The peer runs
//! from the virtual environment `just bench` makes (`LEAP_PEFT_PYTHON`); without it only our side
//! is measured. Times are medians of steady-state steps (after two untimed ones).

#[path = "common/child.rs"]
mod child;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use leap::agent::{Message, Role};
use leap::dataset::Row;
use leap::train::{self, BaseChoice, LoraSpec, LossOn, Matmul, Target, TrainConfig, TrainEvent};

use child::{Measure, kernel_name, parse, threads};

const WARMUP: usize = 2;
const TIMED: usize = 6;
const RANK: u32 = 8;
const ALPHA: f32 = 16.0;
/// Window lengths measured: the experiment's 1,024 (see the README) and two shorter ones;
/// `LEAP_BENCH_SEQ` (comma-separated) chooses others.
const SEQ_LENS: [u32; 3] = [256, 512, 1024];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let seq_len: u32 = args[i + 1].parse().expect("a window length");
        let matmul = child::matmul(&args[i + 2]);
        let base = match args.get(i + 3).map(String::as_str) {
            Some("quantized") => BaseChoice::Quantized,
            _ => BaseChoice::F32,
        };
        child(seq_len, matmul, base);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    // The children load OpenBLAS with the kernels the `leap` binary would choose.
    if let Some(core) = train::blas::better_core() {
        // SAFETY: no other thread runs yet.
        unsafe { std::env::set_var("OPENBLAS_CORETYPE", core) };
    }
    let model = leap::model::default_model_path();
    assert!(
        model.is_file(),
        "{}: no model; run `just model`",
        model.display()
    );
    let python = std::env::var_os("LEAP_PEFT_PYTHON").map(PathBuf::from);
    if python.is_none() {
        eprintln!("LEAP_PEFT_PYTHON unset: measuring leap only (`just bench` sets up the peer)");
    }
    println!(
        "LoRA rank {RANK} alpha {ALPHA} on q,k,v,o,gate,up,down of {}, {} threads, batch of one window, median of {TIMED} steps",
        model.display(),
        threads()
    );
    for seq_len in seq_lens() {
        // ggml's kernels train a quantised base several times slower: they get the F32 copy.
        let plain = ours(seq_len, "ggml", "f32");
        let show = |name: &str, m: &Measure| {
            println!(
                "seq {seq_len}: {name:<52} {:.2} s/step  {:>6.1} tokens/s  peak {:>6.0} MB  ({:.2}x ggml's kernels)",
                m.step_s,
                m.tokens_per_s,
                m.peak_rss_mb,
                m.tokens_per_s / plain.tokens_per_s
            )
        };
        show("leap, ggml's kernels, F32 copy", &plain);
        let f32 = ours(seq_len, "blas", "quantized");
        show("leap, F32 through BLAS, the Q4_1 model", &f32);
        // Each BF16 kernel this CPU has, fastest (the default) first.
        let bf16: Vec<(Matmul, Measure)> = Matmul::bf16_kernels()
            .into_iter()
            .map(|k| (k, ours(seq_len, k.as_str(), "quantized")))
            .collect();
        for (i, (kernel, m)) in bf16.iter().enumerate() {
            let name = format!(
                "leap, BF16 on {}, the Q4_1 model{}",
                kernel_name(*kernel),
                if i == 0 { " (default)" } else { "" }
            );
            show(&name, m);
        }
        if bf16.is_empty() {
            println!(
                "seq {seq_len}: no AMX or AVX512-BF16 on this CPU: the default is F32 through BLAS"
            );
        }
        let Some(python) = &python else { continue };
        let peer_f32 = peer(python, &model, seq_len, false);
        // Like for like: the peer at mixed precision too (oneDNN runs BF16 on AMX and
        // AVX512-BF16 as well).
        let peer_bf16 = (!bf16.is_empty())
            .then(|| peer(python, &model, seq_len, true))
            .flatten();
        for (name, p) in [
            ("PyTorch + PEFT, F32 (dequantised Q4_1)", &peer_f32),
            ("PyTorch + PEFT, BF16 autocast", &peer_bf16),
        ] {
            if let Some(p) = p {
                println!(
                    "seq {seq_len}: {name:<52} {:.2} s/step  {:>6.1} tokens/s  peak {:>6.0} MB",
                    p.step_s, p.tokens_per_s, p.peak_rss_mb
                );
            }
        }
        let mut pairs = vec![("F32 BLAS".to_string(), f32, "peer F32", peer_f32)];
        for (kernel, m) in &bf16 {
            let name = format!("BF16 {}", kernel_name(*kernel));
            pairs.push((name.clone(), *m, "peer F32", peer_f32));
            pairs.push((name, *m, "peer BF16", peer_bf16));
        }
        for (name, ours, peer_name, peer) in pairs {
            let Some(peer) = peer else {
                continue;
            };
            println!(
                "seq {seq_len}: ratio leap ({name}) / {peer_name}: tokens/s {:.2}x (target >= 1.0), peak memory {:.2}x (target <= 0.5)",
                ours.tokens_per_s / peer.tokens_per_s,
                ours.peak_rss_mb / peer.peak_rss_mb
            );
        }
    }
}

/// The window lengths to measure: `LEAP_BENCH_SEQ`, else [`SEQ_LENS`].
fn seq_lens() -> Vec<u32> {
    match std::env::var("LEAP_BENCH_SEQ") {
        Ok(list) => list
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("LEAP_BENCH_SEQ: {s:?} is not a window length"))
            })
            .collect(),
        Err(_) => SEQ_LENS.to_vec(),
    }
}

/// Runs our side in a child process and reads its JSON line.
fn ours(seq_len: u32, matmul: &str, base: &str) -> Measure {
    let exe = std::env::current_exe().expect("the bench binary");
    let out = Command::new(exe)
        .args(["--child", &seq_len.to_string(), matmul, base])
        .output()
        .expect("run the bench child");
    assert!(
        out.status.success(),
        "leap training failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&out.stdout).expect("the child prints a measurement")
}

fn peer(python: &PathBuf, model: &PathBuf, seq_len: u32, bf16: bool) -> Option<Measure> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peft_peer.py");
    let out = Command::new(python)
        .arg(script)
        .arg("--gguf")
        .arg(model)
        .args([
            "--seq-len",
            &seq_len.to_string(),
            "--rank",
            &RANK.to_string(),
            "--alpha",
            &ALPHA.to_string(),
            "--threads",
            &threads().to_string(),
            "--steps",
            &TIMED.to_string(),
            "--warmup",
            &WARMUP.to_string(),
        ])
        .args(bf16.then_some("--bf16"))
        .output();
    match out {
        Ok(o) if o.status.success() => parse(&o.stdout),
        Ok(o) => {
            eprintln!("peer: {}", String::from_utf8_lossy(&o.stderr));
            None
        }
        Err(e) => {
            eprintln!("{}: {e}", python.display());
            None
        }
    }
}

/// One row per window: household text just short of `seq_len` tokens, learnt whole (the peer's
/// loss is on every token too).
fn rows(seq_len: u32) -> Vec<Row> {
    let model = leap::model::default_model_path();
    let chat = train::data::ChatText::load(&model).expect("the model's tokenizer");
    let sentence = "You see a cabinet 3, a drawer 2, a countertop 1 and a fridge 1. ";
    let make = |i: usize, n: usize| Row {
        messages: vec![
            Message::new(Role::User, format!("Task {i}: {}", sentence.repeat(n))),
            Message::new(
                Role::Assistant,
                "REASON: the fridge keeps food.\nACTION: go to fridge 1",
            ),
        ],
        meta: None,
    };
    let len = |n: usize| chat.encode(1, &make(0, n)).expect("a row").tokens.len();
    let mut n = 1;
    while len(n + 1) <= seq_len as usize - 8 {
        n += 1;
    }
    (0..WARMUP + TIMED).map(|i| make(i, n)).collect()
}

fn child(seq_len: u32, matmul: Matmul, base: BaseChoice) {
    let model = leap::model::default_model_path();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut config = TrainConfig::new(&model, dir.path().join("bench.gguf"));
    config.n_ctx = seq_len;
    config.epochs = 1;
    config.eval_fraction = 0.0;
    config.loss_on = LossOn::All;
    config.threads = Some(threads());
    config.matmul = matmul;
    config.base = base;
    config.lora = LoraSpec {
        rank: RANK,
        alpha: ALPHA,
        targets: Target::ALL.to_vec(),
    };
    let rows = rows(seq_len);
    let mut last = None;
    let mut times = Vec::new();
    let summary = train::train(&config, &rows, &AtomicBool::new(false), &mut |e| {
        if let TrainEvent::Step(p) = e {
            let now = Instant::now();
            if let Some(t) = last
                && p.step as usize > WARMUP
            {
                times.push(now.duration_since(t).as_secs_f64());
            }
            last = Some(now);
        }
    })
    .expect("training");
    assert_eq!(summary.steps as usize, WARMUP + TIMED, "one window per row");
    times.sort_by(f64::total_cmp);
    let step_s = times[times.len() / 2];
    println!(
        "{}",
        serde_json::json!({
            "step_s": step_s,
            "tokens_per_s": f64::from(seq_len) / step_s,
            "peak_rss_mb": summary.peak_rss_mb.unwrap_or(0.0),
        })
    );
}
