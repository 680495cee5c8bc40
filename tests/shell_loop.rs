//! The shell through the generic workflows on real parts: the tiny random-weight model writes
//! shell commands under the one-line grammar, which run in the real sandbox over a real copy of
//! an InterCode file system; the episodes are scored as InterCode scores them; the oracle
//! corrects the episodes at or below LEAP's 0.7, the self teacher corrects too, and a dataset is
//! built from the expert's demonstrations and the kept labels.

mod common;

use std::path::Path;

use leap::agent::local::LocalConfig;
use leap::correct::{CorrectOptions, correct_episodes};
use leap::env::command;
use leap::store::{EpisodeFilter, LabelFilter, Store};
use leap::teacher::TeacherSpec;
use leap::teacher::llm::LlmSettings;

/// Steps of the tiny model's episodes.
const HORIZON: u32 = 3;
const LABEL: &str = "shell";

fn tiny() -> &'static Path {
    common::shared_tiny("leap-shell-loop")
}

#[test]
fn the_tiny_model_runs_shell_commands_which_are_scored_corrected_and_kept() {
    let scenarios = common::shipped_scenarios("shell", "test", 2);
    let run = tempfile::tempdir().unwrap();
    let rollout_config = leap::rollout::RolloutConfig {
        sampling: common::short(),
        ..common::rollout_config(LABEL, HORIZON)
    };
    let summary = common::play(tiny(), 4096, run.path(), &scenarios, &rollout_config);
    assert_eq!(summary.episodes, 2);
    assert_eq!(summary.invalid_action_rate, 0.0, "{summary:?}");

    let mut store = Store::open_existing(run.path()).unwrap();
    let stored = common::rollout_episodes(&store, LABEL);
    assert_eq!(stored.len(), 2);
    for e in &stored {
        let steps = &e.record.steps;
        assert_eq!(steps.len(), HORIZON as usize, "{}", e.record.key);
        for (i, step) in steps.iter().enumerate() {
            let at = format!("{} step {i}", e.record.key);
            // Free text: the one hole, filled with one line of the model's own.
            assert_eq!(step.admissible, [command::HOLE], "{at}");
            assert!(step.valid, "{at}: {:?}", step.action);
            assert!(
                !step.action.trim().is_empty() && !step.action.contains('\n'),
                "{at}: {:?}",
                step.action
            );
            // The shell's prompt: the request; no household or shop words.
            let task = &scenarios
                .iter()
                .find(|s| s.id == e.record.scenario_id)
                .unwrap()
                .task;
            assert!(step.prompt.contains(task.as_str()), "{at}: {}", step.prompt);
            assert!(!step.prompt.contains("text world"), "{at}");
            assert!(!step.prompt.contains("search[...]"), "{at}");
        }
        // The horizon scores the episode as a submission: InterCode's reward, at least its
        // 0.01, with the breakdown stored on the last step.
        let last = steps.last().unwrap();
        let info = last
            .info
            .as_ref()
            .expect("the scored step keeps the breakdown");
        assert!(
            e.record.reward >= 0.01 && e.record.reward <= 1.0,
            "{}",
            e.record.reward
        );
        // The step's reward is the environment's f32; the breakdown keeps InterCode's f64.
        let scored = info["reward"].as_f64().unwrap();
        assert!((scored - e.record.reward).abs() < 1e-6, "{info}");
        for part in ["file_diff", "file_changes", "answer_similarity"] {
            assert!(info.get(part).is_some(), "{part} in {info}");
        }
        assert!(steps[..steps.len() - 1].iter().all(|s| s.info.is_none()));
    }

    // The oracle corrects what LEAP sends it: the episodes at or below 0.7.
    let oracle = TeacherSpec::Oracle {
        draw: Default::default(),
        privilege: 1.0,
        seed: 0,
    };
    let failed = stored.iter().filter(|e| e.record.reward <= 0.7).count();
    let options = CorrectOptions {
        filter: EpisodeFilter::prefix(format!("rollout/{LABEL}/")),
        failed_only: true,
        max_reward: None,
    };
    let report = correct_episodes(&mut store, &oracle, &options, &mut |_, _| {}).unwrap();
    assert_eq!(report.episodes as usize, failed, "{report:?}");
    assert_eq!((report.failures, report.leaks), (0, 0), "{report:?}");
    let labels = store.labels(&LabelFilter::default()).unwrap();
    let steps: usize = stored
        .iter()
        .filter(|e| e.record.reward <= 0.7)
        .map(|e| e.record.steps.len())
        .sum();
    assert_eq!(labels.len(), steps);
    for l in &labels {
        let e = stored.iter().find(|e| e.id == l.episode_id).unwrap();
        let s = scenarios
            .iter()
            .find(|s| s.id == e.record.scenario_id)
            .unwrap();
        let hidden = s.body.privileged(s.horizon);
        let gold = &hidden
            .facts
            .iter()
            .find(|f| f.subject == "gold command")
            .expect("the shell's privileged state names the gold command")
            .detail;
        // The privileged oracle runs the gold command, then submits.
        assert!(
            l.teacher_action == *gold || l.teacher_action == "submit",
            "label {}: {:?} (gold {gold:?})",
            l.id,
            l.teacher_action
        );
        assert!(!l.teacher_reason.trim().is_empty());
    }

    // The self teacher: the tiny model with the gold command and its output in its prompt.
    let mut config = LocalConfig::new(tiny());
    config.ctx_per_slot = 8192;
    let self_teacher = TeacherSpec::Local {
        role: "self".into(),
        config,
        settings: LlmSettings {
            retries: 1,
            parallel: 2,
            sampling: common::short(),
            ..LlmSettings::default()
        },
    };
    let report = correct_episodes(&mut store, &self_teacher, &options, &mut |_, _| {}).unwrap();
    assert_eq!(report.episodes as usize, failed);
    assert_eq!(
        report.labels + report.failures,
        steps as u64,
        "every step labelled or its failure recorded: {report:?}"
    );

    // Kept labels and the expert's demonstrations on shell train tasks make a dataset.
    let oracle_labels: Vec<_> = labels
        .iter()
        .filter(|l| l.teacher.starts_with("oracle"))
        .collect();
    let kept: Vec<i64> = oracle_labels.iter().map(|l| l.id).collect();
    let rows = common::dataset_of_kept(&mut store, run.path(), "shell", &kept);
    for r in &rows {
        assert_eq!(r.problem(), None);
        let meta = r.meta.as_ref().unwrap();
        assert!(meta.scenario_id.starts_with("intercode-"), "{meta:?}");
        let response = &r.response().unwrap().content;
        assert!(
            response.starts_with("REASON: ") && response.contains("\nACTION: "),
            "{response}"
        );
    }
}
