//! Training on the tiny random model: real llama.cpp, real files, a few seconds per test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use assert_cmd::prelude::*;
use leap::agent::local::{LocalConfig, LocalPolicy};
use leap::agent::{Message, Policy, Request, Role, Sampling};
use leap::dataset::{Row, RowMeta, write_jsonl};
use leap::model::{Adapter, TinySpec};
use leap::store::Store;
use leap::train::{
    self, BaseChoice, LoraSpec, Matmul, Pack, Target, TrainConfig, TrainError, TrainEvent,
    TrainSummary,
};

/// One tiny model per test process, and its F32 training copy beside it.
fn tiny() -> &'static Path {
    static TINY: OnceLock<PathBuf> = OnceLock::new();
    TINY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("tiny.gguf");
        leap::model::write_tiny(&common::default_model(), &path, &TinySpec::default()).unwrap();
        path
    })
}

const ANSWERS: [&str; 3] = [
    "REASON: the mug is on the desk.\nACTION: take mug 1 from desk 1",
    "REASON: I should look around.\nACTION: look",
    "REASON: the drawer may hold it.\nACTION: open drawer 2",
];

fn prompt(i: usize) -> Vec<Message> {
    vec![
        Message::new(
            Role::System,
            "You are in a house. Answer with REASON and ACTION.",
        ),
        Message::new(Role::User, format!("Task {}: find the mug.", i % 3)),
    ]
}

/// Rows a model can learn quickly: three prompts, each always answered the same way.
fn rows(n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let mut messages = prompt(i);
            messages.push(Message::new(Role::Assistant, ANSWERS[i % 3]));
            Row {
                messages,
                meta: Some(RowMeta {
                    source: "expert".into(),
                    scenario_id: format!("s{i}"),
                    ..RowMeta::default()
                }),
            }
        })
        .collect()
}

fn config(out: &Path) -> TrainConfig {
    let mut c = TrainConfig::new(tiny(), out);
    // The F32 copy: the tiny model's F16 embedding would make every step several times slower.
    c.base = BaseChoice::F32;
    c.n_ctx = 256;
    c.epochs = 3;
    c.lr = 1e-2;
    c.warmup = 0.0;
    c.eval_fraction = 0.0;
    c.lora = LoraSpec {
        rank: 4,
        alpha: 8.0,
        targets: Target::ALL.to_vec(),
    };
    c.threads = Some(2);
    c
}

fn run(config: &TrainConfig, rows: &[Row]) -> Result<TrainSummary, TrainError> {
    train::train(config, rows, &AtomicBool::new(false), &mut |_| {})
}

#[test]
fn the_loss_falls_and_the_adapter_is_written_with_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("adapters/iter-0.gguf");
    let mut c = config(&out);
    c.iteration = Some(0);
    let mut events = Vec::new();
    let summary = train::train(&c, &rows(16), &AtomicBool::new(false), &mut |e| {
        events.push(e)
    })
    .unwrap();
    // A random model with 64-wide embeddings can only move its logits a little; the response
    // tokens' loss still falls step after step.
    assert!(
        summary.train_loss_last < summary.train_loss_first - 0.05,
        "loss {} -> {}: {:?}",
        summary.train_loss_first,
        summary.train_loss_last,
        summary.losses
    );
    assert_eq!(summary.base.kind, "f32 copy");
    assert_eq!(summary.losses.len() as u64, summary.steps);
    let steps: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step(p) => Some(p.step),
            _ => None,
        })
        .collect();
    assert_eq!(steps, (1..=summary.steps).collect::<Vec<_>>());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TrainEvent::Started { parameters, .. } if *parameters == summary.trainable_parameters))
    );

    let adapter = Adapter::read(&out).unwrap();
    assert_eq!(adapter.spec.rank, 4);
    assert_eq!(adapter.spec.alpha, 8.0);
    assert_eq!(adapter.spec.targets, Target::ALL.to_vec());
    // Two blocks, seven projections each.
    assert_eq!(adapter.weights.len(), 14);
    assert!(
        adapter
            .weights
            .iter()
            .any(|w| w.b.iter().any(|&x| x != 0.0))
    );
    let meta = &adapter.meta;
    assert_eq!(meta.rows, Some(16));
    assert_eq!(meta.iteration, Some(0));
    assert_eq!(meta.loss_on.as_deref(), Some("response"));
    assert_eq!(
        meta.base_sha256,
        leap::model::fetch::sha256_file(tiny()).unwrap()
    );
    assert_eq!(
        meta.dataset_sha256.as_deref(),
        Some(train::rows_sha256(&rows(16)).as_str())
    );
    assert!((f64::from(meta.train_loss_last.unwrap()) - summary.train_loss_last).abs() < 1e-4);
}

fn greedy(adapter: Option<&Path>) -> String {
    greedy_on(tiny(), adapter)
}

fn greedy_on(model: &Path, adapter: Option<&Path>) -> String {
    let mut config = LocalConfig::new(model);
    config.adapters = adapter
        .map(|a| (a.to_path_buf(), 1.0))
        .into_iter()
        .collect();
    config.ctx_per_slot = 512;
    let mut policy = LocalPolicy::load(&config).unwrap();
    let sampling = Sampling {
        max_tokens: 12,
        constrained: false,
        ..Sampling::default()
    };
    let request = Request {
        format: Default::default(),
        seq: 0,
        messages: prompt(0),
        admissible: Vec::new(),
        temperature: None,
        seed: None,
    };
    policy
        .respond(&[request], &sampling, &mut |_, _| {})
        .unwrap()[0]
        .text
        .clone()
}

#[test]
fn the_trained_adapter_reloads_in_the_student_and_changes_its_greedy_answer() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("iter-0.gguf");
    run(&config(&out), &rows(16)).unwrap();
    let before = greedy(None);
    let after = greedy(Some(&out));
    assert_ne!(before, after, "the adapter changed nothing");
    // Trained on the quantised base's F32 copy, served on the model itself: llama.cpp takes it.
    assert!(!after.is_empty());
}

