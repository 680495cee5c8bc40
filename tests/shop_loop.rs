//! The shop through the generic workflows on real parts: the tiny random-weight model plays shop
//! test scenarios under the grammar into a real run, the oracle drives one episode to Buy Now,
//! the oracle and the self teacher correct the episodes, a dataset is built from the run, and
//! `leap eval` scores the oracle on shop scenarios through the real binary.

mod common;

use std::path::Path;
use std::process::Command;

use leap::agent::local::LocalConfig;
use leap::agent::prompt::Prompt;
use leap::env::command;
use leap::rollout::{Played, Playing, RolloutConfig, env_for};
use leap::scenario::Scenario;
use leap::store::{EpisodeRecord, Label, LabelFilter, LabelStatus, Store};
use leap::teacher::llm::LlmSettings;
use leap::teacher::oracle::OracleTeacher;
use leap::teacher::{TeacherSpec, correct_and_store};

/// Steps of the tiny model's episodes.
const HORIZON: u32 = 3;
/// Names the rollout; episode keys start with `rollout/shop/`.
const LABEL: &str = "shop";

/// One tiny model per test process.
fn tiny() -> &'static Path {
    common::shared_tiny("leap-shop-loop")
}

/// The matching product's ASIN among a scenario's privileged facts (the leak guard's).
fn gold_asin(s: &Scenario) -> String {
    let hidden = s.body.privileged(s.horizon);
    hidden
        .facts
        .iter()
        .find(|f| f.subject == "matching product asin")
        .map(|f| f.detail.clone())
        .expect("a shop scenario's facts name the matching product's ASIN")
}

/// The tiny model plays `scenarios` for [`HORIZON`] steps under the grammar into a fresh run,
/// and the privileged oracle plays `bought` to its purchase as interventions, stored as one
/// more episode of the same rollout. Returns the run folder.
fn played(scenarios: &[Scenario], bought: &Scenario) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let rollout_config = RolloutConfig {
        sampling: common::short(),
        ..common::rollout_config(LABEL, HORIZON)
    };
    let summary = common::play(tiny(), 4096, dir.path(), scenarios, &rollout_config);
    let mut store = Store::open_existing(dir.path()).unwrap();
    assert_eq!(summary.episodes, scenarios.len() as u64);
    assert_eq!(summary.invalid_action_rate, 0.0, "{summary:?}");

    // The oracle buys in the bought scenario, step by step through the rollout's own stepping.
    let record = oracle_purchase(bought, &rollout_config);
    store
        .upsert_scenario(
            &bought.hash,
            &bought.id,
            bought.kind().as_str(),
            bought.split.as_str(),
            &bought.json,
        )
        .unwrap();
    store
        .insert_episode(&record)
        .unwrap()
        .expect("a new episode");
    dir
}

/// `scenario` played by the privileged oracle's demonstration, each step taken as an
/// intervention on the student's prompt, as a live session takes the teacher's action.
fn oracle_purchase(scenario: &Scenario, config: &RolloutConfig) -> EpisodeRecord {
    let oracle = OracleTeacher::new(1.0, 0);
    let demo = oracle.demonstrate(scenario, "e2e", false);
    assert!(demo.won, "the privileged oracle buys the gold product");
    let key = format!("{}{}/bought", config.key_prefix(), scenario.id);
    let mut playing = Playing::new(key, scenario.kind(), env_for(scenario, None));
    let prompt = Prompt::builtin(8);
    let mut last = None;
    for step in &demo.steps {
        let request = playing.request(&prompt, 0).unwrap();
        let (_, outcome) = playing.intervene(
            request,
            Some(step.reason.clone()),
            step.action.clone(),
            "teacher:oracle@1".into(),
        );
        last = Some(outcome);
    }
    let played = Played {
        policy: "oracle@1".into(),
        seed: 0,
        iteration: config.iteration,
        sampling: serde_json::Value::Null,
    };
    playing.record(scenario, played, last.expect("the oracle took a step"))
}

