//! The workbench's screens rendered on ratatui's TestBackend from fixed state (a real run store
//! with a wandering episode corrected by the oracle), and the keys that change that state.

mod common;
mod tui_fixture;

use std::path::Path;

use leap::eval::{EvalReport, wilson};
use leap::report::Sources;
use leap::scenario;
use leap::session::{SessionEvent, partial};
use leap::store::{LabelFilter, LabelStatus, StepRecord, Store};
use leap::teacher::Teacher;
use leap::teacher::live::Answer;
use leap::teacher::oracle::OracleTeacher;
use leap::tui::app::Overlay;
use leap::tui::event::{Event, Read, TrainEvent};
use leap::tui::{App, Screen};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tui_fixture::{app, connected_app, corrected_run, render, settle, showcase};

fn key(app: &mut App, text: &str) {
    for c in text.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            '\x1b' => KeyCode::Esc,
            '\t' => KeyCode::Tab,
            c => KeyCode::Char(c),
        };
        let mods = if c.is_ascii_uppercase() {
            KeyModifiers::SHIFT
        } else {
            KeyModifiers::NONE
        };
        app.handle(Event::Key(KeyEvent::new(code, mods)));
    }
}

fn ctrl(app: &mut App, c: char) {
    app.handle(Event::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::CONTROL,
    )));
}

fn fresh() -> (tempfile::TempDir, App, i64) {
    let dir = tempfile::tempdir().unwrap();
    let (run, id) = corrected_run(dir.path());
    let app = app(&run, showcase());
    (dir, app, id)
}

#[test]
fn scenarios_screen_previews_the_world_and_the_privileged_state() {
    let (_dir, mut app, _) = fresh();
    key(&mut app, "jp");
    insta::assert_snapshot!(render(&app, 120, 34));
}

#[test]
fn an_invalid_scenario_file_shows_its_problems_and_keeps_the_last_good_version() {
    let (_dir, mut app, _) = fresh();
    let text = std::fs::read_to_string(tui_fixture::root().join("scenarios/showcase.yaml"))
        .unwrap()
        .replace("contents: [bread 1", "contents: [braed 1");
    let loaded = scenario::parse_text(Path::new("scenarios/showcase.yaml"), &text);
    app.handle(Event::Scenarios(loaded));
    assert_eq!(
        app.catalog.scenarios.len(),
        4,
        "the last good version stays"
    );
    assert!(app.catalog.stale.contains("showcase-warm-bread"));
    key(&mut app, "j");
    insta::assert_snapshot!(render(&app, 120, 30));
}

#[test]
fn the_scenario_filter_narrows_the_list() {
    let (_dir, mut app, _) = fresh();
    key(&mut app, "/lamp\n");
    assert_eq!(app.scenarios.visible.len(), 1);
    key(&mut app, "/\x1b");
    assert_eq!(app.scenarios.visible.len(), 4);
}

#[test]
fn episode_screen_shows_the_trace_beside_the_teacher_with_marks_and_leaks() {
    let (_dir, mut app, id) = fresh();
    app.open_episode(id);
    app.screen = Screen::Episode;
    key(&mut app, "jjp"); // step 3: the planted leaking correction
    insta::assert_snapshot!(render(&app, 150, 40));
}

#[test]
fn episode_screen_shows_a_shop_page_and_the_goal_beside_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (run, id) = tui_fixture::shop_run(dir.path());
    let mut app = app(&run, tui_fixture::shop_catalog());
    app.open_episode(id);
    app.screen = Screen::Episode;
    key(&mut app, "jp"); // step 2: on the results page, the privileged state shown
    let screen = render(&app, 150, 40);
    // The results page the student read, line by line, cut to the room the teacher leaves,
    // and the goal the teacher saw, as facts.
    common::assert_shows(
        &screen,
        &[
            "Page 1 (Total results: ",
            "[button] Back to Search [button_]",
            " more lines",
            "goal attribute is carrying case",
            "matching product asin is B0049KSSKQ",
        ],
    );
    insta::assert_snapshot!(screen);
    key(&mut app, "k"); // step 1: on the search page, short enough to show whole
    let screen = render(&app, 150, 40);
    assert!(screen.contains("[button] Search [button_]"), "{screen}");
    assert!(!screen.contains(" more lines"), "{screen}");
}

