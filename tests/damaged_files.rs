//! A corpus of damaged GGUF models and LoRA adapters, made here from the tiny model and an
//! adapter for it (never committed): truncations, flipped header fields, every hyper-parameter
//! llama.cpp asserts on set out of range, broken vocabularies, NaN weights, bad adapter scales.
//! `leap model info` and a one-step rollout must end each with a clear error that names the file,
//! and never with a signal (llama.cpp's `GGML_ASSERT` aborts the process).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use leap::model::gguf::{GgufFile, GgufWriter, Value, ValueType};
use leap::model::{Adapter, LoraSpec};

const F32: u32 = 0;
const F16: u32 = 1;

/// A GGUF file taken apart: its metadata and its tensors with their raw bytes.
#[derive(Clone)]
struct Parts {
    meta: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

impl Parts {
    fn read(path: &Path) -> Parts {
        let f = GgufFile::open(path).unwrap();
        let bytes = std::fs::read(path).unwrap();
        let tensors = f
            .tensors
            .iter()
            .map(|t| {
                let at = (f.data_offset + t.offset) as usize;
                let data = bytes[at..at + t.n_bytes as usize].to_vec();
                (t.name.clone(), t.dims.clone(), t.ggml_type, data)
            })
            .collect();
        Parts {
            meta: f.metadata.clone(),
            tensors,
        }
    }

    fn write(&self, path: &Path) {
        let mut w = GgufWriter::new();
        for (k, v) in &self.meta {
            w.set(k, v.clone());
        }
        for (name, dims, ty, data) in &self.tensors {
            w.add_tensor(name, dims, *ty, data.clone());
        }
        w.write(path).unwrap();
    }

    fn set(mut self, key: &str, value: Value) -> Parts {
        match self.meta.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.meta.push((key.to_owned(), value)),
        }
        self
    }

    fn remove(mut self, key: &str) -> Parts {
        self.meta.retain(|(k, _)| k != key);
        self
    }

    fn array(&mut self, key: &str) -> &mut Vec<Value> {
        match self.meta.iter_mut().find(|(k, _)| k == key) {
            Some((_, Value::Array(_, items))) => items,
            _ => panic!("no array {key}"),
        }
    }

    fn tensor(&mut self, name: &str) -> &mut (String, Vec<u64>, u32, Vec<u8>) {
        self.tensors.iter_mut().find(|t| t.0 == name).unwrap()
    }

    /// Writes `bits` (little-endian) over the element `at` of tensor `name`.
    fn poke(mut self, name: &str, at: usize, bits: &[u8]) -> Parts {
        let t = self.tensor(name);
        let w = bits.len();
        t.3[at * w..at * w + w].copy_from_slice(bits);
        self
    }

    fn without_tensor(mut self, name: &str) -> Parts {
        self.tensors.retain(|t| t.0 != name);
        self
    }
}

/// One damaged input: a file, and the adapter scale to load it at when it is an adapter.
struct Case {
    name: String,
    path: PathBuf,
    adapter: Option<String>,
    /// A sound file that is wrong only with the model or the scale it is loaded with: `model
    /// info`, which sees the file alone, may take it.
    sound_alone: bool,
}

struct Corpus {
    dir: PathBuf,
    cases: Vec<Case>,
}

impl Corpus {
    fn model(&mut self, name: &str, parts: &Parts) {
        let path = self.dir.join(format!("model-{name}.gguf"));
        parts.write(&path);
        self.push_model(name, path);
    }

    fn model_bytes(&mut self, name: &str, bytes: &[u8]) {
        let path = self.dir.join(format!("model-{name}.gguf"));
        std::fs::write(&path, bytes).unwrap();
        self.push_model(name, path);
    }

    fn push_model(&mut self, name: &str, path: PathBuf) {
        self.cases.push(Case {
            name: format!("model {name}"),
            path,
            adapter: None,
            sound_alone: false,
        });
    }

