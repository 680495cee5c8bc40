//! Everything the workbench reacts to: keys and mouse from the terminal, a tick, and what the
//! session, the watcher and the jobs report. The worker threads send on one unbounded tokio
//! channel ([`EventSender`]: sending never blocks and needs no runtime); the event loop in
//! [`super::run`] awaits that channel, the terminal's event stream and the tick together.

use crossterm::event::{Event as TerminalEvent, KeyEvent, KeyEventKind, MouseEvent};

use crate::scenario::Loaded;
use crate::session::SessionEvent;
use crate::store::Label;
use crate::teacher::CorrectionReport;

/// The sending side of the workbench's event channel, cloned into every thread that reports.
pub type EventSender = tokio::sync::mpsc::UnboundedSender<Event>;

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
    /// The live teacher answered one step of the episode shown (or of one left behind).
    LiveTeacher(crate::teacher::live::Answer),
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

impl Event {
    /// The workbench's event for a terminal event, if it reacts to it (key releases and focus
    /// changes it ignores).
    pub fn from_terminal(event: TerminalEvent) -> Option<Event> {
        match event {
            TerminalEvent::Key(k) if k.kind != KeyEventKind::Release => Some(Event::Key(k)),
            TerminalEvent::Mouse(m) => Some(Event::Mouse(m)),
            TerminalEvent::Resize(..) => Some(Event::Resize),
            _ => None,
        }
    }
}
