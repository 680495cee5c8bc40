//! Fixed workbench state for the snapshot tests and the render benchmark: a real run store
//! holding episodes played by a scripted wanderer in the shipped showcase scenarios, corrected
//! by the oracle teacher (and one planted leak, as the leakage guard's own tests do).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use leap::agent::prompt::Prompt;
use leap::agent::{Message, Role};
use leap::report::Sources;
use leap::rollout::env_for;
use leap::scenario::{self, Scenario};
use leap::store::{EpisodeRecord, StepRecord, Store};
use leap::teacher::oracle::OracleTeacher;
use leap::teacher::{Corrections, Leak, StepCorrection, correct_and_store};
use leap::tui::catalog::Catalog;
use leap::tui::event::Event;
use leap::tui::keys::Keymap;
use leap::tui::{App, Init};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped showcase scenarios, loaded under a relative name so that snapshots do not
/// depend on where the repository is.
pub fn showcase() -> Catalog {
    let text = std::fs::read_to_string(root().join("scenarios/showcase.yaml")).unwrap();
    let loaded = scenario::parse_text(Path::new("scenarios/showcase.yaml"), &text);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let mut catalog = Catalog {
        paths: vec![PathBuf::from("scenarios/showcase.yaml")],
        ..Catalog::default()
    };
    catalog.update(loaded);
    catalog
}

/// `steps` steps of a wanderer: a fixed pseudo-random admissible command each step, with the
/// prompt the student would have read. Keeps going past the end when `past_end`.
pub fn wander(s: &Scenario, steps: usize, salt: u64, past_end: bool) -> EpisodeRecord {
    let horizon = if past_end {
        steps as u32 + 1
    } else {
        s.horizon
    };
    let mut env = env_for(s, Some(horizon));
    let prompt = Prompt::builtin(8);
    let start = env.observation().to_string();
    let mut history = Vec::new();
    let mut records = Vec::new();
    let mut x = salt
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut won = false;
    for i in 0..steps {
        let admissible = env.admissible();
        let view = leap::agent::prompt::View {
            kind: s.kind(),
            task: env.task(),
            start: &start,
            history: &history,
            observation: env.observation(),
            admissible: &admissible,
        };
        let messages: Vec<Message> = if i < 40 {
            prompt.render(&view).unwrap()
        } else {
            vec![Message::new(Role::User, "(elided)")]
        };
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let action = admissible[(x >> 33) as usize % admissible.len()].clone();
        let outcome = env.step(&action);
        won |= outcome.won;
        let reason = format!("I have not found it yet, so I try {action}.");
        records.push(StepRecord {
            prompt: messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n\n"),
            messages,
            raw_output: format!("REASON: {reason}\nACTION: {action}"),
            reason: Some(reason),
            action: action.clone(),
            observation: env.observation().to_string(),
            reward: f64::from(outcome.reward),
            done: outcome.done,
            valid: true,
            admissible,
            prompt_tokens: 180,
            cached_tokens: 120,
            gen_tokens: 24,
            prompt_ms: 50,
            gen_ms: 200,
            intervention: None,
            info: None,
        });
        history.push(leap::agent::prompt::Past {
            action,
            observation: env.observation().to_string(),
        });
        if outcome.done && !past_end {
            break;
        }
    }
    EpisodeRecord {
        key: format!("tui/{}/{salt}", s.id),
        scenario_hash: s.hash.clone(),
        scenario_id: s.id.clone(),
        policy: "wanderer".into(),
        seed: salt,
        iteration: None,
        sampling: serde_json::json!({}),
        started_at_ms: 1_700_000_000_000,
        finished_at_ms: 1_700_000_060_000,
        won,
        reward: if won { 1.0 } else { 0.0 },
        wall_ms: 60_000,
        steps: records,
        branch: None,
        stopped: None,
    }
}

pub fn store_episode(store: &mut Store, s: &Scenario, record: &EpisodeRecord) -> i64 {
    store
        .upsert_scenario(&s.hash, &s.id, s.kind().as_str(), s.split.as_str(), &s.json)
        .unwrap();
    store.insert_episode(record).unwrap().expect("a new key")
}

