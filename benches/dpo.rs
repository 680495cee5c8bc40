//! Preference training (DPO) against the Python route: correctness, then speed and memory.
//!
//! Correctness: on the tiny model, a few DPO (and IPO with an SFT term) steps record what each
//! started from, its gradients and its window (`TrainConfig::gradients`); `benches/dpo_peer.py
//! check` recomputes each step's loss and LoRA gradients in PyTorch + PEFT (F32) from the same
//! weights and pairs and the bench prints how far apart they are, and fails past 1e-3.
//!
//! Speed: the same pairs of household prompts on the default student (Q4_1), one pair a step,
//! leap against TRL's `DPOTrainer` with PEFT (reference log-probabilities precomputed on both
//! sides, so the steps compare like for like), in child processes of their own for peak memory.
//! The peer runs from the virtual environment `just bench` makes (`LEAP_PEFT_PYTHON`); without
//! it only our side is measured.

#[path = "common/child.rs"]
mod child;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use leap::agent::{Message, Role};
use leap::dataset::RowMeta;
use leap::dataset::build::PreferencePair;
use leap::model::{Adapter, TinySpec};
use leap::train::{
    self, BaseChoice, Examples, LoraSpec, Matmul, Objective, Preference, PreferenceLoss, Target,
    TrainConfig, TrainEvent,
};

use child::{Measure, kernel_name, parse, threads};

const RANK: u32 = 8;
const ALPHA: f32 = 16.0;
const WARMUP: usize = 2;
const TIMED: usize = 6;
/// Tokens of each side of a speed pair, about.
const SIDE: usize = 240;
/// Largest gradient difference allowed, relative to the largest gradient.
const TOLERANCE: f64 = 1e-3;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(Path::new(&args[i + 1]), &args[i + 2]);
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
    let Some(python) = std::env::var_os("LEAP_PEFT_PYTHON").map(PathBuf::from) else {
        eprintln!("LEAP_PEFT_PYTHON unset: measuring leap only (`just bench` sets up the peer)");
        speed(None, &model);
        return;
    };
    correctness(&python, &model);
    speed(Some(&python), &model);
}

/// A prompt of household text about `words` long, and two answers.
fn pair(i: usize, repeat: usize) -> PreferencePair {
    let sentence = "You see a cabinet 3, a drawer 2, a countertop 1 and a fridge 1. ";
    let answer = |a: &str| vec![Message::new(Role::Assistant, a)];
    PreferencePair {
        prompt: vec![
            Message::new(
                Role::System,
                "You are in a house. Answer with REASON and ACTION.",
            ),
            Message::new(Role::User, format!("Task {i}: {}", sentence.repeat(repeat))),
        ],
        chosen: answer("REASON: the fridge keeps food.\nACTION: go to fridge 1"),
        rejected: answer(if i.is_multiple_of(2) {
            "REASON: I should look around.\nACTION: look"
        } else {
            "REASON: the drawer may hold it.\nACTION: open drawer 2"
        }),
        meta: RowMeta {
            scenario_id: format!("s{i}"),
            ..RowMeta::default()
        },
    }
}

fn lora() -> LoraSpec {
    LoraSpec {
        rank: RANK,
        alpha: ALPHA,
        targets: Target::ALL.to_vec(),
    }
}

