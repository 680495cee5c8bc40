//! Debugging an episode while it runs: a real session takes the oracle's action at one step and
//! a typed action at another, finishes, and the run store keeps both as interventions (the
//! student's own steps unmarked); a stored episode branches from a step into a new episode
//! that starts with the same steps and says where it came from.

use std::path::Path;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use leap::agent::prompt::Prompt;
use leap::agent::{Policy, PolicyError, Request, Response, Sampling};
use leap::scenario::{self, Scenario};
use leap::session::{Command, Session, SessionConfig, SessionEvent, Student, partial};
use leap::store::{Branch, StepRecord, Store};
use leap::teacher::Teacher;
use leap::teacher::oracle::OracleTeacher;

/// A student that only ever looks around (or takes the first command where it cannot).
struct Looker;

impl Policy for Looker {
    fn describe(&self) -> String {
        "looker".into()
    }

    fn respond(
        &mut self,
        requests: &[Request],
        _sampling: &Sampling,
        _on_token: &mut dyn FnMut(usize, &str),
    ) -> Result<Vec<Response>, PolicyError> {
        Ok(requests
            .iter()
            .map(|r| {
                let action = if r.admissible.iter().any(|a| a == "look") {
                    "look".to_string()
                } else {
                    r.admissible[0].clone()
                };
                Response {
                    text: leap::agent::parse::format("I look around first.", &action),
                    ..Response::default()
                }
            })
            .collect())
    }
}

fn showcase() -> Vec<Scenario> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("scenarios/showcase.yaml")).unwrap();
    let loaded = scenario::parse_text(Path::new("scenarios/showcase.yaml"), &text);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    loaded.scenarios
}

/// Events until (and including) the next `Idle`.
fn until_idle(rx: &Receiver<SessionEvent>) -> Vec<SessionEvent> {
    let mut seen = Vec::new();
    loop {
        let e = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the session reports");
        let idle = matches!(e, SessionEvent::Idle);
        seen.push(e);
        if idle {
            return seen;
        }
    }
}

