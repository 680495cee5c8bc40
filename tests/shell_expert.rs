//! The shell's expert on the shipped tasks, in real bash in the sandbox: informed, it wins every
//! task; limited to what it has seen, it explores first and then wins; its reasons never give
//! the gold output away before it is seen, and the leak guard catches a reason that does.
//!
//! The scenarios are loaded once for the whole file, so each task's gold output is computed
//! once; episodes run on two threads per test.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use leap::env::Privileged;
use leap::env::shell::expert::{self, Layout};
use leap::env::shell::leak::GOLD_OUTPUT;
use leap::env::shell::scenario as shell_scenario;
use leap::scenario::{self, Scenario};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> &'static [Scenario] {
    static SHIPPED: OnceLock<Vec<Scenario>> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        scenario::load_all(&[root().join("scenarios/shell")]).unwrap_or_else(|p| panic!("{p}"))
    })
}

/// Tasks whose gold command does not give the same result twice in the sandbox, for a reason
/// that is not the moment it runs (see [`won`]); their episodes are printed, not checked.
const UNSTABLE: &[(&str, &str)] = &[
    (
        "intercode-fs1-011",
        "the gold command puts its work in the background (`&`); the sandbox ends what a command leaves running, so whether `tee` made its file first is a race",
    ),
    (
        "intercode-fs2-049",
        "curl finds no network in the sandbox; it prints its progress meter only when the failed lookup takes long enough",
    ),
    ("alfa-fs2-045", "the same curl command as intercode-fs2-049"),
    ("alfa-fs1-106", "a curl command, as intercode-fs2-049"),
];

/// `text` with every number and every long hexadecimal run (an address, a hash) as `#`, and
/// runs of blanks as one space: a table whose numbers changed width (`vmstat`'s running
/// processes going from 9 to 12) realigns its columns.
fn masked(text: &str) -> String {
    masked_numbers(text)
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn masked_numbers(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let number = run.chars().all(|c| c.is_ascii_digit()) || run.len() >= 8;
        if !run.is_empty() && number && run.chars().any(|c| c.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Whether a submitted episode is won: reward 1.0, or, where the gold command's output depends
/// on the moment it runs (the date, free memory, disk use, the host's own files, an address),
/// both file parts in full and the two outputs the same but for their numbers.
fn won(info: &serde_json::Value) -> bool {
    let part = |k: &str| info[k].as_f64() == Some(0.33);
    let text = |k: &str| masked(info[k].as_str().unwrap_or_default());
    info["reward"].as_f64() == Some(1.0)
        || (part("file_diff")
            && part("file_changes")
            && text("agent_output") == text("gold_output"))
}

/// Runs `play` on every scenario on a few threads; the failures it reports, sorted.
fn each(scenarios: &[&Scenario], play: impl Fn(&Scenario) -> Option<String> + Sync) -> Vec<String> {
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
                    let unstable = UNSTABLE.iter().find(|(id, _)| *id == s.id);
                    match (play(s), unstable) {
                        (Some(f), None) => failures.lock().unwrap().push(f),
                        (f, Some((_, why))) => eprintln!("{} ({why}): {f:?}", s.id),
                        (None, None) => {}
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
    let mut env = s.body.guided(s.horizon);
    let hidden = env.privileged();
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
            let info = env.info().unwrap_or_default();
            if won(&info) {
                return Ok(actions);
            }
            return Err(format!(
                "{}: reward {} after {actions:?} ({info})",
                s.id, outcome.reward
            ));
        }
    }
    Err(format!("{}: the expert stopped after {actions:?}", s.id))
}

#[test]
fn the_informed_expert_wins_every_shipped_task() {
    let scenarios: Vec<&Scenario> = shipped().iter().collect();
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
    // Every fourth task, to keep the test's time in check: all file systems and both sources.
    let scenarios: Vec<&Scenario> = shipped().iter().step_by(4).collect();
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
/// a file name, not in the request or the command.
fn secret(output: &str, known: &str) -> Option<String> {
    let known = known.to_lowercase();
    let file_name = |w: &str| {
        w.rsplit_once('.').is_some_and(|(name, ext)| {
            !name.is_empty() && (1..=4).contains(&ext.len()) && ext.chars().all(char::is_alphabetic)
        })
    };
    output
        .split(|c: char| c.is_whitespace() || ",;:()[]{}'\"`<>|=!?".contains(c))
        .map(|w| w.trim_end_matches('.'))
        .find(|w| {
            !w.is_empty()
                && !known.contains(&w.to_lowercase())
                && (w.chars().all(|c| c.is_ascii_digit())
                    || (w.len() >= 8 && w.chars().all(|c| c.is_ascii_hexdigit()))
                    || file_name(w))
        })
        .map(str::to_string)
}

#[test]
fn the_leak_guard_catches_planted_output_and_passes_it_once_seen() {
    let scenarios: Vec<&Scenario> = shipped().iter().step_by(8).collect();
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
    assert!(planted >= 25, "{planted} planted");
}

#[test]
fn exploration_is_short_read_only_and_never_the_gold() {
    let mut explored = 0;
    let mut steps = 0;
    let scenarios = shipped();
    for s in scenarios {
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

/// A stored episode of `s` whose steps ran `actions` with no reasons, as a student's would.
fn recorded(s: &Scenario, actions: &[&str]) -> leap::store::EpisodeRecord {
    let mut env = s.body.env(s.horizon);
    let steps = actions
        .iter()
        .map(|&action| {
            let outcome = env.step(action);
            leap::store::StepRecord {
                prompt: s.task.clone(),
                messages: Vec::new(),
                raw_output: format!("ACTION: {action}"),
                reason: None,
                action: action.to_string(),
                observation: env.observation().to_string(),
                reward: f64::from(outcome.reward),
                done: outcome.done,
                valid: true,
                admissible: env.admissible(),
                prompt_tokens: 1,
                cached_tokens: 0,
                gen_tokens: 1,
                prompt_ms: 0,
                gen_ms: 0,
                intervention: None,
                info: None,
            }
        })
        .collect();
    leap::store::EpisodeRecord {
        key: format!("rollout/test/{}/0", s.id),
        scenario_hash: s.hash.clone(),
        scenario_id: s.id.clone(),
        policy: "script".into(),
        seed: 0,
        iteration: Some(0),
        sampling: serde_json::json!({}),
        started_at_ms: 0,
        finished_at_ms: 0,
        won: false,
        reward: 0.0,
        wall_ms: 0,
        steps,
        branch: None,
        stopped: None,
    }
}

#[test]
fn an_episode_whose_commands_answer_otherwise_each_time_is_still_corrected() {
    use leap::teacher::Teacher;
    // The clock, and a pipeline whose processes write their errors in any order (the loop met
    // `... | wsort -r | xargs -n`): a replay cannot answer as recorded.
    let s = &shipped()[0];
    let actions = ["date +%N", "ls /nowhere | wsort | xargs -n", "date +%N"];
    let episode = recorded(s, &actions);
    let mut oracle = leap::teacher::oracle::OracleTeacher::new(0.0, 0);
    let corrections = oracle.correct(s, &episode).unwrap();
    assert_eq!(
        corrections.trajectory.len(),
        actions.len(),
        "{corrections:?}"
    );
    assert!(corrections.failures.is_empty(), "{corrections:?}");
    // What the student read is the recorded text: the leak guard measures against it.
    let mut live = leap::rollout::Playing::new("k".into(), s.kind(), s.body.env(s.horizon));
    for step in &episode.steps {
        assert!(live.replay(step.clone()).is_some(), "{}", step.action);
    }
}
