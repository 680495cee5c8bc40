//! The LLM teacher on real llama.cpp: the self teacher (the student's own model, shown the
//! privileged state) on the tiny random-weight model and on SmolLM2-135M. Its answers always
//! parse into admissible corrections, and what it cannot answer is recorded as a failure.

mod common;
use common::default_model;

use std::path::{Path, PathBuf};

use leap::agent::local::LocalConfig;
use leap::scenario::{self, Scenario, Split};
use leap::store::{EpisodeFilter, LabelFilter, Order, Store};
use leap::teacher::llm::{LlmSettings, TeacherMode};
use leap::teacher::{TeacherSpec, correct_and_store};

fn test_scenarios(n: usize) -> Vec<Scenario> {
    let all = scenario::load_all(&[PathBuf::from("scenarios/household")]).unwrap();
    all.into_iter()
        .filter(|s| s.split == Split::Test)
        .take(n)
        .collect()
}

/// Plays `scenarios` with `model` for `horizon` steps into a fresh run; returns the run folder.
fn played(model: &Path, scenarios: &[Scenario], horizon: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = common::rollout_config("t", horizon);
    common::play(model, 2048, dir.path(), scenarios, &config);
    dir
}

/// Corrects every episode of the run with the self teacher over `model`; returns (steps,
/// labels, failures).
fn self_correct(dir: &Path, model: &Path, scenarios: &[Scenario]) -> (u64, u64, u64) {
    correct_with(dir, model, scenarios, TeacherMode::Step)
}

/// [`self_correct`] in `mode`.
fn correct_with(
    dir: &Path,
    model: &Path,
    scenarios: &[Scenario],
    mode: TeacherMode,
) -> (u64, u64, u64) {
    let mut config = LocalConfig::new(model);
    // A trajectory prompt holds every step and its commands.
    config.ctx_per_slot = 4096;
    let spec = TeacherSpec::Local {
        role: "self".into(),
        config,
        settings: LlmSettings {
            retries: 1,
            parallel: if mode == TeacherMode::Step { 4 } else { 1 },
            mode,
            ..LlmSettings::default()
        },
    };
    let mut teacher = spec.build().unwrap();
    let mut store = Store::open_existing(dir).unwrap();
    let (mut steps, mut labels, mut failures) = (0, 0, 0);
    let episodes = store
        .list_episodes(&EpisodeFilter {
            order: Order::ById,
            ..EpisodeFilter::default()
        })
        .unwrap();
    for e in episodes {
        let s = scenarios.iter().find(|s| s.id == e.scenario_id).unwrap();
        let report = correct_and_store(&mut store, s, e.id, teacher.as_mut()).unwrap();
        assert!(report.correction_id.is_some());
        steps += u64::from(report.steps);
        labels += u64::from(report.labels);
        failures += u64::from(report.failures);
    }
    // Every stored label names an action that was admissible at its step.
    for l in store.labels(&LabelFilter::default()).unwrap() {
        assert!(l.admissible.contains(&l.teacher_action), "{l:?}");
        assert!(!l.teacher_reason.trim().is_empty());
        assert!(l.teacher.starts_with("self:"), "{}", l.teacher);
    }
    assert_eq!(
        store.correction_failures(&teacher.describe()).unwrap(),
        failures
    );
    (steps, labels, failures)
}

#[test]
fn the_self_teacher_on_the_tiny_model_parses_or_records_failures() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.gguf");
    leap::model::write_tiny(&default_model(), &tiny, &leap::model::TinySpec::default()).unwrap();
    let scenarios = test_scenarios(2);
    let run = played(&tiny, &scenarios, 4);
    let (steps, labels, failures) = self_correct(run.path(), &tiny, &scenarios);
    assert_eq!(steps, 8);
    // Random weights write poor reasons; whatever is not a valid answer is a recorded failure.
    assert_eq!(
        labels + failures,
        steps,
        "labels {labels}, failures {failures}"
    );
}

#[test]
fn the_self_teacher_on_smollm2_answers_every_step() {
    let model = default_model();
    let scenarios = test_scenarios(1);
    let run = played(&model, &scenarios, 4);
    let (steps, labels, failures) = self_correct(run.path(), &model, &scenarios);
    assert_eq!(steps, 4);
    assert_eq!(labels + failures, steps);
    assert!(labels >= 3, "labels {labels}, failures {failures}");
}

#[test]
fn the_trajectory_teacher_on_the_tiny_model_stores_the_papers_fields_or_failures() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.gguf");
    leap::model::write_tiny(&default_model(), &tiny, &leap::model::TinySpec::default()).unwrap();
    let scenarios = test_scenarios(2);
    let run = played(&tiny, &scenarios, 3);
    let (steps, labels, failures) =
        correct_with(run.path(), &tiny, &scenarios, TeacherMode::Trajectory);
    assert_eq!(steps, 6);
    assert_eq!(
        labels + failures,
        steps,
        "labels {labels}, failures {failures}"
    );
    // Under the grammar even random weights write the paper's JSON, one entry per step.
    assert_eq!(labels, steps, "labels {labels}, failures {failures}");
}

#[test]
fn the_trajectory_teacher_on_smollm2_answers_in_the_papers_json() {
    let model = default_model();
    let scenarios = test_scenarios(1);
    let run = played(&model, &scenarios, 3);
    let (steps, labels, failures) =
        correct_with(run.path(), &model, &scenarios, TeacherMode::Trajectory);
    assert_eq!(steps, 3);
    assert_eq!(labels, steps, "labels {labels}, failures {failures}");
    let store = Store::open_existing(run.path()).unwrap();
    let summaries = store.correction_summaries().unwrap();
    let (_, teacher, summary) = &summaries[0];
    assert!(teacher.ends_with("[trajectory]"), "{teacher}");
    assert!(
        !summary["summary"].as_str().unwrap().trim().is_empty(),
        "{summary}"
    );
}
