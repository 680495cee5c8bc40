//! The workbench's state and its one `update`: keys become actions through the keymap, actions
//! and worker events change state, and `view` draws it.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ratatui::crossterm::event::{KeyCode, KeyEvent, MouseButton, MouseEvent, MouseEventKind};
use ratatui::style::Style;

use super::action::{Action, Section};
use super::catalog::Catalog;
use super::event::{BulkEvent, Event, EventSender, TrainEvent};
use super::jobs;
use super::keys::{Key, Keymap};
use super::screens::Cursor;
use super::screens::episode::{EpisodeScreen, Phase, TeacherKind};
use super::screens::iterations::{IterationRow, IterationsScreen};
use super::screens::labels::{Editor, LabelsScreen};
use super::screens::scenarios::ScenariosScreen;
use super::screens::train::TrainScreen;
use crate::agent::local::LocalConfig;
use crate::scenario::{self, Scenario};
use crate::session::{Command, Session, SessionEvent, Student};
use crate::store::{Decision, EpisodeFilter, LabelFilter, Store};
use crate::teacher::TeacherSpec;

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
    /// An OpenAI-compatible server to offer as the teacher: base URL and model name.
    pub teacher_server: Option<(String, String)>,
}

/// The threads the app drives; absent in tests that render fixed state.
#[derive(Default)]
pub struct Links {
    pub session: Option<Session>,
    pub tx: Option<EventSender>,
    pub bulk_cancel: Option<Arc<AtomicBool>>,
    pub train_cancel: Option<Arc<AtomicBool>>,
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
    pub teacher_server: Option<(String, String)>,
    pub links: Links,
    /// Progress of a bulk accept: (done, total).
    pub bulk: Option<(usize, usize)>,
    /// Set after a reset until the session confirms it, so that events of the old episode are
    /// not shown on the new one.
    awaiting_start: bool,
    next_seed: u64,
    /// Where each tab was drawn, for mouse clicks.
    pub(super) tabs: RefCell<Vec<(u16, u16, Screen)>>,
}