/// Whether `action` is admissible among `admissible`, written as the list admits it; a search
/// fills its hole with words of its own.
fn admissible_as_written(admissible: &[String], action: &str) -> bool {
    let admitted = command::admits(admissible, action).as_deref() == Some(action);
    let entry = command::admitting(admissible, action);
    let filled = match entry.map(|e| command::is_template(e)) {
        Some(true) => {
            let fill = &action["search[".len()..action.len() - 1];
            action.starts_with("search[") && !fill.trim().is_empty() && fill != command::HOLE
        }
        Some(false) => admissible.iter().any(|a| a == action),
        None => false,
    };
    admitted && filled
}

/// Everything the student had read before acting at step `idx`: the task, the first page and
/// every page its earlier steps led to.
fn read_before(s: &Scenario, record: &EpisodeRecord, idx: usize) -> String {
    let start = env_for(s, None).observation().to_string();
    let mut read = format!("{}\n{start}", s.task);
    for step in &record.steps[..idx] {
        read.push('\n');
        read.push_str(&step.observation);
    }
    read.to_lowercase()
}

#[test]
fn the_tiny_model_shops_under_the_grammar_and_a_purchase_stores_its_reward() {
    let scenarios = common::shipped_scenarios("shop", "test", 3);
    let (played_by_model, bought) = scenarios.split_at(2);
    let run = played(played_by_model, &bought[0]);
    let store = Store::open_existing(run.path()).unwrap();
    let stored = common::rollout_episodes(&store, LABEL);
    assert_eq!(stored.len(), 3);

    let mut searches = 0;
    let mut clicks = 0;
    for e in &stored {
        let steps = &e.record.steps;
        assert!(!steps.is_empty(), "{}", e.record.key);
        for (i, step) in steps.iter().enumerate() {
            let at = format!("{} step {i}", e.record.key);
            assert!(step.valid, "{at}: {:?}", step.action);
            assert!(
                admissible_as_written(&step.admissible, &step.action),
                "{at}: {:?} among {:?}",
                step.action,
                step.admissible
            );
            if step.admissible == ["search[...]"] {
                searches += 1;
            } else {
                assert!(step.action.starts_with("click["), "{at}: {:?}", step.action);
                clicks += 1;
            }
            // The shop's prompt: its instructions, the page and its actions; no household words.
            assert!(step.prompt.contains("search[...] means you write"), "{at}");
            assert!(step.prompt.contains("Page:\n"), "{at}");
            assert!(!step.prompt.contains("text world"), "{at}: {}", step.prompt);
            assert!(!step.prompt.contains("go to"), "{at}: {}", step.prompt);
        }
        assert!(
            steps[0].prompt.contains("[button] Search [button_]"),
            "{}",
            steps[0].prompt
        );
    }
    // Every episode opens on the search page; the tiny model leaves it for the results page.
    assert!(
        searches >= 3 && clicks >= 2,
        "{searches} searches, {clicks} clicks"
    );

    // The model's episodes end at the horizon without a purchase: nothing to report but 0.
    for e in &stored[..2] {
        assert_eq!(e.record.steps.len(), HORIZON as usize);
        assert!(e.record.steps.iter().all(|s| s.info.is_none() || s.done));
    }
    // The oracle's purchase: its last step is Buy Now and stores the reward breakdown.
    let purchase = &stored[2].record;
    assert!(purchase.won && purchase.reward == 1.0, "{purchase:?}");
    let (last, before) = purchase.steps.split_last().unwrap();
    assert_eq!(last.action, "click[buy now]");
    assert!(before.iter().all(|s| s.info.is_none()));
    let info = last
        .info
        .as_ref()
        .expect("Buy Now reports the reward breakdown");
    assert_eq!(info["total"].as_f64(), Some(last.reward));
    for part in ["r_type", "r_att", "r_option", "r_price"] {
        assert!(info.get(part).is_some(), "{part} in {info}");
    }
    assert_eq!(info["r_type"].as_f64(), Some(1.0));
    assert_eq!(info["r_price"].as_bool(), Some(true));
    assert!(
        purchase
            .steps
            .iter()
            .all(|s| s.intervention.as_deref() == Some("teacher:oracle@1"))
    );
}

