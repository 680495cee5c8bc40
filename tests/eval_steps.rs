//! Teacher-forced step agreement (`leap eval --stepwise`): the policy answers once in every
//! state of the oracle's demonstrations, and each answer is counted against the oracle's moves.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::default_model;
use leap::agent::local::{LocalConfig, LocalPolicy};
use leap::agent::parse::format;
use leap::agent::prompt::Prompt;
use leap::agent::{Policy, PolicyError, Request, Response, Sampling};
use leap::eval::step_agreement;
use leap::scenario::{self, Scenario, Split};
use leap::teacher::oracle::OracleTeacher;

fn test_split() -> Vec<Scenario> {
    let all = scenario::load_all(&[PathBuf::from("scenarios/household")]).unwrap();
    all.into_iter().filter(|s| s.split == Split::Test).collect()
}

/// Answers from a table of prompt → action, else the first admissible command.
struct Scripted {
    answers: HashMap<String, String>,
    calls: usize,
}

impl Policy for Scripted {
    fn describe(&self) -> String {
        "scripted".into()
    }

    fn respond(
        &mut self,
        requests: &[Request],
        _sampling: &Sampling,
        _on_token: &mut dyn FnMut(usize, &str),
    ) -> Result<Vec<Response>, PolicyError> {
        self.calls += 1;
        let seqs: std::collections::HashSet<usize> = requests.iter().map(|r| r.seq).collect();
        assert_eq!(
            seqs.len(),
            requests.len(),
            "one request per sequence in a call"
        );
        Ok(requests
            .iter()
            .map(|r| {
                let key = r.messages.last().unwrap().content.clone();
                let action = self
                    .answers
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| r.admissible[0].clone());
                Response {
                    text: format("because", &action),
                    ..Response::default()
                }
            })
            .collect())
    }
}

#[test]
fn answers_are_counted_against_the_oracles_moves_in_every_demonstration_state() {
    let scenarios: Vec<Scenario> = test_split().into_iter().step_by(6).collect();
    let prompt = Prompt::builtin(8);
    let privilege = 0.5;
    let oracle = OracleTeacher::new(privilege, 0);
    let demos: Vec<_> = scenarios
        .iter()
        .map(|s| oracle.demonstrate(s, &format!("expert/{}", s.id), true))
        .collect();
    let n_steps: usize = demos.iter().map(|d| d.steps.len()).sum();
    assert!(
        demos.iter().all(|d| d.won),
        "the oracle wins the test split"
    );

    // A policy that plays the demonstration agrees everywhere.
    let mut answers = HashMap::new();
    for d in &demos {
        for (messages, step) in d.prompts(&prompt).unwrap().into_iter().zip(&d.steps) {
            answers.insert(
                messages.last().unwrap().content.clone(),
                step.action.clone(),
            );
        }
    }
    let mut perfect = Scripted { answers, calls: 0 };
    let report = step_agreement(
        &mut perfect,
        &prompt,
        &scenarios,
        privilege,
        4,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(report.steps as usize, n_steps);
    assert_eq!(
        (report.same, report.good, report.invalid),
        (report.steps, report.steps, 0)
    );
    assert!((report.mean_demo_steps - n_steps as f64 / scenarios.len() as f64).abs() < 1e-9);
    // 10 scenarios in groups of 4: one call per step of each group's longest demonstration.
    let calls: usize = demos
        .chunks(4)
        .map(|g| g.iter().map(|d| d.steps.len()).max().unwrap())
        .sum();
    assert_eq!(perfect.calls, calls);

    // The first admissible command is good exactly where the oracle would give it.
    let mut first = Scripted {
        answers: HashMap::new(),
        calls: 0,
    };
    let report = step_agreement(
        &mut first,
        &prompt,
        &scenarios,
        privilege,
        3,
        &mut |_, _| {},
    )
    .unwrap();
    let expected_good = demos
        .iter()
        .flat_map(|d| &d.steps)
        .filter(|s| s.good_actions.contains(&s.admissible[0]))
        .count();
    let expected_same = demos
        .iter()
        .flat_map(|d| &d.steps)
        .filter(|s| s.action == s.admissible[0])
        .count();
    assert_eq!(report.good as usize, expected_good);
    assert_eq!(report.same as usize, expected_same);
    assert!(report.good < report.steps, "{report:?}");
    let by_verb: u64 = report.by_verb.values().map(|v| v.steps).sum();
    assert_eq!(by_verb, report.steps);
    assert!(report.by_verb.contains_key("take") && report.by_verb.contains_key("go"));
}

#[test]
fn smollm2_answers_every_demonstration_state_with_an_admissible_command() {
    let scenarios: Vec<Scenario> = test_split().into_iter().step_by(30).collect();
    let prompt = Prompt::builtin(8);
    let mut config = LocalConfig::new(default_model());
    config.slots = 2;
    let mut policy = LocalPolicy::load(&config).unwrap();
    let mut seen = Vec::new();
    let report = step_agreement(
        &mut policy,
        &prompt,
        &scenarios,
        0.5,
        2,
        &mut |done, total| seen.push((done, total)),
    )
    .unwrap();
    assert_eq!(report.scenarios, 2);
    assert_eq!(seen.last(), Some(&(report.steps, report.steps)));
    assert_eq!(
        report.invalid, 0,
        "the grammar admits only admissible commands"
    );
    assert!(report.same <= report.good && report.good <= report.steps);
    assert!(report.policy.starts_with("SmolLM2-135M-Instruct"));
}