    fn adapter(&mut self, name: &str, parts: &Parts) {
        let path = self.dir.join(format!("adapter-{name}.gguf"));
        parts.write(&path);
        self.push_adapter(name, path, "");
    }

    fn adapter_bytes(&mut self, name: &str, bytes: &[u8]) {
        let path = self.dir.join(format!("adapter-{name}.gguf"));
        std::fs::write(&path, bytes).unwrap();
        self.push_adapter(name, path, "");
    }

    fn push_adapter(&mut self, name: &str, path: PathBuf, scale: &str) {
        let spec = format!("{}{scale}", path.display());
        self.cases.push(Case {
            name: format!("adapter {name}"),
            path,
            adapter: Some(spec),
            sound_alone: !scale.is_empty(),
        });
    }

    /// An adapter sound in itself but not for the tiny model.
    fn misfit_adapter(&mut self, name: &str, parts: &Parts) {
        self.adapter(name, parts);
        self.cases.last_mut().unwrap().sound_alone = true;
    }
}

fn le_u32(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// The damaged models: each differs from the tiny model in one way llama.cpp cannot take.
fn damaged_models(c: &mut Corpus, tiny: &Path) {
    let good = Parts::read(tiny);
    let bytes = std::fs::read(tiny).unwrap();
    let header_end = GgufFile::open(tiny).unwrap().data_offset as usize;

    // Truncations: inside the magic, the counts, the metadata, the tensor infos and the data.
    let cuts = [
        0,
        3,
        7,
        15,
        23,
        40,
        200,
        5_000,
        header_end / 2,
        header_end - 100,
        header_end - 1,
        header_end + 10,
        bytes.len() / 2,
        bytes.len() - 1,
    ];
    for cut in cuts {
        c.model_bytes(&format!("cut-{cut}"), &bytes[..cut]);
    }
    // Flipped header fields.
    let mut patch = |name: &str, at: usize, with: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + with.len()].copy_from_slice(with);
        c.model_bytes(name, &b);
    };
    patch("magic", 0, b"GGUX");
    patch("version-0", 4, &le_u32(0));
    patch("version-1", 4, &le_u32(1));
    patch("version-4", 4, &le_u32(4));
    patch("version-big-endian", 4, &le_u32(3 << 24));
    patch("tensor-count-huge", 8, &(1i64 << 40).to_le_bytes());
    patch("tensor-count-negative", 8, &(-1i64).to_le_bytes());
    patch("tensor-count-fewer", 8, &1i64.to_le_bytes());
    patch("kv-count-huge", 16, &(1i64 << 40).to_le_bytes());
    patch("kv-count-fewer", 16, &3i64.to_le_bytes());
    patch("first-key-length-huge", 24, &u64::MAX.to_le_bytes());
    patch(
        "first-value-type-99",
        24 + 8 + "general.architecture".len(),
        &le_u32(99),
    );

    let arch = "llama";
    let k = |key: &str| format!("{arch}.{key}");
    let hparams: Vec<(&str, String, Value)> = vec![
        ("block-count-0", k("block_count"), Value::U32(0)),
        ("block-count-513", k("block_count"), Value::U32(513)),
        ("block-count-max", k("block_count"), Value::U32(u32::MAX)),
        ("block-count-3", k("block_count"), Value::U32(3)),
        ("block-count-string", k("block_count"), Value::str("two")),
        ("block-count-f32", k("block_count"), Value::F32(2.0)),
        ("embedding-0", k("embedding_length"), Value::U32(0)),
        ("embedding-65", k("embedding_length"), Value::U32(65)),
        ("context-0", k("context_length"), Value::U32(0)),
        ("ff-0", k("feed_forward_length"), Value::U32(0)),
        ("heads-0", k("attention.head_count"), Value::U32(0)),
        ("heads-3", k("attention.head_count"), Value::U32(3)),
        ("heads-1000", k("attention.head_count"), Value::U32(1000)),
        ("kv-heads-0", k("attention.head_count_kv"), Value::U32(0)),
        ("kv-heads-3", k("attention.head_count_kv"), Value::U32(3)),
        ("kv-heads-8", k("attention.head_count_kv"), Value::U32(8)),
        (
            "heads-array-short",
            k("attention.head_count"),
            Value::Array(ValueType::U32, vec![Value::U32(4)]),
        ),
        (
            "rms-eps-negative",
            k("attention.layer_norm_rms_epsilon"),
            Value::F32(-1e-5),
        ),
        (
            "rms-eps-nan",
            k("attention.layer_norm_rms_epsilon"),
            Value::F32(f32::NAN),
        ),
        (
            "rms-eps-inf",
            k("attention.layer_norm_rms_epsilon"),
            Value::F32(f32::INFINITY),
        ),
        (
            "rms-eps-u32",
            k("attention.layer_norm_rms_epsilon"),
            Value::U32(1),
        ),
        ("rope-base-nan", k("rope.freq_base"), Value::F32(f32::NAN)),
        (
            "rope-base-negative",
            k("rope.freq_base"),
            Value::F32(-10_000.0),
        ),
        ("rope-dims-0", k("rope.dimension_count"), Value::U32(0)),
        ("rope-dims-7", k("rope.dimension_count"), Value::U32(7)),
        (
            "rope-scaling-bogus",
            k("rope.scaling.type"),
            Value::str("bogus"),
        ),
        (
            "rope-scaling-factor-nan",
            k("rope.scaling.factor"),
            Value::F32(f32::NAN),
        ),
        ("experts-1025", k("expert_count"), Value::U32(1025)),
        (
            "experts-used-without-experts",
            k("expert_used_count"),
            Value::U32(2),
        ),
        (
            "expert-groups-without-experts",
            k("expert_group_count"),
            Value::U32(2),
        ),
        ("nextn-layers-3", k("nextn_predict_layers"), Value::U32(3)),
        ("vocab-size-10", k("vocab_size"), Value::U32(10)),
        ("vocab-size-huge", k("vocab_size"), Value::U32(u32::MAX)),
        (
            "architecture-unknown",
            "general.architecture".into(),
            Value::str("nonesuch"),
        ),
        (
            "architecture-u32",
            "general.architecture".into(),
            Value::U32(7),
        ),
        ("alignment-3", "general.alignment".into(), Value::U32(3)),
        (
            "tokenizer-model-bogus",
            "tokenizer.ggml.model".into(),
            Value::str("bogus"),
        ),
        (
            "tokenizer-pre-bogus",
            "tokenizer.ggml.pre".into(),
            Value::str("bogus"),
        ),
        (
            "bos-out-of-range",
            "tokenizer.ggml.bos_token_id".into(),
            Value::U32(10_000_000),
        ),
        (
            "eos-out-of-range",
            "tokenizer.ggml.eos_token_id".into(),
            Value::U32(u32::MAX),
        ),
        (
            "eos-negative",
            "tokenizer.ggml.eos_token_id".into(),
            Value::I32(-7),
        ),
        (
            "pad-out-of-range",
            "tokenizer.ggml.padding_token_id".into(),
            Value::U32(49_152),
        ),
        (
            "tokens-not-strings",
            "tokenizer.ggml.tokens".into(),
            Value::Array(ValueType::U32, vec![Value::U32(1); 49_152]),
        ),
        (
            "tokens-empty",
            "tokenizer.ggml.tokens".into(),
            Value::Array(ValueType::Str, vec![]),
        ),
        (
            "merges-u32",
            "tokenizer.ggml.merges".into(),
            Value::Array(ValueType::U32, vec![Value::U32(1)]),
        ),
        (
            "token-type-string",
            "tokenizer.ggml.token_type".into(),
            Value::str("normal"),
        ),
    ];
    for (name, key, value) in hparams {
        c.model(name, &good.clone().set(&key, value));
    }
    c.model(
        "add-bos-without-bos",
        &good
            .clone()
            .set("tokenizer.ggml.add_bos_token", Value::Bool(true))
            .set("tokenizer.ggml.bos_token_id", Value::I32(-1)),
    );
    c.model(
        "add-eos-without-eos",
        &good
            .clone()
            .set("tokenizer.ggml.add_eos_token", Value::Bool(true))
            .remove("tokenizer.ggml.eos_token_id"),
    );
    for (name, key) in [
        ("no-architecture", "general.architecture".to_string()),
        ("no-block-count", k("block_count")),
        ("no-embedding", k("embedding_length")),
        ("no-rms-eps", k("attention.layer_norm_rms_epsilon")),
        ("no-tokens", "tokenizer.ggml.tokens".into()),
        ("no-tokenizer-model", "tokenizer.ggml.model".into()),
        ("no-merges", "tokenizer.ggml.merges".into()),
    ] {
        c.model(name, &good.clone().remove(&key));
    }

    // The vocabulary.
    let mut dup = good.clone();
    let tokens = dup.array("tokenizer.ggml.tokens");
    tokens[200] = tokens[100].clone();
    c.model("duplicate-token", &dup);
    let mut dup_special = good.clone();
    let tokens = dup_special.array("tokenizer.ggml.tokens");
    tokens[1] = tokens[0].clone();
    c.model("duplicate-special-token", &dup_special);
    for (name, v) in [("99", 99), ("negative", -1), ("7", 7)] {
        let mut p = good.clone();
        let types = p.array("tokenizer.ggml.token_type");
        types[300] = Value::I32(v);
        c.model(&format!("token-type-{name}"), &p);
    }
    let mut short_types = good.clone();
    short_types.array("tokenizer.ggml.token_type").truncate(100);
    c.model("token-types-short", &short_types);
    let mut short_tokens = good.clone();
    short_tokens.array("tokenizer.ggml.tokens").truncate(1000);
    c.model("tokens-fewer-than-embedding", &short_tokens);
    let scores = (0..49_152).map(|_| Value::F32(f32::NAN)).collect();
    c.model(
        "scores-nan",
        &good.clone().set(
            "tokenizer.ggml.scores",
            Value::Array(ValueType::F32, scores),
        ),
    );
    c.model(
        "scores-short",
        &good.clone().set(
            "tokenizer.ggml.scores",
            Value::Array(ValueType::F32, vec![Value::F32(0.0)]),
        ),
    );

    // Tensors: shapes, types, missing and extra ones, NaN and infinite weights.
    let nan32 = f32::NAN.to_le_bytes();
    let inf32 = f32::INFINITY.to_le_bytes();
    c.model(
        "nan-norm",
        &good.clone().poke("output_norm.weight", 3, &nan32),
    );
    c.model(
        "inf-attn-q",
        &good.clone().poke("blk.0.attn_q.weight", 17, &inf32),
    );
    c.model(
        "nan-ffn-down",
        &good.clone().poke("blk.1.ffn_down.weight", 100, &nan32),
    );
    c.model(
        "nan-embedding-f16",
        &good
            .clone()
            .poke("token_embd.weight", 1234, &0x7e00u16.to_le_bytes()),
    );
    c.model(
        "inf-embedding-f16",
        &good
            .clone()
            .poke("token_embd.weight", 5, &0x7c00u16.to_le_bytes()),
    );
    c.model(
        "no-embedding-tensor",
        &good.clone().without_tensor("token_embd.weight"),
    );
    c.model(
        "no-attn-k",
        &good.clone().without_tensor("blk.1.attn_k.weight"),
    );
    let mut extra = good.clone();
    extra
        .tensors
        .push(("blk.7.attn_q.weight".into(), vec![4, 4], F32, vec![0; 64]));
    c.model("extra-tensor", &extra);
    let mut wrong_shape = good.clone();
    let t = wrong_shape.tensor("blk.0.attn_q.weight");
    t.1 = vec![32, 128];
    c.model("attn-q-wrong-shape", &wrong_shape);
    let mut zero_dim = good.clone();
    let t = zero_dim.tensor("output_norm.weight");
    t.1 = vec![0];
    t.3.clear();
    c.model("norm-zero-dim", &zero_dim);
    let mut embd_rows = good.clone();
    let t = embd_rows.tensor("token_embd.weight");
    t.1[1] -= 1;
    t.3.truncate(t.3.len() - 64 * 2);
    c.model("embedding-one-row-short", &embd_rows);
    let mut norm_f16 = good.clone();
    let t = norm_f16.tensor("output_norm.weight");
    t.2 = F16;
    t.3.truncate(128);
    c.model("norm-f16", &norm_f16);
}

