//! External environments over OpenEnv, on a real server: `tests/data/external/fixture.py`, a
//! counter run by openenv-core through leap's adapter module, started by leap on 127.0.0.1. An
//! episode reads leap's convention (admissible commands, privileged facts, the expert's
//! action); a server that fails, stalls, dies or answers outside the protocol ends only that
//! episode with one line that says why; a server never outlives the leap that started it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use leap::env::external::ExternalEnv;
use leap::env::external::scenario::ExternalScenario;
use leap::env::{Environment, Guided};
use leap::scenario::Scenario;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/external/fixture.py")
}

fn python() -> PathBuf {
    leap::env::external::server::adapter_python().expect("run `just deps-external` first")
}

/// A scenario of the fixture with `reset` (a YAML flow mapping) and `extra` server keys.
fn scenario(id: &str, reset: &str, extra: &str) -> Scenario {
    let text = format!(
        "kind: external\nid: {id}\nsplit: test\ntask: Bring the counter to the hidden target.\nhorizon: 6\nworld:\n  server: {{command: [{python:?}, {fixture:?}, --port, '{{port}}']{extra}}}\n  reset: {reset}\n  task_type: counter\n",
        python = python().display().to_string(),
        fixture = fixture().display().to_string(),
    );
    let loaded = leap::scenario::parse_text(Path::new("fixture.yaml"), &text);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    loaded.scenarios.into_iter().next().unwrap()
}

fn episode(s: &Scenario) -> ExternalEnv {
    s.body
        .as_any()
        .downcast_ref::<ExternalScenario>()
        .unwrap()
        .episode(s.horizon)
}

#[test]
fn an_episode_reads_the_convention_and_the_expert_wins_it() {
    let s = scenario("counter", "{target: 3}", "");
    let mut env = episode(&s);
    assert_eq!(env.failure(), None);
    assert_eq!(env.task(), "Bring the counter to the hidden target.");
    assert_eq!(env.observation(), "The counter shows 0.");
    assert_eq!(env.admissible(), ["add", "wait"]);
    let hidden = env.privileged();
    assert_eq!(hidden.facts.len(), 1);
    assert_eq!(
        (
            hidden.facts[0].subject.as_str(),
            hidden.facts[0].detail.as_str()
        ),
        ("target", "3")
    );
    assert_eq!(
        hidden.plan.as_deref(),
        Some(&["add".to_string(), "add".into(), "add".into()][..])
    );
    // Only a privileged expert: nothing without privilege.
    assert_eq!(env.advise(false), None);
    let advice = env.advise(true).unwrap();
    assert_eq!(advice.action, "add");
    assert_eq!(advice.reason, "Adding brings the counter closer.");

    let wait = env.step("wait");
    assert_eq!((wait.reward, wait.done, wait.won), (0.0, false, false));
    assert_eq!(env.observation(), "Nothing happens.");
    let mut last = wait;
    while let Some(advice) = env.advise(true) {
        last = env.step(&advice.action);
    }
    assert_eq!((last.reward, last.done, last.won), (1.0, true, true));
    assert_eq!(env.steps_taken(), 4);
    assert_eq!(env.info(), Some(serde_json::json!({"count": 3})));
    assert!(env.won());

    // A reset starts the same session over.
    env.reset();
    assert_eq!(
        (env.observation(), env.steps_taken()),
        ("The counter shows 0.", 0)
    );
    assert_eq!(env.step("add").reward, 1.0 / 3.0);
}

#[test]
fn the_horizon_ends_an_episode_the_server_would_go_on_with() {
    let s = scenario("counter-long", "{target: 50}", "");
    let mut env = episode(&s);
    let mut outcome = env.step("add");
    let mut steps = 1;
    while !outcome.done {
        outcome = env.step("add");
        steps += 1;
    }
    assert_eq!(steps, s.horizon);
    assert!(!outcome.won);
    assert!((outcome.reward - 6.0 / 50.0).abs() < 1e-6);
}