fn correctness(python: &Path, model: &Path) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let tiny = dir.path().join("tiny.gguf");
    leap::model::write_tiny(model, &tiny, &TinySpec::default()).expect("the tiny model");
    // A start whose B is not zero, so that every LoRA weight has a gradient.
    let start = dir.path().join("start.gguf");
    let file = leap::model::GgufFile::open(&tiny).expect("the tiny model");
    let mut adapter = Adapter::init(&file, &lora(), 3).expect("an adapter");
    for (i, w) in adapter.weights.iter_mut().enumerate() {
        for (j, b) in w.b.iter_mut().enumerate() {
            *b = (((i * 31 + j) * 7919 % 101) as f32 / 101.0 - 0.5) * 0.2;
        }
    }
    adapter.meta.base_sha256 = leap::model::fetch::sha256_file(&tiny).expect("a hash");
    adapter.write(&start).expect("the start");
    let pairs: Vec<PreferencePair> = (0..6).map(|i| pair(i, 1 + i % 3)).collect();
    println!(
        "correctness: leap against PyTorch + PEFT (F32), the tiny model, the same weights and pairs each step"
    );
    let objectives = [
        (
            "DPO, beta 0.1",
            Objective::Dpo(Preference {
                loss: PreferenceLoss::Sigmoid,
                beta: 0.1,
                sft_weight: 0.0,
            }),
        ),
        (
            "IPO, beta 0.5, SFT weight 0.5",
            Objective::Dpo(Preference {
                loss: PreferenceLoss::Ipo,
                beta: 0.5,
                sft_weight: 0.5,
            }),
        ),
    ];
    for (name, objective) in objectives {
        let steps = dir.path().join(name.replace([' ', ','], "_"));
        let mut config = TrainConfig::new(&tiny, dir.path().join("dpo.gguf"));
        config.base = BaseChoice::F32;
        config.matmul = Matmul::Blas;
        // Two or three pairs a window: the loss is their mean.
        config.n_ctx = 512;
        config.epochs = 1;
        config.lr = 1e-2;
        config.warmup = 0.0;
        config.eval_fraction = 0.0;
        config.lora = lora();
        config.init = Some(start.clone());
        config.objective = objective;
        config.gradients = Some(steps.clone());
        config.threads = Some(threads());
        train::train_on(
            &config,
            Examples::Pairs(&pairs),
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .expect("training");
        let out = Command::new(python)
            .arg(script())
            .args(["check", "--gguf"])
            .arg(&tiny)
            .arg("--dir")
            .arg(&steps)
            .args(["--rank", &RANK.to_string(), "--alpha", &ALPHA.to_string()])
            .args(["--threads", &threads().to_string()])
            .output()
            .expect("the peer runs");
        assert!(
            out.status.success(),
            "peer: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value =
            serde_json::from_str(text.lines().last().unwrap_or("")).expect("the peer's JSON");
        for s in v["steps"].as_array().expect("steps") {
            let f = |k: &str| s[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "  {name}: step {} ({} pairs): loss {:.6} (leap) {:.6} (PyTorch); gradients: largest difference {:.1e} of the largest, relative L2 {:.1e}, cosine {:.7}{}",
                s["step"],
                s["pairs"],
                f("loss_leap"),
                f("loss_torch"),
                f("grad_max_rel_diff"),
                f("grad_rel_l2"),
                f("grad_cosine"),
                s["reference_max_abs_diff"]
                    .as_f64()
                    .map(|d| format!("; reference log-probabilities within {d:.1e}"))
                    .unwrap_or_default()
            );
            assert!(
                (f("loss_leap") - f("loss_torch")).abs()
                    < TOLERANCE * f("loss_torch").abs().max(1.0),
                "{name}: the losses differ: {s}"
            );
            assert!(
                f("grad_max_rel_diff") < TOLERANCE,
                "{name}: the gradients differ: {s}"
            );
        }
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/dpo_peer.py")
}

/// Pairs of about `SIDE` tokens a side on the default model, as JSONL in `dir`.
fn speed_pairs(model: &Path, dir: &Path) -> (PathBuf, usize) {
    let chat = train::data::ChatText::load(model).expect("the model's tokenizer");
    let side = |p: &PreferencePair| {
        chat.encode_pair(1, p)
            .expect("a pair")
            .map(|s| s.tokens.len())
    };
    let mut repeat = 1;
    while side(&pair(0, repeat + 1))[0].max(side(&pair(0, repeat + 1))[1]) <= SIDE {
        repeat += 1;
    }
    let pairs: Vec<PreferencePair> = (0..WARMUP + TIMED).map(|i| pair(i, repeat)).collect();
    let tokens: usize = pairs
        .iter()
        .map(|p| side(p).iter().sum::<usize>())
        .sum::<usize>()
        / pairs.len();
    let path = dir.join("pairs.jsonl");
    leap::dataset::write_jsonl(&path, &pairs).expect("the pairs");
    (path, tokens)
}

fn speed(python: Option<&Path>, model: &Path) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (pairs, tokens) = speed_pairs(model, dir.path());
    println!(
        "speed: DPO on {} pairs of {tokens} tokens (both sides) on {}, LoRA rank {RANK} on every projection, one pair a step, {} threads, median of {TIMED} steps",
        WARMUP + TIMED,
        model.display(),
        threads()
    );
    let exe = std::env::current_exe().expect("the bench binary");
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("a child");
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        }
        parse(&out.stdout)
    };
    let show = |name: &str, m: &Option<Measure>| {
        if let Some(m) = m {
            println!(
                "  {name:<52} {:.2} s/step  {:>6.1} tokens/s  peak {:>6.0} MB",
                m.step_s, m.tokens_per_s, m.peak_rss_mb
            );
        }
    };
    let blas = run(Command::new(&exe).arg("--child").arg(&pairs).arg("blas"));
    show("leap, F32 through BLAS, the Q4_1 model", &blas);
    // Each BF16 kernel this CPU has, fastest (the default) first.
    let bf16: Vec<(String, Option<Measure>)> = Matmul::bf16_kernels()
        .into_iter()
        .map(|k| {
            let name = format!("BF16 {}", kernel_name(k));
            let m = run(Command::new(&exe)
                .arg("--child")
                .arg(&pairs)
                .arg(k.as_str()));
            (name, m)
        })
        .collect();
    for (i, (name, m)) in bf16.iter().enumerate() {
        let default = if i == 0 { " (default)" } else { "" };
        show(&format!("leap, {name}, the Q4_1 model{default}"), m);
    }
    if bf16.is_empty() {
        println!("  no AMX or AVX512-BF16 on this CPU: the default is F32 through BLAS");
    }
    let Some(python) = python else { return };
    let peer = run(Command::new(python)
        .arg(script())
        .args(["speed", "--gguf"])
        .arg(model)
        .arg("--pairs")
        .arg(&pairs)
        .arg("--out")
        .arg(dir.path().join("trl"))
        .args(["--tokens-per-pair", &tokens.to_string()])
        .args(["--warmup", &WARMUP.to_string()])
        .args(["--threads", &threads().to_string()]));
    show("TRL DPOTrainer + PEFT, F32", &peer);
    let all = std::iter::once(("F32 BLAS".to_string(), blas)).chain(bf16);
    for (name, ours) in all {
        if let (Some(o), Some(p)) = (ours, peer) {
            println!(
                "  ratio leap ({name}) / TRL: tokens/s {:.2}x (target >= 1.0), peak memory {:.2}x (target <= 0.5)",
                o.tokens_per_s / p.tokens_per_s,
                o.peak_rss_mb / p.peak_rss_mb
            );
        }
    }
}