#[test]
fn help_lists_every_key_of_the_screen() {
    let (_dir, mut app, id) = fresh();
    app.open_episode(id);
    key(&mut app, "2?");
    assert!(matches!(app.overlay, Some(Overlay::Help)));
    insta::assert_snapshot!(render(&app, 120, 44));
    key(&mut app, "\x1b");
    assert!(app.overlay.is_none());
}

#[test]
fn labels_screen_filters_counts_and_decides_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = corrected_run(dir.path());
    let mut app = app(&run, showcase());
    key(&mut app, "3");
    let total = app.labels.all.len();
    assert!(total > 1);
    key(&mut app, "d"); // differing only
    let differing = app.labels.visible.len();
    key(&mut app, "a"); // accept the first differing label
    let accepted = app
        .labels
        .all
        .iter()
        .find(|l| l.status == LabelStatus::Accepted)
        .unwrap()
        .id;
    let store = Store::open_existing(&run).unwrap();
    let label = store.label(accepted).unwrap().unwrap();
    assert_eq!(label.status, LabelStatus::Accepted);
    assert_eq!(label.decided_by.as_deref(), Some("tester"));
    key(&mut app, "jx"); // reject the next one
    insta::assert_snapshot!(render(&app, 140, 36));
    key(&mut app, "uu"); // undo both
    let counts = store.label_counts(&LabelFilter::default()).unwrap();
    assert_eq!(counts.pending as usize, total);
    assert_eq!(app.labels.visible.len(), differing);
}

#[test]
fn the_editor_offers_the_admissible_commands_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = corrected_run(dir.path());
    let mut app = app(&run, showcase());
    key(&mut app, "3e");
    let Some(Overlay::Editor(_)) = &app.overlay else {
        panic!("the editor is open")
    };
    key(&mut app, "\t");
    for _ in 0..40 {
        app.handle(Event::Key(KeyEvent::new(
            KeyCode::Backspace,
            KeyModifiers::NONE,
        )));
    }
    key(&mut app, "fly away\n");
    let Some(Overlay::Editor(editor)) = &app.overlay else {
        panic!("an inadmissible action keeps the editor open")
    };
    assert!(
        editor
            .error
            .as_deref()
            .unwrap_or("")
            .contains("not admissible"),
        "{:?}",
        editor.error
    );
    for _ in 0..8 {
        app.handle(Event::Key(KeyEvent::new(
            KeyCode::Backspace,
            KeyModifiers::NONE,
        )));
    }
    key(&mut app, "countertop");
    insta::assert_snapshot!(render(&app, 120, 34));
    ctrl(&mut app, 'n'); // complete from the admissible list
    key(&mut app, "\n");
    assert!(app.overlay.is_none());
    let label = app.labels.selected().unwrap();
    assert_eq!(label.status, LabelStatus::Edited);
    assert_eq!(label.edited_action.as_deref(), Some("go to countertop 1"));
}

#[test]
fn bulk_accept_takes_the_filtered_pending_set_and_undoes_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = corrected_run(dir.path());
    // Accepting and undoing many labels runs on a job thread, as in `leap tui`.
    let (mut app, mut rx) = connected_app(&run, showcase());
    settle(&mut app, &mut rx);
    key(&mut app, "3l"); // leaking only: the planted one
    assert_eq!(app.labels.visible.len(), 1);
    key(&mut app, "l");
    let n = app.labels.pending_shown().len();
    key(&mut app, "A");
    assert!(matches!(app.overlay, Some(Overlay::ConfirmBulk(_))));
    key(&mut app, "y");
    settle(&mut app, &mut rx);
    let store = Store::open_existing(&run).unwrap();
    assert_eq!(
        store
            .label_counts(&LabelFilter::default())
            .unwrap()
            .accepted as usize,
        n
    );
    key(&mut app, "u");
    assert!(app.labels.undoing);
    settle(&mut app, &mut rx);
    assert_eq!(
        store.label_counts(&LabelFilter::default()).unwrap().pending as usize,
        n
    );
    assert!(app.labels.pending_shown().len() == n && app.labels.undo.is_empty());
}

