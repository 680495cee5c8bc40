//! Everything the workbench reacts to: keys and mouse from the terminal, a tick, and what the
//! session, the watcher and the jobs report. The worker threads send on one unbounded tokio
//! channel ([`EventSender`]: sending never blocks and needs no runtime); the event loop in
//! [`super::run`] awaits that channel, the terminal's event stream and the tick together.

use crossterm::event::{Event as TerminalEvent, KeyEvent, KeyEventKind, MouseEvent};

use std::path::PathBuf;

use crate::report::{RunReport, Sources};
use crate::scenario::{Loaded, Scenario};
use crate::session::SessionEvent;
use crate::store::{Episode, EpisodeSummary, Label, StoreError};
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
        result: Result<(CorrectionReport, Vec<Label>), super::jobs::JobError>,
    },
    /// The live teacher answered one step of the episode shown (or of one left behind).
    LiveTeacher(crate::teacher::live::Answer),
    Bulk(BulkEvent),
    Train(TrainEvent),
    /// What the LEAP loop or an evaluation started on the Iterations screen reports.
    Loop(LoopJobEvent),
    /// A read of the run asked for with `ticket` (see `jobs::spawn_read`): what was asked and
    /// what was found.
    Read {
        ticket: u64,
        read: Read,
        result: Result<Readout, StoreError>,
    },
}

/// What a screen reads from the run: queries that can take longer than a frame, so they run on
/// a job thread (`jobs::spawn_read`) and come back as [`Event::Read`].
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// Every label (the Labels screen).
    Labels,
    /// The stored episodes, newest first (the picker).
    Episodes,
    /// The adapters the student can run with: the recorded ones, newest first, then the files
    /// in the run's `adapters/` folder.
    Adapters,
    /// The report (the Iterations screen), with what else it counts.
    Report(Sources),
    /// One stored episode with its labels, to be shown at `step`.
    Episode { id: i64, step: Option<usize> },
}

/// Which kind of read: a newer request of a kind makes the answer to an older one stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadKind {
    Labels,
    Episodes,
    Adapters,
    Report,
    Episode,
}

impl Read {
    pub fn kind(&self) -> ReadKind {
        match self {
            Read::Labels => ReadKind::Labels,
            Read::Episodes => ReadKind::Episodes,
            Read::Adapters => ReadKind::Adapters,
            Read::Report(_) => ReadKind::Report,
            Read::Episode { .. } => ReadKind::Episode,
        }
    }
}

/// What a [`Read`] found.
pub enum Readout {
    Labels(Vec<Label>),
    Episodes(Vec<EpisodeSummary>),
    Adapters(Vec<PathBuf>),
    Report(Box<RunReport>),
    /// `None`: no such episode in the run.
    Episode(Option<Box<StoredEpisode>>),
}

/// A stored episode as the Episode screen shows it.
pub struct StoredEpisode {
    pub episode: Episode,
    /// The scenario as the run's snapshot of it has it (the loaded files may hold the same
    /// version, which the screen prefers).
    pub snapshot: Option<Scenario>,
    pub labels: Vec<Label>,
}

/// What a bulk accept (or a bulk undo) reports.
pub enum BulkEvent {
    Progress {
        done: usize,
        total: usize,
    },
    Decided(Box<Label>),
    /// Ended (all done, cancelled or failed): the labels it decided, and the error if any.
    Done {
        ids: Vec<i64>,
        error: Option<super::jobs::JobError>,
    },
    /// A bulk undo ended (see `jobs::spawn_bulk_undo`): how many decisions it undid, the labels
    /// whose decision it did not get to (still undoable), and the error if any.
    Undone {
        undone: usize,
        rest: Vec<i64>,
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
    Done(Result<std::path::PathBuf, super::jobs::JobError>),
}

/// What a loop or evaluation job reports (see `jobs::spawn_loop`, `jobs::spawn_eval`).
pub enum LoopJobEvent {
    /// Stages the run had already finished when the job started (`iteration N: stage`): the
    /// loop goes on after them.
    Resuming(Vec<String>),
    /// A stage begins (`iteration` is none for the baselines and a plain evaluation).
    Stage {
        iteration: Option<u32>,
        stage: String,
    },
    /// Units of work of the current stage done so far (episodes, corrections, training steps).
    Progress {
        done: u64,
        total: u64,
        unit: &'static str,
    },
    /// A stage finished, as the run records it.
    Finished {
        iteration: Option<u32>,
        stage: String,
        seconds: f64,
    },
    /// A line for the log.
    Log(String),
    /// Ended: how, or why not.
    Done(Result<LoopEnd, super::jobs::JobError>),
}

/// How a loop or evaluation job ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopEnd {
    /// The loop ran to its end.
    Finished,
    /// `pending` labels of `iteration` wait for a person (manual curation).
    WaitingForLabels { iteration: u32, pending: u64 },
    /// An evaluation ended; what it recorded.
    Evaluated(String),
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