#[test]
fn a_resumed_run_continues_from_its_checkpoint_as_if_never_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = rows(16);

    let straight = dir.path().join("straight.gguf");
    let whole = run(&config(&straight), &data).unwrap();
    assert!(whole.steps >= 4);

    let out = dir.path().join("resumed.gguf");
    let mut c = config(&out);
    c.checkpoint = Some(dir.path().join("resumed.ckpt.gguf"));
    c.resume = true;
    c.stop_after = Some(2);
    match run(&c, &data) {
        Err(TrainError::Cancelled { step: 2 }) => {}
        other => panic!("expected a stop after step 2, got {other:?}"),
    }
    assert!(c.checkpoint.as_ref().unwrap().is_file());
    assert!(!out.exists());

    c.stop_after = None;
    let mut start = None;
    let mut first_step = None;
    let resumed = train::train(&c, &data, &AtomicBool::new(false), &mut |e| match e {
        TrainEvent::Started { start_step, .. } => start = Some(start_step),
        TrainEvent::Step(p) if first_step.is_none() => first_step = Some(p.step),
        _ => {}
    })
    .unwrap();
    assert_eq!(start, Some(2));
    assert_eq!(first_step, Some(3));
    assert!(
        !c.checkpoint.as_ref().unwrap().exists(),
        "the adapter supersedes the checkpoint"
    );
    // Same data order, schedule and optimizer state: the same losses and the same weights.
    assert_eq!(resumed.losses.len(), whole.losses.len());
    for (a, b) in whole.losses.iter().zip(&resumed.losses) {
        assert!(
            (a - b).abs() < 1e-3,
            "{:?} vs {:?}",
            whole.losses,
            resumed.losses
        );
    }
    let (a, b) = (
        Adapter::read(&straight).unwrap(),
        Adapter::read(&out).unwrap(),
    );
    for (wa, wb) in a.weights.iter().zip(&b.weights) {
        let diff =
            wa.b.iter()
                .zip(&wb.b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
        assert!(diff < 1e-3, "{}: B differs by {diff}", wa.name);
    }
}

#[test]
fn a_warm_started_run_goes_on_from_its_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.gguf");
    let a = run(&config(&first), &rows(12)).unwrap();
    assert!(a.init.is_none());
    let go_on = |alpha: f32, name: &str| {
        let mut c = config(&dir.path().join(name));
        c.init = Some(first.clone());
        c.epochs = 1;
        c.lora.alpha = alpha;
        run(&c, &rows(12)).unwrap()
    };
    // The first step starts where the first run ended, not where a fresh adapter begins.
    let b = go_on(8.0, "b.gguf");
    assert_eq!(b.init.as_deref(), Some(first.as_path()));
    let (start, end) = (a.losses[0], *a.losses.last().unwrap());
    assert!(
        start - b.losses[0] > 0.5 * (start - end),
        "first run {:?}, warm start {:?}",
        a.losses,
        b.losses
    );
    // Another alpha rescales B so that the starting update is the adapter's own.
    let c = go_on(32.0, "c.gguf");
    let rel = (c.losses[0] - b.losses[0]).abs() / b.losses[0];
    assert!(rel < 1e-3, "{} against {}", c.losses[0], b.losses[0]);
    // An adapter of another shape is refused with its path and the difference named.
    let mut wrong = config(&dir.path().join("d.gguf"));
    wrong.init = Some(first.clone());
    wrong.lora.rank = 8;
    let err = run(&wrong, &rows(12)).unwrap_err().to_string();
    assert!(
        err.contains(&first.display().to_string()) && err.contains("rank is 4"),
        "{err}"
    );
}

#[test]
fn a_student_answers_alike_before_and_after_training_in_the_same_process() {
    // On an AMX CPU ggml's inference kernels configure a thread's tiles once and count on them
    // from then on, and training's AMX kernel runs on the same threads. When that kernel
    // released the tiles, `leap iterate` died of SIGILL at the first evaluation after its
    // second training (the first inference after the first training configured them afresh).
    // The real model, whose Q4_1 products ggml runs on AMX where it can; the tiny one trained.
    let model = common::default_model();
    let before = greedy_on(&model, None);
    let dir = tempfile::tempdir().unwrap();
    for matmul in Matmul::bf16_kernels() {
        let mut c = config(&dir.path().join(format!("{matmul:?}.gguf")));
        (c.epochs, c.matmul) = (1, matmul);
        run(&c, &rows(6)).unwrap();
        assert_eq!(
            greedy_on(&model, None),
            before,
            "after training with {matmul:?}"
        );
    }
    assert!(!before.is_empty());
}

#[test]
fn blas_and_ggmls_own_kernels_train_the_same_adapter() {
    // The tiny model's output projection (49,152 tokens by 64 over 256 positions, forward and
    // backward) is large enough for the BLAS path; ggml's kernels are the reference. (Strided
    // operands such as attention's heads are checked by the kernel's unit test.)
    let dir = tempfile::tempdir().unwrap();
    let train_with = |matmul: Matmul| {
        let mut c = config(&dir.path().join(format!("{matmul:?}.gguf")));
        c.epochs = 1;
        c.matmul = matmul;
        let summary = run(&c, &rows(12)).unwrap();
        (summary, Adapter::read(&c.out).unwrap())
    };
    let (blas, a) = train_with(Matmul::Blas);
    let (ggml, b) = train_with(Matmul::Ggml);
    assert!(blas.losses.len() >= 2);
    assert_trained_alike((&blas, &a), (&ggml, &b));
    // Training moved the weights: B starts at zero.
    assert!(a.weights.iter().any(|w| w.b.iter().any(|&v| v != 0.0)));

    // Mixed precision, on each BF16 kernel this CPU has, follows the same path to BF16's
    // precision.
    let kernels = Matmul::bf16_kernels();
    if kernels.is_empty() {
        eprintln!("no BF16 kernel on this CPU: BF16 training is the F32 path, checked above");
    }
    for kernel in kernels {
        let (bf16, c) = train_with(kernel);
        assert_eq!(bf16.matmul, kernel);
        for (x, y) in bf16.losses.iter().zip(&ggml.losses) {
            assert!(
                (x - y).abs() < 1e-2 * y.abs().max(1.0),
                "{kernel:?}: {:?} vs {:?}",
                bf16.losses,
                ggml.losses
            );
        }
        // B starts at zero, so B is what training learned. AdamW moves every weight by about
        // the learning rate whatever its gradient's size, so where a gradient is near zero
        // rounding may flip a step's sign: compare the learned matrices as a whole, not weight
        // by weight.
        let (mut diff, mut norm) = (0f64, 0f64);
        for (wc, wb) in c.weights.iter().zip(&b.weights) {
            for (p, q) in wc.b.iter().zip(&wb.b) {
                diff += f64::from(p - q).powi(2);
                norm += f64::from(*q).powi(2);
            }
        }
        let relative = (diff / norm).sqrt();
        eprintln!("{kernel:?}: the learned B is {relative:.3} of F32's away from it");
        // Measured: 0.06 on AMX, 0.053 on AVX512-BF16 (F32 through BLAS: under 10^-3 weight by
        // weight; a wrong product: > 1).
        assert!(
            relative < 0.15,
            "{kernel:?}: BF16's learned B is {relative} of F32's away from it"
        );
    }
}