#[test]
fn train_screen_shows_settings_progress_loss_and_log() {
    let (_dir, mut app, _) = fresh();
    key(&mut app, "4jl");
    app.train.running = true;
    for step in 1..=30u64 {
        app.handle(Event::Train(TrainEvent::Progress {
            step,
            total: 60,
            epoch: 1.0,
            loss: Some(2.5 / (1.0 + step as f64 / 10.0)),
            tokens_per_s: 812.0,
            eta_s: 95.0,
        }));
        if step % 10 == 0 {
            app.handle(Event::Train(TrainEvent::EvalLoss {
                step,
                loss: 2.7 / (1.0 + step as f64 / 12.0),
            }));
        }
    }
    app.handle(Event::Train(TrainEvent::Log(
        "started: 12 rows, 3,100 tokens, 60 steps".into(),
    )));
    insta::assert_snapshot!(render(&app, 120, 34));
}

/// What `leap eval` records: `wins` of `n` episodes on `split`.
fn evaluation(label: &str, split: &str, wins: u64, n: u64) -> serde_json::Value {
    let (low, high) = wilson(wins, n);
    serde_json::to_value(EvalReport {
        label: label.into(),
        policy: "SmolLM2-135M-Instruct.Q4_1".into(),
        split: split.into(),
        episodes: n,
        wins,
        success_rate: wins as f64 / n as f64,
        success_low: low,
        success_high: high,
        mean_steps: 14.2,
        invalid_action_rate: 0.05,
        ..EvalReport::default()
    })
    .unwrap()
}

fn record(store: &mut Store, label: &str, iteration: Option<u32>, split: &str, wins: u64) {
    store
        .record_evaluation(
            label,
            None,
            iteration,
            "SmolLM2-135M-Instruct.Q4_1",
            split,
            &evaluation(label, split, wins, 10),
        )
        .unwrap();
}

#[test]
fn iterations_screen_reads_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = corrected_run(dir.path());
    let (mut app, mut rx) = connected_app(&run, showcase());
    settle(&mut app, &mut rx);
    {
        let mut store = Store::open_existing(&run).unwrap();
        let adapter = store
            .insert_adapter(
                Some(1),
                "runs/x/adapters/iter-1.gguf",
                None,
                "SmolLM2-135M-Instruct.Q4_1.gguf",
                &serde_json::json!({}),
            )
            .unwrap();
        for (split, wins) in [("train", 6), ("test", 3)] {
            let label = format!("eval-{split}-iter-1");
            store
                .record_evaluation(
                    &label,
                    Some(adapter),
                    Some(1),
                    "SmolLM2-135M-Instruct.Q4_1 + iter-1.gguf@1",
                    split,
                    &evaluation(&label, split, wins, 10),
                )
                .unwrap();
        }
    }
    key(&mut app, "5");
    // The report is read on a job thread; the screen says so until it comes.
    assert!(app.iterations.loading);
    assert!(render(&app, 120, 24).contains("loading…"));
    settle(&mut app, &mut rx);
    assert_eq!(app.iterations.rows().len(), 2);
    insta::assert_snapshot!(render(&app, 120, 24));
}

#[test]
fn iterations_screen_shows_other_decodings_compared_runs_and_teachers() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = corrected_run(dir.path());
    let other = dir.path().join("other");
    let scratch = dir.path().join("scratch");
    {
        let mut store = Store::open_existing(&run).unwrap();
        record(&mut store, "eval-test-base", None, "test", 1);
        record(&mut store, "eval-test-iter-0", Some(0), "test", 4);
        record(&mut store, "eval-test-oracle@0.5", None, "test", 10);
        let mut store = Store::open(&scratch).unwrap();
        record(&mut store, "eval-test-iter-0-t0.7", None, "test", 6);
        let mut store = Store::open(&other).unwrap();
        record(&mut store, "eval-test-iter-0", Some(0), "test", 5);
        record(&mut store, "eval-test-iter-1", Some(1), "test", 7);
    }
    let mut init = tui_fixture::init(&run, showcase());
    init.report = Sources {
        evaluations_from: vec![scratch],
        name: None,
        compare: vec![("self teacher".into(), other)],
    };
    let mut app = App::new(init);
    key(&mut app, "5");
    let names: Vec<&str> = app
        .iterations
        .rows()
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["zero-shot", "iter-0 (BC)"]);
    let screen = render(&app, 160, 40);
    for shown in [
        "this run, temperature 0.7",
        "self teacher",
        "40.0% [16.8–68.7] (n=10), 14.2 steps",
        "oracle@0.5",
    ] {
        assert!(screen.contains(shown), "no {shown:?} in\n{screen}");
    }
    insta::assert_snapshot!(screen);
}

