//! Labels in a real run database: decisions, edits, undo and history; curation by policy that a
//! SIGKILL cannot make lose a decision it has reported; datasets and exports read back.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use leap::agent::parse::format;
use leap::agent::prompt::{Past, Prompt, View};
use leap::env::Environment;
use leap::env::household;
use leap::scenario::{self, Scenario};
use leap::store::{Decision, EpisodeRecord, LabelFilter, LabelStatus, StepRecord, Store};
use leap::teacher::correct_and_store;
use leap::teacher::oracle::OracleTeacher;

fn leap_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leap"))
}

fn scenarios() -> Vec<Scenario> {
    scenario::load_all(&[PathBuf::from("scenarios/household")]).unwrap()
}

/// Stores one wandering episode per scenario (real prompts, iteration 0) and has the oracle
/// correct them all. Returns the number of labels.
fn seed_run(dir: &Path, scenarios: &[Scenario], steps: usize) -> usize {
    let mut store = Store::open(dir).unwrap();
    let mut teacher = OracleTeacher::new(0.5, 1);
    let ids = store_wanderers(&mut store, scenarios, steps);
    ids.iter()
        .zip(scenarios)
        .map(|(&id, s)| {
            correct_and_store(&mut store, s, id, &mut teacher)
                .unwrap()
                .labels as usize
        })
        .sum()
}

/// Stores one wandering episode per scenario (real prompts, iteration 0, keys
/// `rollout/wander/<scenario>/0`); returns their ids, in the scenarios' order.
fn store_wanderers(store: &mut Store, scenarios: &[Scenario], steps: usize) -> Vec<i64> {
    let prompt = Prompt::builtin(8);
    let mut ids = Vec::new();
    for (n, s) in scenarios.iter().enumerate() {
        store
            .upsert_scenario(&s.hash, &s.id, "household", s.split.as_str(), &s.json)
            .unwrap();
        let mut env = household::body(s).unwrap().env(s.horizon);
        let start = env.observation().to_string();
        let mut history: Vec<Past> = Vec::new();
        let mut records = Vec::new();
        for i in 0..steps {
            let admissible = env.admissible();
            let action = admissible[(n * 7 + i * 3) % admissible.len()].clone();
            let messages = prompt
                .render(&View {
                    kind: s.kind(),
                    task: env.task(),
                    start: &start,
                    history: &history,
                    observation: env.observation(),
                    admissible: &admissible,
                })
                .unwrap();
            let outcome = env.step(&action);
            records.push(StepRecord {
                prompt: messages
                    .iter()
                    .map(|m| m.content.as_str())
                    .collect::<Vec<_>>()
                    .join("\n\n"),
                messages,
                raw_output: format("I look around.", &action),
                reason: Some("I look around.".into()),
                action: action.clone(),
                observation: env.observation().to_string(),
                reward: f64::from(outcome.reward),
                done: outcome.done,
                valid: true,
                admissible,
                prompt_tokens: 1,
                cached_tokens: 0,
                gen_tokens: 1,
                prompt_ms: 0,
                gen_ms: 0,
                intervention: None,
                info: None,
            });
            history.push(Past {
                action,
                observation: env.observation().to_string(),
            });
            if outcome.done {
                break;
            }
        }
        let record = EpisodeRecord {
            key: format!("rollout/wander/{}/0", s.id),
            scenario_hash: s.hash.clone(),
            scenario_id: s.id.clone(),
            policy: "wanderer".into(),
            seed: 0,
            iteration: Some(0),
            sampling: serde_json::json!({}),
            started_at_ms: 0,
            finished_at_ms: n as i64,
            won: env.won(),
            reward: 0.0,
            wall_ms: 0,
            steps: records,
            branch: None,
            stopped: None,
        };
        ids.push(store.insert_episode(&record).unwrap().unwrap());
    }
    ids
}