/// Plays `add` until the episode ends; the last observation.
fn play_out(env: &mut ExternalEnv) -> String {
    while !env.step("add").done {}
    env.observation().to_string()
}

#[test]
fn a_refused_step_a_malformed_answer_and_a_stall_end_only_their_episode() {
    let good = scenario("counter-good", "{target: 3}", ", step_timeout_s: 3");
    let mut healthy = episode(&good);
    healthy.step("add");

    let refused = scenario(
        "counter-refuses",
        "{fail: error, at: 2}",
        ", step_timeout_s: 3",
    );
    let mut env = episode(&refused);
    let line = play_out(&mut env);
    assert_eq!(env.steps_taken(), 2);
    assert!(
        line.starts_with("leap: the environment at ws://127.0.0.1:"),
        "{line}"
    );
    assert!(
        line.ends_with("reported: fixture: this step is refused (EXECUTION_ERROR)"),
        "{line}"
    );
    assert_eq!(env.info(), Some(serde_json::json!({"error": line})));
    assert_eq!(env.failure(), Some(line.as_str()));

    let malformed = scenario(
        "counter-malformed",
        "{fail: malformed}",
        ", step_timeout_s: 3",
    );
    let mut env = episode(&malformed);
    let line = play_out(&mut env);
    assert!(
        line.contains("sent a malformed reply: `observation.text`: invalid type: integer `7`"),
        "{line}"
    );

    let stalls = scenario("counter-stalls", "{fail: stall}", ", step_timeout_s: 2");
    let mut env = episode(&stalls);
    let started = Instant::now();
    let line = play_out(&mut env);
    assert!(line.ends_with("did not answer in time"), "{line}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // The same server's other session went on.
    assert_eq!(healthy.step("add").reward, 2.0 / 3.0);
    let end = healthy.step("add");
    assert!(end.won && end.done);
}

#[test]
fn a_server_that_dies_ends_the_episode_with_its_output_and_the_next_one_starts_it_again() {
    // A server of its own (another step timeout makes another spec).
    let dies = scenario("counter-dies", "{fail: die, at: 2}", ", step_timeout_s: 7");
    let mut env = episode(&dies);
    let line = play_out(&mut env);
    assert!(line.contains("exited (exit status: 3)"), "{line}");
    assert!(line.contains("fixture: dying on purpose"), "{line}");

    let again = scenario("counter-again", "{target: 1}", ", step_timeout_s: 7");
    let mut env = episode(&again);
    assert_eq!(env.failure(), None);
    assert!(env.step("add").won);
}

#[test]
fn a_server_that_cannot_start_says_why() {
    let text = format!(
        "kind: external\nid: broken\nsplit: test\ntask: t\nhorizon: 2\nworld:\n  server: {{command: [{python:?}, -c, 'import sys; print(\"no such environment\", file=sys.stderr); sys.exit(2)', '{{port}}']}}\n",
        python = python().display().to_string(),
    );
    let s = leap::scenario::parse_text(Path::new("broken.yaml"), &text)
        .scenarios
        .remove(0);
    let env = episode(&s);
    let line = env.failure().expect("the server cannot start");
    assert!(line.contains("exited (exit status: 2)"), "{line}");
    assert!(line.contains("no such environment"), "{line}");
    assert!(
        line.contains("before it answered http://127.0.0.1:"),
        "{line}"
    );
    // The episode is over: the rollout's first step ends it with nothing earned.
    let mut env = env;
    let outcome = env.step("anything");
    assert_eq!(
        (outcome.reward, outcome.done, outcome.won),
        (0.0, true, false)
    );
}

#[test]
fn episodes_in_parallel_have_sessions_of_their_own() {
    let s = scenario("counter-parallel", "{target: 2}", "");
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut env = episode(&s);
                // Each waits a different number of times: the counters must not mix.
                for _ in 0..i {
                    env.step("wait");
                }
                let first = env.step("add");
                let second = env.step("add");
                (first.reward, second.won, env.steps_taken())
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let (first, won, steps) = h.join().unwrap();
        assert_eq!(
            (first, won, steps),
            (0.5, true, i as u32 + 2),
            "episode {i}"
        );
    }
}