#[test]
fn reads_come_back_from_job_threads_and_an_older_answer_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (run, first) = corrected_run(dir.path());
    let catalog = showcase();
    let second = {
        let mut store = Store::open_existing(&run).unwrap();
        let s = catalog.scenarios[0].clone();
        tui_fixture::store_episode(&mut store, &s, &tui_fixture::wander(&s, 3, 11, false))
    };
    let (mut app, mut rx) = connected_app(&run, catalog);
    // Nothing is read on the UI thread: the labels come later, and say so meanwhile.
    assert!(app.labels.loading && app.labels.all.is_empty());
    key(&mut app, "3");
    assert!(render(&app, 140, 12).contains("loading…"));
    settle(&mut app, &mut rx);
    assert!(!app.labels.loading && !app.labels.all.is_empty());

    // Two episodes asked for, the first's answer arriving last: the second stays shown.
    app.open_episode(first);
    app.open_episode(second);
    let mut answers = Vec::new();
    while answers.len() < 2 {
        match rx.try_recv() {
            Ok(e @ Event::Read { .. }) => answers.push(e),
            Ok(other) => app.handle(other),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
        }
    }
    answers.sort_by_key(|e| match e {
        Event::Read {
            read: Read::Episode { id, .. },
            ..
        } => *id != second,
        _ => true,
    });
    for e in answers {
        app.handle(e);
    }
    assert!(!app.reading_any());
    assert_eq!(app.episode.episode_id, Some(second));
    assert_eq!(app.episode.steps.len(), 3);
}

#[test]
fn quitting_asks_first_while_a_job_runs() {
    let (_dir, mut app, _) = fresh();
    app.train.running = true;
    key(&mut app, "q");
    assert!(!app.should_quit);
    assert!(matches!(app.overlay, Some(Overlay::ConfirmQuit(_))));
    insta::assert_snapshot!(render(&app, 100, 20));
    key(&mut app, "n");
    assert!(!app.should_quit);
    app.train.running = false;
    key(&mut app, "q");
    assert!(app.should_quit);
}

#[test]
fn a_user_key_file_rebinds_and_the_bottom_bar_follows() {
    let (_dir, mut app, _) = fresh();
    let problems = app.keymap.apply(
        Path::new("keys.yaml"),
        "scenarios:\n  play: [o]\nglobal:\n  quit: [Q]\n",
    );
    assert!(problems.is_empty(), "{problems:?}");
    let bar = render(&app, 120, 10);
    let last = bar.lines().last().unwrap();
    assert!(last.contains(" o  play "), "{last}");
    assert!(last.contains(" Q  quit "), "{last}");
    key(&mut app, "o");
    assert_eq!(app.screen, Screen::Episode);
}

#[test]
fn a_live_step_streams_its_tokens_into_the_trace() {
    let (_dir, mut app, _) = fresh();
    key(&mut app, "\n"); // play the first scenario (no live session here: a message says so)
    assert_eq!(app.screen, Screen::Episode);
    app.note = None;
    app.handle(Event::Session(SessionEvent::Loaded {
        policy: "SmolLM2-135M-Instruct.Q4_1".into(),
    }));
    app.note = None;
    app.handle(Event::Session(SessionEvent::Generating { index: 0 }));
    for piece in ["REASON:", " A mug", " is often", " in a cabinet"] {
        app.handle(Event::Session(SessionEvent::Token { text: piece.into() }));
    }
    insta::assert_snapshot!(render(&app, 120, 16));
}

#[test]
fn live_steps_do_not_land_on_a_stored_episode_being_shown() {
    let (_dir, mut app, id) = fresh();
    app.open_episode(id);
    let before = app.episode.steps.len();
    app.handle(Event::Session(SessionEvent::Generating { index: 0 }));
    app.handle(Event::Session(SessionEvent::Token {
        text: "REASON".into(),
    }));
    assert_eq!(app.episode.steps.len(), before);
    assert!(app.episode.streaming.is_empty());
}

