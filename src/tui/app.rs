//! The workbench's state and its one `update`. Keys become actions through the keymap; each
//! place the keys can be (a screen, an overlay) has a table of [`Binding`]s, and an action does
//! something only through its binding, when its [`Gate`] is open. The bottom bar is drawn from
//! the same tables, so a hint is shown exactly when its key acts.
//!
//! One file per place: [`global`] (quitting, moving, screens), [`overlays`] (help, questions,
//! pickers, the filter and the label editor), [`scenarios`], [`episode`], [`labels`], [`train`],
//! [`iterations`]; [`input`] turns terminal events into actions and [`events`] applies what the
//! worker threads report.

mod bindings;
mod episode;
mod events;
mod global;
mod input;
mod iterations;
mod labels;
mod overlays;
mod reads;
mod scenarios;
mod train;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::catalog::Catalog;
use super::event::{EventSender, ReadKind};
use super::keys::Keymap;
use super::screens::Cursor;
use super::screens::episode::{EpisodeScreen, Phase, TeacherKind};
use super::screens::iterations::IterationsScreen;
use super::screens::labels::{Editor, LabelsScreen};
use super::screens::scenarios::ScenariosScreen;
use super::screens::train::TrainScreen;
use crate::report::Sources;
use crate::session::Session;
use crate::store::Store;

pub use super::action::{Action, Section};
pub use bindings::{Binding, Gate, Hint};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Scenarios,
    Episode,
    Labels,
    Train,
    Iterations,
}

impl Screen {
    pub const ALL: [Screen; 5] = [
        Screen::Scenarios,
        Screen::Episode,
        Screen::Labels,
        Screen::Train,
        Screen::Iterations,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Scenarios => "Scenarios",
            Screen::Episode => "Episode",
            Screen::Labels => "Labels",
            Screen::Train => "Train",
            Screen::Iterations => "Iterations",
        }
    }

    pub fn section(self) -> Section {
        match self {
            Screen::Scenarios => Section::Scenarios,
            Screen::Episode => Section::Episode,
            Screen::Labels => Section::Labels,
            Screen::Train => Section::Train,
            Screen::Iterations => Section::Iterations,
        }
    }
}

/// Something drawn over the screen that takes the keys while it is open.
pub enum Overlay {
    Help,
    /// Quit although jobs run (their names).
    ConfirmQuit(Vec<String>),
    /// Accept these pending labels.
    ConfirmBulk(Vec<i64>),
    /// A filter being typed for the current screen.
    Filter(String),
    Editor(Box<Editor>),
    Picker(Picker),
}

pub struct Picker {
    pub title: String,
    pub items: Vec<(String, Pick)>,
    pub cursor: Cursor,
    /// The read that fills it, while it is out.
    pub loading: Option<ReadKind>,
}

#[derive(Debug, Clone)]
pub enum Pick {
    /// The base model, with this adapter if any.
    Student(Option<PathBuf>),
    Episode(i64),
    Teacher(TeacherKind, f64),
}

/// A message at the bottom: what just happened, or what went wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub text: String,
    pub error: bool,
    /// A problem found while starting (the key file's): kept until dismissed, so that the
    /// progress notes that follow at once ("loading ...") do not hide it before it is read.
    pub sticky: bool,
}

/// What the app needs to start; nothing here starts a thread.
pub struct Init {
    pub run_dir: PathBuf,
    pub catalog: Catalog,
    pub keymap: Keymap,
    /// The student's base model.
    pub model: PathBuf,
    /// Steps before an episode ends, instead of each scenario's own horizon.
    pub horizon: Option<u32>,
    /// Who decides labels, as the store records it.
    pub by: String,
    /// Problems found while starting (key file, watcher); shown as the first message.
    pub problems: Vec<String>,
    /// An OpenAI-compatible server to offer as the teacher (its API key, if any, is read from
    /// the environment variable it names when asked).
    pub teacher_server: Option<crate::agent::remote::RemoteConfig>,
    /// Layers of the student (and the self teacher) offloaded to the GPU.
    pub gpu_layers: u32,
    /// Context of the student (and the self teacher), in tokens.
    pub ctx: u32,
    /// What the Iterations screen's report counts besides the run (other runs to compare).
    pub report: Sources,
}

/// The threads the app drives; absent in tests that render fixed state.
#[derive(Default)]
pub struct Links {
    pub session: Option<Session>,
    pub tx: Option<EventSender>,
    pub bulk_cancel: Option<Arc<AtomicBool>>,
    pub train_cancel: Option<Arc<AtomicBool>>,
    /// The teacher answering each live step, for the teacher chosen when it started.
    pub live_teacher: Option<crate::teacher::live::LiveTeacher>,
    /// Stops the loop or evaluation started on the Iterations screen.
    pub loop_cancel: Option<Arc<AtomicBool>>,
}