#[test]
fn the_server_dies_with_the_leap_that_started_it() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("server.pid");
    // The reset stalls, so leap is still waiting on the server when it is killed.
    let file = dir.path().join("stall.yaml");
    std::fs::write(
        &file,
        format!(
            "kind: external\nid: stall\nsplit: test\ntask: t\nhorizon: 2\nworld:\n  server: {{command: [{python:?}, {fixture:?}, --port, '{{port}}'], step_timeout_s: 600}}\n  reset: {{fail: stall, at: 0, pidfile: {pidfile:?}}}\n",
            python = python().display().to_string(),
            fixture = fixture().display().to_string(),
            pidfile = pidfile.display().to_string(),
        ),
    )
    .unwrap();
    let mut leap = std::process::Command::new(env!("CARGO_BIN_EXE_leap"))
        .args(["scenarios", "solve"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let pid: i32 = loop {
        if let Ok(text) = std::fs::read_to_string(&pidfile)
            && let Ok(pid) = text.trim().parse()
        {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the server never reset"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Running: in the process table and not a zombie waiting to be reaped.
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(") ")
                .next()
                .is_some_and(|rest| !rest.starts_with('Z'))
        })
    };
    assert!(alive(pid));
    leap.kill().unwrap();
    leap.wait().unwrap();
    let killed = Instant::now();
    while alive(pid) && killed.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !alive(pid),
        "the server outlived leap by {:?}",
        killed.elapsed()
    );
}

#[test]
fn bad_external_scenarios_are_reported_where_they_are_written() {
    let text = "\
- id: a
  kind: external
  split: test
  task: t
  horizon: 3
  world:
    server: {adapter: sciencworld}
- id: b
  kind: external
  split: test
  task: t
  horizon: 3
  world:
    server: {command: [python3, env.py]}
- id: c
  kind: external
  split: test
  task: t
  horizon: 3
  world:
    server: {adapter: textworld, url: 'http://127.0.0.1:8000'}
- id: d
  kind: external
  split: test
  task: t
  horizon: 3
  privileged: {gold: x}
  world:
    server: {url: 'localhost:8000'}
- id: e
  kind: external
  split: test
  task: t
  horizon: 3
  world:
    server: {adapter: textworld}
    reset: {game: tw-simple}
    task_typ: x
- id: f
  kind: external
  split: test
  task: t
  horizon: 3
  world:
    server: {adapter: textworld, step_timeout_s: 0}
";
    let loaded = leap::scenario::parse_text(Path::new("bad.yaml"), text);
    assert!(loaded.scenarios.is_empty());
    let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            "bad.yaml:7:23: unknown adapter `sciencworld` (did you mean `scienceworld`?), expected one of scienceworld, textworld, alfworld, webshop, intercode",
            "bad.yaml:14:23: no argument holds `{port}`, expected one where leap puts the port the server must listen on (e.g. `--port`, `{port}`)",
            "bad.yaml:21:13: expected exactly one of `adapter` (a shipped adapter), `command` (a command that starts a server) and `url` (a running server)",
            "bad.yaml:27:15: an external scenario has no `privileged`: its environment sends the privileged state with every observation",
            "bad.yaml:29:19: `localhost:8000` is not an http:// URL, expected the server's base URL such as http://127.0.0.1:8000",
            "bad.yaml:38:5: unknown field `task_typ`, expected one of `server`, `reset`, `task_type`",
            "bad.yaml:45:50: `step_timeout_s` is 0, expected at least 1 second",
        ],
        "{problems:#?}"
    );
}