#[test]
fn the_bottom_bar_shows_a_key_exactly_when_it_does_something() {
    let (_dir, mut app, _) = fresh();
    let bar = |app: &App| render(app, 160, 10).lines().last().unwrap().to_string();
    // Nothing played yet: no step, no run, no restart, no teacher.
    key(&mut app, "2");
    let shown = bar(&app);
    for hidden in [" s  step ", " r  run ", " n  new seed ", " t  ask teacher "] {
        assert!(!shown.contains(hidden), "{hidden:?} in {shown}");
    }
    key(&mut app, "sr");
    assert!(app.episode.steps.is_empty() && !app.episode.running);
    key(&mut app, "n");
    let note = app.note.clone().unwrap();
    assert!(
        note.error && note.text.contains("no scenario to restart"),
        "{note:?}"
    );
    // Labels: undo appears with the first decision and goes with the last undo.
    key(&mut app, "3");
    assert!(!bar(&app).contains(" u  undo "));
    key(&mut app, "a");
    assert!(bar(&app).contains(" u  undo "), "{}", bar(&app));
    key(&mut app, "u");
    assert!(!bar(&app).contains(" u  undo "));
    // Every key the bar offers asks for its action here.
    for (k, label) in app.hints() {
        assert!(app.action_for(k).is_some(), "{k}: {label}");
    }
}

#[test]
fn the_live_teacher_shows_beside_each_live_step_and_interventions_are_marked() {
    let (_dir, mut app, _) = fresh();
    key(&mut app, "\n"); // play the first scenario (no live session here)
    app.note = None;
    let s = app.episode.scenario.clone().unwrap();
    // The student looks, the oracle's action is taken instead of its second step, the student
    // looks again.
    let mut env = s.body.guided(s.horizon);
    let mut steps = Vec::new();
    for i in 0..3 {
        let admissible = env.admissible();
        let (reason, action, by) = if i == 1 {
            let advice = env.advise(true).unwrap();
            (advice.reason, advice.action, Some("teacher:oracle@1"))
        } else {
            ("I look around first.".to_string(), "look".to_string(), None)
        };
        let outcome = env.step(&action);
        let mut step = StepRecord::scripted(
            reason,
            action,
            env.observation().to_string(),
            f64::from(outcome.reward),
            outcome.done,
            admissible,
        );
        step.intervention = by.map(str::to_string);
        steps.push(step);
    }
    let mut oracle = OracleTeacher::new(1.0, 0);
    for (i, step) in steps.iter().enumerate() {
        app.handle(Event::Session(SessionEvent::StepFinished {
            index: i,
            step: Box::new(step.clone()),
        }));
        let result = oracle.correct_step(&s, &partial(&s, 0, &steps[..=i]), i);
        app.handle(Event::LiveTeacher(Answer {
            generation: app.episode.generation,
            step: i,
            teacher: "oracle@1".into(),
            result,
        }));
    }
    // An answer for an episode left behind is dropped.
    app.handle(Event::LiveTeacher(Answer {
        generation: app.episode.generation - 1,
        step: 0,
        teacher: "oracle@1".into(),
        result: Ok(None),
    }));
    assert!(app.episode.live[&0].result.as_ref().unwrap().is_some());
    key(&mut app, "k"); // the oracle's step
    insta::assert_snapshot!(render(&app, 150, 24));
}

