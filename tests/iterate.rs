//! `leap iterate` end to end on the tiny model and a small scenario set: two iterations after
//! behaviour cloning, killed with SIGKILL part-way and rerun; the rerun finishes the loop and
//! redoes no finished stage.

mod common;
use common::default_model;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use leap::store::{EpisodeFilter, Store};

fn iterate(run: &Path, scenarios: &Path, model: &Path) -> Command {
    iterations(run, scenarios, model, 2)
}

/// `leap iterate` for `iters` iterations after behaviour cloning.
fn iterations(run: &Path, scenarios: &Path, model: &Path, iters: u32) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leap"));
    cmd.arg("iterate")
        .arg("--run")
        .arg(run)
        .arg("--scenarios")
        .arg(scenarios)
        .arg("--model")
        .arg(model)
        .arg("--iters")
        .arg(iters.to_string())
        .args([
            "--episodes-per-iter",
            "2",
            "--expert-rows",
            "6",
            "--max-rows-per-part",
            "6",
            "--warm-start",
            "--lr",
            "1e-3",
            "--warm-lr",
            "5e-4",
            "--epochs",
            "1",
            "--parallel",
            "2",
            "--horizon",
            "4",
            "--privilege",
            "0.5",
            "--curate",
            "accept-all",
            "--json",
        ]);
    cmd
}

/// The tiny model, the small scenario set and a run folder under `dir`.
fn workspace(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let tiny = dir.join("tiny.gguf");
    leap::model::write_tiny(&default_model(), &tiny, &leap::model::TinySpec::default()).unwrap();
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    common::small_set(&scenarios, 3, 2);
    (tiny, scenarios, dir.join("run"))
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn iterate_runs_the_loop_and_resumes_after_a_kill_without_redoing_stages() {
    let dir = tempfile::tempdir().unwrap();
    let (tiny, scenarios, run) = workspace(dir.path());

    // Kill it once the first adapter is written and recorded.
    let mut child = iterate(&run, &scenarios, &tiny)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = run.join("adapters/iter-0.gguf");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        assert!(Instant::now() < deadline, "no adapter after 10 minutes");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("iterate ended before it could be killed: {status}");
        }
        let recorded = first.is_file()
            && Store::open_existing(&run)
                .and_then(|s| s.adapters())
                .is_ok_and(|a| !a.is_empty());
        if recorded {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first_written = modified(&first);

    let out = iterate(&run, &scenarios, &tiny).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // The finished adapter was not trained again; every iteration has exactly one adapter.
    assert_eq!(modified(&first), first_written);
    let store = Store::open_existing(&run).unwrap();
    let adapters = store.adapters().unwrap();
    let iterations: Vec<Option<u32>> = adapters.iter().map(|a| a.iteration).collect();
    assert_eq!(iterations, [Some(0), Some(1), Some(2)], "{adapters:?}");
    for (i, adapter) in adapters.iter().enumerate() {
        assert!(run.join(format!("adapters/iter-{i}.gguf")).is_file());
        let eval = store
            .evaluation(&format!("eval-test-iter-{i}"))
            .unwrap()
            .unwrap();
        assert_eq!(eval.summary["episodes"], 2, "{eval:?}");
        assert_eq!(eval.adapter_id, Some(adapter.id));
    }
    // Iterations 1 and 2 trained on datasets that hold the corrected labels of the student before.
    for i in 1..3u32 {
        let dataset = store.dataset(i).unwrap().unwrap();
        assert!(
            !store.dataset_labels(dataset.id).unwrap().is_empty(),
            "iteration {i}"
        );
        assert_eq!(adapters[i as usize].dataset_id, Some(dataset.id));
        // Each went on from the student before it (`--warm-start`).
        let before = run.join(format!("adapters/iter-{}.gguf", i - 1));
        assert_eq!(
            adapters[i as usize].summary["init"],
            before.display().to_string()
        );
    }
    assert!(adapters[0].summary["init"].is_null());
    // Behaviour cloning at `--lr`, the warm-started iterations at `--warm-lr`; the adapter's
    // record says which.
    let lrs: Vec<f64> = adapters
        .iter()
        .map(|a| a.summary["lr"].as_f64().unwrap())
        .collect();
    for (lr, want) in lrs.iter().zip([1e-3, 5e-4, 5e-4]) {
        assert!((lr - want).abs() < 1e-9, "{lrs:?}");
    }
    assert_eq!(adapters[0].summary["lora"]["rank"], 8);
    // Rollouts were resumed, not repeated: one episode per key.
    let episodes = store.list_episodes(&EpisodeFilter::default()).unwrap();
    let mut keys: Vec<&str> = episodes.iter().map(|e| e.key.as_str()).collect();
    let n = keys.len();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), n);
    assert_eq!(
        result["report"]["iterations"].as_array().unwrap().len(),
        4,
        "{result}"
    );
    // Stage times are kept across the kill, and no stage ran twice.
    let stages: Vec<(Option<u64>, &str)> = result["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["iteration"].as_u64(), s["stage"].as_str().unwrap()))
        .collect();
    let mut unique = stages.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), stages.len(), "{stages:?}");
    for i in 0..3 {
        assert!(
            stages.contains(&(Some(i), "evaluation on test")),
            "{stages:?}"
        );
    }
    for i in 1..3 {
        assert!(stages.contains(&(Some(i), "training")), "{stages:?}");
    }
    assert!(
        store
            .stages()
            .unwrap()
            .iter()
            .all(|s| s.seconds >= 0.0 && s.finished_at_ms > 0)
    );
}