/// A run with one wandering episode in `showcase-warm-bread`, corrected by the oracle, and a
/// planted leaking correction on its third step. Returns the run folder and the episode id.
pub fn corrected_run(dir: &Path) -> (PathBuf, i64) {
    let run = dir.join("run");
    let mut store = Store::open(&run).unwrap();
    let catalog = showcase();
    let s = catalog
        .scenarios
        .iter()
        .find(|s| s.id == "showcase-warm-bread")
        .unwrap();
    let record = wander(s, 8, 7, false);
    let id = store_episode(&mut store, s, &record);
    let mut oracle = OracleTeacher::new(1.0, 0);
    correct_and_store(&mut store, s, id, &mut oracle).unwrap();
    let planted = Corrections {
        summary: "planted".into(),
        trajectory: vec![StepCorrection {
            timestep: 2,
            is_corrected: true,
            corrected_reason: "The bread 1 is on the countertop 1, so I go there.".into(),
            corrected_action: "go to countertop 1".into(),
            leaks: vec![Leak {
                fact: "bread 1 is on countertop 1".into(),
                text: "The bread 1 is on the countertop 1".into(),
            }],
        }],
        failures: Vec::new(),
    };
    store
        .insert_corrections(id, "planted", None, &record, &planted)
        .unwrap();
    (run, id)
}

pub fn init(run: &Path, catalog: Catalog) -> Init {
    Init {
        run_dir: run.to_path_buf(),
        catalog,
        keymap: Keymap::defaults(),
        model: PathBuf::from("SmolLM2-135M-Instruct.Q4_1.gguf"),
        horizon: None,
        by: "tester".into(),
        problems: Vec::new(),
        teacher_server: None,
        gpu_layers: 0,
        ctx: 2048,
        report: Sources::default(),
    }
}

/// An app without worker threads: it reads the run in place.
pub fn app(run: &Path, catalog: Catalog) -> App {
    App::new(init(run, catalog))
}

/// An app whose reads of the run go to job threads, as in `leap tui`, and the channel they
/// answer on: [`settle`] applies the answers.
pub fn connected_app(run: &Path, catalog: Catalog) -> (App, UnboundedReceiver<Event>) {
    let (tx, rx) = unbounded_channel();
    (App::with_channel(init(run, catalog), tx), rx)
}

/// Applies what the job threads send until no read and no bulk accept or undo is out (as the
/// event loop would); panics after ten seconds.
pub fn settle(app: &mut App, rx: &mut UnboundedReceiver<Event>) {
    let start = Instant::now();
    while app.reading_any() || app.bulk.is_some() {
        match rx.try_recv() {
            Ok(event) => app.handle(event),
            Err(TryRecvError::Empty) => {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "a job did not report back within ten seconds"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(TryRecvError::Disconnected) => panic!("the event channel closed"),
        }
    }
}

pub fn terminal(width: u16, height: u16) -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(width, height)).unwrap()
}

/// The app drawn on a `width` x `height` test terminal, as text.
pub fn render(app: &App, width: u16, height: u16) -> String {
    let mut t = terminal(width, height);
    t.draw(|f| app.view(f)).unwrap();
    t.backend().to_string()
}

/// One shipped shop test scenario, loaded under its relative name.
pub fn shop_catalog() -> Catalog {
    let name = "scenarios/shop/test/shop-test-beauty-0033.yaml";
    let text = std::fs::read_to_string(root().join(name)).unwrap();
    let loaded = scenario::parse_text(Path::new(name), &text);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let mut catalog = Catalog {
        paths: vec![PathBuf::from(name)],
        ..Catalog::default()
    };
    catalog.update(loaded);
    catalog
}

/// A run with the oracle's episode at privilege 0 (the pages only) in the shop scenario of
/// [`shop_catalog`], corrected by the oracle at privilege 1. Returns the run folder and the
/// episode id.
pub fn shop_run(dir: &Path) -> (PathBuf, i64) {
    let run = dir.join("run");
    let mut store = Store::open(&run).unwrap();
    let catalog = shop_catalog();
    let s = &catalog.scenarios[0];
    leap::eval::oracle_episodes(&mut store, std::slice::from_ref(s), 0.0, 0, "shop").unwrap();
    let episodes = store
        .list_episodes(&leap::store::EpisodeFilter::prefix("rollout/shop/"))
        .unwrap();
    let id = episodes[0].id;
    let mut oracle = OracleTeacher::new(1.0, 0);
    correct_and_store(&mut store, s, id, &mut oracle).unwrap();
    (run, id)
}