/// The tiny model with its matrices quantised to Q4_1 (llama.cpp's quantize API), once per
/// test process.
fn tiny_q4_1() -> &'static Path {
    static Q: OnceLock<PathBuf> = OnceLock::new();
    Q.get_or_init(|| {
        let out = tiny().with_file_name("tiny.q4_1.gguf");
        leap::agent::weights::quantize(tiny(), &out, llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_1)
            .expect("quantize the tiny model");
        out
    })
}

#[test]
fn training_on_the_quantised_model_as_it_is_matches_its_f32_copy() {
    // leap's products read a quantised weight a chunk of rows at a time, converted to F32: the
    // same values the F32 copy holds, so the same training, without the copy's memory.
    let model = tiny_q4_1();
    let info = leap::model::inspect(model).unwrap();
    assert!(
        info.tensor_types.contains_key("Q4_1"),
        "{:?}",
        info.tensor_types
    );
    let dir = tempfile::tempdir().unwrap();
    let train_on = |base: BaseChoice| {
        let mut c = config(&dir.path().join(format!("{base:?}.gguf")));
        c.model = model.to_path_buf();
        c.base = base;
        c.epochs = 1;
        c.matmul = Matmul::Blas;
        let summary = run(&c, &rows(12)).unwrap();
        (summary, Adapter::read(&c.out).unwrap())
    };
    let (copy, a) = train_on(BaseChoice::F32);
    let (quantized, b) = train_on(BaseChoice::Quantized);
    assert_eq!(copy.base.kind, "f32 copy");
    assert_eq!(quantized.base.kind, "quantized");
    // By default, on the CPU, the model is trained on as it is.
    let chosen =
        leap::train::prepare::choose(model, "unused", BaseChoice::Auto, 256, 0, Matmul::Bf16, 2)
            .unwrap();
    assert_eq!(chosen.kind, "quantized");
    assert_trained_alike((&copy, &a), (&quantized, &b));
}

/// Two trainings of the same rows took the same steps: losses to 10^-3 of their size, every
/// adapter weight to 10^-3.
fn assert_trained_alike(x: (&TrainSummary, &Adapter), y: (&TrainSummary, &Adapter)) {
    let ((sx, ax), (sy, ay)) = (x, y);
    assert_eq!(sx.losses.len(), sy.losses.len());
    for (p, q) in sx.losses.iter().zip(&sy.losses) {
        assert!(
            (p - q).abs() < 1e-3 * q.abs().max(1.0),
            "{:?} vs {:?}",
            sx.losses,
            sy.losses
        );
    }
    assert_eq!(ax.weights.len(), ay.weights.len());
    for (wa, wb) in ax.weights.iter().zip(&ay.weights) {
        for (p, q) in [(&wa.a, &wb.a), (&wa.b, &wb.b)] {
            let diff = p
                .iter()
                .zip(q)
                .map(|(u, v)| (u - v).abs())
                .fold(0f32, f32::max);
            assert!(diff < 1e-3, "{}: differs by {diff}", wa.name);
        }
    }
}

#[test]
fn bad_input_gets_an_error_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.gguf");

    let err = run(&config(&out), &[]).unwrap_err();
    assert!(matches!(err, TrainError::Empty), "{err}");
    assert!(err.to_string().contains("no rows"), "{err}");

    let mut data = rows(4);
    let long = "the mug is on the desk. ".repeat(80);
    data[2].messages[1].content = long;
    let err = run(&config(&out), &data).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::RowTooLong {
                row: 3,
                ctx: 256,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("row 3"), "{err}");

    let mut c = config(&out);
    c.n_ctx = 300;
    let err = run(&c, &rows(4)).unwrap_err();
    assert!(err.to_string().contains("multiple of 256"), "{err}");

    // A tree shares prompt tokens, whose labels differ from row to row.
    let mut c = config(&out);
    c.pack = Pack::Tree;
    c.loss_on = train::LossOn::All;
    let err = run(&c, &rows(4)).unwrap_err();
    assert!(matches!(err, TrainError::Config(_)), "{err}");
    assert!(err.to_string().contains("flat packing"), "{err}");
    assert!(!out.exists());

    // A corrupt adapter: the student and the adapter reader both name the file.
    let corrupt = dir.path().join("corrupt.gguf");
    std::fs::write(&corrupt, b"GGUF\x03\0\0\0 not really").unwrap();
    let err = Adapter::read(&corrupt).unwrap_err().to_string();
    assert!(err.contains("corrupt.gguf"), "{err}");
    let mut student = LocalConfig::new(tiny());
    student.adapters = vec![(corrupt.clone(), 1.0)];
    let err = LocalPolicy::load(&student).err().unwrap().to_string();
    assert!(err.contains("corrupt.gguf"), "{err}");

    // A corrupt checkpoint is not resumed silently.
    let mut c = config(&out);
    c.checkpoint = Some(corrupt.clone());
    c.resume = true;
    let err = run(&c, &rows(4)).unwrap_err().to_string();
    assert!(
        err.contains("corrupt.gguf") && err.contains("checkpoint"),
        "{err}"
    );
}

/// The rows of `rows(n)` behind a long system text, as the students' prompts are: nine in ten
/// of a window's positions are prompt.
fn long_prompt_rows(n: usize) -> Vec<Row> {
    let mut data = rows(n);
    for row in &mut data {
        row.messages[0].content = format!(
            "{} {}",
            row.messages[0].content,
            "Rooms hold drawers, shelves and tables; look before you take. ".repeat(12)
        );
    }
    data
}

