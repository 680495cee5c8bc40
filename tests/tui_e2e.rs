//! The real `leap tui` binary in a tmux pane, on the tiny model: open, play an episode with the
//! live teacher's action beside each step, take it at one step, play to the end, ask the oracle
//! teacher, accept a label, see an edited scenario file reload (first broken, then fixed), quit,
//! find the intervention and the decision in the run database, and reopen to see it again. A
//! shop scenario played the same way, its pages and privileged goal beside the trace. And the
//! LEAP loop started from the Iterations screen, killed mid-stage, resumed to its end.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use leap::store::{EpisodeFilter, Label, LabelFilter, LabelStatus, Store};

struct Pane {
    name: String,
}

impl Pane {
    fn open(name: &str, command: &str) -> Pane {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", name])
            .output();
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                "160",
                "-y",
                "45",
                command,
            ])
            .status()
            .expect("tmux is installed");
        assert!(status.success(), "tmux new-session failed");
        Pane {
            name: name.to_string(),
        }
    }

    fn text(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The process the pane runs its command in (the shell), and its children.
    fn children(&self) -> Vec<u32> {
        let out = Command::new("tmux")
            .args(["list-panes", "-t", &self.name, "-F", "#{pane_pid}"])
            .output()
            .unwrap();
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let out = Command::new("pgrep").args(["-P", &shell]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let status = Command::new("tmux")
                .args(["send-keys", "-t", &self.name, k])
                .status()
                .unwrap();
            assert!(status.success());
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Waits until the screen shows `needle`; panics with the screen after `secs`.
    fn wait_for(&self, needle: &str, secs: u64) -> String {
        self.wait_until(needle, |text| text.contains(needle), secs)
    }

    /// Waits until the screen passes `test` (described by `what`); panics with the screen
    /// after `secs`.
    fn wait_until(&self, what: &str, test: impl Fn(&str) -> bool, secs: u64) -> String {
        let start = Instant::now();
        loop {
            let text = self.text();
            if test(&text) {
                return text;
            }
            if start.elapsed() > Duration::from_secs(secs) {
                panic!("waited {secs}s for {what:?}; the screen:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Pane {
    /// Steps the live episode (of horizon 3) once, until step `n` shows.
    fn step_to(&self, n: usize) {
        self.keys(&["s"]);
        self.wait_for(&format!("step {n}/3"), 60);
    }

    /// Asks the oracle to correct the stored episode shown (three steps), waits for its labels
    /// beside the trace, and accepts the first on the Labels screen; returns that screen.
    fn correct_and_accept_the_first(&self) -> String {
        self.keys(&["t"]);
        self.wait_for("teacher: 3 labels", 30);
        self.wait_for("Teacher (oracle@1)", 10);
        self.keys(&["3"]);
        let labels = self.wait_for("3 labels:", 10);
        self.keys(&["a"]);
        self.wait_for("label 1 accepted", 10);
        labels
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .output();
    }
}

fn command(dir: &Path, tiny: &Path) -> String {
    format!(
        "env USER=e2e XDG_CONFIG_HOME={dir} {bin} tui --run {dir}/run --scenarios {dir}/scenarios --model {tiny} --horizon 3 --ctx 3072 --gpu-layers 0 2>{dir}/stderr.txt; echo exited $? > {dir}/exit.txt; sleep 30",
        dir = dir.display(),
        bin = env!("CARGO_BIN_EXE_leap"),
        tiny = tiny.display(),
    )
}

#[test]
fn a_person_steps_corrects_accepts_and_sees_a_scenario_reload() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (tiny, scenarios) = common::tiny_folder(dir);
    let showcase = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/showcase.yaml");
    let good = std::fs::read_to_string(showcase).unwrap();
    let file = scenarios.join("showcase.yaml");
    std::fs::write(&file, &good).unwrap();

    let name = format!("leap-e2e-{}", std::process::id());
    let pane = Pane::open(&name, &command(dir, &tiny));
    pane.wait_for("1 Scenarios", 30);
    pane.wait_for("student ready", 60);

    // Play the first scenario (the horizon is 3); the student runs with the context and GPU
    // layers given. The oracle's action for the live step shows beside the student's before the
    // episode is stored; take it instead of the student's.
    let scenario = leap::scenario::parse_text(&file, &good)
        .scenarios
        .into_iter()
        .find(|s| s.id == "showcase-morning-coffee")
        .unwrap();
    let oracle = leap::teacher::oracle::OracleTeacher::new(1.0, 0);
    let first = oracle.demonstrate(&scenario, "e2e", false).steps[0]
        .action
        .clone();
    pane.keys(&["Enter"]);
    let screen = pane.wait_for("step 0/3", 10);
    assert!(screen.contains("ctx 3072, 0 GPU layers"), "{screen}");
    pane.step_to(1);
    let screen = pane.wait_for("Live teacher (oracle@1)", 30);
    assert!(screen.contains("not stored yet"), "{screen}");
    assert!(screen.contains(&format!("ACTION: {first}")), "{screen}");
    pane.keys(&["a"]);
    let screen = pane.wait_for("Intervention chosen by teacher:oracle@1", 30);
    assert!(screen.contains(&format!("»{first}")), "{screen}");
    // The student plays on from there, the teacher answering each step as it comes.
    pane.step_to(2);
    let beside =
        |text: &str| text.matches("teacher agrees").count() + text.matches("≠ teacher:").count();
    let screen = pane.wait_until("the teacher beside both steps", |t| beside(t) == 2, 30);
    assert!(screen.contains("not stored yet"), "{screen}");
    pane.keys(&["r"]);
    let screen = pane.wait_for("stored as tui/showcase-morning-coffee/0", 120);
    assert!(screen.contains("step 3/3"), "{screen}");

    // The oracle corrects it; its labels show beside the trace. Accept the first.
    pane.correct_and_accept_the_first();

    // Train an adapter on it, load it as the student, and step again.
    pane.keys(&["4"]);
    pane.wait_for("4 Train", 10);
    pane.keys(&["s"]);
    pane.wait_for("adapter written:", 300);
    // The Iterations screen shows the report's table, with the dataset just trained on.
    pane.keys(&["5"]);
    let screen = pane.wait_for("[95% Wilson]", 10);
    assert!(
        screen.contains("zero-shot") && screen.contains("iter-"),
        "{screen}"
    );
    pane.keys(&["4"]);
    pane.wait_for("4 Train", 10);
    pane.keys(&["L"]);
    pane.wait_for("workbench-", 10);
    let screen = pane.wait_for("student ready:", 60);
    assert!(screen.contains(".gguf@1"), "{screen}");
    pane.keys(&["2", "n"]);
    pane.wait_for("step 0/3", 20);
    pane.step_to(1);

    // Train again: the update goes on from the student just loaded (a warm start).
    pane.keys(&["4"]);
    pane.wait_for("4 Train", 10);
    pane.keys(&["s"]);
    pane.wait_for("adapter written:", 300);

    // Break the scenario file: the banner names the place; fix it: the banner goes.
    pane.keys(&["1"]);
    std::fs::write(
        &file,
        good.replace("contents: [bread 1", "contents: [braed 1"),
    )
    .unwrap();
    let screen = pane.wait_for("problems in the scenario files", 20);
    assert!(
        screen.contains("showcase.yaml:44:41: unknown object type `braed`"),
        "{screen}"
    );
    std::fs::write(&file, good.replacen("horizon: 20", "horizon: 21", 1)).unwrap();
    let screen = pane.wait_for("horizon 21", 20);
    assert!(
        screen.contains("scenario files reloaded: 4 scenarios"),
        "{screen}"
    );
    assert!(
        !screen.contains("problems in the scenario files"),
        "{screen}"
    );

    pane.keys(&["q"]);
    wait_exit(dir);
    drop(pane);

    let store = Store::open_existing(dir.join("run")).unwrap();
    // The oracle's step is stored as its intervention, the student's steps as its own.
    let episodes = store
        .list_episodes(&EpisodeFilter::prefix("tui/showcase-morning-coffee/0"))
        .unwrap();
    let played = store.episode(episodes[0].id).unwrap().unwrap().record;
    let marks: Vec<Option<&str>> = played
        .steps
        .iter()
        .map(|s| s.intervention.as_deref())
        .collect();
    assert_eq!(marks, [Some("teacher:oracle@1"), None, None]);
    assert_eq!(played.steps[0].action, first);
    let accepted = the_one_accepted(&store);
    assert_eq!(accepted.id, 1);
    assert_eq!(accepted.decided_by.as_deref(), Some("e2e@workbench"));
    assert_eq!(accepted.episode_key, "tui/showcase-morning-coffee/0");

    // The adapter is recorded with the dataset it was trained on, which holds that label beside
    // the demonstrations of the train scenarios (the LEAP update `leap iterate` makes).
    let adapters = store.adapters().unwrap();
    assert_eq!(adapters.len(), 2, "{adapters:?}");
    let dataset_id = adapters[0].dataset_id.expect("the adapter's dataset");
    let dataset = store
        .datasets()
        .unwrap()
        .into_iter()
        .find(|d| d.id == dataset_id)
        .unwrap();
    assert_eq!(dataset.source, leap::store::DatasetSource::Workbench);
    let rows = leap::dataset::read_jsonl(std::path::Path::new(&dataset.path)).unwrap();
    assert_eq!(rows.len() as u64, dataset.rows);
    let source = |r: &leap::dataset::Row| r.meta.as_ref().map(|m| m.source.clone());
    let labelled = rows
        .iter()
        .filter(|r| source(r).as_deref() == Some("label"));
    assert_eq!(labelled.count(), 1);
    assert!(rows.iter().any(|r| source(r).as_deref() == Some("expert")));
    assert_eq!(store.dataset_labels(dataset_id).unwrap(), vec![1]);

    // `leap lineage --json`: the second adapter was warm-started from the first (the student
    // loaded when it was trained), on demonstration rows beside the kept label.
    let out = Command::new(env!("CARGO_BIN_EXE_leap"))
        .args(["lineage", "--json", "--run"])
        .arg(dir.join("run"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lineage: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = lineage.as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{lineage:#}");
    let (first, second) = (&nodes[0], &nodes[1]);
    assert!(first["adapter"]["summary"]["init"].is_null(), "{first:#}");
    assert_eq!(
        second["adapter"]["summary"]["init"], first["adapter"]["path"],
        "{second:#}"
    );
    let labelled: u64 = (second["labels"].as_array().unwrap().iter())
        .map(|p| p["labels"].as_u64().unwrap())
        .sum();
    assert_eq!(labelled, 1, "{second:#}");
    assert!(
        second["dataset"]["rows"].as_u64().unwrap() > labelled,
        "demonstration rows beside the label: {second:#}"
    );

    // Reopened on the same run, the workbench shows the same decision.
    let pane = Pane::open(&name, &command(dir, &tiny));
    pane.wait_for("1 Scenarios", 30);
    // Quitting while the student loads would ask first.
    pane.wait_for("student ready", 60);
    pane.keys(&["3"]);
    pane.wait_for("✓ 1 accepted", 10);
    pane.keys(&["q"]);
    wait_exit(dir);
}

#[test]
fn a_person_plays_a_shop_scenario_asks_the_teacher_and_accepts_a_label() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let id = "shop-test-beauty-0033";
    let pane = open_on_shipped(dir, "shop/test", id);

    // Play: the first step is on the search page, the second on the results of the student's
    // own search; beside the trace, the page the student read before the selected step.
    pane.keys(&["Enter"]);
    pane.wait_for("step 0/3", 10);
    pane.step_to(1);
    let screen = pane.wait_for("[button] Search [button_]", 10);
    assert!(screen.contains("Before (the page):"), "{screen}");
    assert!(screen.contains("search["), "{screen}");
    pane.step_to(2);
    pane.wait_for("Page 1 (Total results", 10);
    // The privileged goal beside the trace: what the teacher sees and the student does not.
    pane.keys(&["p"]);
    let screen = pane.wait_for("Privileged state before this step", 10);
    common::assert_shows(
        &screen,
        &[
            "goal attribute is carrying case",
            "goal option is 0.5 fl oz (pack of 1)",
            "price limit is 30.00 dollars",
            "matching product is ",
        ],
    );
    // The run holds the shop episode, its three labels and the decision.
    let (store, key, played) = run_correct_accept_and_quit(pane, dir, id);
    assert!(
        played.steps[0].action.starts_with("search["),
        "{:?}",
        played.steps[0]
    );
    let label = the_one_accepted(&store);
    assert_eq!((label.id, label.idx), (1, 0));
    assert_eq!(label.episode_key, key);
    assert_eq!(label.scenario_id, id);
    assert_eq!(label.teacher, "oracle@1");
    assert_eq!(label.decided_by.as_deref(), Some("e2e@workbench"));
    // The teacher's search on the search page: words of its own in the hole.
    assert!(label.teacher_action.starts_with("search["), "{label:?}");
    assert_eq!(
        leap::env::command::admits(&label.admissible, &label.teacher_action).as_deref(),
        Some(label.teacher_action.as_str())
    );
}

#[test]
fn a_person_plays_a_shell_scenario_asks_the_teacher_and_accepts_a_label() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let id = "intercode-fs3-000";
    let gold = "find /workspace -daystart -type f -mtime -30";
    let pane = open_on_shipped(dir, "shell/test", id);

    // Play: the first observation is the request; each later one is what the student's command
    // printed in its sandbox.
    pane.keys(&["Enter"]);
    pane.wait_for("step 0/3", 10);
    pane.step_to(1);
    pane.wait_for("modified 30 days ago", 10);
    // The privileged state beside the trace: the gold command and what it prints.
    pane.keys(&["p"]);
    let screen = pane.wait_for("Privileged state before this step", 10);
    common::assert_shows(
        &screen,
        &[&format!("gold command is {gold}"), "gold output is "],
    );
    // The run holds the shell episode, scored at its horizon, its three labels and the decision.
    let (store, _, played) = run_correct_accept_and_quit(pane, dir, id);
    assert!(played.reward >= 0.01, "{}", played.reward);
    assert!(played.steps[2].info.is_some(), "{:?}", played.steps[2]);
    let label = the_one_accepted(&store);
    assert_eq!((label.idx, label.teacher.as_str()), (0, "oracle@1"));
    assert_eq!(label.decided_by.as_deref(), Some("e2e@workbench"));
    // The privileged oracle runs the gold command first.
    assert_eq!(label.teacher_action, gold, "{label:?}");
}

#[test]
fn a_person_steps_a_textworld_episode_and_sees_what_only_the_teacher_sees() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let shipped =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/external/textworld.yaml");
    let all = leap::scenario::load_all(&[shipped]).unwrap();
    let s = all
        .iter()
        .find(|s| s.split == leap::scenario::Split::Test)
        .unwrap();
    let plan = s.body.privileged(s.horizon).plan.expect("the walkthrough");
    // The scenario alone in a file: its canonical JSON, which is YAML too.
    let pane = open_on(dir, "external", &s.id, &s.json);

    // Play: leap starts the real TextWorld adapter; the first observation is the room.
    pane.keys(&["Enter"]);
    pane.wait_for("step 0/3", 120);
    pane.wait_for("-= ", 10);
    pane.step_to(1);
    // The privileged state beside the trace: the walkthrough from there and the game's facts.
    pane.keys(&["p"]);
    let screen = pane.wait_for("Privileged state before this step", 10);
    common::assert_shows(
        &screen,
        &["walkthrough is ", "max score is ", "fact is at(P, "],
    );
    // The run holds the TextWorld episode, its three labels and the decision.
    let (store, _, played) = run_correct_accept_and_quit(pane, dir, &s.id);
    assert!(
        played
            .steps
            .iter()
            .all(|st| st.admissible.contains(&st.action)),
        "{played:?}"
    );
    let label = the_one_accepted(&store);
    assert_eq!((label.idx, label.teacher.as_str()), (0, "oracle@1"));
    // The oracle's first command is the walkthrough's.
    assert_eq!(label.teacher_action, plan[0], "{label:?}");
}

/// The workbench on the tiny model over one shipped scenario (`scenarios/<set>/<id>.yaml`),
/// ready to play it.
fn open_on_shipped(dir: &Path, set: &str, id: &str) -> Pane {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(set)
        .join(format!("{id}.yaml"));
    let kind = set.split('/').next().unwrap();
    open_on(dir, kind, id, &std::fs::read_to_string(shipped).unwrap())
}

/// The workbench on the tiny model over the scenario `id` of kind `kind`, written as `text`,
/// ready to play it.
fn open_on(dir: &Path, kind: &str, id: &str, text: &str) -> Pane {
    let (tiny, scenarios) = common::tiny_folder(dir);
    std::fs::write(scenarios.join(format!("{id}.yaml")), text).unwrap();
    let name = format!("leap-e2e-{kind}-{}", std::process::id());
    let pane = Pane::open(&name, &command(dir, &tiny));
    pane.wait_for("1 Scenarios", 30);
    let screen = pane.wait_for("student ready", 60);
    assert!(screen.contains(id), "{screen}");
    pane
}

/// Runs the episode of `id` to its end (three steps), has the oracle correct it, accepts its
/// first label and quits; returns the run, the episode's key and the stored episode.
fn run_correct_accept_and_quit(
    pane: Pane,
    dir: &Path,
    id: &str,
) -> (Store, String, leap::store::EpisodeRecord) {
    pane.keys(&["r"]);
    let key = format!("tui/{id}/0");
    let screen = pane.wait_for(&format!("stored as {key}"), 120);
    assert!(screen.contains("step 3/3"), "{screen}");
    // The oracle corrects the episode; its labels show beside the trace. Accept the first.
    let labels = pane.correct_and_accept_the_first();
    assert!(labels.contains(id), "{labels}");
    pane.keys(&["q"]);
    wait_exit(dir);
    drop(pane);
    let store = Store::open_existing(dir.join("run")).unwrap();
    let episodes = store.list_episodes(&EpisodeFilter::prefix(&key)).unwrap();
    assert_eq!(episodes.len(), 1);
    let played = store.episode(episodes[0].id).unwrap().unwrap().record;
    assert_eq!(played.scenario_id, id);
    assert_eq!(played.steps.len(), 3);
    (store, key, played)
}

/// The one accepted label among the three the run holds.
fn the_one_accepted(store: &Store) -> Label {
    let labels = store.labels(&LabelFilter::default()).unwrap();
    assert_eq!(labels.len(), 3);
    let mut accepted: Vec<Label> = labels
        .into_iter()
        .filter(|l| l.status == LabelStatus::Accepted)
        .collect();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    accepted.remove(0)
}

/// Waits for leap to quit on its own and checks that it exited cleanly.
fn wait_exit(dir: &Path) {
    let file = dir.join("exit.txt");
    let start = Instant::now();
    while !file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "leap did not quit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(100));
    let exit = std::fs::read_to_string(&file).unwrap();
    let stderr = std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default();
    assert_eq!(exit.trim(), "exited 0", "stderr: {stderr}");
    std::fs::remove_file(&file).unwrap();
}

/// The stages the run has recorded, as (iteration, stage).
fn stages(run: &Path) -> Vec<(Option<u32>, String)> {
    Store::open_existing(run)
        .unwrap()
        .stages()
        .unwrap()
        .into_iter()
        .map(|s| (s.iteration, s.stage))
        .collect()
}

#[test]
fn the_loop_started_in_the_workbench_resumes_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (tiny, _) = common::tiny_workspace(dir, 2, 2);
    let run = dir.join("run");

    // One iteration after behaviour cloning, started from the Iterations screen.
    let name = format!("leap-e2e-loop-{}", std::process::id());
    let pane = start_one_iteration(&name, dir, &tiny);
    pane.wait_for("the LEAP loop running", 10);
    // Kill it (SIGKILL) once iteration 1 is under way, iteration 0 trained and evaluated.
    let screen = pane.wait_for("now: iteration 1:", 900);
    assert!(screen.contains("done: iteration 0: training"), "{screen}");
    let leap = pane.children();
    assert_eq!(leap.len(), 1, "{leap:?}");
    let status = Command::new("kill")
        .args(["-KILL", &leap[0].to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    while !dir.join("exit.txt").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "leap was not killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(pane);
    std::fs::remove_file(dir.join("exit.txt")).unwrap();
    let before = stages(&run);
    for done in ["training", "evaluation on test"] {
        assert!(before.contains(&(Some(0), done.into())), "{before:?}");
    }
    assert!(
        !before.contains(&(Some(1), "training".into())),
        "{before:?}"
    );

    // Reopened on the same run and started again, it resumes after the stages done.
    let pane = start_one_iteration(&name, dir, &tiny);
    pane.wait_for("resuming: stages already done: iteration 0:", 30);
    let screen = pane.wait_for("loop finished", 900);
    assert!(
        screen.contains("done: iteration 1: evaluation on test"),
        "{screen}"
    );
    // The report's table has both students.
    assert!(screen.contains("iter-1 "), "{screen}");
    pane.keys(&["q"]);
    wait_exit(dir);
    drop(pane);

    // Each finished stage ran once; both iterations are trained and evaluated.
    let after = stages(&run);
    let mut unique = after.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), after.len(), "{after:?}");
    assert_eq!(&after[..before.len()], &before[..]);
    for i in 0..2 {
        for done in ["dataset", "training", "evaluation on test"] {
            assert!(after.contains(&(Some(i), done.into())), "{after:?}");
        }
    }
    // One adapter per iteration, each evaluated on both test scenarios.
    let store = Store::open_existing(&run).unwrap();
    assert_eq!(store.adapters().unwrap().len(), 2);
    let layout = leap::run::RunDir::new(&run);
    for i in 0..2 {
        let path = layout.adapter(i).display().to_string();
        let adapter = store.adapter_by_path(&path).unwrap().expect(&path);
        assert_eq!(adapter.iteration, Some(i));
        let label = format!("eval-test-iter-{i}");
        let eval = store.evaluation(&label).unwrap().expect(&label);
        assert_eq!(
            (eval.summary["episodes"].as_u64(), eval.adapter_id),
            (Some(2), Some(adapter.id))
        );
    }
}

/// Opens the workbench on the run in `dir` and starts the loop for one iteration from the
/// Iterations screen.
fn start_one_iteration(name: &str, dir: &Path, tiny: &Path) -> Pane {
    let pane = Pane::open(name, &command(dir, tiny));
    pane.wait_for("1 Scenarios", 30);
    pane.keys(&["5"]);
    pane.wait_for("the LEAP loop on this run", 10);
    pane.keys(&["-"]);
    pane.wait_for("iterations 1", 10);
    pane.keys(&["s"]);
    pane
}
