//! The shell's expert on the shipped tasks, in real bash in the sandbox: informed, it wins every
//! task; limited to what it has seen, it explores first and then wins; its reasons never give
//! the gold output away before it is seen, and the leak guard catches a reason that does.
//!
//! The episodes run on two threads; the whole file takes about a minute (see the report).

use std::path::PathBuf;
use std::sync::Mutex;

use leap::env::Privileged;
use leap::env::shell::expert::{self, Layout};
use leap::env::shell::leak::GOLD_OUTPUT;
use leap::env::shell::scenario as shell_scenario;
use leap::scenario::{self, Scenario};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> Vec<Scenario> {
    scenario::load_all(&[root().join("scenarios/shell")]).unwrap_or_else(|p| panic!("{p}"))
}

/// Runs `play` on every scenario on a few threads; the failures it reports, sorted.
fn each(scenarios: &[Scenario], play: impl Fn(&Scenario) -> Option<String> + Sync) -> Vec<String> {
    let failures = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        *n - 1
                    };
                    let Some(s) = scenarios.get(i) else { break };
                    if let Some(f) = play(s) {
                        failures.lock().unwrap().push(f);
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    failures
}

fn none_failed(failures: &[String], total: usize) {
    let n = failures.len();
    assert!(
        n == 0,
        "{n} of {total} tasks failed:\n{}",
        failures.join("\n")
    );
}

/// One episode of the expert at `privileged`, checking every reason with the leak guard: the
/// actions, or what went wrong.
fn play(s: &Scenario, privileged: bool) -> Result<Vec<String>, String> {
    let hidden = s.body.privileged(s.horizon);
    let mut env = s.body.guided(s.horizon);
    let mut observed = env.task().to_string();
    let mut actions = Vec::new();
    while let Some(advice) = env.advise(privileged) {
        let leaks = s.kind().leaks(&advice.reason, &hidden, &observed);
        if !leaks.is_empty() {
            return Err(format!("{}: {:?} leaks {:?}", s.id, advice.reason, leaks));
        }
        let outcome = env.step(&advice.action);
        actions.push(advice.action);
        observed.push('\n');
        observed.push_str(env.observation());
        if outcome.done {
            if outcome.won && outcome.reward == 1.0 {
                return Ok(actions);
            }
            return Err(format!(
                "{}: reward {} after {actions:?} ({:?})",
                s.id,
                outcome.reward,
                env.info()
            ));
        }
    }
    Err(format!("{}: the expert stopped after {actions:?}", s.id))
}

#[test]
fn the_informed_expert_wins_every_shipped_task() {
    let scenarios = shipped();
    assert_eq!(scenarios.len(), 500);
    let failures = each(&scenarios, |s| match play(s, true) {
        Ok(actions) => {
            let gold = &shell_scenario::body(s).unwrap().privileged.gold;
            (actions != [gold.as_str(), expert::SUBMIT])
                .then(|| format!("{}: played {actions:?}", s.id))
        }
        Err(e) => Some(e),
    });
    none_failed(&failures, scenarios.len());
}

#[test]
fn the_observing_expert_explores_then_wins() {
    // Every third task, to keep the test's time in check: all file systems and both sources.
    let scenarios: Vec<Scenario> = shipped().into_iter().step_by(3).collect();
    let explored = Mutex::new(0usize);
    let failures = each(&scenarios, |s| {
        let body = shell_scenario::body(s).unwrap();
        let gold = &body.privileged.gold;
        let plan = expert::explore(&body.task, gold, &Layout::of(body.entries()));
        match play(s, false) {
            Ok(actions) => {
                let looked: Vec<String> = plan.iter().map(|p| p.action.clone()).collect();
                let mut expected = looked.clone();
                expected.push(gold.clone());
                expected.push(expert::SUBMIT.to_string());
                *explored.lock().unwrap() += usize::from(!looked.is_empty());
                (actions != expected)
                    .then(|| format!("{}: played {actions:?}, expected {expected:?}", s.id))
            }
            Err(e) => Some(e),
        }
    });
    none_failed(&failures, scenarios.len());
    let explored = explored.into_inner().unwrap();
    assert!(
        explored * 2 > scenarios.len(),
        "{explored} of {} explored",
        scenarios.len()
    );
}

/// The first distinctive piece of an output that a reason could give away: a number, a hash or
/// a file name not in the request or the command.
fn secret(output: &str, known: &str) -> Option<String> {
    output
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| ",;:()'\"".contains(c)))
        .find(|w| {
            let w = w.to_lowercase();
            !known.to_lowercase().contains(&w)
                && (w.chars().all(|c| c.is_ascii_digit())
                    || (w.len() >= 8 && w.chars().all(|c| c.is_ascii_hexdigit()))
                    || w.rsplit_once('.').is_some_and(|(a, b)| {
                        !a.is_empty() && b.len() <= 4 && b.chars().all(char::is_alphabetic)
                    }))
        })
        .map(str::to_string)
}

#[test]
fn the_leak_guard_catches_planted_output_and_passes_it_once_seen() {
    let scenarios: Vec<Scenario> = shipped().into_iter().step_by(5).collect();
    let planted = Mutex::new(0usize);
    let failures = each(&scenarios, |s| {
        let hidden: Privileged = s.body.privileged(s.horizon);
        let output = hidden
            .facts
            .iter()
            .find(|f| f.subject == GOLD_OUTPUT)?
            .detail
            .clone();
        let gold = &shell_scenario::body(s).unwrap().privileged.gold;
        let piece = secret(&output, &format!("{} {gold}", s.task))?;
        *planted.lock().unwrap() += 1;
        let reason = format!("The answer is {piece}, so print it.");
        let before = s.kind().leaks(&reason, &hidden, &s.task);
        let after = s
            .kind()
            .leaks(&reason, &hidden, &format!("{}\n{output}", s.task));
        if before.is_empty() {
            Some(format!(
                "{}: {reason:?} passed before the output was seen",
                s.id
            ))
        } else if !after.is_empty() {
            Some(format!(
                "{}: {reason:?} flagged after the output was seen: {after:?}",
                s.id
            ))
        } else {
            None
        }
    });
    none_failed(&failures, scenarios.len());
    let planted = planted.into_inner().unwrap();
    assert!(planted >= 40, "{planted} planted");
}

#[test]
fn exploration_is_short_read_only_and_never_the_gold() {
    let mut explored = 0;
    let mut steps = 0;
    let scenarios = shipped();
    for s in &scenarios {
        let body = shell_scenario::body(s).unwrap();
        let gold = &body.privileged.gold;
        let plan = expert::explore(&body.task, gold, &Layout::of(body.entries()));
        assert!(plan.len() <= expert::MAX_EXPLORE, "{}", s.id);
        for step in &plan {
            let first = step.action.split_whitespace().next().unwrap();
            assert!(
                ["ls", "find", "cat", "head"].contains(&first),
                "{}: {}",
                s.id,
                step.action
            );
            assert!(
                !step.action.contains(['>', '|', ';', '&', '"', '$', '`'])
                    && !step.action.contains("-exec")
                    && !step.action.contains("-delete"),
                "{}: {}",
                s.id,
                step.action
            );
            assert_ne!(step.action.trim(), gold.trim(), "{}", s.id);
            assert!(step.reason.starts_with("The request "), "{}", step.reason);
        }
        explored += usize::from(!plan.is_empty());
        steps += plan.len();
    }
    eprintln!(
        "{explored} of {} tasks explore first, {steps} steps in all",
        scenarios.len()
    );
    assert!(explored * 2 > scenarios.len(), "{explored} explore");
}