#[test]
fn the_output_projection_and_the_loss_at_the_loss_positions_alone_train_as_at_every_position() {
    // Where few positions are in the loss, the output projection (the vocabulary-sized
    // product), cross-entropy and both their backward passes run at those positions alone;
    // ggml's computation at every position is the reference. On the F32 copy and on the
    // quantised model as it is (its output projection read a chunk of rows at a time), with
    // F32 products so that both sides compute the same sums.
    let dir = tempfile::tempdir().unwrap();
    let data = long_prompt_rows(6);
    let sparse_label = "at the positions in the loss";
    for (model, base) in [
        (tiny(), BaseChoice::F32),
        (tiny_q4_1(), BaseChoice::Quantized),
    ] {
        let train_with = |dense: bool, profile: bool| {
            let name = format!("{base:?}-{dense}-{profile}.gguf");
            let mut c = config(&dir.path().join(name));
            c.model = model.to_path_buf();
            c.base = base;
            c.epochs = 1;
            c.matmul = Matmul::Blas;
            c.dense_head = dense;
            c.profile = profile;
            let summary = run(&c, &data).unwrap();
            (summary, Adapter::read(&c.out).unwrap())
        };
        let (sparse, a) = train_with(false, false);
        let (dense, b) = train_with(true, false);
        assert!(
            sparse.loss_tokens * 3 < sparse.steps as usize * 256,
            "{} of {} positions in the loss: too many for the sparse path",
            sparse.loss_tokens,
            sparse.steps * 256
        );
        assert_trained_alike((&sparse, &a), (&dense, &b));
        // The profile names the nodes computed at the positions in the loss alone: the
        // product and the loss, forward and backward.
        let (profiled, c) = train_with(false, true);
        assert_trained_alike((&profiled, &c), (&dense, &b));
        // It also replays the first step's graph for its memory: at the peak (the start of
        // the backward pass) every layer's attention probabilities (heads x window x window,
        // F32) and the vocabulary-wide logits, their labels and their gradient are alive,
        // each its exact size.
        let peak = profiled.peak_memory.as_ref().expect("a memory profile");
        let part = |kind: &str| {
            (peak.parts.iter().find(|p| p.kind == kind))
                .unwrap_or_else(|| panic!("{kind} not at the peak: {:?}", peak.parts))
        };
        let spec = TinySpec::default();
        let window = 256.0;
        let probs = part("kq_soft_max");
        assert_eq!(probs.tensors, spec.n_layer as usize);
        let n_layer_heads = f64::from(spec.n_layer * spec.n_head);
        assert_eq!(probs.mb, n_layer_heads * window * window * 4.0 / 1e6);
        let n_vocab = leap::model::GgufFile::open(model)
            .unwrap()
            .array_len("tokenizer.ggml.tokens")
            .unwrap() as f64;
        for kind in ["result_output", "labels", "grad for result_output"] {
            assert_eq!(part(kind).mb, n_vocab * window * 4.0 / 1e6, "{kind}");
        }
        let parts: f64 = peak.parts.iter().map(|p| p.mb).sum();
        assert!(
            (parts - peak.peak_mb).abs() < 1e-6,
            "{parts} != {}",
            peak.peak_mb
        );
        assert!(
            peak.peak_mb <= peak.buffer_mb * 1.05,
            "{} MB alive in a {} MB buffer",
            peak.peak_mb,
            peak.buffer_mb
        );
        // The estimate that chooses the training copy of the base counts the same tensors,
        // all but the adapters' rank-4 products.
        let info = leap::model::inspect(model).unwrap();
        let estimate = leap::train::prepare::activation_bytes(&info, 256) as f64 / 1e6;
        let adapters = peak.peak_mb - estimate;
        assert!(
            (0.0..0.01 * peak.peak_mb).contains(&adapters),
            "estimated {estimate} MB, replayed {} MB: {:?}",
            peak.peak_mb,
            peak.parts
        );
        let sparse_ops: Vec<&str> = (profiled.op_times.iter())
            .map(|o| o.op.as_str())
            .filter(|op| op.contains(sparse_label))
            .collect();
        for op in [
            "MUL_MAT (output)",
            "OUT_PROD (output)",
            "CROSS_ENTROPY_LOSS ",
            "CROSS_ENTROPY_LOSS_BACK",
        ] {
            assert!(
                sparse_ops.iter().any(|o| o.starts_with(op)),
                "{base:?}: {op} not at the loss positions alone: {sparse_ops:?}"
            );
        }
        // Attention's products (one matrix per head) are told from the weights'.
        for op in ["MUL_MAT", "OUT_PROD"] {
            assert!(
                profiled.op_times.iter().any(|o| o.op == op),
                "{base:?}: no {op} in {:?}",
                profiled.op_times
            );
            let attention = format!("{op} (attention)");
            assert!(
                profiled
                    .op_times
                    .iter()
                    .any(|o| o.op.starts_with(&attention)),
                "{base:?}: no {attention} in {:?}",
                profiled.op_times
            );
        }
        // Products left to ggml (the adapters' rank-4 ones are under the shim's size) say so.
        let by_ggml: Vec<&str> = (profiled.op_times.iter())
            .map(|o| o.op.as_str())
            .filter(|op| op.ends_with(" by ggml"))
            .collect();
        assert!(
            !by_ggml.is_empty()
                && by_ggml
                    .iter()
                    .all(|op| op.starts_with("MUL_MAT") || op.starts_with("OUT_PROD")),
            "{by_ggml:?}"
        );
        let (dense_profiled, _) = train_with(true, true);
        assert!(
            !dense_profiled
                .op_times
                .iter()
                .any(|o| o.op.contains(sparse_label)),
            "{:?}",
            dense_profiled.op_times
        );
    }

    // Preference training reads the responses' log-probabilities from the logits and scales
    // their gradient rows: the same on both paths.
    let mut pairs = pairs(4);
    let long = &long_prompt_rows(1)[0].messages[0].content;
    for pair in &mut pairs {
        pair.prompt[0].content.clone_from(long);
    }
    let train_pairs = |dense: bool| {
        let mut c = config(&dir.path().join(format!("dpo-{dense}.gguf")));
        c.matmul = Matmul::Blas;
        c.epochs = 1;
        c.n_ctx = 512;
        c.objective = dpo(PreferenceLoss::Sigmoid, 0.5, 0.5);
        let start = dir.path().join("dpo-start.gguf");
        random_adapter(&start, &c.lora);
        c.init = Some(start);
        c.dense_head = dense;
        c.profile = true;
        let examples = Examples::Pairs(&pairs);
        let summary = train::train_on(&c, examples, &AtomicBool::new(false), &mut |_| {});
        (summary.unwrap(), Adapter::read(&c.out).unwrap())
    };
    let (sparse, a) = train_pairs(false);
    let (dense, b) = train_pairs(true);
    assert!(sparse.op_times.iter().any(|o| o.op.contains(sparse_label)));
    assert_eq!(sparse.preferred, dense.preferred);
    assert_trained_alike((&sparse, &a), (&dense, &b));
}