/// Applies what the job threads send until the loop or evaluation started on the Iterations
/// screen has ended and the reads it asked for are back; panics after `secs`.
fn finish_job(app: &mut App, rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>, secs: u64) {
    let start = std::time::Instant::now();
    while app.iterations.job.running.is_some() {
        match rx.try_recv() {
            Ok(event) => app.handle(event),
            Err(_) => {
                assert!(
                    start.elapsed().as_secs() < secs,
                    "the job did not end within {secs} s; the screen:\n{}",
                    render(app, 160, 45)
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
    settle(app, rx);
}

/// The LEAP loop started from the Iterations screen on the tiny model and a small scenario
/// set: one iteration after behaviour cloning, reported stage by stage, then the report's table
/// with both students; started again, it resumes after the stages done and redoes none.
#[test]
fn the_iterations_screen_runs_the_loop_and_resumes_it() {
    use leap::tui::screens::iterations::JobKind;
    let dir = tempfile::tempdir().unwrap();
    let (tiny, scenarios) = common::tiny_workspace(dir.path(), 2, 2);
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let catalog = leap::tui::catalog::Catalog::load(vec![scenarios]);
    let init = leap::tui::Init {
        model: tiny.clone(),
        horizon: Some(3),
        ..tui_fixture::init(&run, catalog)
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut app = App::with_channel(init, tx);
    settle(&mut app, &mut rx);

    // One iteration (the default is `leap iterate`'s two); the settings used are shown.
    key(&mut app, "5-");
    assert_eq!(app.iterations.job.iters, 1);
    key(&mut app, "s");
    assert!(app.iterations.job.running.is_some());
    let screen = render(&app, 160, 45);
    assert!(screen.contains("iterations 1"), "{screen}");
    assert!(screen.contains("tiny.gguf"), "{screen}");
    // Quitting now would ask first.
    assert!(
        app.running_jobs().contains(&"the LEAP loop".to_string()),
        "{:?}",
        app.running_jobs()
    );
    finish_job(&mut app, &mut rx, 1200);
    let job = &app.iterations.job;
    assert_eq!(
        job.outcome.as_deref(),
        Some("loop finished"),
        "{:?}",
        job.log
    );
    for stage in [
        "done: iteration 0: training",
        "done: iteration 0: evaluation on test",
        "done: iteration 1: student rollouts on train",
        "done: iteration 1: training",
        "done: iteration 1: evaluation on test",
        "done: zero-shot student on test",
    ] {
        assert!(
            job.log.iter().any(|l| l.starts_with(stage)),
            "no {stage:?} in {:?}",
            job.log
        );
    }
    // The report's table, read again as the stages finished.
    let rows: Vec<(&str, bool)> = app
        .iterations
        .rows()
        .iter()
        .map(|r| (r.name.as_str(), r.test.is_some()))
        .collect();
    assert_eq!(
        rows,
        [("zero-shot", true), ("iter-0 (BC)", true), ("iter-1", true)]
    );
    let stages = Store::open_existing(&run).unwrap().stages().unwrap().len();

    // Started again: every stage is done, so it says so and redoes none.
    key(&mut app, "s");
    finish_job(&mut app, &mut rx, 120);
    let job = &app.iterations.job;
    assert_eq!(job.outcome.as_deref(), Some("loop finished"));
    assert_eq!(job.resuming.len(), stages, "{:?}", job.resuming);
    assert!(
        job.resuming.contains(&"iteration 1: training".to_string()),
        "{:?}",
        job.resuming
    );
    assert!(
        !job.log.iter().any(|l| l.starts_with("done:")),
        "{:?}",
        job.log
    );
    assert!(render(&app, 160, 45).contains("resuming: stages already done: iteration 0:"));
    assert_eq!(
        Store::open_existing(&run).unwrap().stages().unwrap().len(),
        stages
    );

    // An evaluation of the current student: with none loaded, the run's latest adapter.
    key(&mut app, "e");
    assert_eq!(
        app.iterations.job.running.map(|(k, _)| k),
        Some(JobKind::Eval)
    );
    finish_job(&mut app, &mut rx, 300);
    let outcome = app.iterations.job.outcome.clone().unwrap_or_default();
    assert!(
        outcome.starts_with("evaluated: eval-test-iter-1: "),
        "{outcome} {:?}",
        app.iterations.job.log
    );
}

/// Fails, showing the screen, unless it shows each of `shown`.
fn assert_shows(screen: &str, shown: &[&str]) {
    for text in shown {
        assert!(screen.contains(text), "no {text:?} in\n{screen}");
    }
}

/// What a loop job reports, as the Iterations screen shows it: the stages already done when it
/// resumed, the stage it is in with its progress, the stages it finished, a cancel, and a loop
/// that waits for labels.
#[test]
fn the_iterations_screen_shows_the_loop_stage_by_stage() {
    use leap::tui::event::{LoopEnd, LoopJobEvent as L};
    use leap::tui::screens::iterations::JobKind;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (_dir, mut app, _) = fresh();
    key(&mut app, "5");
    let cancel = Arc::new(AtomicBool::new(false));
    app.links.loop_cancel = Some(cancel.clone());
    app.iterations.job.running = Some((JobKind::Loop, std::time::Instant::now()));
    for e in [
        L::Resuming(vec!["iteration 0: dataset".into()]),
        L::Stage {
            iteration: Some(0),
            stage: "training".into(),
        },
        L::Progress {
            done: 3,
            total: 10,
            unit: "training steps",
        },
    ] {
        app.handle(Event::Loop(e));
    }
    assert_shows(
        &render(&app, 120, 40),
        &[
            "the LEAP loop running",
            "resuming: stages already done: iteration 0: dataset",
            "now: iteration 0: training  3/10 training steps",
            "x  cancel",
        ],
    );
    // Quitting asks first.
    key(&mut app, "q");
    assert!(
        matches!(app.overlay, Some(Overlay::ConfirmQuit(ref jobs)) if jobs.contains(&"the LEAP loop".to_string()))
    );
    key(&mut app, "n");
    // x cancels after the current unit of work.
    key(&mut app, "x");
    assert!(cancel.load(Ordering::Relaxed));
    app.handle(Event::Loop(L::Finished {
        iteration: Some(0),
        stage: "training".into(),
        seconds: 12.5,
    }));
    app.handle(Event::Loop(L::Done(Ok(LoopEnd::WaitingForLabels {
        iteration: 1,
        pending: 4,
    }))));
    assert!(app.iterations.job.running.is_none() && app.links.loop_cancel.is_none());
    assert_shows(
        &render(&app, 120, 40),
        &[
            "done: iteration 0: training (12.5 s)",
            "iteration 1 waits for 4 labels: decide them on the Labels screen, then start again",
        ],
    );
}

#[test]
fn the_episode_screens_privileged_pane_shows_the_scenarios_notes() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut store = leap::store::Store::open(&run).unwrap();
    let catalog = tui_fixture::showcase();
    let s = catalog
        .scenarios
        .iter()
        .find(|s| s.id == "showcase-morning-coffee")
        .unwrap();
    let record = tui_fixture::wander(s, 3, 1, false);
    let id = tui_fixture::store_episode(&mut store, s, &record);
    drop(store);
    let mut app = app(&run, catalog);
    app.open_episode(id);
    app.screen = Screen::Episode;
    key(&mut app, "p");
    let screen = render(&app, 150, 40);
    common::assert_shows(
        &screen,
        &["note: The household keeps its mugs in the cabinet by the"],
    );
}

#[test]
fn a_key_files_problems_stay_shown_while_the_student_loads() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = corrected_run(dir.path());
    let file = dir.path().join("keys.yaml");
    std::fs::write(&file, "episode:\n  bogus: [z]\n").unwrap();
    let (keymap, problems) = leap::tui::keys::Keymap::load(Some(&file)).unwrap();
    let mut init = tui_fixture::init(&run, showcase());
    init.keymap = keymap;
    init.problems = problems;
    let mut app = App::new(init);
    // What `leap tui` hears at once, before its first frame is read.
    app.handle(Event::Session(SessionEvent::Loading {
        what: "SmolLM2-135M-Instruct.Q4_1".into(),
    }));
    app.handle(Event::Session(SessionEvent::Loaded {
        policy: "SmolLM2-135M-Instruct.Q4_1".into(),
    }));
    let screen = render(&app, 200, 20);
    assert!(
        screen.contains(&format!("{}:2:3: unknown action `bogus`", file.display())),
        "{screen}"
    );
    // Dismissed, it gives way to what follows.
    key(&mut app, "\x1b");
    app.info("student ready");
    assert!(render(&app, 200, 20).contains("student ready"));
}

#[test]
fn a_key_file_that_leaves_no_way_to_quit_is_refused_where_it_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let load = |text: &str| {
        let file = dir.path().join("keys.yaml");
        std::fs::write(&file, text).unwrap();
        leap::tui::keys::Keymap::load(Some(&file))
            .map(|(_, problems)| problems)
            .map_err(|e| e.to_string().replace(&file.display().to_string(), "K"))
    };
    let no_key = "K:2:9: `quit` has no usable key, so the workbench could not be left; bind at \
                  least one (the default is `quit: [q, ctrl-c]`)";
    assert_eq!(load("global:\n  quit: []\n"), Err(no_key.to_string()));
    assert_eq!(
        load("global:\n  quit: [hyper-q]\n"),
        Err(format!(
            "{no_key}\nK:2:10: unknown key `hyper-q`, expected a character or a key name like \
             enter, esc, ctrl-c, f1"
        ))
    );
    assert_eq!(
        load("global:\n  quit: [s]\n"),
        Err(
            "K:2:9: every key of `quit` is taken on the scenarios screen (s is cycle_split), so \
             the workbench could not be left from there; bind `quit` to a key that screen \
             leaves free"
                .to_string()
        )
    );
    assert_eq!(load("global:\n  quit: [Q]\n"), Ok(Vec::new()));

    // The binary says so on stderr before it takes the screen, and `--check-keys` checks.
    let file = dir.path().join("keys.yaml");
    std::fs::write(&file, "global:\n  quit: []\n").unwrap();
    let leap = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_leap"));
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["tui", "--run"])
            .arg(dir.path().join("run"))
            .arg("--keys")
            .arg(&file);
        cmd
    };
    let out = leap().output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: {}:2:9: `quit` has no usable key",
            file.display()
        )),
        "{stderr}"
    );
    std::fs::write(&file, "episode:\n  bogus: [z]\n").unwrap();
    let out = leap().arg("--check-keys").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "warning: {}:2:3: unknown action `bogus` in `episode`",
            file.display()
        )),
        "{stderr}"
    );
    assert!(
        !dir.path().join("run").exists(),
        "checking keys made no run"
    );
}