#[test]
fn teachers_correct_shop_episodes_and_a_dataset_is_built_from_them() {
    let scenarios = common::shipped_scenarios("shop", "test", 3);
    let (played_by_model, bought) = scenarios.split_at(2);
    let run = played(played_by_model, &bought[0]);
    let mut store = Store::open_existing(run.path()).unwrap();
    let stored = common::rollout_episodes(&store, LABEL);
    let scenario_of = |e: &leap::store::Episode| {
        scenarios
            .iter()
            .find(|s| s.id == e.record.scenario_id)
            .unwrap()
    };

    // The oracle corrects every step; its reasons never name the gold product unseen.
    let mut oracle = TeacherSpec::Oracle {
        draw: Default::default(),
        privilege: 1.0,
        seed: 0,
    }
    .build()
    .unwrap();
    for e in &stored {
        let report = correct_and_store(&mut store, scenario_of(e), e.id, oracle.as_mut()).unwrap();
        assert_eq!(report.labels as usize, e.record.steps.len(), "{report:?}");
        assert_eq!((report.failures, report.leaks), (0, 0), "{report:?}");
    }
    let by = |teacher: &str, store: &Store| -> Vec<Label> {
        let all = store.labels(&LabelFilter::default()).unwrap();
        all.into_iter()
            .filter(|l| l.teacher.starts_with(teacher))
            .collect()
    };
    let oracle_labels = by("oracle", &store);
    let steps: usize = stored.iter().map(|e| e.record.steps.len()).sum();
    assert_eq!(oracle_labels.len(), steps);
    let (mut unseen, mut named_once_seen) = (0, 0);
    for l in &oracle_labels {
        let e = stored.iter().find(|e| e.id == l.episode_id).unwrap();
        let s = scenario_of(e);
        check_label(l, e);
        let asin = gold_asin(s).to_lowercase();
        let read = read_before(s, &e.record, l.idx as usize);
        let named = l.teacher_reason.to_lowercase().contains(&asin);
        if read.contains(&asin) {
            named_once_seen += usize::from(named);
        } else {
            unseen += 1;
            assert!(
                !named,
                "label {} names {asin} before the pages showed it: {:?}",
                l.id, l.teacher_reason
            );
        }
    }
    // Before the gold product is shown the oracle names none; once shown, it names it.
    assert!(
        unseen > 0 && named_once_seen > 0,
        "{unseen} {named_once_seen}"
    );
    // Where the student is on the search page, the oracle searches with words of its own.
    assert!(
        oracle_labels
            .iter()
            .any(|l| l.idx == 0 && l.teacher_action.starts_with("search["))
    );

    // The self teacher: the tiny model itself, shown the privileged state.
    let mut config = LocalConfig::new(tiny());
    config.ctx_per_slot = 8192;
    let mut teacher = TeacherSpec::Local {
        role: "self".into(),
        config,
        settings: LlmSettings {
            retries: 1,
            parallel: 2,
            sampling: common::short(),
            ..LlmSettings::default()
        },
    }
    .build()
    .unwrap();
    let (mut labels, mut failures) = (0, 0);
    for e in &stored[..2] {
        let report = correct_and_store(&mut store, scenario_of(e), e.id, teacher.as_mut()).unwrap();
        assert!(report.correction_id.is_some());
        labels += report.labels;
        failures += report.failures;
    }
    // Random weights may write no valid answer; what they cannot answer is a recorded failure.
    assert_eq!(
        labels + failures,
        2 * HORIZON,
        "{labels} labels, {failures} failures"
    );
    assert!(
        labels > 0,
        "the grammar makes the tiny model's answers parse"
    );
    let self_labels = by("self:", &store);
    assert_eq!(self_labels.len() as u32, labels);
    for l in &self_labels {
        check_label(l, stored.iter().find(|e| e.id == l.episode_id).unwrap());
    }
    assert_eq!(
        store.correction_failures(&teacher.describe()).unwrap(),
        u64::from(failures)
    );

    // The labels kept, iteration 1's dataset: the oracle's demonstrations on shop train goals
    // and the kept labels of iteration 0's rollout, every row with the shop's prompt.
    let kept: Vec<i64> = oracle_labels.iter().map(|l| l.id).collect();
    let rows = common::dataset_of_kept(&mut store, run.path(), "shop", &kept);
    let source = |r: &leap::dataset::Row| r.meta.as_ref().unwrap().source.clone();
    assert!(rows.iter().any(|r| source(r) == "expert"));
    assert_eq!(
        rows.iter().filter(|r| source(r) == "label").count(),
        oracle_labels.len()
    );
    for r in &rows {
        assert_eq!(r.problem(), None);
        let meta = r.meta.as_ref().unwrap();
        assert!(meta.scenario_id.starts_with("shop-"), "{meta:?}");
        let prompt: String = r.prompt().iter().map(|m| m.content.as_str()).collect();
        assert!(prompt.contains("search[...] means you write"), "{prompt}");
        assert!(prompt.contains("Instruction: "), "{prompt}");
        assert!(!prompt.contains("text world"), "{prompt}");
        let response = &r.response().unwrap().content;
        assert!(
            response.starts_with("REASON: ") && response.contains("\nACTION: "),
            "{response}"
        );
    }
    let kept = store
        .labels(&LabelFilter {
            status: Some(LabelStatus::Accepted),
            ..LabelFilter::default()
        })
        .unwrap();
    assert_eq!(kept.len(), oracle_labels.len());
}