/// A learning rate of 1e6 drives the weights to NaN or infinity within a few steps: training
/// stops with an error that says so, and no adapter (nor checkpoint) is left to load.
#[test]
fn attention_without_the_pairs_the_mask_hides_trains_as_over_every_pair() {
    // Attention's products skip the terms the causal mask makes zero (a key after its query):
    // forward the scores and the weighted values, backward the four gradients. F32 products,
    // so that both sides compute the same sums; in windows of one row after another and of a
    // tree, whose mask hides more.
    let dir = tempfile::tempdir().unwrap();
    let data = long_prompt_rows(6);
    for pack in [Pack::Flat, Pack::Tree] {
        let train_with = |dense: bool| {
            let mut c = config(&dir.path().join(format!("{pack:?}-{dense}.gguf")));
            c.epochs = 1;
            c.matmul = Matmul::Blas;
            c.pack = pack;
            c.dense_attention = dense;
            c.profile = true;
            let summary = run(&c, &data).unwrap();
            (summary, Adapter::read(&c.out).unwrap())
        };
        let (causal, a) = train_with(false);
        let (dense, b) = train_with(true);
        assert_trained_alike((&causal, &a), (&dense, &b));
        let skipping = |s: &TrainSummary| -> Vec<String> {
            (s.op_times.iter())
                .filter(|o| o.op.ends_with("without the hidden pairs"))
                .map(|o| o.op.clone())
                .collect()
        };
        for op in ["MUL_MAT (attention)", "OUT_PROD (attention)"] {
            assert!(
                skipping(&causal).iter().any(|o| o.starts_with(op)),
                "{pack:?}: {op} computed every pair: {:?}",
                causal.op_times
            );
        }
        assert!(skipping(&dense).is_empty(), "{:?}", dense.op_times);
    }
}

#[test]
fn diverging_training_stops_and_writes_no_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.gguf");
    let mut c = config(&out);
    c.lr = 1e6;
    c.checkpoint = Some(dir.path().join("a.ckpt.gguf"));
    c.checkpoint_every = 1;
    let err = run(&c, &rows(4)).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Diverged { .. } | TrainError::DivergedWeights { .. }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("diverged (try a lower --lr)"),
        "{err}"
    );
    assert!(!out.exists(), "no adapter is written");

    // The binary refuses a learning rate that is not a positive number before it starts.
    for lr in ["nan", "inf", "0", "-1"] {
        let got = leap()
            .args(["train", "--iter", "0", &format!("--lr={lr}")])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&got.stderr);
        assert_eq!(got.status.code(), Some(2), "{err}");
        assert!(
            err.contains("--lr") && err.contains("learning rate"),
            "{err}"
        );
    }
}

fn leap() -> Command {
    Command::cargo_bin("leap").unwrap()
}

#[test]
fn leap_train_writes_the_adapter_and_records_it_in_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");

    // Without the iteration's dataset, the error says which file is missing and how to make it.
    let out = leap()
        .args(["train", "--run"])
        .arg(&run_dir)
        .args(["--iter", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("datasets/iter-2.jsonl") && err.contains("leap dataset build"),
        "{err}"
    );

    let data = dir.path().join("rows.jsonl");
    write_jsonl(&data, &rows(12)).unwrap();
    let out = leap()
        .args(["train", "--run"])
        .arg(&run_dir)
        .args(["--iter", "1", "--data"])
        .arg(&data)
        .arg("--model")
        .arg(tiny())
        .args([
            "--base",
            "f32",
            "--ctx",
            "256",
            "--epochs",
            "1",
            "--rank",
            "2",
            "--lr",
            "1e-2",
            "--threads",
            "2",
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
    for key in [
        "adapter",
        "rows",
        "tokens",
        "epochs",
        "train_loss_first",
        "train_loss_last",
        "eval_loss",
        "tokens_per_s",
        "peak_rss_mb",
    ] {
        assert!(summary.get(key).is_some(), "no {key} in {summary}");
    }
    assert_eq!(summary["rows"], 12);
    assert_eq!(summary["base"], "f32 copy");
    // The default products: BF16 on the fastest kernel this CPU has, or F32 BLAS without one.
    let products = Matmul::bf16_kernels()
        .first()
        .map_or("blas", |kernel| kernel.as_str());
    assert_eq!(summary["matmul"], products);
    let adapter = run_dir.join("adapters/iter-1.gguf");
    assert_eq!(summary["adapter"], adapter.display().to_string());
    assert_eq!(Adapter::read(&adapter).unwrap().spec.rank, 2);

    let store = Store::open_existing(&run_dir).unwrap();
    let recorded = store.adapters().unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].iteration, Some(1));
    assert_eq!(recorded[0].base_model, tiny().display().to_string());
    assert_eq!(recorded[0].summary["rows"], 12);
    let by_path = store
        .adapter_by_path(&adapter.display().to_string())
        .unwrap()
        .unwrap();
    assert_eq!(by_path.id, recorded[0].id);
}

/// `leap train` of iteration 1 in `run` on `data`, `epochs` epochs with a checkpoint every step.
fn leap_train(run: &Path, data: &Path, epochs: u32, more: &[&str]) -> Command {
    let mut cmd = leap();
    cmd.args(["train", "--run"])
        .arg(run)
        .args(["--iter", "1", "--data"])
        .arg(data)
        .arg("--model")
        .arg(tiny())
        .args([
            "--base", "f32", "--ctx", "256", "--rank", "2", "--lr", "1e-2",
        ])
        .args(["--threads", "2", "--checkpoint-every", "1", "--epochs"])
        .arg(epochs.to_string())
        .args(more);
    cmd
}

/// What `cmd` printed, once it succeeded (else its stderr is the failure).
fn succeeded(mut cmd: Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    out
}

/// Enough steps that the first checkpoint comes well before the end.
const EPOCHS: u32 = 12;

