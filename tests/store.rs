//! The run store on real SQLite files: migrations, reopening, resuming by key, atomic episodes,
//! the summary arithmetic, and an episode writer killed with SIGKILL.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use leap::agent::{Message, Role};
use leap::store::{
    EpisodeFilter, EpisodeRecord, Order, SCHEMA_VERSION, StepRecord, Store, StoreError,
};

const HASH: &str = "5e1f0c2a9b7d4e3f8a6c1b0d2e4f6a8c9b7d5e3f1a0c2b4d6e8f0a1c3b5d7e9f";

fn step(i: usize, valid: bool) -> StepRecord {
    StepRecord {
        prompt: format!(
            "You are in the kitchen.\nYour task is to: put a mug in the sink.\n> step {i}"
        ),
        messages: if i.is_multiple_of(2) {
            vec![
                Message::new(Role::System, "Act."),
                Message::new(Role::User, format!("step {i}")),
            ]
        } else {
            Vec::new() // rows written before the store kept messages read back empty
        },
        raw_output: format!("REASON: look around {i}\nACTION: go to countertop {i}"),
        reason: Some(format!("look around {i}")),
        action: format!("go to countertop {i}"),
        observation: format!("On the countertop {i}, you see nothing."),
        reward: 0.0,
        done: false,
        valid,
        admissible: vec!["look".into(), format!("go to countertop {i}")],
        prompt_tokens: 100 + i as u32,
        cached_tokens: 90,
        gen_tokens: 12,
        prompt_ms: 5,
        gen_ms: 40,
        intervention: None,
        info: None,
    }
}

fn episode(key: &str, scenario_id: &str, steps: Vec<StepRecord>) -> EpisodeRecord {
    EpisodeRecord {
        key: key.to_string(),
        scenario_hash: HASH.to_string(),
        scenario_id: scenario_id.to_string(),
        policy: "SmolLM2-135M-Instruct Q4_1 + no adapter".to_string(),
        seed: u64::MAX - 7, // needs all 64 bits
        iteration: Some(2),
        sampling: json!({"temperature": 0.7, "top_p": 0.95}),
        started_at_ms: 1_700_000_000_000,
        finished_at_ms: 1_700_000_004_000,
        won: false,
        reward: 0.0,
        wall_ms: 4000,
        steps,
        branch: None,
        stopped: None,
    }
}

fn open_with_scenarios(dir: &Path) -> Store {
    let mut store = Store::open(dir).unwrap();
    for id in ["kitchen-1", "bath-2"] {
        // One hash per scenario id keeps the fixtures short; the store does not care.
        let hash = if id == "kitchen-1" {
            HASH.to_string()
        } else {
            format!("{HASH}-bath")
        };
        store
            .upsert_scenario(&hash, id, "household", "train", r#"{"id":"x"}"#)
            .unwrap();
    }
    store
}

fn raw(store: &Store) -> rusqlite::Connection {
    rusqlite::Connection::open(store.path()).unwrap()
}

fn count(conn: &rusqlite::Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn open_creates_the_folder_and_migrates_an_empty_database() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("runs").join("first");
    let store = Store::open(&dir).unwrap();
    assert_eq!(store.path(), dir.join("leap.db"));
    assert!(store.path().is_file());
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION as i64);
    let conn = raw(&store);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.sort();
    assert_eq!(
        tables,
        [
            "adapters",
            "corrections",
            "dataset_labels",
            "datasets",
            "episodes",
            "evaluations",
            "label_events",
            "labels",
            "runs",
            "scenarios",
            "stages",
            "steps"
        ]
    );
    let run = store.run_info().unwrap();
    assert_eq!(run.name, "first");
    assert_eq!(run.config, json!({}));
    // Opening again changes nothing.
    drop(store);
    let again = Store::open(&dir).unwrap();
    assert_eq!(again.run_info().unwrap(), run);
}

