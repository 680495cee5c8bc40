//! The live session behind the workbench's Episode screen, on the tiny model: it streams
//! tokens, steps, stores each finished episode under the next free `tui/<scenario>/<n>` key in
//! one transaction, and survives a bad model by keeping the student it has.

mod common;
mod tui_fixture;

use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use leap::agent::prompt::Prompt;
use leap::session::{Command, Session, SessionConfig, SessionEvent, Student};
use leap::store::Store;

fn next(rx: &Receiver<SessionEvent>) -> SessionEvent {
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the session reports within two minutes")
}

/// Events until (and including) the first one `stop` accepts.
fn until(rx: &Receiver<SessionEvent>, stop: impl Fn(&SessionEvent) -> bool) -> Vec<SessionEvent> {
    let mut seen = Vec::new();
    loop {
        let e = next(rx);
        let done = stop(&e);
        seen.push(e);
        if done {
            return seen;
        }
    }
}

#[test]
fn a_session_steps_streams_and_stores_each_episode_under_the_next_key() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.gguf");
    leap::model::write_tiny(
        &common::default_model(),
        &tiny,
        &leap::model::TinySpec::default(),
    )
    .unwrap();
    let run = dir.path().join("run");
    let catalog = tui_fixture::showcase();
    let scenario = catalog.scenarios[0].clone();

    let (tx, rx) = channel();
    let session = Session::spawn(
        run.clone(),
        Prompt::builtin(8),
        SessionConfig {
            horizon: Some(2),
            ..SessionConfig::default()
        },
        Box::new(move |e| {
            let _ = tx.send(e);
        }),
    );

    // Stepping before anything is loaded is an error, not a crash.
    session.send(Command::Step);
    let events = until(&rx, |e| matches!(e, SessionEvent::Idle));
    assert!(
        matches!(&events[0], SessionEvent::Error { message } if message.contains("no episode")),
        "{events:?}"
    );

    session.send(Command::Load(Student::Local(
        leap::agent::local::LocalConfig::new(&tiny),
    )));
    let events = until(&rx, |e| {
        matches!(e, SessionEvent::Loaded { .. } | SessionEvent::Error { .. })
    });
    assert!(
        matches!(events.last(), Some(SessionEvent::Loaded { .. })),
        "{events:?}"
    );

    for n in 0..2 {
        session.send(Command::Reset {
            scenario: Box::new(scenario.clone()),
            seed: n,
        });
        let started = next(&rx);
        assert!(
            matches!(&started, SessionEvent::Started { horizon: 2, .. }),
            "{started:?}"
        );
        session.send(Command::Step);
        let events = until(&rx, |e| matches!(e, SessionEvent::Idle));
        let streamed: String = events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Token { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        let step = events
            .iter()
            .find_map(|e| match e {
                SessionEvent::StepFinished { index: 0, step } => Some(step.clone()),
                _ => None,
            })
            .expect("step 0 finished");
        assert_eq!(streamed, step.raw_output, "the tokens make up the output");
        assert!(step.valid, "the grammar keeps the action admissible");

        session.send(Command::Run);
        let events = until(&rx, |e| matches!(e, SessionEvent::Idle));
        let finished = events
            .iter()
            .find_map(|e| match e {
                SessionEvent::Finished {
                    episode_id,
                    key,
                    steps,
                    ..
                } => Some((*episode_id, key.clone(), *steps)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("the episode finished: {events:?}"));
        assert_eq!(finished.1, format!("tui/{}/{n}", scenario.id));
        assert_eq!(finished.2, 2);
        let store = Store::open_existing(&run).unwrap();
        let stored = store.episode(finished.0).unwrap().unwrap();
        assert_eq!(stored.record.steps.len(), 2);
        assert_eq!(stored.record.steps[0], *step);
        assert!(!stored.record.steps[0].messages.is_empty());

        // Over is over: another step is refused until a reset.
        session.send(Command::Step);
        let events = until(&rx, |e| matches!(e, SessionEvent::Idle));
        assert!(
            events
                .iter()
                .any(|e| matches!(e, SessionEvent::Error { message } if message.contains("over"))),
            "{events:?}"
        );
    }

    // A broken model is reported and the loaded student stays.
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"not a model").unwrap();
    session.send(Command::Load(Student::Local(
        leap::agent::local::LocalConfig::new(&bad),
    )));
    let events = until(&rx, |e| {
        matches!(e, SessionEvent::Loaded { .. } | SessionEvent::Error { .. })
    });
    assert!(
        matches!(events.last(), Some(SessionEvent::Error { message }) if message.contains("bad.gguf")),
        "{events:?}"
    );
    session.send(Command::Reset {
        scenario: Box::new(scenario.clone()),
        seed: 9,
    });
    next(&rx);
    session.send(Command::Step);
    let events = until(&rx, |e| matches!(e, SessionEvent::Idle));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SessionEvent::StepFinished { .. })),
        "{events:?}"
    );
    session.shutdown();
}