#[test]
fn leap_train_says_when_it_resumes_and_a_finished_adapter_is_not_trained_again() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let data = dir.path().join("rows.jsonl");
    write_jsonl(&data, &rows(12)).unwrap();
    let checkpoint = run_dir.join("adapters/iter-1.ckpt.gguf");
    let adapter = run_dir.join("adapters/iter-1.gguf");

    // Killed once its first checkpoint is written (while stderr is no terminal)...
    let mut child = leap_train(&run_dir, &data, EPOCHS, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !checkpoint.is_file() && started.elapsed() < std::time::Duration::from_secs(120) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(checkpoint.is_file() && !adapter.exists());

    // ... the rerun says it resumes, and finishes.
    let out = succeeded(leap_train(&run_dir, &data, EPOCHS, &[]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("resuming from the checkpoint at step "),
        "{stderr}"
    );
    let trained = std::fs::read(&adapter).unwrap();
    let modified = std::fs::metadata(&adapter).unwrap().modified().unwrap();

    // Run again after it finished: nothing is trained, the adapter stays as it was.
    let out = succeeded(leap_train(&run_dir, &data, EPOCHS, &[]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        format!(
            "already trained: {} (adapter #1); nothing to do (--force trains it again)\n",
            adapter.display()
        )
    );
    assert_eq!(std::fs::read(&adapter).unwrap(), trained);
    assert_eq!(
        std::fs::metadata(&adapter).unwrap().modified().unwrap(),
        modified
    );
    let json = leap_train(&run_dir, &data, EPOCHS, &["--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["already_trained"], true);
    assert_eq!(json["adapter"], adapter.display().to_string());
    assert_eq!(
        Store::open_existing(&run_dir)
            .unwrap()
            .adapters()
            .unwrap()
            .len(),
        1
    );

    // --force trains it again: the adapter and its record are replaced.
    succeeded(leap_train(&run_dir, &data, 1, &["--force", "--fresh"]));
    assert_ne!(std::fs::read(&adapter).unwrap(), trained);
    let recorded = Store::open_existing(&run_dir).unwrap().adapters().unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].summary["epochs"], 1);
}

// Preference training (DPO and its variants).

use leap::dataset::build::PreferencePair;
use leap::train::preference::{PairSums, pair_loss};
use leap::train::{Examples, Objective, Preference, PreferenceLoss, ResponseLogp};

/// Pairs on the rows' prompts: the rows' answer chosen, another answer rejected.
fn pairs(n: usize) -> Vec<PreferencePair> {
    (0..n)
        .map(|i| PreferencePair {
            prompt: prompt(i),
            chosen: vec![Message::new(Role::Assistant, ANSWERS[i % 3])],
            rejected: vec![Message::new(Role::Assistant, ANSWERS[(i + 1) % 3])],
            meta: RowMeta {
                source: "label".into(),
                scenario_id: format!("s{i}"),
                ..RowMeta::default()
            },
        })
        .collect()
}

fn dpo(loss: PreferenceLoss, beta: f64, sft_weight: f64) -> Objective {
    Objective::Dpo(Preference {
        loss,
        beta,
        sft_weight,
    })
}

/// A starting adapter whose B is not zero, so that every LoRA weight has a gradient.
fn random_adapter(path: &Path, spec: &LoraSpec) -> Adapter {
    let file = leap::model::GgufFile::open(tiny()).unwrap();
    let mut adapter = Adapter::init(&file, spec, 5).unwrap();
    for (i, w) in adapter.weights.iter_mut().enumerate() {
        for (j, b) in w.b.iter_mut().enumerate() {
            *b = (((i * 31 + j) * 7919 % 101) as f32 / 101.0 - 0.5) * 0.2;
        }
    }
    adapter.meta.base_sha256 = leap::model::fetch::sha256_file(tiny()).unwrap();
    adapter.write(path).unwrap();
    adapter
}

fn logps(config: &TrainConfig, pairs: &[PreferencePair]) -> Vec<[ResponseLogp; 2]> {
    train::pair_logps(config, pairs, &mut |_| {}).unwrap()
}

#[test]
fn each_response_of_a_pair_is_scored_as_if_alone_in_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let data = pairs(5);
    let mut c = config(&dir.path().join("unused.gguf"));
    c.matmul = Matmul::Blas;
    // 256 tokens hold one or two pairs a window; 2,048 hold all five in one.
    let apart = logps(&c, &data);
    c.n_ctx = 2048;
    let together = logps(&c, &data);
    // As prefix trees, the pairs' prompts stored once, in one window and in several.
    c.pack = Pack::Tree;
    let tree = logps(&c, &data);
    c.n_ctx = 256;
    let trees = logps(&c, &data);
    for other in [&together, &tree, &trees] {
        for (a, b) in apart.iter().zip(other) {
            for k in 0..2 {
                assert!(a[k].logp.is_finite() && a[k].logp < 0.0, "{apart:?}");
                assert!(
                    (a[k].logp - b[k].logp).abs() < 1e-3,
                    "{apart:?} vs {other:?}"
                );
                assert_eq!(a[k].tokens, b[k].tokens);
            }
            assert_ne!(a[0].logp, a[1].logp);
        }
    }
}

/// A pair too long for a window side by side fits as a tree, its prompt stored once, and
/// scores the same.
#[test]
fn a_tree_holds_a_pair_whose_two_sides_do_not_fit_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = pairs(2);
    for p in &mut data {
        p.prompt[1].content += &" The mug may be in a cabinet.".repeat(12);
    }
    let mut c = config(&dir.path().join("unused.gguf"));
    c.matmul = Matmul::Blas;
    let err = train::pair_logps(&c, &data, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, TrainError::RowTooLong { pair: true, ctx: 256, tokens, .. } if tokens > 256),
        "{err}"
    );
    c.pack = Pack::Tree;
    let tree = logps(&c, &data);
    c.pack = Pack::Flat;
    c.n_ctx = 512;
    let flat = logps(&c, &data);
    for (a, b) in flat.iter().zip(&tree) {
        for k in 0..2 {
            assert!((a[k].logp - b[k].logp).abs() < 1e-3, "{flat:?} vs {tree:?}");
        }
    }
}