/// The damaged adapters, and good adapters at scales llama.cpp cannot take.
fn damaged_adapters(c: &mut Corpus, tiny: &Path) {
    let base = GgufFile::open(tiny).unwrap();
    let mut adapter = Adapter::init(&base, &LoraSpec::default(), 7).unwrap();
    for w in &mut adapter.weights {
        w.b.iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i % 7) as f32 * 1e-3);
    }
    let good_path = c.dir.join("adapter-good.gguf");
    adapter.write(&good_path).unwrap();
    for scale in ["@inf", "@-inf", "@nan", "@1e30", "@-1e30", "@NaN", "@1e39"] {
        c.push_adapter(&format!("scale{scale}"), good_path.clone(), scale);
    }
    let good = Parts::read(&good_path);
    let bytes = std::fs::read(&good_path).unwrap();
    for cut in [10, 100, bytes.len() / 2, bytes.len() - 3] {
        c.adapter_bytes(&format!("cut-{cut}"), &bytes[..cut]);
    }
    let a = "blk.0.attn_q.weight.lora_a";
    let b = "blk.1.ffn_up.weight.lora_b";
    let nan32 = f32::NAN.to_le_bytes();
    c.adapter("nan-a", &good.clone().poke(a, 5, &nan32));
    c.adapter(
        "inf-b",
        &good.clone().poke(b, 0, &f32::INFINITY.to_le_bytes()),
    );
    c.adapter("huge-b", &good.clone().poke(b, 0, &f32::MAX.to_le_bytes()));
    for (name, key, value) in [
        ("alpha-nan", "adapter.lora.alpha", Value::F32(f32::NAN)),
        ("alpha-inf", "adapter.lora.alpha", Value::F32(f32::INFINITY)),
        ("alpha-huge", "adapter.lora.alpha", Value::F32(1e38)),
        ("alpha-string", "adapter.lora.alpha", Value::str("16")),
        ("type-model", "general.type", Value::str("model")),
        ("adapter-type-ia3", "adapter.type", Value::str("ia3")),
    ] {
        c.adapter(name, &good.clone().set(key, value));
    }
    c.misfit_adapter(
        "architecture-other",
        &good
            .clone()
            .set("general.architecture", Value::str("qwen2")),
    );
    c.adapter("no-lora-b", &good.clone().without_tensor(b));
    let mut orphan = good.clone();
    orphan.tensors.push((
        "blk.9.attn_q.weight.lora_a".into(),
        vec![64, 8],
        F32,
        vec![0; 64 * 8 * 4],
    ));
    orphan.tensors.push((
        "blk.9.attn_q.weight.lora_b".into(),
        vec![8, 64],
        F32,
        vec![0; 64 * 8 * 4],
    ));
    c.misfit_adapter("for-a-missing-tensor", &orphan);
    let mut suffix = good.clone();
    suffix.tensors.push((
        "blk.0.attn_q.weight.lora_c".into(),
        vec![4],
        F32,
        vec![0; 16],
    ));
    c.adapter("unknown-suffix", &suffix);
    let mut shape = good.clone();
    let t = shape.tensor(a);
    t.1 = vec![32, 16];
    c.adapter("a-wrong-shape", &shape);
    let mut rank = good.clone();
    let t = rank.tensor(b);
    t.1 = vec![4, 128 * 2];
    c.adapter("b-wrong-rank", &rank);
    let mut f16 = good.clone();
    let t = f16.tensor(a);
    t.2 = F16;
    t.1 = vec![64, 16];
    c.adapter("a-f16", &f16);
}