fn finished_step(events: &[SessionEvent], index: usize) -> StepRecord {
    events
        .iter()
        .find_map(|e| match e {
            SessionEvent::StepFinished { index: i, step } if *i == index => Some((**step).clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("step {index} finished: {events:?}"))
}

fn finished_id(events: &[SessionEvent]) -> i64 {
    events
        .iter()
        .find_map(|e| match e {
            SessionEvent::Finished { episode_id, .. } => Some(*episode_id),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the episode finished: {events:?}"))
}

fn no_error(events: &[SessionEvent]) {
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, SessionEvent::Error { .. })),
        "{events:?}"
    );
}

#[test]
fn interventions_are_stored_as_such_and_a_stored_episode_branches_from_a_step() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let scenario = showcase().remove(0);
    let (tx, rx) = channel();
    let session = Session::spawn(
        run.clone(),
        Prompt::builtin(8),
        SessionConfig {
            horizon: Some(4),
            ..SessionConfig::default()
        },
        Box::new(move |e| {
            let _ = tx.send(e);
        }),
    );
    session.send(Command::Load(Student::Ready(Box::new(Looker))));
    session.send(Command::Reset {
        scenario: Box::new(scenario.clone()),
        seed: 0,
    });
    session.send(Command::Step);
    let events = until_idle(&rx);
    no_error(&events);
    let student = finished_step(&events, 0);
    assert_eq!(student.action, "look");
    assert_eq!(student.intervention, None);

    // The oracle's answer for the live step, asked before the episode is stored, and taken.
    let mut oracle = OracleTeacher::new(1.0, 0);
    let live = partial(&scenario, 0, std::slice::from_ref(&student));
    let correction = oracle
        .correct_step(&scenario, &live, 0)
        .unwrap()
        .expect("the oracle has an action at the start");
    assert!(correction.is_corrected, "the oracle does not just look");
    session.send(Command::Intervene {
        at: 0,
        reason: Some(correction.corrected_reason.clone()),
        action: correction.corrected_action.clone(),
        by: "teacher:oracle@1".into(),
    });
    let events = until_idle(&rx);
    no_error(&events);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SessionEvent::Replayed { steps } if steps.is_empty())),
        "step 1 is replaced, so nothing before it is kept: {events:?}"
    );
    let taken = finished_step(&events, 0);
    assert_eq!(taken.action, correction.corrected_action);
    assert_eq!(taken.intervention.as_deref(), Some("teacher:oracle@1"));
    assert!(taken.valid);
    assert!(
        !taken.prompt.is_empty(),
        "the prompt the student would have read"
    );

    // The student plays on from the oracle's state.
    session.send(Command::Step);
    let events = until_idle(&rx);
    no_error(&events);
    assert_eq!(finished_step(&events, 1).intervention, None);

    // A typed action must be admissible; one that is is taken.
    session.send(Command::Intervene {
        at: 2,
        reason: None,
        action: "fly to the moon".into(),
        by: "researcher:tester@workbench".into(),
    });
    let events = until_idle(&rx);
    assert!(
        events.iter().any(
            |e| matches!(e, SessionEvent::Error { message } if message.contains("not one of the admissible"))
        ),
        "{events:?}"
    );
    session.send(Command::Intervene {
        at: 2,
        reason: Some(String::new()),
        action: "inventory".into(),
        by: "researcher:tester@workbench".into(),
    });
    let events = until_idle(&rx);
    no_error(&events);
    let typed = finished_step(&events, 2);
    assert_eq!(typed.action, "inventory");
    assert_eq!(typed.reason, None, "an empty reason is no reason");
    assert_eq!(
        typed.intervention.as_deref(),
        Some("researcher:tester@workbench")
    );

    session.send(Command::Run);
    let events = until_idle(&rx);
    no_error(&events);
    let first = finished_id(&events);

    let store = Store::open_existing(&run).unwrap();
    let stored = store.episode(first).unwrap().unwrap().record;
    let marks: Vec<Option<&str>> = stored
        .steps
        .iter()
        .map(|s| s.intervention.as_deref())
        .collect();
    assert_eq!(
        marks,
        [
            Some("teacher:oracle@1"),
            None,
            Some("researcher:tester@workbench"),
            None
        ]
    );
    assert_eq!(stored.steps[0].action, correction.corrected_action);
    assert_eq!(stored.steps[2].action, "inventory");
    assert_eq!(stored.steps[3].action, "look");
    assert_eq!(stored.branch, None);

    // A branch of the stored episode at step 3: its first two steps are the original's, marks
    // included, and the student plays on.
    session.send(Command::Branch {
        episode: first,
        at: 2,
    });
    let events = until_idle(&rx);
    no_error(&events);
    let branch = Branch { from: first, at: 2 };
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SessionEvent::Started { branch: Some(b), .. } if *b == branch)),
        "{events:?}"
    );
    session.send(Command::Run);
    let events = until_idle(&rx);
    no_error(&events);
    let second = finished_id(&events);
    drop(store);
    let store = Store::open_existing(&run).unwrap();
    let branched = store.episode(second).unwrap().unwrap().record;
    assert_eq!(branched.branch, Some(branch));
    assert_eq!(branched.steps.len(), 4);
    assert_eq!(branched.steps[..2], stored.steps[..2]);
    assert_eq!(branched.steps[2].intervention, None, "the student's own");
    assert_eq!(branched.steps[2].action, "look");

    // Taking an action on an episode that is over branches it there.
    session.send(Command::Intervene {
        at: 1,
        reason: Some("I check what I carry.".into()),
        action: "inventory".into(),
        by: "researcher:tester@workbench".into(),
    });
    let events = until_idle(&rx);
    no_error(&events);
    session.send(Command::Run);
    let events = until_idle(&rx);
    no_error(&events);
    let third = finished_id(&events);
    let again = store.episode(third).unwrap().unwrap().record;
    assert_eq!(
        again.branch,
        Some(Branch {
            from: second,
            at: 1
        })
    );
    assert_eq!(again.steps[0], branched.steps[0]);
    assert_eq!(
        again.steps[1].intervention.as_deref(),
        Some("researcher:tester@workbench")
    );
    assert_eq!(again.key, format!("tui/{}/2", scenario.id));
    session.shutdown();

    // `leap episodes show` says so.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leap"))
        .args(["episodes", "show", "--run"])
        .arg(&run)
        .arg(third.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "branch of episode {second} at step 2: its first step copied from it"
        )),
        "{text}"
    );
    assert!(
        text.contains("── step 2 ── intervention by researcher:tester@workbench"),
        "{text}"
    );
    assert!(
        text.contains("── step 1 ── intervention by teacher:oracle@1"),
        "the copied step keeps its mark: {text}"
    );
    assert!(text.contains("── step 3 ──\n"), "the student's own: {text}");
}

/// The oracle answers one step of an unfinished episode as it would in the whole episode.
#[test]
fn the_oracle_answers_a_live_step_as_it_corrects_the_whole_episode() {
    let scenario = showcase().remove(1);
    let mut env = scenario.body.env(scenario.horizon);
    let mut steps = Vec::new();
    for i in 0..8 {
        let admissible = env.admissible();
        let action = admissible[(i * 7) % admissible.len()].clone();
        let outcome = env.step(&action);
        steps.push(StepRecord::scripted(
            "I wander.".into(),
            action,
            env.observation().to_string(),
            f64::from(outcome.reward),
            outcome.done,
            admissible,
        ));
        if outcome.done {
            break;
        }
    }
    let whole = partial(&scenario, 0, &steps);
    for privilege in [0.0, 0.5, 1.0] {
        let mut oracle = OracleTeacher::new(privilege, 3);
        let corrections = oracle.correct(&scenario, &whole).unwrap();
        for (i, expected) in corrections.trajectory.iter().enumerate() {
            let live = partial(&scenario, 0, &steps[..=i]);
            let answer = oracle.correct_step(&scenario, &live, i).unwrap();
            assert_eq!(
                answer.as_ref(),
                Some(expected),
                "privilege {privilege}, step {i}"
            );
        }
    }
}