#[test]
fn a_database_newer_than_the_code_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    raw(&store)
        .pragma_update(None, "user_version", SCHEMA_VERSION as i64 + 1)
        .unwrap();
    drop(store);
    let err = Store::open(tmp.path()).expect_err("a newer schema must be refused");
    assert!(matches!(err, StoreError::TooNew { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("leap.db") && text.contains("newer"), "{text}");
}

#[test]
fn open_existing_does_not_create_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("typo");
    let err = Store::open_existing(&dir).expect_err("no run there");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("typo"), "{err}");
    assert!(!dir.exists());
}

#[test]
fn reopening_keeps_episodes_scenarios_and_config() {
    let tmp = tempfile::tempdir().unwrap();
    let record = episode(
        "rollout/base/kitchen-1/0",
        "kitchen-1",
        vec![step(0, true), step(1, false)],
    );
    let id = {
        let mut store = open_with_scenarios(tmp.path());
        store.set_config(&json!({"model": "smol"})).unwrap();
        store
            .insert_episode(&record)
            .unwrap()
            .expect("a new key is stored")
    };
    let store = Store::open(tmp.path()).unwrap();
    let got = store.episode(id).unwrap().expect("still there");
    assert_eq!(got.id, id);
    assert_eq!(got.record, record);
    assert_eq!(store.run_info().unwrap().config, json!({"model": "smol"}));
    assert_eq!(
        store.scenario(HASH).unwrap().unwrap().scenario_id,
        "kitchen-1"
    );
    assert!(store.episode(id + 1).unwrap().is_none());
    let listed = store.list_episodes(&EpisodeFilter::default()).unwrap();
    assert_eq!(listed.len(), 1);
    let row = &listed[0];
    assert_eq!((row.steps, row.invalid_actions), (2, 1));
    assert_eq!(
        (row.prompt_tokens, row.cached_tokens, row.gen_tokens),
        (201, 180, 24)
    );
    assert_eq!(row.seed, u64::MAX - 7);
}

#[test]
fn a_steps_info_is_stored_with_it_and_none_stays_none() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bought = step(1, true);
    bought.info = Some(json!({
        "r_type": 1.0, "r_att": 0.5, "r_option": 1.0, "r_price": true, "asin": "B07XYZ"
    }));
    let record = episode(
        "rollout/base/kitchen-1/0",
        "kitchen-1",
        vec![step(0, true), bought],
    );
    let id = {
        let mut store = open_with_scenarios(tmp.path());
        store.insert_episode(&record).unwrap().unwrap()
    };
    let got = Store::open(tmp.path())
        .unwrap()
        .episode(id)
        .unwrap()
        .unwrap();
    assert_eq!(got.record, record);
    assert_eq!(got.record.steps[0].info, None);
    let raw_info: Option<String> = raw(&Store::open(tmp.path()).unwrap())
        .query_row("SELECT info FROM steps WHERE idx = 0", [], |r| r.get(0))
        .unwrap();
    assert_eq!(raw_info, None, "no info is NULL, not the text null");
}

#[test]
fn a_database_of_schema_version_5_migrates_and_keeps_its_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let old = episode("rollout/base/kitchen-1/0", "kitchen-1", vec![step(0, true)]);
    let id = {
        let mut store = open_with_scenarios(tmp.path());
        store.insert_episode(&old).unwrap().unwrap()
    };
    // Back to the schema of version 5: migrations 6 and 7 only added `steps.info` and
    // `episodes.stopped`.
    {
        let conn = rusqlite::Connection::open(tmp.path().join("leap.db")).unwrap();
        conn.execute_batch(
            "ALTER TABLE steps DROP COLUMN info; ALTER TABLE episodes DROP COLUMN stopped;
             PRAGMA user_version = 5;",
        )
        .unwrap();
    }
    let mut store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION as i64);
    assert_eq!(store.episode(id).unwrap().unwrap().record, old);
    let mut new = episode("rollout/base/kitchen-1/1", "kitchen-1", vec![step(0, true)]);
    new.steps[0].info = Some(json!({"r_price": false}));
    new.stopped = Some("cycle at step 3 (a repeat of step 1)".into());
    let new_id = store.insert_episode(&new).unwrap().unwrap();
    assert_eq!(store.episode(new_id).unwrap().unwrap().record, new);
}