fn child(pairs_path: &Path, matmul: &str) {
    let model = leap::model::default_model_path();
    let pairs = leap::dataset::read_pairs(pairs_path).expect("the pairs");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut config = TrainConfig::new(&model, dir.path().join("dpo.gguf"));
    config.n_ctx = (2 * SIDE).div_ceil(256) as u32 * 256;
    config.epochs = 1;
    config.eval_fraction = 0.0;
    config.threads = Some(threads());
    config.matmul = child::matmul(matmul);
    config.base = BaseChoice::Quantized;
    config.lora = lora();
    config.objective = Objective::Dpo(Preference::default());
    let (mut last, mut times) = (None, Vec::new());
    let summary = train::train_on(
        &config,
        Examples::Pairs(&pairs),
        &AtomicBool::new(false),
        &mut |e| {
            if let TrainEvent::Step(p) = e {
                let now = Instant::now();
                if let Some(t) = last
                    && p.step as usize > WARMUP
                {
                    times.push(now.duration_since(t).as_secs_f64());
                }
                last = Some(now);
            }
        },
    )
    .expect("training");
    assert_eq!(summary.steps as usize, pairs.len(), "one pair a window");
    times.sort_by(f64::total_cmp);
    let step_s = times[times.len() / 2];
    println!(
        "{}",
        serde_json::json!({
            "step_s": step_s,
            "tokens_per_s": summary.tokens as f64 / pairs.len() as f64 / step_s,
            "peak_rss_mb": summary.peak_rss_mb.unwrap_or(0.0),
        })
    );
}
