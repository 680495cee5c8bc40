//! The Episode screen's keys: step or run the live episode, restart it, ask the teacher, choose
//! the student and the teacher, open a stored episode.

use std::path::PathBuf;

use super::bindings::{Binding, Gate};
use super::{App, Overlay, Pick, Picker, file_name, reads};
use crate::agent::local::LocalConfig;
use crate::scenario::Scenario;
use crate::session::{Command, Student};
use crate::teacher::TeacherSpec;
use crate::tui::action::{Action, Section};
use crate::tui::event::{Read, ReadKind};
use crate::tui::jobs;
use crate::tui::screens::Cursor;
use crate::tui::screens::episode::TeacherKind;

const E: Section = Section::Episode;

/// In the bar's order.
pub(super) const BINDINGS: &[Binding] = &[
    Binding::new(E, Action::Step, App::step)
        .when(|app| Gate::open_if(app.episode.can_step() && !app.episode.running)),
    Binding::new(E, Action::RunPause, App::run_pause)
        .when(|app| Gate::open_if(app.episode.running || app.episode.is_live()))
        .hint_by(|app| if app.episode.running { "pause" } else { "run" }),
    Binding::new(E, Action::Reset, App::restart).when(|app| {
        Gate::unless(
            app.episode.scenario.is_none(),
            "no scenario to restart: choose one on the Scenarios screen",
        )
    }),
    Binding::new(E, Action::AskTeacher, App::ask_teacher).when(|app| {
        let e = &app.episode;
        Gate::unless(e.teacher_busy, "the teacher is already working on it").and(|| {
            Gate::unless(
                !e.can_ask_teacher(),
                "the teacher corrects stored episodes: let this one finish first (run: r)",
            )
        })
    }),
    Binding::new(E, Action::ChooseTeacher, App::choose_teacher),
    Binding::new(E, Action::LessPrivilege, |app| app.nudge_privilege(-0.25)),
    Binding::new(E, Action::MorePrivilege, |app| app.nudge_privilege(0.25)),
    Binding::new(E, Action::TogglePrivileged, |app| {
        app.episode.show_privileged = !app.episode.show_privileged;
        app.episode.refresh_privileged();
    }),
    Binding::new(E, Action::ChooseStudent, App::choose_student),
    Binding::new(E, Action::OpenEpisode, App::choose_episode),
];

impl App {
    fn step(&mut self) {
        self.episode.follow = true;
        self.send(Command::Step);
    }

    fn run_pause(&mut self) {
        if self.episode.running {
            self.episode.running = false;
            self.send(Command::Pause);
        } else {
            self.episode.running = true;
            self.episode.follow = true;
            self.send(Command::Run);
        }
    }

    /// The same scenario again, with the next seed.
    fn restart(&mut self) {
        if let Some(s) = self.episode.scenario.clone() {
            self.play(s);
        }
    }

    /// The oracle teacher, with its privilege moved by `by` (within 0 to 1).
    fn nudge_privilege(&mut self, by: f64) {
        self.episode.teacher = TeacherKind::Oracle;
        self.episode.privilege = (self.episode.privilege + by).clamp(0.0, 1.0);
        self.info(format!("teacher: {}", self.episode.teacher_label()));
    }

    pub(super) fn play(&mut self, scenario: Scenario) {
        let seed = self.next_seed;
        self.next_seed += 1;
        let horizon = self.horizon.unwrap_or(scenario.horizon);
        // A stored episode still being read would land on the live one.
        self.forget(ReadKind::Episode);
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

    pub(super) fn load_student(&mut self, adapter: Option<PathBuf>) {
        self.adapter = adapter;
        let student = Student::Local(self.student_config());
        self.student_loading = Some(student.label());
        self.send(Command::Load(student));
    }

    /// The student as chosen: the model, the adapter, the context and the GPU layers. The self
    /// teacher runs the same.
    fn student_config(&self) -> LocalConfig {
        let mut config = LocalConfig::new(self.model.clone());
        if let Some(a) = &self.adapter {
            config.adapters = vec![(a.clone(), 1.0)];
        }
        config.ctx_per_slot = self.ctx;
        config.gpu_layers = self.gpu_layers;
        config
    }

    /// The student's settings, as the Episode screen shows them beside its name.
    pub(super) fn student_settings(&self) -> String {
        format!("ctx {}, {} GPU layers", self.ctx, self.gpu_layers)
    }

    fn ask_teacher(&mut self) {
        let (Some(id), Some(scenario)) = (self.episode.episode_id, self.episode.scenario.clone())
        else {
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

    /// The student picker: the base model at once, the adapters when they are read.
    fn choose_student(&mut self) {
        let base = reads::student_base(&file_name(&self.model));
        self.open_loading_picker(ReadKind::Adapters, "student: model and adapter", vec![base]);
        self.request(Read::Adapters);
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
            loading: None,
        }));
    }

    fn choose_episode(&mut self) {
        if self.store.is_none() {
            self.fail("no run store");
            return;
        }
        self.open_loading_picker(
            ReadKind::Episodes,
            "stored episodes, newest first",
            Vec::new(),
        );
        self.request(Read::Episodes);
    }

    /// Shows stored episode `id` with its labels, once it is read.
    pub fn open_episode(&mut self, id: i64) {
        self.open_episode_at(id, None);
    }

    /// [`App::open_episode`], with step `step` selected.
    pub(super) fn open_episode_at(&mut self, id: i64, step: Option<usize>) {
        if self.episode.running {
            self.episode.running = false;
            self.send(Command::Pause);
        }
        if self.store.is_none() {
            return;
        }
        self.info(reads::opening(id));
        self.request(Read::Episode { id, step });
    }
}