#[test]
fn a_duplicate_key_is_skipped_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = open_with_scenarios(tmp.path());
    let first = episode("rollout/base/kitchen-1/0", "kitchen-1", vec![step(0, true)]);
    let id = store.insert_episode(&first).unwrap().unwrap();
    let mut second = first.clone();
    second.won = true;
    second.steps.push(step(1, true));
    assert_eq!(store.insert_episode(&second).unwrap(), None);
    assert_eq!(store.episode(id).unwrap().unwrap().record, first);
    let conn = raw(&store);
    assert_eq!((count(&conn, "episodes"), count(&conn, "steps")), (1, 1));
}

#[test]
fn finished_keys_match_the_prefix_literally() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = open_with_scenarios(tmp.path());
    for key in [
        "rollout/a%/kitchen-1/0",
        "rollout/a%/kitchen-1/1",
        "rollout/ab/kitchen-1/0",
        "eval/a%/kitchen-1/0",
    ] {
        store
            .insert_episode(&episode(key, "kitchen-1", vec![step(0, true)]))
            .unwrap()
            .unwrap();
    }
    let keys: Vec<String> = store
        .finished_keys("rollout/a%/")
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(keys, ["rollout/a%/kitchen-1/0", "rollout/a%/kitchen-1/1"]);
    assert_eq!(store.finished_keys("rollout/a_/").unwrap().len(), 0);
    assert_eq!(store.finished_keys("").unwrap().len(), 4);
}

#[test]
fn a_failing_step_leaves_no_half_episode() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = open_with_scenarios(tmp.path());
    let mut bad = episode(
        "rollout/base/kitchen-1/0",
        "kitchen-1",
        vec![step(0, true), step(1, true), step(2, true)],
    );
    // SQLite stores NaN as NULL, which the steps table refuses: the third step fails after
    // the episode row and two steps were written inside the transaction.
    bad.steps[2].reward = f64::NAN;
    let err = store
        .insert_episode(&bad)
        .expect_err("a NaN reward must be refused");
    let text = err.to_string();
    assert!(
        text.contains("leap.db")
            && text.contains("rollout/base/kitchen-1/0")
            && text.contains("step 2"),
        "{text}"
    );
    let conn = raw(&store);
    assert_eq!((count(&conn, "episodes"), count(&conn, "steps")), (0, 0));
    assert!(store.finished_keys("rollout/").unwrap().is_empty());
    // The store is still usable and the key still free.
    bad.steps[2].reward = 1.0;
    assert!(store.insert_episode(&bad).unwrap().is_some());
    assert_eq!((count(&conn, "episodes"), count(&conn, "steps")), (1, 3));
}

#[test]
fn an_episode_needs_its_scenario_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let err = store
        .insert_episode(&episode("k", "kitchen-1", vec![step(0, true)]))
        .expect_err("no snapshot");
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    assert!(
        store
            .upsert_scenario(HASH, "kitchen-1", "household", "train", "{}")
            .unwrap()
    );
    assert!(
        !store
            .upsert_scenario(HASH, "kitchen-1", "household", "train", "{}")
            .unwrap()
    );
    assert!(
        store
            .insert_episode(&episode("k", "kitchen-1", vec![step(0, true)]))
            .unwrap()
            .is_some()
    );
}