impl App {
    pub fn new(init: Init) -> App {
        let store = match Store::open(&init.run_dir) {
            Ok(s) => Some(s),
            Err(e) => {
                let mut app = App::blank(init, None);
                app.fail(format!("run store: {e}"));
                return app;
            }
        };
        let mut app = App::blank(init, store);
        app.reload_labels();
        app.reload_iterations();
        app.refresh_dataset();
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
            links: Links::default(),
            bulk: None,
            awaiting_start: false,
            next_seed: 0,
            tabs: RefCell::new(Vec::new()),
        };
        app.scenarios.refilter(&app.catalog);
        if !init.problems.is_empty() {
            app.fail(init.problems.join("; "));
        }
        app
    }

    /// Connects the live parts: the event channel and the session (which loads the student).
    pub fn connect(&mut self, tx: EventSender, session: Session) {
        self.links.tx = Some(tx);
        self.links.session = Some(session);
        self.load_student(None);
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.note = Some(Note {
            text: text.into(),
            error: false,
        });
    }

    pub fn fail(&mut self, text: impl Into<String>) {
        self.note = Some(Note {
            text: text.into(),
            error: true,
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
            jobs.push("a bulk accept".to_string());
        }
        if self.train.running {
            jobs.push("training".to_string());
        }
        jobs
    }

    // ----- events -------------------------------------------------------------------------

    pub fn handle(&mut self, event: Event) {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Mouse(m) => self.on_mouse(m),
            Event::Resize | Event::Tick => {}
            Event::Session(e) => self.on_session(e),
            Event::Scenarios(loaded) => {
                let before = self.catalog.problems.len();
                self.catalog.update(loaded);
                self.scenarios.refilter(&self.catalog);
                let n = self.catalog.problems.len();
                if n > 0 {
                    self.fail(format!(
                        "scenario files reloaded: {n} problem{} (see the Scenarios screen)",
                        if n == 1 { "" } else { "s" }
                    ));
                } else {
                    self.info(format!(
                        "scenario files reloaded: {} scenarios{}",
                        self.catalog.scenarios.len(),
                        if before > 0 { ", no problems left" } else { "" }
                    ));
                }
            }
            Event::Teacher { episode_id, result } => {
                self.episode.teacher_busy = false;
                match result {
                    Ok((report, labels)) => {
                        if self.episode.episode_id == Some(episode_id) {
                            self.episode.set_labels(labels);
                        }
                        if report.correction_id.is_none() {
                            self.info("this teacher had already corrected the episode");
                        } else {
                            self.info(format!(
                                "teacher: {} labels, {} differ from the student, {} leak, {} failed",
                                report.labels, report.changed, report.leaks, report.failures
                            ));
                        }
                        self.reload_labels();
                    }
                    Err(e) => self.fail(e.to_string()),
                }
            }
            Event::Bulk(b) => match b {
                BulkEvent::Progress { done, total } => self.bulk = Some((done, total)),
                BulkEvent::Decided(label) => {
                    self.episode.update_label(&label);
                    self.labels.update(*label);
                }
                BulkEvent::Done { ids, error } => {
                    self.bulk = None;
                    self.links.bulk_cancel = None;
                    let n = ids.len();
                    if !ids.is_empty() {
                        self.labels.undo.push(ids);
                    }
                    self.labels.refilter();
                    self.refresh_dataset();
                    match error {
                        Some(e) => self.fail(format!("bulk accept: {n} accepted, then {e}")),
                        None => self.info(format!("accepted {n} labels")),
                    }
                }
            },
            Event::Train(t) => self.on_train(t),
        }
    }

    fn on_session(&mut self, e: SessionEvent) {
        // Steps of an old episode (before a reset is confirmed), or of the live one while a
        // stored episode is shown, do not touch the screen.
        let stale = self.awaiting_start || matches!(self.episode.phase, Phase::Stored { .. });
        match e {
            SessionEvent::Loading { what } => {
                self.info(format!("loading {what}…"));
                self.student_loading = Some(what);
            }
            SessionEvent::Loaded { policy } => {
                self.student_loading = None;
                self.info(format!("student ready: {policy}"));
                self.episode.policy = policy;
            }
            SessionEvent::Started { .. } => self.awaiting_start = false,
            SessionEvent::Generating { .. }
            | SessionEvent::Token { .. }
            | SessionEvent::StepFinished { .. }
                if stale => {}
            SessionEvent::Finished { key, .. } if stale => {
                self.info(format!("the live episode ended and was stored as {key}"));
            }
            SessionEvent::Generating { index } => {
                self.episode.phase = Phase::Generating(index);
                self.episode.streaming.clear();
                if self.episode.follow {
                    self.episode.cursor.selected = index;
                }
            }
            SessionEvent::Token { text } => self.episode.streaming.push_str(&text),
            SessionEvent::StepFinished { step, .. } => {
                self.episode.push_step(*step);
                self.episode.phase = Phase::Ready;
                self.episode.refresh_privileged();
            }
            SessionEvent::Finished {
                episode_id,
                key,
                won,
                steps,
            } => {
                self.episode.phase = Phase::Finished { won };
                self.episode.running = false;
                self.episode.episode_id = Some(episode_id);
                self.info(format!(
                    "episode {} after {steps} steps; stored as {key}",
                    if won { "won" } else { "not won" }
                ));
                self.episode.key = Some(key);
                self.reload_iterations();
            }
            SessionEvent::Idle => {
                self.episode.running = false;
                if matches!(self.episode.phase, Phase::Generating(_)) {
                    self.episode.phase = Phase::Ready;
                }
            }
            SessionEvent::Error { message } => {
                self.episode.running = false;
                if matches!(self.episode.phase, Phase::Generating(_)) {
                    self.episode.phase = Phase::Ready;
                }
                self.student_loading = None;
                self.fail(message);
            }
        }
    }

    fn on_train(&mut self, t: TrainEvent) {
        match t {
            TrainEvent::Log(line) => self.train.log_line(line),
            TrainEvent::Dataset { rows, tokens } => {
                self.train.dataset = Some((rows as u64, Some(tokens as u64)));
            }
            TrainEvent::Progress {
                step,
                total,
                epoch,
                loss,
                tokens_per_s,
                eta_s,
            } => {
                let p = &mut self.train.progress;
                p.step = step;
                p.total = total;
                p.epoch = epoch;
                p.tokens_per_s = tokens_per_s;
                p.eta_s = eta_s;
                if let Some(l) = loss {
                    p.loss.push((step as f64, l));
                }
            }
            TrainEvent::EvalLoss { step, loss } => {
                self.train.progress.eval_loss.push((step as f64, loss));
            }
            TrainEvent::Done(result) => {
                self.train.running = false;
                self.links.train_cancel = None;
                match result {
                    Ok(path) => {
                        self.info(format!("adapter written: {}", path.display()));
                        self.train.adapter = Some(path);
                        self.reload_iterations();
                    }
                    Err(e) => self.fail(format!("training: {e}")),
                }
            }
        }
    }

    fn on_mouse(&mut self, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollUp => self.update(Action::Up),
            MouseEventKind::ScrollDown => self.update(Action::Down),
            MouseEventKind::Down(MouseButton::Left) if m.row == 0 && self.overlay.is_none() => {
                let hit = self
                    .tabs
                    .borrow()
                    .iter()
                    .find(|(a, b, _)| (*a..*b).contains(&m.column))
                    .map(|t| t.2);
                if let Some(screen) = hit {
                    self.go(screen);
                }
            }
            _ => {}
        }
    }

    /// Turns a key into an action for the current context, or gives it to the text being typed.
    pub fn on_key(&mut self, event: KeyEvent) {
        let key = Key::from_event(&event);
        match &mut self.overlay {
            Some(Overlay::Filter(text)) => {
                match self.keymap.action(Section::Editor, key) {
                    Some(Action::Save) => {
                        let text = std::mem::take(text);
                        self.overlay = None;
                        self.set_filter(text);
                    }
                    Some(Action::Dismiss) => {
                        self.overlay = None;
                        self.set_filter(String::new());
                    }
                    _ => match event.code {
                        KeyCode::Backspace => {
                            text.pop();
                        }
                        KeyCode::Char(c) if !key.mods.intersects(ctrl_alt()) => text.push(c),
                        _ => {}
                    },
                }
                return;
            }
            Some(Overlay::Editor(editor)) => {
                match self.keymap.action(Section::Editor, key) {
                    Some(Action::Save) => self.save_edit(),
                    Some(Action::Dismiss) => self.overlay = None,
                    Some(Action::NextField) => {
                        editor.on_action = !editor.on_action;
                        focus(editor);
                    }
                    Some(Action::Complete) => {
                        editor.on_action = true;
                        editor.complete();
                        focus(editor);
                    }
                    _ => {
                        let area = if editor.on_action {
                            &mut editor.action
                        } else {
                            &mut editor.reason
                        };
                        area.input(event);
                    }
                }
                return;
            }
            _ => {}
        }
        let section = match &self.overlay {
            Some(Overlay::ConfirmQuit(_) | Overlay::ConfirmBulk(_)) => Section::Confirm,
            Some(Overlay::Picker(_)) => {
                // Choose and close like the editor; move like any list.
                match self.keymap.action(Section::Editor, key) {
                    Some(a @ (Action::Save | Action::Dismiss)) => {
                        self.update(a);
                        return;
                    }
                    _ => Section::Global,
                }
            }
            Some(Overlay::Help) => Section::Global,
            _ => self.screen.section(),
        };
        let action = self
            .keymap
            .action(section, key)
            .or_else(|| self.keymap.action(Section::Global, key));
        if let Some(action) = action {
            self.update(action);
        }
    }

    // ----- actions ------------------------------------------------------------------------

    /// The one place where an action changes state.
    pub fn update(&mut self, action: Action) {
        // Overlays first: they take the keys while open.
        match (&mut self.overlay, action) {
            (Some(Overlay::Help), Action::Help | Action::Dismiss) => {
                self.overlay = None;
                return;
            }
            (Some(Overlay::Help), Action::Quit) => {}
            (Some(Overlay::Help), _) => return,
            (Some(Overlay::ConfirmQuit(_)), Action::Yes) => {
                self.overlay = None;
                self.stop_jobs();
                self.should_quit = true;
                return;
            }
            (Some(Overlay::ConfirmBulk(ids)), Action::Yes) => {
                let ids = std::mem::take(ids);
                self.overlay = None;
                self.start_bulk(ids);
                return;
            }
            (Some(Overlay::ConfirmQuit(_) | Overlay::ConfirmBulk(_)), Action::No) => {
                self.overlay = None;
                return;
            }
            (Some(Overlay::ConfirmQuit(_) | Overlay::ConfirmBulk(_)), _) => return,
            (Some(Overlay::Picker(p)), a) => {
                let len = p.items.len();
                match a {
                    Action::Up => p.cursor.up(1),
                    Action::Down => p.cursor.down(1, len),
                    Action::PageUp => p.cursor.up(p.cursor.page()),
                    Action::PageDown => p.cursor.down(p.cursor.page(), len),
                    Action::Top => p.cursor.top(),
                    Action::Bottom => p.cursor.bottom(len),
                    Action::Save => {
                        let pick = p.items.get(p.cursor.selected).map(|i| i.1.clone());
                        self.overlay = None;
                        if let Some(pick) = pick {
                            self.pick(pick);
                        }
                    }
                    Action::Dismiss | Action::Quit => self.overlay = None,
                    _ => {}
                }
                return;
            }
            _ => {}
        }

        match action {
            Action::Quit => {
                let jobs = self.running_jobs();
                if jobs.is_empty() {
                    self.stop_jobs();
                    self.should_quit = true;
                } else {
                    self.overlay = Some(Overlay::ConfirmQuit(jobs));
                }
            }
            Action::Help => self.overlay = Some(Overlay::Help),
            Action::NextScreen | Action::PrevScreen => {
                let i = Screen::ALL
                    .iter()
                    .position(|s| *s == self.screen)
                    .unwrap_or(0);
                let n = Screen::ALL.len();
                let j = if action == Action::NextScreen {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.go(Screen::ALL[j]);
            }
            Action::ScenariosScreen => self.go(Screen::Scenarios),
            Action::EpisodeScreen => self.go(Screen::Episode),
            Action::LabelsScreen => self.go(Screen::Labels),
            Action::TrainScreen => self.go(Screen::Train),
            Action::IterationsScreen => self.go(Screen::Iterations),
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => self.navigate(action),
            Action::Dismiss => {
                if self.note.is_some() {
                    self.note = None;
                } else {
                    self.set_filter(String::new());
                }
            }
            Action::CancelJob => self.cancel_job(),
            Action::Filter => {
                let current = match self.screen {
                    Screen::Scenarios => self.scenarios.filter.clone(),
                    Screen::Labels => self.labels.filter.clone(),
                    _ => return,
                };
                self.overlay = Some(Overlay::Filter(current));
            }
            Action::TogglePrivileged => match self.screen {
                Screen::Scenarios => {
                    self.scenarios.show_privileged = !self.scenarios.show_privileged;
                    self.scenarios.refresh_privileged(&self.catalog);
                }
                Screen::Episode => {
                    self.episode.show_privileged = !self.episode.show_privileged;
                    self.episode.refresh_privileged();
                }
                _ => {}
            },
            // Scenarios
            Action::Play => {
                if let Some(s) = self.scenarios.selected(&self.catalog).cloned() {
                    self.play(s);
                    self.go(Screen::Episode);
                }
            }
            Action::CycleSplit => {
                self.scenarios.cycle_split();
                self.scenarios.refilter(&self.catalog);
            }
            Action::CycleKind => {
                self.scenarios.cycle_kind(&self.catalog);
                self.scenarios.refilter(&self.catalog);
            }
            // Episode
            Action::Step => {
                if self.episode.can_step() && !self.episode.running {
                    self.episode.follow = true;
                    self.send(Command::Step);
                }
            }
            Action::RunPause => {
                if self.episode.running {
                    self.episode.running = false;
                    self.send(Command::Pause);
                } else if self.episode.is_live() {
                    self.episode.running = true;
                    self.episode.follow = true;
                    self.send(Command::Run);
                }
            }
            Action::Reset => match self.episode.scenario.clone() {
                Some(s) => self.play(s),
                None => self.fail("no scenario to restart: choose one on the Scenarios screen"),
            },
            Action::AskTeacher => self.ask_teacher(),
            Action::ChooseStudent => self.choose_student(),
            Action::LessPrivilege | Action::MorePrivilege => {
                self.episode.teacher = TeacherKind::Oracle;
                let d = if action == Action::MorePrivilege {
                    0.25
                } else {
                    -0.25
                };
                self.episode.privilege = (self.episode.privilege + d).clamp(0.0, 1.0);
                self.info(format!("teacher: {}", self.episode.teacher_label()));
            }
            Action::ChooseTeacher => self.choose_teacher(),
            Action::OpenEpisode => self.choose_episode(),
            // Labels
            Action::Accept => self.decide(Decision::Accept),
            Action::Reject => self.decide(Decision::Reject),
            Action::Edit => {
                if let Some(l) = self.labels.selected() {
                    let mut editor = Editor::new(l);
                    focus(&mut editor);
                    self.overlay = Some(Overlay::Editor(Box::new(editor)));
                }
            }
            Action::Undo => self.undo(),
            Action::AcceptAll => {
                let ids = self.labels.pending_shown();
                if ids.is_empty() {
                    self.info("no pending label among those shown");
                } else if self.bulk.is_some() {
                    self.fail("a bulk accept is already running");
                } else {
                    self.overlay = Some(Overlay::ConfirmBulk(ids));
                }
            }
            Action::CycleStatus => {
                self.labels.cycle_status();
                self.labels.refilter();
            }
            Action::ToggleDiffering => {
                self.labels.differing = !self.labels.differing;
                self.labels.refilter();
            }
            Action::ToggleLeaking => {
                self.labels.leaking = !self.labels.leaking;
                self.labels.refilter();
            }
            Action::CycleIteration => {
                self.labels.cycle_iteration();
                self.labels.refilter();
            }
            Action::ShowEpisode => {
                if let Some(l) = self.labels.selected() {
                    let (id, idx) = (l.episode_id, l.idx as usize);
                    self.open_episode(id);
                    self.episode.cursor.selected = idx;
                    self.episode.refresh_privileged();
                    self.go(Screen::Episode);
                }
            }
            // Train
            Action::Increase | Action::Decrease => {
                if !self.train.running
                    && let Some(s) = self.train.settings.get_mut(self.train.cursor.selected)
                {
                    s.nudge(action == Action::Increase);
                }
            }
            Action::StartTraining => self.start_training(),
            Action::LoadAdapter => match self.train.adapter.clone() {
                Some(path) => self.load_student(Some(path)),
                None => self.fail("no adapter trained yet"),
            },
            Action::Save | Action::NextField | Action::Complete | Action::Yes | Action::No => {}
        }
    }

    fn go(&mut self, screen: Screen) {
        self.screen = screen;
        match screen {
            Screen::Iterations => self.reload_iterations(),
            Screen::Train => self.refresh_dataset(),
            _ => {}
        }
    }

    fn navigate(&mut self, action: Action) {
        let (cursor, len) = match self.screen {
            Screen::Scenarios => (&mut self.scenarios.cursor, self.scenarios.visible.len()),
            Screen::Episode => {
                self.episode.follow = false;
                (&mut self.episode.cursor, self.episode.steps.len())
            }
            Screen::Labels => (&mut self.labels.cursor, self.labels.visible.len()),
            Screen::Train => (&mut self.train.cursor, self.train.settings.len()),
            Screen::Iterations => (&mut self.iterations.cursor, self.iterations.rows.len()),
        };
        match action {
            Action::Up => cursor.up(1),
            Action::Down => cursor.down(1, len),
            Action::PageUp => cursor.up(cursor.page()),
            Action::PageDown => cursor.down(cursor.page(), len),
            Action::Top => cursor.top(),
            Action::Bottom => cursor.bottom(len),
            _ => {}
        }
        match self.screen {
            Screen::Scenarios => self.scenarios.refresh_privileged(&self.catalog),
            Screen::Episode => {
                if action == Action::Bottom {
                    self.episode.follow = true;
                }
                self.episode.refresh_privileged();
            }
            _ => {}
        }
    }

    fn set_filter(&mut self, text: String) {
        match self.screen {
            Screen::Scenarios => {
                self.scenarios.filter = text;
                self.scenarios.refilter(&self.catalog);
            }
            Screen::Labels => {
                self.labels.filter = text;
                self.labels.refilter();
            }
            _ => {}
        }
    }

    fn send(&mut self, command: Command) {
        let sent = self.links.session.as_ref().is_some_and(|s| s.send(command));
        if !sent {
            self.episode.running = false;
            self.fail("no live session (the student is not running in this view)");
        }
    }

    fn play(&mut self, scenario: Scenario) {
        let seed = self.next_seed;
        self.next_seed += 1;
        let horizon = self.horizon.unwrap_or(scenario.horizon);
        self.episode.start_live(scenario.clone(), seed, horizon);
        self.awaiting_start = true;
        self.send(Command::Reset {
            scenario: Box::new(scenario),
            seed,
        });
        if self.links.session.is_none() {
            self.awaiting_start = false;
        }
    }

    fn load_student(&mut self, adapter: Option<PathBuf>) {
        let mut config = LocalConfig::new(self.model.clone());
        if let Some(a) = &adapter {
            config.adapters = vec![(a.clone(), 1.0)];
        }
        self.adapter = adapter;
        self.student_loading = Some(Student::Local(config.clone()).label());
        self.send(Command::Load(Student::Local(config)));
    }

    fn student_config(&self) -> LocalConfig {
        let mut config = LocalConfig::new(self.model.clone());
        if let Some(a) = &self.adapter {
            config.adapters = vec![(a.clone(), 1.0)];
        }
        config
    }

    fn ask_teacher(&mut self) {
        if self.episode.teacher_busy {
            self.fail("the teacher is already working on it");
            return;
        }
        let (Some(id), Some(scenario)) = (self.episode.episode_id, self.episode.scenario.clone())
        else {
            self.fail("the teacher corrects stored episodes: let this one finish first (run: r)");
            return;
        };
        let Some(tx) = self.links.tx.clone() else {
            self.fail("no live session (the teacher is not available in this view)");
            return;
        };
        let spec = match self.episode.teacher {
            TeacherKind::Oracle => TeacherSpec::Oracle {
                privilege: self.episode.privilege,
                seed: 0,
            },
            TeacherKind::SelfModel => TeacherSpec::Local {
                role: "self".into(),
                config: self.student_config(),
                settings: crate::teacher::llm::LlmSettings::default(),
            },
            TeacherKind::Remote => {
                let Some((url, model)) = self.teacher_server.clone() else {
                    self.fail("no teacher server: start with --teacher-server URL");
                    return;
                };
                TeacherSpec::Remote {
                    config: crate::agent::remote::RemoteConfig::new(url, model),
                    settings: crate::teacher::llm::LlmSettings::default(),
                }
            }
        };
        self.episode.teacher_busy = true;
        self.info(format!("asking {}…", self.episode.teacher_label()));
        jobs::spawn_teacher(self.run_dir.clone(), scenario, id, spec, tx);
    }

    fn choose_student(&mut self) {
        let base = file_name(&self.model);
        let mut items = vec![(
            format!("{base} (base model, no adapter)"),
            Pick::Student(None),
        )];
        let mut adapters: Vec<PathBuf> = self.train.adapter.iter().cloned().collect();
        let recorded = self
            .store
            .as_ref()
            .and_then(|s| s.adapters().ok())
            .unwrap_or_default()
            .into_iter()
            .rev()
            .map(|a| PathBuf::from(a.path));
        for p in recorded.chain(find_adapters(&self.run_dir)) {
            if !adapters.contains(&p) {
                adapters.push(p);
            }
        }
        for a in adapters {
            items.push((format!("{base} + {}", a.display()), Pick::Student(Some(a))));
        }
        self.overlay = Some(Overlay::Picker(Picker {
            title: " student: model and adapter ".into(),
            items,
            cursor: Cursor::default(),
        }));
    }

    fn choose_teacher(&mut self) {
        let mut items: Vec<(String, Pick)> = [1.0, 0.75, 0.5, 0.25, 0.0]
            .into_iter()
            .map(|p| {
                (
                    format!("oracle, privilege {p}: the rules and the privileged state"),
                    Pick::Teacher(TeacherKind::Oracle, p),
                )
            })
            .collect();
        items.push((
            "self: the student's own model and adapter, shown the privileged state".into(),
            Pick::Teacher(TeacherKind::SelfModel, self.episode.privilege),
        ));
        if let Some((url, model)) = &self.teacher_server {
            items.push((
                format!("remote: {model} at {url}, shown the privileged state"),
                Pick::Teacher(TeacherKind::Remote, self.episode.privilege),
            ));
        }
        self.overlay = Some(Overlay::Picker(Picker {
            title: " teacher ".into(),
            items,
            cursor: Cursor::default(),
        }));
    }

    fn choose_episode(&mut self) {
        let Some(store) = &self.store else {
            self.fail("no run store");
            return;
        };
        let filter = EpisodeFilter {
            limit: Some(500),
            ..EpisodeFilter::default()
        };
        match store.list_episodes(&filter) {
            Ok(list) if list.is_empty() => self.info("no stored episode in this run yet"),
            Ok(list) => {
                let items = list
                    .into_iter()
                    .map(|e| {
                        (
                            format!(
                                "{:>5}  {}  {} steps  {}  {}",
                                e.id,
                                if e.won { "won " } else { "lost" },
                                e.steps,
                                e.key,
                                e.policy
                            ),
                            Pick::Episode(e.id),
                        )
                    })
                    .collect();
                self.overlay = Some(Overlay::Picker(Picker {
                    title: " stored episodes, newest first ".into(),
                    items,
                    cursor: Cursor::default(),
                }));
            }
            Err(e) => self.fail(e.to_string()),
        }
    }

    fn pick(&mut self, pick: Pick) {
        match pick {
            Pick::Student(adapter) => self.load_student(adapter),
            Pick::Episode(id) => {
                self.open_episode(id);
                self.go(Screen::Episode);
            }
            Pick::Teacher(kind, privilege) => {
                self.episode.teacher = kind;
                self.episode.privilege = privilege;
                self.info(format!("teacher: {}", self.episode.teacher_label()));
            }
        }
    }

    /// Shows stored episode `id` with its labels; the scenario comes from the loaded files when
    /// the same version is there, else from the run's snapshot.
    pub fn open_episode(&mut self, id: i64) {
        if self.episode.running {
            self.episode.running = false;
            self.send(Command::Pause);
        }
        let Some(store) = &self.store else { return };
        let episode = match store.episode(id) {
            Ok(Some(e)) => e,
            Ok(None) => return self.fail(format!("no episode {id} in this run")),
            Err(e) => return self.fail(e.to_string()),
        };
        let hash = episode.record.scenario_hash.clone();
        let scenario = self
            .catalog
            .scenarios
            .iter()
            .find(|s| s.hash == hash)
            .cloned()
            .or_else(|| {
                let snap = store.scenario(&hash).ok()??;
                let loaded = scenario::parse_text(Path::new("(run snapshot)"), &snap.json);
                loaded.scenarios.into_iter().next()
            });
        let labels = store
            .labels(&LabelFilter {
                episode_id: Some(id),
                ..LabelFilter::default()
            })
            .unwrap_or_default();
        self.episode.show_stored(episode, scenario, labels);
        self.episode.refresh_privileged();
    }

    fn decide(&mut self, decision: Decision) {
        let Some(id) = self.labels.selected().map(|l| l.id) else {
            return;
        };
        self.apply_decision(id, decision);
    }

    fn apply_decision(&mut self, id: i64, decision: Decision) -> bool {
        let Some(store) = self.store.as_mut() else {
            return false;
        };
        match store.decide(id, &decision, &self.by) {
            Ok(label) => {
                self.info(format!("label {id} {}", label.status));
                self.episode.update_label(&label);
                self.labels.update(label);
                self.labels.undo.push(vec![id]);
                self.labels.refilter();
                self.refresh_dataset();
                true
            }
            Err(e) => {
                self.fail(e.to_string());
                false
            }
        }
    }

    fn save_edit(&mut self) {
        let Some(Overlay::Editor(editor)) = &self.overlay else {
            return;
        };
        let id = editor.label_id;
        let decision = Decision::Edit {
            reason: editor.reason_text(),
            action: editor.action_text(),
        };
        let Some(store) = self.store.as_mut() else {
            return;
        };
        match store.decide(id, &decision, &self.by) {
            Ok(label) => {
                self.overlay = None;
                self.info(format!("label {id} edited"));
                self.episode.update_label(&label);
                self.labels.update(label);
                self.labels.undo.push(vec![id]);
                self.labels.refilter();
                self.refresh_dataset();
            }
            Err(e) => {
                // The store names its file; in the editor the reason is enough.
                let why = match e {
                    crate::store::StoreError::Invalid { what, .. } => what,
                    other => other.to_string(),
                };
                if let Some(Overlay::Editor(editor)) = &mut self.overlay {
                    editor.error = Some(why);
                }
            }
        }
    }

    fn undo(&mut self) {
        if self.bulk.is_some() {
            self.fail("wait for the bulk accept to end (or cancel it) before undoing");
            return;
        }
        let Some(ids) = self.labels.undo.pop() else {
            self.info("nothing to undo");
            return;
        };
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let mut undone = Vec::new();
        let mut error = None;
        for id in ids.iter().rev() {
            match store.undo_label(*id) {
                Ok(label) => undone.push(label),
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        let n = undone.len();
        for label in undone {
            self.episode.update_label(&label);
            self.labels.update(label);
        }
        self.labels.refilter();
        self.refresh_dataset();
        match error {
            Some(e) => self.fail(format!("undo: {e}")),
            None => self.info(format!(
                "undid {n} decision{}",
                if n == 1 { "" } else { "s" }
            )),
        }
    }

    fn start_bulk(&mut self, ids: Vec<i64>) {
        let Some(tx) = self.links.tx.clone() else {
            // Without worker threads (tests), accept in place.
            let mut done = Vec::new();
            for id in ids {
                if let Some(store) = self.store.as_mut()
                    && let Ok(label) = store.decide(id, &Decision::Accept, &self.by)
                {
                    self.episode.update_label(&label);
                    self.labels.update(label);
                    done.push(id);
                }
            }
            let n = done.len();
            self.labels.undo.push(done);
            self.labels.refilter();
            self.refresh_dataset();
            self.info(format!("accepted {n} labels"));
            return;
        };
        let cancel = Arc::new(AtomicBool::new(false));
        self.links.bulk_cancel = Some(cancel.clone());
        self.bulk = Some((0, ids.len()));
        jobs::spawn_bulk_accept(self.run_dir.clone(), ids, self.by.clone(), cancel, tx);
    }

    fn start_training(&mut self) {
        if self.train.running {
            self.fail("training is already running");
            return;
        }
        if self.train.dataset.is_none_or(|(rows, _)| rows == 0) {
            self.fail("no accepted or edited label yet: review labels first (screen 3)");
            return;
        }
        let Some(tx) = self.links.tx.clone() else {
            self.fail("no live session (training is not available in this view)");
            return;
        };
        let stamp = crate::store::now_ms();
        let out =
            crate::run::RunDir::new(&self.run_dir).named_adapter(&format!("workbench-{stamp}"));
        let t = &self.train;
        let request = jobs::TrainRequest {
            model: self.model.clone(),
            out,
            epochs: t.value("epochs") as u32,
            rank: t.value("LoRA rank") as u32,
            lr: t.value("learning rate") as f32,
            n_ctx: t.value("context (tokens)") as u32,
            gpu_layers: t.value("GPU layers") as u32,
            scenarios: (self.catalog.scenarios.iter())
                .filter(|s| s.split == crate::scenario::Split::Train)
                .cloned()
                .collect(),
            student: self.adapter.clone(),
        };
        let cancel = Arc::new(AtomicBool::new(false));
        self.links.train_cancel = Some(cancel.clone());
        self.train.running = true;
        self.train.progress = Default::default();
        self.train.log.clear();
        self.info(format!("training → {}", request.out.display()));
        jobs::spawn_train(self.run_dir.clone(), request, cancel, tx);
    }

    fn cancel_job(&mut self) {
        let mut cancelled = Vec::new();
        if let Some(c) = &self.links.train_cancel {
            c.store(true, Ordering::Relaxed);
            cancelled.push("training");
        }
        if let Some(c) = &self.links.bulk_cancel {
            c.store(true, Ordering::Relaxed);
            cancelled.push("bulk accept");
        }
        if self.episode.running {
            self.episode.running = false;
            self.send(Command::Pause);
            cancelled.push("run");
        }
        if cancelled.is_empty() {
            self.info("no job to cancel");
        } else {
            self.info(format!("cancelling: {}", cancelled.join(", ")));
        }
    }

    /// Asks every job to stop (quitting).
    fn stop_jobs(&mut self) {
        for c in [&self.links.train_cancel, &self.links.bulk_cancel]
            .into_iter()
            .flatten()
        {
            c.store(true, Ordering::Relaxed);
        }
        if let Some(s) = &self.links.session {
            s.send(Command::Pause);
        }
    }

    // ----- reading the store ----------------------------------------------------------------

    pub fn reload_labels(&mut self) {
        let Some(store) = &self.store else { return };
        match store.labels(&LabelFilter::default()) {
            Ok(all) => self.labels.set_all(all),
            Err(e) => self.fail(e.to_string()),
        }
    }

    /// Rows the kept labels make: what training would use.
    pub fn refresh_dataset(&mut self) {
        // One row per step, however many teachers labelled it (as training builds them).
        let kept: std::collections::HashSet<(i64, u32)> = self
            .labels
            .all
            .iter()
            .filter(|l| l.status.is_kept())
            .map(|l| (l.episode_id, l.idx))
            .collect();
        let rows = kept.len() as u64;
        let tokens = match self.train.dataset {
            Some((r, tokens)) if r == rows => tokens,
            _ => None,
        };
        self.train.dataset = Some((rows, tokens));
    }

    pub fn reload_iterations(&mut self) {
        let Some(store) = &self.store else { return };
        let episodes = match store.list_episodes(&EpisodeFilter::default()) {
            Ok(e) => e,
            Err(e) => return self.fail(e.to_string()),
        };
        let mut splits: std::collections::HashMap<String, String> = Default::default();
        let mut rows: std::collections::BTreeMap<Option<u32>, IterationRow> = Default::default();
        for e in episodes {
            let split = splits
                .entry(e.scenario_hash.clone())
                .or_insert_with(|| {
                    store
                        .scenario(&e.scenario_hash)
                        .ok()
                        .flatten()
                        .map_or_else(String::new, |s| s.split)
                })
                .clone();
            let row = rows.entry(e.iteration).or_insert_with(|| IterationRow {
                iteration: e.iteration,
                ..IterationRow::default()
            });
            row.episodes += 1;
            let bucket = if split == "test" {
                &mut row.test
            } else {
                &mut row.train
            };
            bucket.0 += u64::from(e.won);
            bucket.1 += 1;
        }
        // Recorded evaluations of an iteration's student (`leap eval`, `leap iterate`) replace
        // the raw counts of its split: they are the measured numbers.
        for ev in store.evaluations().unwrap_or_default() {
            let Some(it) = ev.iteration else { continue };
            let (Some(wins), Some(n)) = (
                ev.summary.get("wins").and_then(|v| v.as_u64()),
                ev.summary.get("episodes").and_then(|v| v.as_u64()),
            ) else {
                continue;
            };
            let row = rows.entry(Some(it)).or_insert_with(|| IterationRow {
                iteration: Some(it),
                ..IterationRow::default()
            });
            let bucket = if ev.split == "test" {
                &mut row.test
            } else {
                &mut row.train
            };
            // The newest evaluation of the split stands.
            *bucket = (wins, n);
        }
        let adapters = store.adapters().unwrap_or_default();
        for a in &adapters {
            rows.entry(a.iteration).or_insert_with(|| IterationRow {
                iteration: a.iteration,
                ..IterationRow::default()
            });
        }
        for (it, row) in rows.iter_mut() {
            if let Some(i) = it
                && let Ok(Some(d)) = store.dataset(*i)
            {
                row.dataset_rows = Some(d.rows);
            }
            // The newest adapter of the iteration.
            row.adapter = adapters
                .iter()
                .rev()
                .find(|a| a.iteration == *it)
                .map(|a| file_name(Path::new(&a.path)));
        }
        self.iterations.rows = rows.into_values().collect();
        self.iterations.cursor.clamp(self.iterations.rows.len());
    }
}

fn ctrl_alt() -> ratatui::crossterm::event::KeyModifiers {
    ratatui::crossterm::event::KeyModifiers::CONTROL | ratatui::crossterm::event::KeyModifiers::ALT
}

/// Shows the cursor only in the field being edited.
fn focus(editor: &mut Editor) {
    let on = Style::new().add_modifier(ratatui::style::Modifier::REVERSED);
    let off = Style::new();
    let (a, b) = if editor.on_action {
        (off, on)
    } else {
        (on, off)
    };
    editor.reason.set_cursor_style(a);
    editor.action.set_cursor_style(b);
    editor.reason.set_cursor_line_style(Style::new());
    editor.action.set_cursor_line_style(Style::new());
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// The adapters in the run's `adapters/` folder.
fn find_adapters(run_dir: &Path) -> Vec<PathBuf> {
    crate::run::RunDir::new(run_dir).adapter_files()
}
