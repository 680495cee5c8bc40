//! Rendering cost of the workbench: the Episode screen with a 1,000-step episode selected in
//! the middle (privileged state shown) while the run holds 10,000 labels, drawn at 200x50 on
//! ratatui's TestBackend. Target: under 2 ms per frame. Also the Labels screen over the same
//! labels, for comparison.

#[path = "../tests/tui_fixture/mod.rs"]
mod fixture;

use std::time::{Duration, Instant};

use leap::store::Store;
use leap::teacher::{Corrections, Leak, StepCorrection};
use leap::tui::Screen;

const STEPS: usize = 1_000;
const EPISODES: usize = 10;
const FRAMES: usize = 500;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let catalog = fixture::showcase();
    let s = catalog
        .scenarios
        .iter()
        .find(|s| s.id == "showcase-warm-bread")
        .unwrap()
        .clone();
    let setup = Instant::now();
    let mut store = Store::open(&run).unwrap();
    let mut first = None;
    for e in 0..EPISODES {
        let record = fixture::wander(&s, STEPS, e as u64, true);
        let id = fixture::store_episode(&mut store, &s, &record);
        first.get_or_insert(id);
        let trajectory = record
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| StepCorrection {
                timestep: i as u32,
                is_corrected: i % 3 != 0,
                corrected_reason: format!(
                    "The bread may be on the countertop 1; I check it first (step {i})."
                ),
                corrected_action: step.admissible[0].clone(),
                leaks: if i % 10 == 0 {
                    vec![Leak {
                        fact: "bread 1 is on countertop 1".into(),
                        text: "on the countertop 1".into(),
                    }]
                } else {
                    Vec::new()
                },
            })
            .collect();
        let corrections = Corrections {
            summary: "bench".into(),
            trajectory,
            failures: Vec::new(),
        };
        store
            .insert_corrections(id, "bench", None, &record, &corrections)
            .unwrap();
    }
    drop(store);
    let mut app = fixture::app(&run, catalog);
    assert_eq!(app.labels.all.len(), STEPS * EPISODES);
    app.open_episode(first.unwrap());
    assert_eq!(app.episode.steps.len(), STEPS);
    app.screen = Screen::Episode;
    app.episode.cursor.selected = STEPS / 2;
    app.episode.show_privileged = true;
    app.episode.refresh_privileged();
    println!(
        "setup: {EPISODES} episodes of {STEPS} steps, {} labels, in {:.1} s",
        app.labels.all.len(),
        setup.elapsed().as_secs_f64()
    );

    let mut terminal = fixture::terminal(200, 50);
    let mut measure = |app: &mut leap::tui::App, name: &str| {
        // Warm up, then time each frame, moving the selection so that the frame is never the
        // same as the one before (the diff against the previous buffer does real work).
        for _ in 0..20 {
            terminal.draw(|f| app.view(f)).unwrap();
        }
        let mut times: Vec<Duration> = Vec::with_capacity(FRAMES);
        for i in 0..FRAMES {
            let down = i % 2 == 0;
            app.update(if down {
                leap::tui::action::Action::Down
            } else {
                leap::tui::action::Action::Up
            });
            let t = Instant::now();
            terminal.draw(|f| app.view(f)).unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        let mean = times.iter().sum::<Duration>().as_secs_f64() / FRAMES as f64 * 1e3;
        let p50 = times[FRAMES / 2].as_secs_f64() * 1e3;
        let p99 = times[FRAMES * 99 / 100].as_secs_f64() * 1e3;
        println!("{name:<55} mean {mean:.3} ms/frame, p50 {p50:.3}, p99 {p99:.3} (target < 2 ms)");
        mean
    };
    let episode = measure(
        &mut app,
        "episode screen, 1,000 steps, 10,000 labels, 200x50",
    );
    app.episode.show_privileged = false;
    measure(&mut app, "  the same, privileged state hidden");
    app.screen = Screen::Labels;
    measure(&mut app, "labels screen, 10,000 labels, 200x50");
    assert!(
        episode < 2.0,
        "the episode screen takes {episode:.3} ms per frame"
    );
}
