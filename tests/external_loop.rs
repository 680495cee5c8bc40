//! External environments through the generic workflows on real parts: leap starts the real
//! ScienceWorld and TextWorld adapters (`assets/envs/`, openenv-core servers on 127.0.0.1), the
//! tiny random-weight model plays an episode of each under the grammar of the commands the
//! engine admits, the oracle corrects every step from the environment's own expert, and the
//! run's SQLite database shows that no privileged fact entered a student prompt. An environment
//! without an expert (the protocol tests' counter, told to have none) is corrected by the self
//! teacher, and by the oracle not at all.

mod common;

use std::path::Path;

use leap::agent::local::LocalConfig;
use leap::correct::{CorrectOptions, correct_episodes};
use leap::env::command;
use leap::scenario::Scenario;
use leap::store::{EpisodeFilter, LabelFilter, Store};
use leap::teacher::TeacherSpec;
use leap::teacher::llm::LlmSettings;

const HORIZON: u32 = 3;
const LABEL: &str = "external";

/// The first test scenario of the shipped set `file` (`scenarios/external/<file>`).
fn first_test(file: &str) -> Scenario {
    let all = leap::scenario::load_all(&[Path::new("scenarios/external").join(file)]).unwrap();
    all.into_iter()
        .find(|s| s.split == leap::scenario::Split::Test)
        .expect("a test scenario")
}

