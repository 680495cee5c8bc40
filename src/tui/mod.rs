//! The workbench: a terminal app over the library. It steps live episodes (through
//! [`crate::session`]), asks the teacher, reviews labels and trains, calling the same functions
//! as the CLI; everything it shows comes from, and goes to, the run database.
//!
//! Shape: the session, the file watcher and the jobs run on threads of their own and send
//! [`event::Event`]s on one channel. The event loop is a tokio task that awaits that channel, the
//! terminal's event stream and a tick together; [`app::App::handle`] turns keys into
//! [`action::Action`]s through the [`keys::Keymap`] and applies them (through the binding tables
//! of [`app`], which the bottom bar is drawn from too) and the other events; [`app::App::view`]
//! draws once per burst of events.

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
use std::time::Duration;

use crossterm::event::EventStream;
use futures_util::StreamExt;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::MissedTickBehavior;

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
    /// An OpenAI-compatible server offered as the teacher (its API key, if any, is read from
    /// the environment variable it names when asked).
    pub teacher_server: Option<crate::agent::remote::RemoteConfig>,
    /// Layers of the student (and the self teacher) offloaded to the GPU.
    pub gpu_layers: u32,
    /// Context of the student (and the self teacher), in tokens.
    pub ctx: u32,
    /// What the Iterations screen's report counts besides the run: evaluations from other run
    /// folders, other runs to compare.
    pub report: crate::report::Sources,
}

/// Runs the workbench until the user quits. The terminal is restored on every way out.
pub fn run(options: Options) -> std::io::Result<()> {
    let mut problems = Vec::new();
    let keyfile = options.keys.clone().or_else(keys::Keymap::user_file);
    let (keymap, key_problems) = keys::Keymap::load(keyfile.as_deref())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    problems.extend(key_problems);
    let catalog = catalog::Catalog::load(options.scenarios.clone());

    let (tx, rx) = unbounded_channel();
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
    let mut app = App::with_channel(
        Init {
            run_dir: options.run_dir.clone(),
            catalog,
            keymap,
            model: options.model.clone(),
            horizon: options.horizon,
            by,
            problems,
            teacher_server: options.teacher_server.clone(),
            gpu_layers: options.gpu_layers,
            ctx: options.ctx,
            report: options.report.clone(),
        },
        tx.clone(),
    );

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

    // One thread is enough: the loop only waits and draws; the heavy work has threads of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let mut terminal = terminal::enter()?;
    let result = runtime.block_on(event_loop(&mut app, &mut terminal, rx));
    terminal::restore();
    // Stops the session after its current step.
    if let Some(session) = app.links.session.take() {
        session.shutdown();
    }
    result
}

/// How often the app gets a [`event::Event::Tick`] (elapsed times, spinners).
const TICK: Duration = Duration::from_millis(250);

/// Draws, then waits for the next event from the terminal, the channel or the tick, handles it
/// and everything already queued behind it (a burst of tokens), and draws again, until the app
/// quits or the terminal's input ends.
async fn event_loop(
    app: &mut App,
    terminal: &mut terminal::Term,
    mut rx: UnboundedReceiver<event::Event>,
) -> std::io::Result<()> {
    let mut input = EventStream::new();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    terminal.draw(|f| app.view(f))?;
    loop {
        let first = tokio::select! {
            Some(e) = rx.recv() => e,
            read = input.next() => match read {
                Some(Ok(e)) => match event::Event::from_terminal(e) {
                    Some(e) => e,
                    None => continue,
                },
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            _ = ticks.tick() => event::Event::Tick,
        };
        app.handle(first);
        while !app.should_quit
            && let Ok(more) = rx.try_recv()
        {
            app.handle(more);
        }
        if app.should_quit {
            return Ok(());
        }
        terminal.draw(|f| app.view(f))?;
    }
}