#[test]
fn control_characters_from_the_model_show_escaped_on_every_screen() {
    let hostile = "fine\x1b[2J\x1b]0;pwned\x07";
    let escaped = "fine\\x1b[2J\\x1b]0;pwned\\x07";
    let dir = tempfile::tempdir().unwrap();
    let (run, id) = corrected_run(dir.path());
    let mut store = Store::open(&run).unwrap();
    let mut record = store.episode(id).unwrap().unwrap().record;
    record.key = "hostile/0".into();
    record.steps[0].reason = Some(hostile.into());
    record.steps[0].action = format!("look{hostile}");
    let catalog = showcase();
    let s = catalog
        .scenarios
        .iter()
        .find(|s| s.id == record.scenario_id)
        .unwrap()
        .clone();
    let stored = tui_fixture::store_episode(&mut store, &s, &record);
    let mut app = app(&run, catalog);

    // A stored step, in the trace and in its detail.
    app.open_episode(stored);
    app.screen = Screen::Episode;
    app.episode.cursor.selected = 0;
    let screen = render(&app, 200, 40);
    assert!(screen.contains(&format!("REASON: {escaped}")), "{screen}");
    assert!(screen.contains(&format!("look{escaped}")), "{screen}");

    // A live step as it streams.
    let (_dir, mut app, _) = fresh();
    key(&mut app, "\n");
    app.handle(Event::Session(SessionEvent::Generating { index: 0 }));
    app.handle(Event::Session(SessionEvent::Token {
        text: format!("REASON: {hostile}"),
    }));
    let screen = render(&app, 200, 16);
    assert!(screen.contains(&format!("REASON: {escaped}")), "{screen}");
}

#[test]
fn a_stored_episode_stopped_in_a_cycle_says_so_on_the_episode_screen() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut store = leap::store::Store::open(&run).unwrap();
    let catalog = tui_fixture::showcase();
    let s = &catalog.scenarios[0];
    let mut record = tui_fixture::wander(s, 3, 1, false);
    record.stopped = Some("cycle at step 4 (a repeat of step 2)".into());
    let id = tui_fixture::store_episode(&mut store, s, &record);
    drop(store);
    let mut app = app(&run, catalog);
    app.open_episode(id);
    app.screen = Screen::Episode;
    let screen = render(&app, 160, 30);
    common::assert_shows(
        &screen,
        &["not won (stopped: cycle at step 4 (a repeat of step 2))"],
    );
}