/// A label's action was admissible at its step, as the step's list admits it; a search fills
/// the hole.
fn check_label(l: &Label, e: &leap::store::Episode) {
    let step = &e.record.steps[l.idx as usize];
    assert_eq!(l.admissible, step.admissible, "label {}", l.id);
    assert!(
        admissible_as_written(&l.admissible, &l.teacher_action),
        "label {} ({}): {:?} among {:?}",
        l.id,
        l.teacher,
        l.teacher_action,
        l.admissible
    );
    assert!(!l.teacher_reason.trim().is_empty(), "label {}", l.id);
}

#[test]
fn leap_eval_scores_the_privileged_oracle_100_on_shop_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    for f in common::shipped_files("shop", "test", 3) {
        std::fs::copy(&f, scenarios.join(f.file_name().unwrap())).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_leap"))
        .arg("eval")
        .arg("--run")
        .arg(dir.path().join("run"))
        .arg("--scenarios")
        .arg(&scenarios)
        .arg("--model")
        .arg(tiny())
        .args([
            "--no-baseline",
            "--teacher",
            "oracle",
            "--privilege",
            "1",
            "--horizon",
            "1",
            "--parallel",
            "3",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header = stdout.lines().next().unwrap();
    assert!(header.contains("score [95% normal]"), "{stdout}");
    let oracle = stdout
        .lines()
        .find(|l| l.starts_with("eval-test-oracle@1 "))
        .unwrap_or_else(|| panic!("no oracle row:\n{stdout}"));
    let cells: Vec<&str> = oracle.split_whitespace().collect();
    assert_eq!(cells[1], "3", "{oracle}");
    assert_eq!(cells[2], "100.0%", "{oracle}");
    assert!(oracle.contains("  100.0 [100.0–100.0]"), "{oracle}");
    // The student's row has a score too (the tiny model buys nothing in one step).
    let student = stdout
        .lines()
        .find(|l| l.starts_with("eval-test-"))
        .unwrap();
    assert!(student.contains("0.0 ["), "{stdout}");

    // The run keeps the shop episodes the table was computed from.
    let store = Store::open_existing(dir.path().join("run")).unwrap();
    let eval = store.evaluation("eval-test-oracle@1").unwrap().unwrap();
    assert_eq!(
        eval.summary["episodes"].as_u64(),
        Some(3),
        "{}",
        eval.summary
    );
}
