//! A run remembers its model: a run made with a tiny model is evaluated with that model when no
//! `--model` is given, and an adapter put on another model is refused in Rust, naming both files.

mod common;
use common::default_model;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use leap::store::Store;

fn leap(args: &[&str], paths: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leap"));
    cmd.args(args);
    for (flag, path) in paths {
        cmd.arg(flag).arg(path);
    }
    cmd.output().unwrap()
}

fn ok(out: Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    String::from_utf8(out.stdout).unwrap()
}

fn tiny(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let path = dir.join(name);
    let spec = leap::model::TinySpec {
        seed,
        ..Default::default()
    };
    leap::model::write_tiny(&default_model(), &path, &spec).unwrap();
    path
}

#[test]
fn a_run_is_evaluated_with_its_own_model_and_refuses_another() {
    let dir = tempfile::tempdir().unwrap();
    let (own, other) = (
        tiny(dir.path(), "own-tiny.gguf", 0),
        tiny(dir.path(), "other-tiny.gguf", 1),
    );
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    common::small_set(&scenarios, 2, 1);
    let run = dir.path().join("run");
    let on_run = [
        ("--run", run.as_path()),
        ("--scenarios", scenarios.as_path()),
    ];

    let build = [
        "dataset",
        "build",
        "--iter",
        "0",
        "--max-rows-per-part",
        "4",
    ];
    ok(leap(&build, &on_run));
    let train = [
        "train", "--iter", "0", "--epochs", "1", "--rank", "2", "--ctx", "1024",
    ];
    ok(leap(&train, &[("--run", &run), ("--model", &own)]));
    let recorded = Store::open_existing(&run)
        .unwrap()
        .run_model()
        .unwrap()
        .unwrap();
    assert_eq!(recorded.path, own.display().to_string());
    assert_eq!(
        recorded.sha256,
        leap::model::fetch::sha256_file(&own).unwrap()
    );

    // No --model: the run's model, not the default student.
    let eval = [
        "eval",
        "--iter",
        "0",
        "--no-baseline",
        "--teacher",
        "none",
        "--parallel",
        "1",
        "--horizon",
        "2",
        "--json",
    ];
    let table: serde_json::Value = serde_json::from_str(&ok(leap(&eval, &on_run))).unwrap();
    let policy = table["student"]["policy"].as_str().unwrap();
    assert!(policy.starts_with("own-tiny + iter-0.gguf"), "{policy}");

    // Another model: refused before llama.cpp sees the adapter, naming both files.
    let mut with_other = on_run.to_vec();
    with_other.push(("--model", &other));
    let out = leap(&eval, &with_other);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let adapter = run.join("adapters").join("iter-0.gguf");
    assert!(
        err.contains(&adapter.display().to_string())
            && err.contains(&other.display().to_string())
            && err.contains("another base model")
            && !err.contains("null result"),
        "{err}"
    );
}