/// Tree packing's loss is the rows' loss as if each were alone: the mean over the response
/// tokens of all rows of their log-probabilities, scored one pair side at a time.
#[test]
fn a_tree_packed_step_learns_each_row_as_if_alone() {
    let dir = tempfile::tempdir().unwrap();
    // Six rows on three prompts: rows 0 and 3 share their whole prompt.
    let data = rows(6);
    let mut c = config(&dir.path().join("tree.gguf"));
    c.matmul = Matmul::Blas;
    c.epochs = 1;
    c.n_ctx = 1024;
    c.lr = 1e-6;
    c.pack = Pack::Tree;
    let summary = run(&c, &data).unwrap();
    assert_eq!(summary.steps, 1, "one window");
    assert_eq!(summary.pack, Pack::Tree);
    let alone = logps(&c, &pairs(6));
    let logp: f64 = alone.iter().map(|p| p[0].logp).sum();
    let tokens: usize = alone.iter().map(|p| p[0].tokens).sum();
    assert_eq!(summary.loss_tokens, tokens);
    let loss = -logp / tokens as f64;
    assert!(
        (summary.losses[0] - loss).abs() < 1e-4,
        "tree {} against alone {loss}",
        summary.losses[0]
    );
    // Flat packing lets a row see the rows before it in its window: another loss.
    c.pack = Pack::Flat;
    c.out = dir.path().join("flat.gguf");
    let flat = run(&c, &data).unwrap();
    assert!(
        (flat.losses[0] - loss).abs() > 1e-3,
        "{} {loss}",
        flat.losses[0]
    );
    // The tree stores the shared system text and task once.
    assert!(
        summary.packing < flat.packing,
        "{} {}",
        summary.packing,
        flat.packing
    );
}

#[test]
fn preference_gradients_match_finite_differences_of_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let data = pairs(3);
    let objectives = [
        dpo(PreferenceLoss::Sigmoid, 1.0, 0.0),
        dpo(PreferenceLoss::Ipo, 0.5, 0.5),
    ];
    let runs = [
        (objectives[0], Pack::Flat),
        (objectives[1], Pack::Flat),
        (objectives[0], Pack::Tree),
    ];
    for (n, (objective, pack)) in runs.into_iter().enumerate() {
        let mut c = config(&dir.path().join(format!("dpo-{n}.gguf")));
        c.matmul = Matmul::Blas;
        // A tree's masked attention and moved positions must have the gradient of its loss.
        c.pack = pack;
        c.epochs = 1;
        c.n_ctx = 512;
        c.lr = 1e-6;
        c.objective = objective;
        c.gradients = Some(dir.path().join(format!("grads-{n}")));
        let start = dir.path().join("start.gguf");
        let theta = random_adapter(&start, &c.lora);
        c.init = Some(start.clone());
        let reference = logps(&c, &data);
        let summary = train::train_on(
            &c,
            Examples::Pairs(&data),
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(summary.steps, 1, "all three pairs in one window");
        assert_eq!(summary.objective, objective);
        let grads = Adapter::read(&c.gradients.as_ref().unwrap().join("step-1.gguf")).unwrap();
        let norm = grads
            .weights
            .iter()
            .flat_map(|w| w.a.iter().chain(&w.b))
            .map(|&g| f64::from(g) * f64::from(g))
            .sum::<f64>()
            .sqrt();
        assert!(norm > 0.0);
        // The loss at theta + t * g / |g|: its derivative at t = 0 is |g|.
        let loss_at = |t: f64| {
            let mut moved = theta.clone();
            for (w, g) in moved.weights.iter_mut().zip(&grads.weights) {
                for (x, d) in w.a.iter_mut().zip(&g.a).chain(w.b.iter_mut().zip(&g.b)) {
                    *x += (t * f64::from(*d) / norm) as f32;
                }
            }
            let path = dir.path().join("moved.gguf");
            moved.write(&path).unwrap();
            let mut at = c.clone();
            at.init = Some(path);
            let policy = logps(&at, &data);
            let flat =
                |x: &[[ResponseLogp; 2]]| x.iter().flatten().map(|r| r.logp).collect::<Vec<_>>();
            let tokens: Vec<usize> = reference.iter().flatten().map(|r| r.tokens).collect();
            let sums = PairSums {
                policy: &flat(&policy),
                reference: &flat(&reference),
                tokens: &tokens,
            };
            pair_loss(objective.preference().unwrap(), sums).loss
        };
        let at_start = loss_at(0.0);
        assert!(
            (summary.losses[0] - at_start).abs() < 1e-4,
            "the step's loss {} is the loss at the start {at_start}",
            summary.losses[0]
        );
        if matches!(objective, Objective::Dpo(p) if p.loss == PreferenceLoss::Sigmoid) {
            assert!(
                (at_start - std::f64::consts::LN_2).abs() < 1e-4,
                "{at_start}"
            );
        }
        // Small enough for the curvature (at 0.05 the slope was 11% off, at 0.002 0.015%),
        // large enough for F32 sums.
        let t = 0.003 / norm;
        let slope = (loss_at(t) - loss_at(-t)) / (2.0 * t);
        eprintln!("{objective:?}: slope {slope}, norm {norm}");
        assert!(
            (slope - norm).abs() < 0.005 * norm,
            "{objective:?}: the loss changes at {slope} along the gradient, whose norm is {norm}"
        );
    }
}

#[test]
fn a_stopped_preference_run_resumes_with_the_reference_it_started_with() {
    let dir = tempfile::tempdir().unwrap();
    let data = pairs(12);
    let start = dir.path().join("start.gguf");
    let config = |out: &Path| {
        let mut c = config(out);
        c.epochs = 1;
        c.lr = 1e-3;
        c.objective = dpo(PreferenceLoss::Sigmoid, 0.5, 0.0);
        c.init = Some(start.clone());
        c
    };
    random_adapter(&start, &config(&start).lora);
    let train = |c: &TrainConfig| {
        train::train_on(
            c,
            Examples::Pairs(&data),
            &AtomicBool::new(false),
            &mut |_| {},
        )
    };
    let whole = train(&config(&dir.path().join("straight.gguf"))).unwrap();
    assert!(whole.steps >= 4, "{} steps", whole.steps);
    // The policy starts at the reference; the loss falls below log 2 as it learns the pairs.
    assert!((whole.losses[0] - std::f64::consts::LN_2).abs() < 1e-4);
    assert!(
        whole.train_loss_last < whole.train_loss_first,
        "{:?}",
        whole.losses
    );

    let mut c = config(&dir.path().join("resumed.gguf"));
    c.checkpoint = Some(dir.path().join("resumed.ckpt.gguf"));
    c.resume = true;
    c.stop_after = Some(2);
    assert!(matches!(train(&c), Err(TrainError::Cancelled { step: 2 })));
    let ckpt = train::Checkpoint::read(c.checkpoint.as_ref().unwrap()).unwrap();
    assert_eq!(ckpt.references.len(), 2 * data.len(), "one per response");
    c.stop_after = None;
    let resumed = train(&c).unwrap();
    for (a, b) in whole.losses.iter().zip(&resumed.losses) {
        assert!(
            (a - b).abs() < 1e-4,
            "{:?} vs {:?}",
            whole.losses,
            resumed.losses
        );
    }
    // The adapter says how it was made.
    let meta = Adapter::read(&dir.path().join("resumed.gguf"))
        .unwrap()
        .meta;
    assert_eq!(meta.objective.as_deref(), Some("dpo"));
    assert_eq!(meta.preference_loss.as_deref(), Some("sigmoid"));
    assert_eq!(meta.beta, Some(0.5));
}

