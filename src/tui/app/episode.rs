//! The Episode screen's keys: step or run the live episode, restart it, ask the teacher, choose
//! the student and the teacher, open a stored episode; take the live teacher's action or type
//! one instead of the student's, branch a stored episode. The live teacher is asked about every
//! live step as it arrives.

use std::path::PathBuf;

use super::bindings::{Binding, Gate};
use super::{App, Overlay, Pick, Picker, file_name, reads};
use crate::agent::local::LocalConfig;
use crate::agent::student::StudentSpec;
use crate::env::command;
use crate::scenario::Scenario;
use crate::session::{Command, Student};
use crate::teacher::TeacherSpec;
use crate::teacher::live::{LiveTeacher, Question};
use crate::tui::action::{Action, Section};
use crate::tui::event::{Event, Read, ReadKind};
use crate::tui::jobs;
use crate::tui::screens::Cursor;
use crate::tui::screens::episode::{Phase, TeacherKind};
use crate::tui::screens::labels::Editor;

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
    Binding::new(E, Action::TakeTeacher, App::take_teacher)
        .when(|app| {
            can_intervene(app).and(|| Gate::open_if(app.teacher_choice(app.selected()).is_some()))
        })
        .hint("take teacher's"),
    Binding::new(E, Action::TypeAction, App::type_action).when(can_intervene),
    Binding::new(E, Action::Branch, App::branch_here)
        .when(|app| can_intervene(app).and(|| Gate::open_if(app.episode.episode_id.is_some()))),
];