/// Runs the binary; one that runs past two minutes is killed (SIGKILL), which `judge` reports:
/// a hang is no better than an abort.
fn run(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_leap"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LEAP_MODEL", "/nonexistent/leap-model.gguf")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// How one run ended: `Ok` with a clear error, or what was wrong.
fn judge(case: &Case, what: &str, out: &Output) -> Result<(), String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(sig) = out.status.signal() {
        return Err(format!(
            "{}: {what}: killed by signal {sig}\n{stderr}",
            case.name
        ));
    }
    if out.status.success() {
        return Err(format!("{}: {what}: exited 0", case.name));
    }
    let file = case.path.file_name().unwrap().to_string_lossy();
    if !stderr.contains(&*file) {
        return Err(format!(
            "{}: {what}: the error does not name {file}:\n{stderr}",
            case.name
        ));
    }
    // llama.cpp's bare failures, which say nothing of the field or tensor at fault.
    if ["null result", "ffi error"]
        .iter()
        .any(|bare| stderr.contains(bare))
    {
        return Err(format!(
            "{}: {what}: the error gives no reason:\n{stderr}",
            case.name
        ));
    }
    Ok(())
}

#[test]
fn every_damaged_model_and_adapter_ends_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (tiny, _) = common::tiny_folder(dir.path());
    let scenario = common::first_files(Path::new("scenarios/household/train"), 1).remove(0);
    let corpus_dir = dir.path().join("corpus");
    std::fs::create_dir_all(&corpus_dir).unwrap();
    let mut c = Corpus {
        dir: corpus_dir,
        cases: Vec::new(),
    };
    damaged_models(&mut c, &tiny);
    damaged_adapters(&mut c, &tiny);
    assert!(c.cases.len() >= 100, "{} cases", c.cases.len());

    let failures: Vec<String> = std::thread::scope(|s| {
        let chunks: Vec<&[Case]> = c.cases.chunks(c.cases.len().div_ceil(2)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .enumerate()
            .map(|(i, cases)| {
                let (dir, tiny, scenario) = (dir.path(), &tiny, &scenario);
                s.spawn(move || {
                    let mut failures = Vec::new();
                    for (j, case) in cases.iter().enumerate() {
                        let path = case.path.to_str().unwrap();
                        let info = run(&["model", "info", path]);
                        let run_dir = dir.join(format!("run-{i}-{j}"));
                        let mut args = vec![
                            "rollout",
                            "--run",
                            run_dir.to_str().unwrap(),
                            "--scenarios",
                            scenario.to_str().unwrap(),
                            "--horizon",
                            "1",
                            "--parallel",
                            "1",
                        ];
                        match &case.adapter {
                            Some(spec) => {
                                args.extend(["--model", tiny.to_str().unwrap(), "--adapter", spec]);
                            }
                            None => args.extend(["--model", path]),
                        }
                        let rollout = run(&args);
                        if !(case.sound_alone && info.status.success()) {
                            failures.extend(judge(case, "model info", &info).err());
                        }
                        failures.extend(judge(case, "rollout", &rollout).err());
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let signals = failures
        .iter()
        .filter(|f| f.contains("killed by signal"))
        .count();
    let models = c.cases.iter().filter(|c| c.adapter.is_none()).count();
    let scales = c
        .cases
        .iter()
        .filter(|c| c.sound_alone && c.adapter.is_some())
        .count();
    eprintln!(
        "{} damaged inputs ({models} models, {} adapters, {scales} of them a sound adapter at a bad scale or on the wrong model), {} runs failed a check, {} ended by a signal",
        c.cases.len(),
        c.cases.len() - models,
        failures.len(),
        signals
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