#[test]
fn an_episode_that_does_not_replay_is_skipped_and_the_others_are_corrected() {
    use leap::correct::{CorrectOptions, correct_episodes};
    use leap::store::EpisodeFilter;
    use leap::teacher::TeacherSpec;

    let dir = tempfile::tempdir().unwrap();
    let scenarios: Vec<Scenario> = scenarios().into_iter().take(3).collect();
    let mut store = Store::open(dir.path()).unwrap();
    let ids = store_wanderers(&mut store, &scenarios, 4);
    // The second episode's record says its first step was answered otherwise than the
    // scenario answers it: the teacher cannot replay it.
    let changed = rusqlite::Connection::open(store.path())
        .unwrap()
        .execute(
            "UPDATE steps SET observation = 'Nothing happens here, ever.' WHERE episode_id = ?1 AND idx = 0",
            [ids[1]],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let oracle = TeacherSpec::Oracle {
        draw: Default::default(),
        privilege: 0.5,
        seed: 1,
    };
    let options = CorrectOptions {
        filter: EpisodeFilter::prefix("rollout/wander/".to_string()),
        failed_only: false,
        max_reward: None,
    };
    let summary = correct_episodes(&mut store, &oracle, &options, &mut |_, _| {}).unwrap();
    assert_eq!(
        (summary.episodes, summary.corrected_now),
        (3, 2),
        "{summary:?}"
    );
    assert_eq!(summary.skipped.len(), 1, "{summary:?}");
    let skipped = &summary.skipped[0];
    assert_eq!(skipped.episode, ids[1]);
    assert_eq!(skipped.key, format!("rollout/wander/{}/0", scenarios[1].id));
    assert!(
        skipped.error.contains("step 0 does not replay"),
        "{}",
        skipped.error
    );
    for (i, &id) in ids.iter().enumerate() {
        let labels = store
            .label_counts(&LabelFilter {
                episode_id: Some(id),
                ..Default::default()
            })
            .unwrap()
            .total;
        assert_eq!(labels > 0, i != 1, "episode {id}: {labels} labels");
    }
    // A rerun corrects nothing again and names the same episode.
    let again = correct_episodes(&mut store, &oracle, &options, &mut |_, _| {}).unwrap();
    assert_eq!(again.corrected_now, 0);
    assert_eq!(again.skipped.len(), 1);
    assert_eq!(again.labels, summary.labels);
}

#[test]
fn decisions_edits_and_undo_keep_a_full_history() {
    let dir = tempfile::tempdir().unwrap();
    let all = scenarios();
    let total = seed_run(dir.path(), &all[..3], 5);
    let mut store = Store::open_existing(dir.path()).unwrap();
    let labels = store.labels(&LabelFilter::default()).unwrap();
    assert_eq!(labels.len(), total);
    assert!(labels.iter().all(|l| l.status == LabelStatus::Pending));
    assert!(
        labels
            .iter()
            .all(|l| l.admissible.contains(&l.teacher_action))
    );
    // The same teacher again writes nothing.
    let mut teacher = OracleTeacher::new(0.5, 1);
    let again = correct_and_store(&mut store, &all[0], labels[0].episode_id, &mut teacher).unwrap();
    assert_eq!(again.correction_id, None);
    assert_eq!(store.labels(&LabelFilter::default()).unwrap().len(), total);

    let (a, b) = (labels[0].id, labels[1].id);
    store.decide(a, &Decision::Accept, "person:test").unwrap();
    let bad = Decision::Edit {
        reason: "Go.".into(),
        action: "fly to the moon".into(),
    };
    let err = store
        .decide(b, &bad, "person:test")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("fly to the moon") && err.contains("not admissible"),
        "{err}"
    );
    let edit = Decision::Edit {
        reason: "The fridge is where food is kept.".into(),
        action: labels[1].admissible[0].clone(),
    };
    let edited = store.decide(b, &edit, "person:test").unwrap();
    assert_eq!(edited.status, LabelStatus::Edited);
    assert_eq!(
        edited.target(),
        (
            "The fridge is where food is kept.",
            labels[1].admissible[0].as_str()
        )
    );
    assert_eq!(
        edited.teacher_action, labels[1].teacher_action,
        "the teacher's label is kept beside the edit"
    );
    store.decide(b, &Decision::Reject, "person:other").unwrap();

    // Undo walks back: rejected -> edited -> pending.
    assert_eq!(store.undo_label(b).unwrap().status, LabelStatus::Edited);
    let back = store.undo_label(b).unwrap();
    assert_eq!(
        (back.status, back.edited_action.clone()),
        (LabelStatus::Pending, None)
    );
    assert!(
        store
            .undo_label(b)
            .unwrap_err()
            .to_string()
            .contains("no decision to undo")
    );
    let history = store.label_history(b).unwrap();
    assert_eq!(history.len(), 2, "the failed edit wrote nothing");
    assert!(history.iter().all(|e| e.undone));

    let counts = store.label_counts(&LabelFilter::default()).unwrap();
    assert_eq!(
        (
            counts.total as usize,
            counts.accepted,
            counts.pending as usize
        ),
        (total, 1, total - 1)
    );
}