#[test]
fn summary_and_list_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = open_with_scenarios(tmp.path());
    let mut a = episode(
        "rollout/base/kitchen-1/0",
        "kitchen-1",
        vec![step(0, true), step(1, false)],
    );
    a.won = true;
    a.reward = 1.0;
    a.wall_ms = 1000;
    a.finished_at_ms = 3;
    let mut b = episode(
        "rollout/base/bath-2/0",
        "bath-2",
        vec![step(0, true), step(1, true), step(2, true)],
    );
    b.scenario_hash = format!("{HASH}-bath");
    b.iteration = None;
    b.wall_ms = 2000;
    b.finished_at_ms = 5;
    let mut c = episode("eval/base/kitchen-1/0", "kitchen-1", vec![step(0, false)]);
    c.won = true;
    c.reward = 0.5;
    c.wall_ms = 500;
    c.finished_at_ms = 4;
    let ids: Vec<i64> = [&a, &b, &c]
        .iter()
        .map(|e| store.insert_episode(e).unwrap().unwrap())
        .collect();

    let rollout = store.summary(&EpisodeFilter::prefix("rollout/")).unwrap();
    assert_eq!(
        (
            rollout.episodes,
            rollout.wins,
            rollout.steps,
            rollout.invalid_actions
        ),
        (2, 1, 5, 1)
    );
    assert_eq!(rollout.success_rate, 0.5);
    assert_eq!(rollout.mean_reward, 0.5);
    assert_eq!(rollout.mean_steps, 2.5);
    assert_eq!(rollout.invalid_action_rate, 0.2);
    assert_eq!(rollout.prompt_tokens, 100 + 101 + 100 + 101 + 102);
    assert_eq!(rollout.cached_tokens, 5 * 90);
    assert_eq!(rollout.gen_tokens, 5 * 12);
    assert_eq!(rollout.wall_ms, 3000);

    let all = store.summary(&EpisodeFilter::default()).unwrap();
    assert_eq!(
        (all.episodes, all.wins, all.steps, all.invalid_actions),
        (3, 2, 6, 2)
    );
    assert!((all.success_rate - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(all.mean_reward, 0.5);
    assert_eq!(all.mean_steps, 2.0);
    assert!((all.invalid_action_rate - 1.0 / 3.0).abs() < 1e-12);

    let none = store.summary(&EpisodeFilter::prefix("nothing/")).unwrap();
    assert_eq!(
        (
            none.episodes,
            none.success_rate,
            none.mean_reward,
            none.invalid_action_rate
        ),
        (0, 0.0, 0.0, 0.0)
    );

    let kitchen = EpisodeFilter {
        scenario_id: Some("kitchen-1".into()),
        ..EpisodeFilter::default()
    };
    assert_eq!(store.summary(&kitchen).unwrap().episodes, 2);

    let ids_of = |filter: &EpisodeFilter| -> Vec<i64> {
        store
            .list_episodes(filter)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect()
    };
    assert_eq!(
        ids_of(&EpisodeFilter::default()),
        [ids[1], ids[2], ids[0]],
        "newest first"
    );
    assert_eq!(
        ids_of(&EpisodeFilter {
            order: Order::ById,
            ..EpisodeFilter::default()
        }),
        ids
    );
    assert_eq!(
        ids_of(&EpisodeFilter {
            limit: Some(1),
            ..EpisodeFilter::default()
        }),
        [ids[1]]
    );
    assert_eq!(ids_of(&kitchen), [ids[2], ids[0]]);
    assert_eq!(
        ids_of(&EpisodeFilter {
            iteration: Some(2),
            ..EpisodeFilter::default()
        }),
        [ids[2], ids[0]]
    );
    assert_eq!(ids_of(&EpisodeFilter::prefix("rollout/")), [ids[1], ids[0]]);
}

#[test]
fn two_writers_on_two_threads_both_land() {
    let tmp = tempfile::tempdir().unwrap();
    drop(open_with_scenarios(tmp.path()));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let dir = tmp.path().to_path_buf();
            std::thread::spawn(move || {
                let mut store = Store::open(&dir).unwrap();
                for i in 0..25 {
                    let key = format!("rollout/w{w}/kitchen-1/{i}");
                    store
                        .insert_episode(&episode(
                            &key,
                            "kitchen-1",
                            vec![step(0, true), step(1, true)],
                        ))
                        .unwrap()
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let store = Store::open_existing(tmp.path()).unwrap();
    assert_eq!(store.finished_keys("rollout/").unwrap().len(), 50);
    assert_eq!(count(&raw(&store), "steps"), 100);
}

const CRASH_DIR: &str = "LEAP_STORE_TEST_CRASH_DIR";
const CRASH_STEPS: usize = 60;

/// The child side of the SIGKILL test: writes episodes until it is killed. Does nothing in a
/// normal test run.
#[test]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR) else {
        return;
    };
    let mut store = open_with_scenarios(Path::new(&dir));
    // Built once, so the child spends nearly all its time inside `insert_episode`.
    let steps = (0..CRASH_STEPS)
        .map(|i| StepRecord {
            prompt: "You see a countertop. ".repeat(150),
            ..step(i, i % 7 != 0)
        })
        .collect();
    let mut record = episode("", "kitchen-1", steps);
    for i in store.finished_keys("crash/").unwrap().len().. {
        record.key = format!("crash/{i:06}");
        store.insert_episode(&record).unwrap().unwrap();
    }
}

/// Frames at the end of a WAL file written after its last commit frame: the transaction that
/// was being committed when the writer died. Follows SQLite's WAL file format: a 32-byte header
/// (page size at 8, salts at 16 and 20), then frames of a 24-byte header (database size at 4,
/// non-zero only on a commit frame; salts at 8 and 12) and a page.
fn torn_wal_frames(wal: &Path) -> usize {
    let Ok(bytes) = std::fs::read(wal) else {
        return 0;
    };
    if bytes.len() < 32 {
        return 0;
    }
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    let frame = 24 + be(8) as usize;
    let salts = (be(16), be(20));
    let (mut frames, mut committed, mut at) = (0, 0, 32);
    while at + frame <= bytes.len() && (be(at + 8), be(at + 12)) == salts {
        frames += 1;
        if be(at + 4) != 0 {
            committed = frames;
        }
        at += frame;
    }
    frames - committed
}

#[test]
fn an_episode_killed_mid_write_is_whole_or_absent() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut stored = 0;
    let mut torn_rounds = 0;
    // Kill the writer at varied moments (building rows, writing WAL frames, checkpointing)
    // until one kill has landed in the middle of a commit, which is the case that matters.
    for round in 0..80u64 {
        if round >= 3 && torn_rounds > 0 {
            break;
        }
        let mut child = Command::new(&exe)
            .args([
                "crash_writer_child",
                "--exact",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CRASH_DIR, tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Read while the child writes, as the workbench would, until it has made progress.
        let deadline = Instant::now() + Duration::from_secs(30);
        let target = stored + 4;
        loop {
            if let Ok(store) = Store::open_existing(tmp.path())
                && store.finished_keys("crash/").unwrap().len() >= target
            {
                break;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the writer exited early"
            );
            assert!(Instant::now() < deadline, "the writer made no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_micros(round * 7919 % 5000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if torn_wal_frames(&tmp.path().join("leap.db-wal")) > 0 {
            torn_rounds += 1;
        }

        let store = Store::open(tmp.path()).unwrap();
        let conn = raw(&store);
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let orphans: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM steps WHERE episode_id NOT IN (SELECT id FROM episodes)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
        let mismatched: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM episodes e
                 WHERE e.steps != (SELECT COUNT(*) FROM steps s WHERE s.episode_id = e.id)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(mismatched, 0, "an episode lost some of its steps");
        let listed = store
            .list_episodes(&EpisodeFilter::prefix("crash/"))
            .unwrap();
        assert!(listed.len() >= target);
        assert!(listed.iter().all(|e| e.steps as usize == CRASH_STEPS));
        let newest = store.episode(listed[0].id).unwrap().unwrap();
        assert_eq!(newest.record.steps.len(), CRASH_STEPS);
        stored = listed.len();
    }
    assert!(
        torn_rounds > 0,
        "no kill landed while a commit was being written"
    );
}

#[test]
fn a_stage_is_recorded_once_with_its_first_time() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let first = store
        .record_stage_once(Some(2), "training", 600.0, &json!("a.gguf"))
        .unwrap();
    assert!(first.is_some());
    // A resumed run passes through the finished stage again, quickly: the first time stands.
    let again = store
        .record_stage_once(Some(2), "training", 0.3, &json!("a.gguf"))
        .unwrap();
    assert_eq!(again, None);
    // The same stage of another iteration, and a stage of no iteration, are their own.
    assert!(
        store
            .record_stage_once(Some(3), "training", 5.0, &json!(null))
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .record_stage_once(None, "oracle alone on test", 0.2, &json!(null))
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .record_stage_once(None, "oracle alone on test", 0.0, &json!(null))
            .unwrap(),
        None
    );
    let stages = store.stages().unwrap();
    assert_eq!(stages.len(), 3);
    assert_eq!(stages[0].seconds, 600.0);
}