#[test]
fn the_tiny_model_plays_scienceworld_and_textworld_and_the_oracle_corrects_from_their_experts() {
    let scenarios = vec![
        first_test("scienceworld.yaml"),
        first_test("textworld.yaml"),
    ];
    assert!(scenarios.iter().all(|s| s.kind().as_str() == "external"));
    let run = tempfile::tempdir().unwrap();
    let tiny = common::shared_tiny("leap-external-loop");
    let config = leap::rollout::RolloutConfig {
        sampling: common::short(),
        ..common::rollout_config(LABEL, HORIZON)
    };
    let summary = common::play(tiny, 8192, run.path(), &scenarios, &config);
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
            // Both engines list what they admit; the grammar keeps the model to it.
            assert!(step.admissible.len() > 1, "{at}: {:?}", step.admissible);
            assert!(!step.admissible.iter().any(|a| a == command::HOLE), "{at}");
            assert!(
                step.valid && step.admissible.contains(&step.action),
                "{at}: {:?}",
                step.action
            );
            assert!(
                !step.observation.starts_with("leap:"),
                "{at}: {}",
                step.observation
            );
            assert!(step.prompt.contains("Task: "), "{at}");
        }
    }

    // The oracle at privilege 1 corrects every step with the environment's expert.
    let oracle = TeacherSpec::Oracle {
        draw: Default::default(),
        privilege: 1.0,
        seed: 0,
    };
    let options = CorrectOptions {
        filter: EpisodeFilter::prefix(format!("rollout/{LABEL}/")),
        failed_only: false,
        max_reward: None,
    };
    let report = correct_episodes(&mut store, &oracle, &options, &mut |_, _| {}).unwrap();
    assert_eq!(report.episodes, 2, "{report:?}");
    assert_eq!(report.failures, 0, "{report:?}");
    assert_eq!(report.labels, 2 * u64::from(HORIZON), "{report:?}");
    let labels = store.labels(&LabelFilter::default()).unwrap();
    for e in &stored {
        let s = scenarios
            .iter()
            .find(|s| s.id == e.record.scenario_id)
            .unwrap();
        let hidden = s.body.privileged(s.horizon);
        assert!(!hidden.facts.is_empty(), "{}: no privileged facts", s.id);
        let plan = hidden
            .plan
            .as_ref()
            .expect("the expert's plan at the start");
        let first = labels
            .iter()
            .find(|l| l.episode_id == e.id && l.idx == 0)
            .expect("step 0 is labelled");
        // At the start the expert's next action is its plan's first.
        assert_eq!(first.teacher_action, plan[0], "{}", s.id);
        assert!(first.teacher_action.len() > 1 && !first.teacher_reason.trim().is_empty());
    }

    // No privileged fact entered a student prompt: every prompt stored in SQLite is free of
    // the facts' values that the student never read in the task, an observation or a command.
    let db = rusqlite::Connection::open(run.path().join("leap.db")).unwrap();
    let mut query = db
        .prepare(
            "SELECT e.scenario_id, s.prompt FROM steps s JOIN episodes e ON e.id = s.episode_id",
        )
        .unwrap();
    let prompts: Vec<(String, String)> = query
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(prompts.len(), 2 * HORIZON as usize);
    let mut checked = 0;
    for s in &scenarios {
        let hidden = s.body.privileged(s.horizon);
        // What the student may read: the task, the observations, the commands offered (a fact
        // such as "next gold action: go to kitchen" names an offered command; which one is next
        // is the secret, and the test cannot tell that from the words).
        let mut observed = s.task.clone();
        for e in stored.iter().filter(|e| e.record.scenario_id == s.id) {
            for st in &e.record.steps {
                observed.push('\n');
                observed.push_str(&st.observation);
                for command in &st.admissible {
                    observed.push('\n');
                    observed.push_str(command);
                }
            }
        }
        for fact in &hidden.facts {
            let value = fact.detail.trim();
            if value.len() < 12 || observed.contains(value) {
                continue;
            }
            for (id, prompt) in prompts.iter().filter(|(id, _)| *id == s.id) {
                assert!(
                    !prompt.contains(value),
                    "{id}: the fact {:?} is in a prompt",
                    fact.subject
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 2 * HORIZON as usize, "facts checked: {checked}");
}

#[test]
fn an_environment_without_an_expert_is_corrected_by_the_self_teacher() {
    let python = leap::env::external::server::adapter_python().expect("run `just deps-external`");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/external/fixture.py");
    let text = format!(
        "kind: external\nid: counter-no-expert\nsplit: train\ntask: Bring the counter to the hidden target.\nhorizon: {HORIZON}\nworld:\n  server: {{command: [{python:?}, {fixture:?}, --port, '{{port}}']}}\n  reset: {{target: 5, expert: false}}\n",
        python = python.display().to_string(),
        fixture = fixture.display().to_string(),
    );
    let scenarios = leap::scenario::parse_text(Path::new("counter.yaml"), &text).scenarios;
    assert_eq!(scenarios.len(), 1);
    assert_eq!(scenarios[0].body.privileged(HORIZON).plan, None);
    let run = tempfile::tempdir().unwrap();
    let tiny = common::shared_tiny("leap-external-loop");
    let config = leap::rollout::RolloutConfig {
        sampling: common::short(),
        ..common::rollout_config("counter", HORIZON)
    };
    let summary = common::play(tiny, 4096, run.path(), &scenarios, &config);
    assert_eq!(
        (summary.episodes, summary.invalid_action_rate),
        (1, 0.0),
        "{summary:?}"
    );
    let mut store = Store::open_existing(run.path()).unwrap();
    let options = CorrectOptions {
        filter: EpisodeFilter::prefix("rollout/counter/"),
        failed_only: false,
        max_reward: None,
    };
    // No expert: the oracle has nothing to say.
    let oracle = TeacherSpec::Oracle {
        draw: Default::default(),
        privilege: 1.0,
        seed: 0,
    };
    let report = correct_episodes(&mut store, &oracle, &options, &mut |_, _| {}).unwrap();
    assert_eq!((report.episodes, report.labels), (1, 0), "{report:?}");
    // The self teacher: the tiny model with the privileged text in its prompt.
    let mut local = LocalConfig::new(tiny);
    local.ctx_per_slot = 4096;
    let self_teacher = TeacherSpec::Local {
        role: "self".into(),
        config: local,
        settings: LlmSettings {
            retries: 1,
            parallel: 1,
            sampling: common::short(),
            ..LlmSettings::default()
        },
    };
    let report = correct_episodes(&mut store, &self_teacher, &options, &mut |_, _| {}).unwrap();
    assert_eq!(report.episodes, 1, "{report:?}");
    assert_eq!(
        report.labels + report.failures,
        u64::from(HORIZON),
        "every step labelled or its failure recorded: {report:?}"
    );
    assert!(report.labels > 0, "{report:?}");
}