#[test]
fn a_kill_during_curation_loses_no_decision_it_reported() {
    let dir = tempfile::tempdir().unwrap();
    let all = scenarios();
    let total = seed_run(dir.path(), &all, 6);
    assert!(total > 1500, "{total} labels: too few to fill the pipe");

    let mut child = leap_bin()
        .args([
            "curate",
            "--policy",
            "accept-unless-leak",
            "--verbose",
            "--run",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut reported = Vec::new();
    let mut line = String::new();
    while reported.len() < 20 {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "curate ended early"
        );
        let id: i64 = line
            .split_whitespace()
            .nth(1)
            .unwrap()
            .trim_start_matches('#')
            .parse()
            .unwrap();
        reported.push(id);
    }
    // Stop reading: the child fills the pipe and blocks mid-way; then kill it.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();

    let store = Store::open_existing(dir.path()).unwrap();
    for id in &reported {
        let label = store.label(*id).unwrap().unwrap();
        assert_ne!(
            label.status,
            LabelStatus::Pending,
            "label {id} was reported decided"
        );
        assert_eq!(store.label_history(*id).unwrap().len(), 1);
    }
    let counts = store.label_counts(&LabelFilter::default()).unwrap();
    assert!(
        counts.pending > 0,
        "the kill came after the end: {counts:?}"
    );
    // Every decided label has exactly the one history entry that made it.
    for l in store.labels(&LabelFilter::default()).unwrap() {
        let events = store.label_history(l.id).unwrap().len();
        assert_eq!(
            events,
            usize::from(l.status != LabelStatus::Pending),
            "label {}",
            l.id
        );
    }
    drop(store);

    // A rerun decides the rest, once each.
    let out = leap_bin()
        .args([
            "curate",
            "--policy",
            "accept-unless-leak",
            "--json",
            "--run",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open_existing(dir.path()).unwrap();
    let counts = store.label_counts(&LabelFilter::default()).unwrap();
    assert_eq!(counts.pending, 0);
    assert_eq!(counts.accepted + counts.rejected, total as u64);
    assert_eq!(counts.rejected, counts.leaking);
}

#[test]
fn datasets_and_exports_read_back_as_jsonl_with_the_expected_fields() {
    let dir = tempfile::tempdir().unwrap();
    let all = scenarios();
    let train: Vec<Scenario> = all
        .iter()
        .filter(|s| s.split == scenario::Split::Train)
        .take(20)
        .cloned()
        .collect();
    seed_run(dir.path(), &train, 4);
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(leap_bin()
        .args(["curate", "--policy", "accept-if-changed", "--run"])
        .arg(dir.path())
        .output()
        .unwrap());

    // Iteration 0: expert demonstrations only; iteration 1 adds the kept labels.
    let build = |iter: &str| {
        let text = ok(leap_bin()
            .args(["dataset", "build", "--json", "--iter", iter, "--run"])
            .arg(dir.path())
            .output()
            .unwrap());
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let zero = build("0");
    let one = build("1");
    let expert_rows = zero["rows"].as_u64().unwrap();
    assert!(expert_rows > 240 * 3, "{zero}");
    assert_eq!(
        zero["expert"]["won"], 240,
        "the oracle wins every train scenario: {zero}"
    );
    let store = Store::open_existing(dir.path()).unwrap();
    let kept = store
        .label_counts(&LabelFilter {
            status: Some(LabelStatus::Accepted),
            ..Default::default()
        })
        .unwrap()
        .total;
    assert_eq!(one["rows"].as_u64().unwrap(), expert_rows + kept, "{one}");
    let recorded = store.dataset(1).unwrap().unwrap();
    assert_eq!(
        store.dataset_labels(recorded.id).unwrap().len() as u64,
        kept
    );

    let rows = leap::dataset::read_jsonl(&dir.path().join("datasets/iter-1.jsonl")).unwrap();
    assert_eq!(rows.len() as u64, expert_rows + kept);
    for row in &rows {
        assert!(row.problem().is_none());
        let roles: Vec<&str> = row.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant"]);
        let response = &row.messages[2].content;
        assert!(
            response.starts_with("REASON: ") && response.contains("\nACTION: "),
            "{response}"
        );
    }
    let from_labels: Vec<_> = rows
        .iter()
        .filter(|r| r.meta.as_ref().unwrap().source == "label")
        .collect();
    assert_eq!(from_labels.len() as u64, kept);

    let dpo = dir.path().join("dpo.jsonl");
    ok(leap_bin()
        .args(["export", "--format", "dpo", "--out"])
        .arg(&dpo)
        .arg("--run")
        .arg(dir.path())
        .output()
        .unwrap());
    let text = std::fs::read_to_string(&dpo).unwrap();
    let pairs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        pairs.len() as u64,
        kept,
        "accept-if-changed keeps only changed labels"
    );
    for p in &pairs {
        assert_eq!(p["prompt"].as_array().unwrap().len(), 2);
        assert_eq!(p["chosen"][0]["role"], "assistant");
        assert_eq!(p["rejected"][0]["role"], "assistant");
        assert_ne!(p["chosen"][0]["content"], p["rejected"][0]["content"]);
    }
    let sft = dir.path().join("sft.jsonl");
    ok(leap_bin()
        .args(["export", "--format", "sft", "--iter", "1", "--out"])
        .arg(&sft)
        .arg("--run")
        .arg(dir.path())
        .output()
        .unwrap());
    assert_eq!(
        leap::dataset::read_jsonl(&sft).unwrap().len() as u64,
        expert_rows + kept
    );

    // With --distinct-labels, a correction an episode repeats gives one row: its first step.
    let accepted = store
        .labels(&LabelFilter {
            status: Some(LabelStatus::Accepted),
            ..Default::default()
        })
        .unwrap();
    let mut first = std::collections::HashMap::new();
    for l in &accepted {
        first
            .entry((
                l.episode_id,
                l.teacher_reason.clone(),
                l.teacher_action.clone(),
            ))
            .or_insert(l.idx);
    }
    let distinct = first.len() as u64;
    assert!(
        distinct < kept,
        "some correction repeats: {distinct} of {kept}"
    );
    let text = ok(leap_bin()
        .args([
            "dataset",
            "build",
            "--json",
            "--iter",
            "1",
            "--distinct-labels",
            "--run",
        ])
        .arg(dir.path())
        .output()
        .unwrap());
    let once: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(once["parts"][1].as_u64().unwrap(), distinct, "{once}");
    let rows = leap::dataset::read_jsonl(&dir.path().join("datasets/iter-1.jsonl")).unwrap();
    let mut steps: Vec<(i64, u32)> = rows
        .iter()
        .filter_map(|r| r.meta.as_ref())
        .filter(|m| m.source == "label")
        .map(|m| (m.episode_id.unwrap(), m.step.unwrap()))
        .collect();
    let mut expected: Vec<(i64, u32)> = first.iter().map(|((e, _, _), &i)| (*e, i)).collect();
    steps.sort_unstable();
    expected.sort_unstable();
    assert_eq!(steps, expected);
}

/// Two deciders at once, each with its own connection to the same database: both read every
/// pending label, then both decide them all. Each label is decided once (one history entry), the
/// loser is told for each label it lost, and one undo undoes the one decision.
#[test]
fn two_deciders_at_once_decide_each_label_once() {
    let dir = tempfile::tempdir().unwrap();
    let all = scenarios();
    let total = seed_run(dir.path(), &all[..4], 6);
    let barrier = std::sync::Barrier::new(2);
    let outcomes: Vec<(usize, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|k| {
                let (dir, barrier) = (dir.path(), &barrier);
                s.spawn(move || {
                    let mut store = Store::open_existing(dir).unwrap();
                    let pending = LabelFilter {
                        status: Some(LabelStatus::Pending),
                        ..LabelFilter::default()
                    };
                    let labels = store.labels(&pending).unwrap();
                    assert_eq!(labels.len(), total);
                    barrier.wait();
                    let (mut won, mut lost) = (0, Vec::new());
                    for label in &labels {
                        match store.decide_from(label, &Decision::Accept, &format!("policy:{k}")) {
                            Ok(_) => won += 1,
                            Err(e @ leap::store::StoreError::Decided { .. }) => {
                                lost.push(e.to_string())
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    (won, lost)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: usize = outcomes.iter().map(|(w, _)| w).sum();
    let lost: Vec<&String> = outcomes.iter().flat_map(|(_, l)| l).collect();
    assert_eq!(
        (won, lost.len()),
        (total, total),
        "each label won once, lost once"
    );
    assert!(
        lost.iter()
            .all(|e| e.contains("another decider got there first") && e.contains("not recorded")),
        "{lost:?}"
    );

    let mut store = Store::open_existing(dir.path()).unwrap();
    for label in store.labels(&LabelFilter::default()).unwrap() {
        assert_eq!(label.status, LabelStatus::Accepted);
        assert_eq!(
            store.label_history(label.id).unwrap().len(),
            1,
            "label {}",
            label.id
        );
    }
    let id = store.labels(&LabelFilter::default()).unwrap()[0].id;
    assert_eq!(store.undo_label(id).unwrap().status, LabelStatus::Pending);
    let err = store.undo_label(id).unwrap_err().to_string();
    assert!(err.contains("no decision to undo"), "{err}");
}

/// Two `leap curate` processes started together on one run: every label is decided once
/// between them, whichever got to it first.
#[test]
fn two_curate_processes_decide_each_label_once() {
    let dir = tempfile::tempdir().unwrap();
    let all = scenarios();
    let total = seed_run(dir.path(), &all, 3);
    let children: Vec<_> = (0..2)
        .map(|_| {
            leap_bin()
                .args(["curate", "--policy", "accept-all", "--json", "--run"])
                .arg(dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut accepted = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        accepted += summary["accepted"].as_u64().unwrap() as usize;
    }
    assert_eq!(
        accepted, total,
        "the two passes together decide each label once"
    );
    let store = Store::open_existing(dir.path()).unwrap();
    let events: usize = store
        .labels(&LabelFilter::default())
        .unwrap()
        .iter()
        .map(|l| store.label_history(l.id).unwrap().len())
        .sum();
    assert_eq!(events, total, "one decision per label in the history");
}

/// Overwrites 4 KB in the middle of a real run's database (after its WAL is folded in): every
/// command that uses the run refuses it with the same clear error, exits non-zero and leaves the
/// file as it found it; `leap doctor` names the damage.
#[test]
fn a_damaged_database_is_refused_and_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let all = scenarios();
    seed_run(&run, &all[..4], 6);
    let (tiny, _) = common::tiny_folder(dir.path());
    let db = run.join("leap.db");
    assert!(
        !run.join("leap.db-wal").exists(),
        "the last close folds the WAL in"
    );
    let mut bytes = std::fs::read(&db).unwrap();
    let at = (bytes.len() / 2) / 4096 * 4096;
    for (i, b) in bytes[at..at + 4096].iter_mut().enumerate() {
        *b = (i * 131 % 251) as u8;
    }
    std::fs::write(&db, &bytes).unwrap();

    let scenario = common::first_files(Path::new("scenarios/household/train"), 1).remove(0);
    let commands: Vec<Vec<&std::ffi::OsStr>> = vec![
        vec![
            "labels".as_ref(),
            "accept".as_ref(),
            "1".as_ref(),
            "--run".as_ref(),
            run.as_ref(),
        ],
        vec![
            "curate".as_ref(),
            "--policy".as_ref(),
            "accept-all".as_ref(),
            "--run".as_ref(),
            run.as_ref(),
        ],
        vec![
            "dataset".as_ref(),
            "build".as_ref(),
            "--iter".as_ref(),
            "1".as_ref(),
            "--run".as_ref(),
            run.as_ref(),
        ],
        vec![
            "rollout".as_ref(),
            "--run".as_ref(),
            run.as_ref(),
            "--scenarios".as_ref(),
            scenario.as_ref(),
            "--model".as_ref(),
            tiny.as_ref(),
            "--horizon".as_ref(),
            "1".as_ref(),
        ],
        vec![
            "episodes".as_ref(),
            "list".as_ref(),
            "--run".as_ref(),
            run.as_ref(),
        ],
    ];
    for args in &commands {
        let out = leap_bin()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&*db.to_string_lossy()) && err.contains("the database is damaged"),
            "{args:?}: {err}"
        );
        assert_eq!(
            std::fs::read(&db).unwrap(),
            bytes,
            "{args:?} changed the file"
        );
        assert!(
            !run.join("leap.db-wal").exists()
                || std::fs::metadata(run.join("leap.db-wal")).unwrap().len() == 0
        );
    }

    let out = leap_bin()
        .args(["doctor", "--run"])
        .arg(&run)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("DAMAGED") && said.contains("integrity_check"),
        "{said}"
    );
}

/// `leap doctor` on a sound run says so; once a dataset file the run recorded is changed, it
/// names the file and its hash and exits 1.
#[test]
fn doctor_checks_a_run_and_the_files_it_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    seed_run(&run, &scenarios()[..4], 6);
    let mut store = Store::open_existing(&run).unwrap();
    let kept: Vec<i64> = store.labels(&LabelFilter::default()).unwrap()[..2]
        .iter()
        .map(|l| l.id)
        .collect();
    common::dataset_of_kept(&mut store, &run, "household", &kept);
    let dataset = store.datasets().unwrap().remove(0).path;
    drop(store);
    let doctor = || {
        leap_bin()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["doctor", "--run"])
            .arg(&run)
            .output()
            .unwrap()
    };
    let out = doctor();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("ok       database") && said.contains(&format!("ok       dataset {dataset}")),
        "{said}"
    );

    let mut text = std::fs::read_to_string(&dataset).unwrap();
    text.push_str("{}\n");
    std::fs::write(&dataset, text).unwrap();
    let out = doctor();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("DAMAGED  dataset {dataset}: sha256 is")),
        "{said}"
    );
}