#[test]
fn leap_train_dpo_trains_on_pairs_and_refuses_rows_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let rows_file = dir.path().join("rows.jsonl");
    write_jsonl(&rows_file, &rows(6)).unwrap();
    let dpo = ["--objective", "dpo", "--beta", "0.1", "--sft-weight", "0.2"];
    let out = leap_train(&run_dir, &rows_file, 1, &dpo).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rows.jsonl") && err.contains("line 1") && err.contains("--format dpo"),
        "{err}"
    );

    let pairs_file = dir.path().join("pairs.jsonl");
    write_jsonl(&pairs_file, &pairs(6)).unwrap();
    let mut cmd = leap_train(&run_dir, &pairs_file, 1, &dpo);
    cmd.arg("--json");
    let summary: serde_json::Value = serde_json::from_slice(&succeeded(cmd).stdout).unwrap();
    assert_eq!(summary["rows"], 6);
    assert_eq!(summary["objective"]["objective"], "dpo");
    let adapter = Adapter::read(&run_dir.join("adapters/iter-1.gguf")).unwrap();
    assert_eq!(adapter.meta.objective.as_deref(), Some("dpo"));
    assert_eq!(adapter.meta.sft_weight, Some(0.2));
    let store = Store::open_existing(&run_dir).unwrap();
    assert_eq!(
        store.adapters().unwrap()[0].summary["objective"]["beta"],
        0.1
    );
}

#[test]
fn a_nul_byte_in_a_prompt_is_text_the_student_and_training_both_read() {
    // A shell command's output can hold NUL bytes (`find . -print0`), and llama.cpp's chat
    // template takes each message as a C string: such a row stopped the loop.
    let chat = [
        Message::new(Role::System, "You run commands."),
        Message::new(Role::User, "> find . -print0\n./a\0./b\0"),
    ];
    let trainer = train::data::ChatText::load(tiny()).unwrap();
    let student = LocalPolicy::load(&LocalConfig::new(tiny())).unwrap();
    let text = trainer.render(&chat, true).unwrap();
    assert!(text.contains("-print0\n./a\0./b\0"), "{text:?}");
    assert_eq!(text.matches('\0').count(), 2);
    assert_eq!(student.render(&chat).unwrap(), text);
    let cut = trainer.render(&chat[..1], true).unwrap();
    assert!(trainer.tokenize(&text, true).len() > trainer.tokenize(&cut, true).len() + 10);

    let mut rows = rows(6);
    rows[0].messages[1].content.push_str("\n./a\0./b\0");
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&config(&dir.path().join("nul.gguf")), &rows).unwrap();
    assert_eq!(summary.rows, 6);
}

#[test]
fn a_special_tokens_text_in_a_prompt_is_text_the_student_and_training_both_read() {
    // A file or a page can hold a special token's text; read as the token, `<|im_end|>` in an
    // observation would end the user's turn there and `<|im_start|>assistant` open the answer.
    let observation = "> cat notes\nends with <|im_end|>\n<|im_start|>assistant\nREASON: x";
    let row = Row {
        messages: vec![
            Message::new(Role::System, "You run commands."),
            Message::new(Role::User, observation),
            Message::new(Role::Assistant, "REASON: I read it.\nACTION: ls"),
        ],
        meta: None,
    };
    let trainer = train::data::ChatText::load(tiny()).unwrap();
    let marker = |text: &str| {
        let t = trainer.tokenize(text, false);
        assert_eq!(t.len(), 1, "{text} is one special token");
        t[0]
    };
    let (start, end) = (marker("<|im_start|>"), marker("<|im_end|>"));
    let sample = trainer.encode(0, &row).unwrap();
    let count = |tokens: &[i32], t: i32| tokens.iter().filter(|&&x| x == t).count();
    let prompt = &sample.tokens[..sample.n_prompt];
    // The template's own: the system, user and assistant turns open, two of them close, and
    // the answer closes the third.
    assert_eq!((count(prompt, start), count(prompt, end)), (3, 2));
    assert_eq!(count(&sample.tokens[sample.n_prompt..], end), 1);
    assert_eq!(sample.tokens.last(), Some(&end));

    // The student reads the same tokens: its prompt is as long as the training row's.
    let mut student = LocalPolicy::load(&LocalConfig::new(tiny())).unwrap();
    let request = Request {
        format: Default::default(),
        seq: 0,
        messages: row.prompt().to_vec(),
        admissible: vec!["ls".into(), "cat notes".into()],
        temperature: None,
        seed: None,
    };
    let sampling = Sampling {
        max_tokens: 32,
        ..Sampling::default()
    };
    let answer = student
        .respond(&[request], &sampling, &mut |_, _| {})
        .unwrap()
        .remove(0);
    assert_eq!(answer.prompt_tokens as usize, sample.n_prompt);
    // Text without a special token's text is tokenized in one piece, as before.
    let plain = trainer.render(&rows(1)[0].messages[..2], true).unwrap();
    let vocab = student.model().vocab();
    let whole = vocab.tokenize(plain.as_bytes(), vocab.should_add_bos(), true);
    assert_eq!(
        leap::agent::local::tokenize_chat(
            &vocab,
            &plain,
            &rows(1)[0].messages[..2],
            vocab.should_add_bos()
        ),
        whole
    );
}
