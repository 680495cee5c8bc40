//! The workbench: a terminal app over the library. It steps live episodes (through
//! [`crate::session`]), asks the teacher, reviews labels and trains, calling the same functions
//! as the CLI; everything it shows comes from, and goes to, the run database.
//!
//! Shape: terminal input, a tick, the session, the file watcher and the jobs each send
//! [`event::Event`]s on one channel; [`app::App::handle`] turns keys into [`action::Action`]s
//! through the [`keys::Keymap`] and applies them and the other events; [`app::App::view`] draws.

pub mod action;
pub mod app;
pub mod catalog;
pub mod event;
pub mod jobs;
pub mod keys;
pub mod screens;
pub mod terminal;
pub mod theme;
mod view;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::time::Duration;

use crate::agent::Sampling;
use crate::agent::prompt::Prompt;
use crate::session::{Session, SessionConfig};

pub use app::{App, Init, Screen};

/// How to open the workbench.
#[derive(Debug, Clone)]
pub struct Options {
    pub run_dir: PathBuf,
    pub scenarios: Vec<PathBuf>,
    pub model: PathBuf,
    /// Key file on top of the defaults (default: the user's, if it exists).
    pub keys: Option<PathBuf>,
    pub horizon: Option<u32>,
    pub history: usize,
    pub sampling: Sampling,
    /// An OpenAI-compatible server offered as the teacher: base URL and model name.
    pub teacher_server: Option<(String, String)>,
}

/// Runs the workbench until the user quits. The terminal is restored on every way out.
pub fn run(options: Options) -> std::io::Result<()> {
    let mut problems = Vec::new();
    let keyfile = options.keys.clone().or_else(keys::Keymap::user_file);
    let (keymap, key_problems) = keys::Keymap::load(keyfile.as_deref());
    problems.extend(key_problems);
    let catalog = catalog::Catalog::load(options.scenarios.clone());

    let (tx, rx) = channel();
    let watch_tx = tx.clone();
    let watcher = catalog::watch(&options.scenarios, move |loaded| {
        let _ = watch_tx.send(event::Event::Scenarios(loaded));
    });
    let _watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            problems.push(e);
            None
        }
    };

    let by = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .map_or_else(|| "workbench".to_string(), |u| format!("{u}@workbench"));
    let mut app = App::new(Init {
        run_dir: options.run_dir.clone(),
        catalog,
        keymap,
        model: options.model.clone(),
        horizon: options.horizon,
        by,
        problems,
        teacher_server: options.teacher_server.clone(),
    });

    let session_tx = tx.clone();
    let session = Session::spawn(
        options.run_dir.clone(),
        Prompt::builtin(options.history),
        SessionConfig {
            sampling: options.sampling.clone(),
            horizon: options.horizon,
            iteration: None,
        },
        Box::new(move |e| {
            let _ = session_tx.send(event::Event::Session(e));
        }),
    );
    app.connect(tx.clone(), session);

    let mut terminal = terminal::enter()?;
    let stop = Arc::new(AtomicBool::new(false));
    let input = event::spawn_input(tx.clone(), stop.clone());
    let ticks = event::spawn_ticks(tx, Duration::from_millis(250), stop.clone());
    let result = (|| -> std::io::Result<()> {
        terminal.draw(|f| app.view(f))?;
        while let Ok(first) = rx.recv() {
            app.handle(first);
            // Take everything already waiting (a burst of tokens) before drawing once.
            while let Ok(more) = rx.try_recv() {
                app.handle(more);
                if app.should_quit {
                    break;
                }
            }
            if app.should_quit {
                break;
            }
            terminal.draw(|f| app.view(f))?;
        }
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    terminal::restore();
    // Stops the session after its current step.
    if let Some(session) = app.links.session.take() {
        session.shutdown();
    }
    let _ = input.join();
    let _ = ticks.join();
    result
}