pub struct App {
    pub screen: Screen,
    pub keymap: Keymap,
    pub run_dir: PathBuf,
    pub store: Option<Store>,
    pub catalog: Catalog,
    pub scenarios: ScenariosScreen,
    pub episode: EpisodeScreen,
    pub labels: LabelsScreen,
    pub train: TrainScreen,
    pub iterations: IterationsScreen,
    pub overlay: Option<Overlay>,
    pub note: Option<Note>,
    pub should_quit: bool,
    pub model: PathBuf,
    /// The adapter the student runs with, if any.
    pub adapter: Option<PathBuf>,
    pub student_loading: Option<String>,
    pub horizon: Option<u32>,
    pub by: String,
    pub teacher_server: Option<crate::agent::remote::RemoteConfig>,
    pub gpu_layers: u32,
    pub ctx: u32,
    pub report_sources: Sources,
    pub links: Links,
    /// Progress of a bulk accept or undo: (done, total).
    pub bulk: Option<(usize, usize)>,
    /// Set after a reset until the session confirms it, so that events of the old episode are
    /// not shown on the new one.
    awaiting_start: bool,
    next_seed: u64,
    /// Where each tab was drawn, for mouse clicks.
    pub(super) tabs: RefCell<Vec<(u16, u16, Screen)>>,
    reads: reads::Reads,
}

impl App {
    /// An app without worker threads (tests that render fixed state): what it reads from the
    /// run, it reads in place.
    pub fn new(init: Init) -> App {
        App::start(init, None)
    }

    /// An app whose reads of the run go to job threads and come back on `tx` from the start.
    pub fn with_channel(init: Init, tx: EventSender) -> App {
        App::start(init, Some(tx))
    }

    fn start(init: Init, tx: Option<EventSender>) -> App {
        let store = match Store::open(&init.run_dir) {
            Ok(s) => Some(s),
            Err(e) => {
                let mut app = App::blank(init, None);
                app.fail(format!("run store: {e}"));
                return app;
            }
        };
        let mut app = App::blank(init, store);
        app.links.tx = tx;
        app.refresh_dataset();
        app.reload_labels();
        app.reload_iterations();
        app
    }

    fn blank(init: Init, store: Option<Store>) -> App {
        let mut app = App {
            screen: Screen::Scenarios,
            keymap: init.keymap,
            run_dir: init.run_dir,
            store,
            catalog: init.catalog,
            scenarios: ScenariosScreen::default(),
            episode: EpisodeScreen::default(),
            labels: LabelsScreen::default(),
            train: TrainScreen::default(),
            iterations: IterationsScreen::default(),
            overlay: None,
            note: None,
            should_quit: false,
            model: init.model,
            adapter: None,
            student_loading: None,
            horizon: init.horizon,
            by: init.by,
            teacher_server: init.teacher_server,
            gpu_layers: init.gpu_layers,
            ctx: init.ctx,
            report_sources: init.report,
            links: Links::default(),
            bulk: None,
            awaiting_start: false,
            next_seed: 0,
            tabs: RefCell::new(Vec::new()),
            reads: reads::Reads::default(),
        };
        app.scenarios.refilter(&app.catalog);
        if !init.problems.is_empty() {
            app.fail(init.problems.join("; "));
            if let Some(note) = &mut app.note {
                note.sticky = true;
            }
        }
        app
    }

    /// Connects the live parts: the event channel and the session (which loads the student).
    pub fn connect(&mut self, tx: EventSender, session: Session) {
        self.links.tx = Some(tx);
        self.links.session = Some(session);
        self.load_student(None);
    }

    /// Says how things go, unless a problem found while starting is still shown.
    pub fn info(&mut self, text: impl Into<String>) {
        if self.note.as_ref().is_some_and(|n| n.sticky) {
            return;
        }
        self.note = Some(Note {
            text: text.into(),
            error: false,
            sticky: false,
        });
    }

    pub fn fail(&mut self, text: impl Into<String>) {
        self.note = Some(Note {
            text: text.into(),
            error: true,
            sticky: false,
        });
    }

    /// Names of the jobs running now (what quitting would stop).
    pub fn running_jobs(&self) -> Vec<String> {
        let mut jobs = Vec::new();
        if matches!(self.episode.phase, Phase::Generating(_)) || self.episode.running {
            jobs.push("the student is playing".to_string());
        }
        if let Some(what) = &self.student_loading {
            jobs.push(format!("loading {what}"));
        }
        if self.episode.teacher_busy {
            jobs.push("the teacher is correcting".to_string());
        }
        if self.bulk.is_some() {
            jobs.push(
                if self.labels.undoing {
                    "a bulk undo"
                } else {
                    "a bulk accept"
                }
                .to_string(),
            );
        }
        if self.train.running {
            jobs.push("training".to_string());
        }
        if let Some((kind, _)) = self.iterations.job.running {
            jobs.push(kind.name().to_string());
        }
        jobs
    }

    /// Whether a job runs that [`Action::CancelJob`] can stop.
    pub fn cancellable_job(&self) -> bool {
        self.links.train_cancel.is_some()
            || self.links.loop_cancel.is_some()
            || self.links.bulk_cancel.is_some()
            || self.train.running
            || self.bulk.is_some()
            || self.episode.running
    }

    /// The one place where an action changes state: through its binding in the current place,
    /// when the binding's gate is open. A closed gate leaves everything as it is (saying why,
    /// when there is something worth saying).
    pub fn update(&mut self, action: Action) {
        let Some(binding) = self.binding(action) else {
            return;
        };
        match (binding.when)(self) {
            Gate::Open => (binding.run)(self),
            Gate::Closed => {}
            Gate::Refused(why) => self.fail(why),
        }
    }
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}
