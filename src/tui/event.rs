//! Everything the workbench reacts to, from every thread, as one enum on one channel: keys and
//! mouse from the terminal, a tick, and what the session, the watcher and the jobs report.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;

use ratatui::crossterm::event::{self, KeyEvent, MouseEvent};

use crate::scenario::Loaded;
use crate::session::SessionEvent;
use crate::store::Label;
use crate::teacher::CorrectionReport;

pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize,
    /// A few times a second, for elapsed times and spinners.
    Tick,
    Session(SessionEvent),
    /// The scenario files changed and were loaded again.
    Scenarios(Loaded),
    /// The teacher corrected an episode: the report and the episode's labels, or why not.
    Teacher {
        episode_id: i64,
        result: Result<(CorrectionReport, Vec<Label>), String>,
    },
    Bulk(BulkEvent),
    Train(TrainEvent),
}

/// What a bulk accept reports.
pub enum BulkEvent {
    Progress {
        done: usize,
        total: usize,
    },
    Decided(Box<Label>),
    /// Ended (all done, cancelled or failed): the labels it decided, and the error if any.
    Done {
        ids: Vec<i64>,
        error: Option<String>,
    },
}

/// What a training job reports (see `jobs::spawn_train`).
pub enum TrainEvent {
    Log(String),
    /// The rows are tokenized: the dataset's size.
    Dataset {
        rows: usize,
        tokens: usize,
    },
    Progress {
        step: u64,
        total: u64,
        epoch: f64,
        loss: Option<f64>,
        tokens_per_s: f64,
        eta_s: f64,
    },
    EvalLoss {
        step: u64,
        loss: f64,
    },
    /// Ended: the adapter written, or why not.
    Done(Result<std::path::PathBuf, String>),
}

/// Reads the terminal on its own thread until `stop` is set.
pub fn spawn_input(tx: Sender<Event>, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("leap-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match event::poll(Duration::from_millis(100)) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => return,
                }
                let sent = match event::read() {
                    Ok(event::Event::Key(k)) if k.kind != event::KeyEventKind::Release => {
                        tx.send(Event::Key(k))
                    }
                    Ok(event::Event::Mouse(m)) => tx.send(Event::Mouse(m)),
                    Ok(event::Event::Resize(..)) => tx.send(Event::Resize),
                    Ok(_) => Ok(()),
                    Err(_) => return,
                };
                if sent.is_err() {
                    return;
                }
            }
        })
        .expect("a thread starts")
}

/// Sends a tick every `every` until `stop` is set.
pub fn spawn_ticks(tx: Sender<Event>, every: Duration, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("leap-tick".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(every);
                if tx.send(Event::Tick).is_err() {
                    return;
                }
            }
        })
        .expect("a thread starts")
}