#[test]
fn a_copied_run_goes_on_from_what_it_holds_without_training_again() {
    // Copying a run after behaviour cloning is how one student meets several teachers (the
    // README's realizability experiment); the copy must find its adapter where it is now.
    let dir = tempfile::tempdir().unwrap();
    let (tiny, scenarios, run) = workspace(dir.path());
    let bc = |run: &Path| {
        let mut cmd = iterations(run, &scenarios, &tiny, 0);
        cmd.args(["--baselines", "false"]).output().unwrap()
    };
    let once = bc(&run);
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    let copy = dir.path().join("copy");
    let cp = Command::new("cp").arg("-r").arg(&run).arg(&copy).status();
    assert!(cp.unwrap().success());
    std::fs::remove_dir_all(&run).unwrap();
    let adapter = copy.join("adapters/iter-0.gguf");
    let copied = modified(&adapter);

    let again = bc(&copy);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        modified(&adapter),
        copied,
        "the copy trained its adapter again"
    );
    let store = Store::open_existing(&copy).unwrap();
    let adapters = store.adapters().unwrap();
    assert_eq!(adapters.len(), 1, "{adapters:?}");
    assert_eq!(adapters[0].path, adapter.display().to_string());
    let found = store
        .adapter_by_path(&adapter.display().to_string())
        .unwrap();
    assert_eq!(found.map(|a| a.id), Some(adapters[0].id));
    let trainings = store
        .stages()
        .unwrap()
        .iter()
        .filter(|s| s.stage == "training")
        .count();
    assert_eq!(trainings, 1);
}

#[test]
fn an_evaluation_with_another_decoding_is_named_and_recorded_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (tiny, scenarios, run) = workspace(dir.path());
    let eval = |decoding: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_leap"))
            .arg("eval")
            .arg("--run")
            .arg(&run)
            .arg("--scenarios")
            .arg(&scenarios)
            .arg("--model")
            .arg(&tiny)
            .args(["--teacher", "none", "--horizon", "3", "--parallel", "2"])
            .args(decoding)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    eval(&[]);
    eval(&["--temperature", "0.7", "--repeat-temperature", "1"]);
    let store = Store::open_existing(&run).unwrap();
    for (label, temperature, repeat) in [
        ("eval-test-base", 0.0, 0.0),
        ("eval-test-base-t0.7-repeat1", 0.7, 1.0),
    ] {
        let evaluation = store.evaluation(label).unwrap();
        assert!(evaluation.is_some(), "{label}");
        let filter = EpisodeFilter {
            key_prefix: Some(format!("rollout/{label}/")),
            ..EpisodeFilter::default()
        };
        let episodes = store.list_episodes(&filter).unwrap();
        assert_eq!(episodes.len(), 2, "{label}");
        for e in episodes {
            let sampling = store.episode(e.id).unwrap().unwrap().record.sampling;
            let got = |k: &str| sampling[k].as_f64().unwrap();
            assert!(
                (got("temperature") - temperature).abs() < 1e-6,
                "{sampling}"
            );
            assert!(
                (got("repeat_temperature") - repeat).abs() < 1e-6,
                "{sampling}"
            );
        }
    }
    // A temperature must be a number 0 or more.
    let out = Command::new(env!("CARGO_BIN_EXE_leap"))
        .args(["eval", "--temperature=-1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected a temperature"), "{err}");
}

#[test]
fn a_dpo_update_goes_on_from_the_last_student_on_the_pairs_of_its_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (tiny, scenarios, run) = workspace(dir.path());
    let out = iterations(&run, &scenarios, &tiny, 1)
        .args(["--update", "dpo", "--beta", "0.1", "--baselines", "false"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open_existing(&run).unwrap();
    let adapters = store.adapters().unwrap();
    assert_eq!(adapters.len(), 2, "{adapters:?}");
    // Behaviour cloning is supervised; iteration 1 prefers the teacher's steps over the
    // student's, from iteration 0's student, which is also its reference.
    assert_eq!(adapters[0].summary["objective"]["objective"], "sft");
    assert_eq!(adapters[1].summary["objective"]["objective"], "dpo");
    assert_eq!(adapters[1].summary["objective"]["beta"], 0.1);
    assert_eq!(
        adapters[1].summary["init"],
        run.join("adapters/iter-0.gguf").display().to_string()
    );
    // Its pairs: the kept labels of iteration 0's rollouts that changed the student's step.
    let pairs = leap::dataset::read_pairs(&run.join("datasets/iter-1.pairs.jsonl")).unwrap();
    assert!(!pairs.is_empty());
    assert_eq!(adapters[1].summary["rows"], pairs.len());
    for p in &pairs {
        assert_eq!(p.meta.iteration, 0);
        assert_ne!(p.chosen, p.rejected);
    }
    let labels = store
        .labels(&leap::store::LabelFilter {
            iteration: Some(0),
            changed: Some(true),
            ..Default::default()
        })
        .unwrap();
    assert!(pairs.len() <= labels.len());
    // Recorded as iteration 1's dataset, with the labels they come from: the adapter's lineage.
    let dataset = store.dataset(1).unwrap().unwrap();
    assert_eq!(dataset.rows as usize, pairs.len());
    assert_eq!(adapters[1].dataset_id, Some(dataset.id));
    assert_eq!(store.dataset_labels(dataset.id).unwrap().len(), pairs.len());
    let stages: Vec<String> = store
        .stages()
        .unwrap()
        .iter()
        .map(|s| s.stage.clone())
        .collect();
    assert!(stages.iter().any(|s| s == "pairs"), "{stages:?}");
    assert!(store.evaluation("eval-test-iter-1").unwrap().is_some());
}
