//! `leap report`: the per-student table and chart from a real run database, with the same
//! students under other decodings, some recorded in another run folder.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use leap::eval::{EvalReport, score, wilson};
use leap::report::{chart_svg, markdown, run_report, run_report_with};
use leap::store::Store;

/// An evaluation named `label` with `wins` of `n` episodes.
fn evaluation(label: &str, wins: u64, n: u64) -> EvalReport {
    let (low, high) = wilson(wins, n);
    EvalReport {
        label: label.into(),
        policy: "SmolLM2".into(),
        split: "test".into(),
        episodes: n,
        wins,
        success_rate: wins as f64 / n as f64,
        success_low: low,
        success_high: high,
        mean_steps: 15.0,
        ..EvalReport::default()
    }
}

fn store_evaluation(store: &mut Store, iteration: Option<u32>, report: &EvalReport) {
    let summary = serde_json::to_value(report).unwrap();
    store
        .record_evaluation(&report.label, None, iteration, "SmolLM2", "test", &summary)
        .unwrap();
}

/// Records an evaluation named `label` with `wins` of 60 episodes.
fn record(store: &mut Store, label: &str, iteration: Option<u32>, wins: u64) {
    store_evaluation(store, iteration, &evaluation(label, wins, 60));
}

/// Records an evaluation named `label` whose episodes earned `rewards` (won at 1), as `leap
/// eval` summarises them.
fn record_rewards(store: &mut Store, label: &str, iteration: Option<u32>, rewards: &[f64]) {
    let wins = rewards.iter().filter(|&&r| r == 1.0).count() as u64;
    let report = EvalReport {
        mean_reward: rewards.iter().sum::<f64>() / rewards.len() as f64,
        score: Some(score(rewards)),
        mean_steps: 9.0,
        ..evaluation(label, wins, rewards.len() as u64)
    };
    store_evaluation(store, iteration, &report);
}

#[test]
fn the_tables_show_a_score_only_when_rewards_are_partial() {
    // The report of a run whose student earned `rewards` and whose teacher won every episode.
    let report_of = |rewards: &[f64]| {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        record_rewards(&mut store, "eval-test-base", None, rewards);
        record_rewards(&mut store, "eval-test-oracle@1", None, &[1.0; 4]);
        markdown(&run_report(&store).unwrap(), None)
    };
    let md = report_of(&[1.0, 0.0, 0.0, 1.0]);
    assert!(
        !md.contains("score"),
        "0/1 rewards: the score is the success rate\n{md}"
    );
    assert!(
        md.contains("| zero-shot | – | – | 50.0% [15.0–85.0] (n=4) | 9.0 |"),
        "{md}"
    );

    let md = report_of(&[0.0, 0.5, 1.0, 1.0]);
    assert!(
        md.contains("| student | dataset rows | labels | test success [95% Wilson] | test score [95% normal] | test mean steps |"),
        "{md}"
    );
    assert!(
        md.contains("| zero-shot | – | – | 50.0% [15.0–85.0] (n=4) | 62.5 [15.6–100.0] | 9.0 |"),
        "{md}"
    );
    assert!(
        md.contains("| teacher | test success [95% Wilson] | test mean steps |"),
        "the teachers' own rewards are all 1: no score column there\n{md}"
    );
}

/// Runs `leap report --run RUN ARGS... --out OUT`: whether it succeeded, and its stderr.
fn leap_report(run: &Path, args: &[&OsStr], out: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_leap"))
        .args(["report", "--run"])
        .arg(run)
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stderr)
}

fn wins(report: Option<&EvalReport>) -> Option<u64> {
    report.map(|r| r.wins)
}

#[test]
fn other_decodings_of_a_student_are_shown_beside_its_greedy_evaluation() {
    let run = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut store = Store::open(run.path()).unwrap();
    record(&mut store, "eval-test-base", None, 0);
    record(&mut store, "eval-test-iter-0", Some(0), 27);
    record(&mut store, "eval-test-iter-0-t0.7", Some(0), 44);
    record(&mut store, "eval-test-iter-1", Some(1), 21);
    // Not a decoding: a label that merely starts like one is not taken for it.
    record(&mut store, "eval-test-iter-1-notes", Some(1), 59);
    record(&mut store, "eval-test-oracle@0.5", None, 60);
    let mut other = Store::open(scratch.path()).unwrap();
    record(&mut other, "eval-test-iter-1-t0.7", None, 37);
    record(&mut other, "eval-test-iter-2-t0.7", None, 49);
    record(&mut other, "eval-test-iter-2-repeat1", None, 46);
    record(&mut other, "eval-test-iter-2-t0.7-repeat1", None, 48);
    // The run's own evaluation wins over another folder's of the same name.
    record(&mut other, "eval-test-iter-0", Some(0), 1);

    let alone = run_report(&store).unwrap();
    assert_eq!(alone.decodings(), vec!["t0.7".to_string()]);
    let names: Vec<&str> = alone.iterations.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["zero-shot", "iter-0 (BC)", "iter-1"]);

    let report = run_report_with(&store, &other.evaluations().unwrap()).unwrap();
    let names: Vec<&str> = report.iterations.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["zero-shot", "iter-0 (BC)", "iter-1", "iter-2"],
        "an iteration known only by its evaluations is a row"
    );
    assert_eq!(report.decodings(), ["repeat1", "t0.7", "t0.7-repeat1"]);
    let row = |i: usize| &report.iterations[i];
    assert_eq!(wins(row(1).test.as_ref()), Some(27));
    assert_eq!(wins(row(1).decodings.get("t0.7")), Some(44));
    assert_eq!(wins(row(2).test.as_ref()), Some(21));
    assert_eq!(wins(row(2).decodings.get("t0.7")), Some(37));
    assert!(!row(2).decodings.contains_key("notes"));
    assert_eq!(wins(row(3).test.as_ref()), None);
    assert_eq!(wins(row(3).decodings.get("repeat1")), Some(46));
    assert_eq!(wins(row(3).decodings.get("t0.7-repeat1")), Some(48));
    assert_eq!(report.teachers.len(), 1);

    let md = markdown(&report, Some("success.svg"));
    assert!(
        md.contains(
            "| student | greedy | greedy, 1 on repeated prompts | temperature 0.7 | temperature 0.7, 1 on repeated prompts |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| iter-2 | – | 76.7% [64.6–85.6] (n=60), 15.0 steps | 81.7% [70.1–89.4] (n=60), 15.0 steps |"),
        "{md}"
    );

    let svg = run.path().join("success.svg");
    chart_svg(&report, &svg).unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    for legend in ["greedy", "temperature 0.7", "oracle@0.5 alone: 100.0%"] {
        assert!(text.contains(legend), "the chart lacks {legend:?}");
    }
}