/// A step is selected and the session is not playing one.
fn can_intervene(app: &App) -> Gate {
    let e = &app.episode;
    if e.steps.is_empty() || app.links.session.is_none() {
        return Gate::Closed;
    }
    Gate::unless(
        e.running || matches!(e.phase, Phase::Generating(_)),
        "the student is playing: pause first (r)",
    )
}

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
        self.teacher_changed();
    }

    /// Another teacher was chosen: the live one answers again, for every step shown.
    pub(super) fn teacher_changed(&mut self) {
        self.info(format!("teacher: {}", self.episode.teacher_label()));
        self.links.live_teacher = None;
        self.episode.forget_live(0);
        self.ask_live_teacher_all();
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
        let spec = StudentSpec::new(&self.model)
            .adapters(self.adapter.iter().map(|a| (a.clone(), 1.0)))
            .ctx(self.ctx)
            .gpu_layers(self.gpu_layers);
        spec.config()
    }

    /// The student's settings, as the Episode screen shows them beside its name.
    pub(super) fn student_settings(&self) -> String {
        format!("ctx {}, {} GPU layers", self.ctx, self.gpu_layers)
    }

    /// The teacher chosen on this screen, ready to build.
    fn teacher_spec(&self) -> Result<TeacherSpec, &'static str> {
        Ok(match self.episode.teacher {
            TeacherKind::Oracle => TeacherSpec::Oracle {
                draw: Default::default(),
                privilege: self.episode.privilege,
                seed: 0,
            },
            TeacherKind::SelfModel => TeacherSpec::Local {
                role: "self".into(),
                config: self.student_config(),
                settings: crate::teacher::llm::LlmSettings::default(),
            },
            TeacherKind::Remote => {
                let Some(config) = self.teacher_server.clone() else {
                    return Err("no teacher server: start with --teacher-server URL");
                };
                TeacherSpec::Remote {
                    config,
                    settings: crate::teacher::llm::LlmSettings::default(),
                }
            }
        })
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
        let spec = match self.teacher_spec() {
            Ok(spec) => spec,
            Err(why) => return self.fail(why),
        };
        self.episode.teacher_busy = true;
        self.info(format!("asking {}…", self.episode.teacher_label()));
        jobs::spawn_teacher(self.run_dir.clone(), scenario, id, spec, tx);
    }

    /// Asks the live teacher about step `index` of the live episode, starting it if needed.
    /// Its answer comes back as [`Event::LiveTeacher`].
    pub(super) fn ask_live_teacher(&mut self, index: usize) {
        if matches!(self.episode.phase, Phase::Stored { .. } | Phase::Empty) {
            return;
        }
        let (Some(scenario), Some(tx)) = (&self.episode.scenario, &self.links.tx) else {
            return;
        };
        if self.links.live_teacher.is_none() {
            let Ok(spec) = self.teacher_spec() else {
                return;
            };
            let tx = tx.clone();
            self.links.live_teacher = Some(LiveTeacher::spawn(
                spec,
                Box::new(move |answer| {
                    let _ = tx.send(Event::LiveTeacher(answer));
                }),
            ));
        }
        let e = &self.episode;
        let question = Question {
            generation: e.generation,
            scenario: Box::new(scenario.clone()),
            partial: crate::session::partial(scenario, e.seed, &e.steps),
            step: index,
        };
        if let Some(teacher) = &self.links.live_teacher {
            teacher.ask(question);
        }
    }

    /// Asks the live teacher about every step shown that it has not answered.
    pub(super) fn ask_live_teacher_all(&mut self) {
        for i in 0..self.episode.steps.len() {
            if !self.episode.live.contains_key(&i) {
                self.ask_live_teacher(i);
            }
        }
    }

    /// The selected step.
    fn selected(&self) -> usize {
        self.episode
            .cursor
            .selected
            .min(self.episode.steps.len().saturating_sub(1))
    }

    /// The teacher's reason and action at step `at`, and who the teacher is: the live
    /// teacher's answer, else a stored label's.
    fn teacher_choice(&self, at: usize) -> Option<(String, String, String)> {
        let e = &self.episode;
        if let Some(answer) = e.live.get(&at)
            && let Ok(Some(c)) = &answer.result
        {
            return Some((
                c.corrected_reason.clone(),
                c.corrected_action.clone(),
                answer.teacher.clone(),
            ));
        }
        e.labels.get(&(at as u32)).map(|l| {
            let (reason, action) = l.target();
            (reason.to_string(), action.to_string(), l.teacher.clone())
        })
    }

    fn take_teacher(&mut self) {
        let at = self.selected();
        if let Some((reason, action, teacher)) = self.teacher_choice(at) {
            self.intervene(at, Some(reason), action, format!("teacher:{teacher}"));
        }
    }

    fn type_action(&mut self) {
        let at = self.selected();
        let Some(step) = self.episode.steps.get(at) else {
            return;
        };
        let mut editor = Editor::for_step(at, step.admissible.clone());
        super::overlays::focus(&mut editor);
        self.overlay = Some(Overlay::Editor(Box::new(editor)));
    }

    /// Takes the action typed in the editor, if it is admissible there.
    pub(super) fn take_typed_action(&mut self) {
        let Some(Overlay::Editor(editor)) = &mut self.overlay else {
            return;
        };
        let crate::tui::screens::labels::EditTarget::Step(at) = editor.target else {
            return;
        };
        let action = editor.action_text().trim().to_string();
        if !editor.admissible.is_empty() && command::admits(&editor.admissible, &action).is_none() {
            editor.error = Some(format!(
                "{action:?} is not an admissible command here (ctrl-n completes)"
            ));
            return;
        }
        let reason = editor.reason_text();
        self.overlay = None;
        let by = format!("researcher:{}", self.by);
        self.intervene(at, Some(reason), action, by);
    }

    /// Step `at`'s action replaced by `by`'s: in the live episode (or as a branch of the one
    /// that just ended, which the session knows), or as a branch of the stored one shown.
    fn intervene(&mut self, at: usize, reason: Option<String>, action: String, by: String) {
        if matches!(self.episode.phase, Phase::Stored { .. }) {
            let Some(episode) = self.episode.episode_id else {
                return;
            };
            self.awaiting_start = true;
            self.send(Command::Branch { episode, at });
        }
        self.episode.follow = true;
        self.info(format!("step {} taken by {by}", at + 1));
        self.send(Command::Intervene {
            at,
            reason,
            action,
            by,
        });
    }

    /// A new live episode from the stored one's steps before the selected one.
    fn branch_here(&mut self) {
        let Some(episode) = self.episode.episode_id else {
            return;
        };
        let at = self.selected();
        if matches!(self.episode.phase, Phase::Stored { .. }) {
            self.awaiting_start = true;
        }
        self.episode.follow = true;
        self.info(format!("branching episode {episode} at step {}", at + 1));
        self.send(Command::Branch { episode, at });
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
        if let Some(server) = &self.teacher_server {
            items.push((
                format!(
                    "remote: {} at {}, shown the privileged state",
                    server.model, server.base_url
                ),
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