#[test]
fn leap_report_reads_evaluations_from_other_run_folders() {
    let run = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    record(
        &mut Store::open(run.path()).unwrap(),
        "eval-test-iter-0",
        Some(0),
        27,
    );
    record(
        &mut Store::open(scratch.path()).unwrap(),
        "eval-test-iter-0-t0.7",
        None,
        44,
    );
    let (ok, stderr) = leap_report(
        run.path(),
        &["--evaluations-from".as_ref(), scratch.path().as_os_str()],
        out.path(),
    );
    assert!(ok, "{stderr}");
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        md.contains("| iter-0 (BC) | 45.0% [33.1–57.5] (n=60), 15.0 steps | 73.3% [61.0–82.9] (n=60), 15.0 steps |"),
        "{md}"
    );
    assert!(out.path().join("success.svg").is_file());

    // A folder without a run is named in the error, and nothing is written.
    let missing = scratch.path().join("nowhere");
    let fresh = out.path().join("again");
    let (ok, stderr) = leap_report(
        run.path(),
        &["--evaluations-from".as_ref(), missing.as_os_str()],
        &fresh,
    );
    assert!(!ok);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(!fresh.exists());
}

#[test]
fn leap_report_compares_runs_student_by_student() {
    let oracle = tempfile::tempdir().unwrap();
    let selfish = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut store = Store::open(oracle.path()).unwrap();
    record(&mut store, "eval-test-iter-0", Some(0), 27);
    record(&mut store, "eval-test-iter-1", Some(1), 21);
    record(&mut store, "eval-test-iter-1-t0.7", Some(1), 37);
    record(&mut store, "eval-test-oracle@0.5", None, 60);
    let mut store = Store::open(selfish.path()).unwrap();
    record(&mut store, "eval-test-iter-0", Some(0), 27);
    record(&mut store, "eval-test-iter-1", Some(1), 35);
    record(&mut store, "eval-test-iter-2", Some(2), 30);
    record(&mut store, "eval-test-self-iter-0", None, 24);
    let compared = format!("self teacher={}", selfish.path().display());
    let (ok, stderr) = leap_report(
        oracle.path(),
        &[
            "--name".as_ref(),
            "oracle teacher".as_ref(),
            "--compare".as_ref(),
            compared.as_ref(),
        ],
        out.path(),
    );
    assert!(ok, "{stderr}");
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    for line in [
        "| student | oracle teacher | oracle teacher, temperature 0.7 | self teacher |",
        "| iter-1 | 35.0% [24.2–47.6] (n=60), 15.0 steps | 61.7% [49.0–72.9] (n=60), 15.0 steps | 58.3% [45.7–69.9] (n=60), 15.0 steps |",
        "| iter-2 | – | – | 50.0% [37.7–62.3] (n=60), 15.0 steps |",
        "| oracle teacher: oracle@0.5 | 100.0% [94.0–100.0] (n=60) | 15.0 |",
        "| self teacher: self-iter-0 | 40.0% [28.6–52.6] (n=60) | 15.0 |",
    ] {
        assert!(md.contains(line), "no {line:?} in\n{md}");
    }
    let svg = std::fs::read_to_string(out.path().join("success.svg")).unwrap();
    for legend in [
        "self teacher",
        "oracle teacher, temperature 0.7",
        "self-iter-0 alone: 40.0%",
    ] {
        assert!(svg.contains(legend), "the chart lacks {legend:?}");
    }

    let (ok, stderr) = leap_report(
        oracle.path(),
        &["--compare".as_ref(), "runs/self".as_ref()],
        out.path(),
    );
    assert!(!ok);
    assert!(stderr.contains("expected NAME=DIR"), "{stderr}");
}
