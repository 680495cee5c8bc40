//! Text environments the student acts in, one folder per kind, and the seam the rest of leap
//! sees them through. Nothing outside `env/<kind>/` names a kind: scenarios, rollouts, teachers,
//! evaluation and the workbench reach it through these traits, and [`registry`] is the one
//! place that lists the kinds.
//!
//! A kind ([`EnvKind`]) reads the kind-specific part of its scenario files into a checked body
//! ([`World`]), which makes episodes: a plain [`Environment`] for rollouts, and a [`Guided`] one
//! that the expert follows (the oracle teacher, the demonstrations, a replayed episode).

/// A kind's prompt templates, `assets/prompts/<kind>/react.j2` (the student's),
/// `correct_step.j2` and `correct_trajectory.j2` (the LLM teacher's, per step and per episode),
/// compiled in: the `EnvKind` methods that return them.
macro_rules! prompt_templates {
    ($kind:literal) => {
        fn student_template(&self) -> $crate::env::Template {
            $crate::env::Template {
                name: concat!("assets/prompts/", $kind, "/react.j2"),
                source: include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/assets/prompts/",
                    $kind,
                    "/react.j2"
                )),
            }
        }

        fn teacher_template(&self) -> $crate::env::Template {
            $crate::env::Template {
                name: concat!("assets/prompts/", $kind, "/correct_step.j2"),
                source: include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/assets/prompts/",
                    $kind,
                    "/correct_step.j2"
                )),
            }
        }

        fn trajectory_template(&self) -> $crate::env::Template {
            $crate::env::Template {
                name: concat!("assets/prompts/", $kind, "/correct_trajectory.j2"),
                source: include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/assets/prompts/",
                    $kind,
                    "/correct_trajectory.j2"
                )),
            }
        }
    };
}

pub mod command;
pub mod external;
pub mod household;
pub mod shell;
pub mod shop;
pub mod text;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::{Schema, SchemaGenerator};
use serde::Serialize;

use crate::agent::prompt::Past;
use crate::scenario::{Report, Split, YamlPath};
use crate::teacher::Leak;

/// What one step did: the reward it earned and whether the episode is over.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Outcome {
    /// In [0, 1].
    pub reward: f32,
    /// The episode is over: the goal holds or the horizon is reached.
    pub done: bool,
    /// The goal holds.
    pub won: bool,
}

/// A text environment in ReAct form: a task, an observation after every action, and the list of
/// commands that do something.
pub trait Environment: Send {
    /// The task as the student reads it ("put some spraybottle on toilet.").
    fn task(&self) -> &str;
    /// The latest observation.
    fn observation(&self) -> &str;
    /// Applies one command; the new observation is then in [`Environment::observation`].
    fn step(&mut self, action: &str) -> Outcome;
    /// The commands that do something now, sorted. A command may be a template with a hole
    /// (`search[...]`, see [`command`]) that the agent fills with its own words: the parser,
    /// the grammars and every check admit any valid fill. An environment whose every command is
    /// free text (a shell) may return none: the backends then leave the answer unconstrained
    /// (no grammar), and the parser reads no action, so such a kind brings its own reading.
    fn admissible(&self) -> Vec<String>;
    /// Commands applied since the start (admissible or not).
    fn steps_taken(&self) -> u32;
    /// Back to the initial state.
    fn reset(&mut self);
    /// What the last step did beyond its reward, as the kind reports it (the shop's reward
    /// breakdown); stored with the step. `None` by default.
    fn info(&self) -> Option<serde_json::Value> {
        None
    }
    /// A digest of everything that decides what the environment does from here on: two points
    /// of one episode with the same fingerprint answer every command alike, and an episode
    /// that is not over cannot have been won from either. A greedy student shown the same
    /// prompt at two such points is in a cycle it cannot leave (see
    /// [`crate::rollout::RolloutConfig::stop_cycles`]). `None` (the default) where the kind
    /// cannot tell cheaply, or where its reward at the horizon depends on where in a cycle the
    /// episode ends (the shell scores its last output): its episodes are never stopped.
    fn fingerprint(&self) -> Option<u64> {
        None
    }
    /// Whether a command answers the same every time from the same state (the default). A
    /// replay of a recorded episode (the teacher's, the workbench's) holds such an environment
    /// to every recorded observation, so a changed scenario or rule is caught rather than
    /// corrected. Another (the shell: the processes of a pipeline write in any order, `date`
    /// answers with the moment) replays the recorded commands from its own state, and what the
    /// student read stays the recorded text.
    fn deterministic(&self) -> bool {
        true
    }
    /// Whether the latest observation, the answer to a recorded command played again, stands
    /// for `recorded`, the one the episode stored: the same text where the environment is
    /// [`deterministic`](Environment::deterministic), any text elsewhere.
    fn answers_as_recorded(&self, recorded: &str) -> bool {
        !self.deterministic() || self.observation() == recorded
    }
}

/// A fingerprint of `value` for [`Environment::fingerprint`]: stable within a process.
pub fn fingerprint_of(value: &impl std::hash::Hash) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(value)
}

/// One hidden fact the teacher sees and the student does not: `subject relation detail`
/// ("apple 2" "in/on" "fridge 1"). Serialized as the pair `[subject, detail]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub subject: String,
    /// How `subject` relates to `detail`, as people read it ("in/on").
    pub relation: String,
    pub detail: String,
}

impl Serialize for Fact {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.subject, &self.detail).serialize(serializer)
    }
}

/// The privileged state at one point of an episode: what the teacher sees, as facts, and the
/// expert's plan from there.
#[derive(Debug, Clone, Serialize)]
pub struct Privileged {
    /// Named `locations` in JSON, as `leap scenarios solve --json` has always printed them.
    #[serde(rename = "locations")]
    pub facts: Vec<Fact>,
    /// The expert's shortest plan, or `None` when the goal cannot be reached.
    pub plan: Option<Vec<String>>,
}

/// One expert decision: the command, and a reason that states a principle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advice {
    pub action: String,
    pub reason: String,
    /// The command came from the privileged state rather than from what was observed.
    pub privileged: bool,
}

/// An episode the expert follows: an environment that also keeps what the agent has seen so far,
/// so that the expert can act on it alone (privilege 0) or on the whole state (privilege 1).
/// Only teachers, demonstrations and replays use it; rollouts step the plain [`Environment`].
pub trait Guided: Environment {
    /// The goal holds now.
    fn won(&self) -> bool;
    /// The expert's next command and why; `privileged` picks the whole state over what the agent
    /// has observed. `None` once the goal holds (or when nothing reaches it).
    fn advise(&self, privileged: bool) -> Option<Advice>;
    /// Whether the expert can act on part of the privileged state: told some of the episode's
    /// hidden facts and not others ([`Guided::advise_told`]). A kind whose expert cannot is
    /// given the whole state or none of it.
    fn per_fact(&self) -> bool {
        false
    }
    /// The expert's next command and why, told only `told` (some of the facts of the privileged
    /// state at the episode's start) beside what the agent has observed. Only called where
    /// [`Guided::per_fact`] holds; by default the whole state when told anything.
    fn advise_told(&self, told: &[Fact]) -> Option<Advice> {
        self.advise(!told.is_empty())
    }
    /// The expert's shortest plan from the current state.
    fn plan(&self) -> Option<Vec<String>>;
    /// The privileged state now.
    fn privileged(&self) -> Privileged;
    /// The kind's extra variables of the LLM teacher's template at this step, given the
    /// privileged state of the episode's start (`hidden`).
    fn teacher_vars(&self, hidden: &Privileged) -> minijinja::Value;
}

/// A checked scenario body of some kind: everything the scenario holds beyond the common fields.
pub trait World: fmt::Debug + Send + Sync {
    fn kind(&self) -> Kind;
    /// A fresh episode, ending after `horizon` steps.
    fn env(&self, horizon: u32) -> Box<dyn Environment>;
    /// A fresh episode the expert follows.
    fn guided(&self, horizon: u32) -> Box<dyn Guided>;
    /// The privileged state at the start, with the expert's plan.
    fn privileged(&self, horizon: u32) -> Privileged {
        self.guided(horizon).privileged()
    }
    /// The privileged state as a line of the student's prompt, for a policy acting alone as the
    /// teacher ("Hidden facts: ...").
    fn hint(&self) -> String;
    /// The scenario's privileged notes (its author's facts for the teacher), which every
    /// teacher's prompt and the workbench's privileged pane show.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// The task type that evaluation groups success by ("pick_and_place").
    fn task_type(&self) -> &str;
    /// The scenario as the workbench previews it.
    fn preview(&self) -> Preview;
    /// The kind's own type, for code that knows the kind (its tests, its generator).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A scenario's world as the workbench shows it.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    /// Heads the world's lines ("World (kitchen)").
    pub title: String,
    pub lines: Vec<String>,
    /// Facts the scenario gives the teacher in so many words.
    pub notes: Vec<String>,
}

/// A prompt template shipped with a kind: the name errors show, and the text.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    pub name: &'static str,
    pub source: &'static str,
}

/// An environment kind: what leap needs to know of it beyond stepping.
pub trait EnvKind: Sync {
    /// The `kind:` of its scenario files.
    fn name(&self) -> &'static str;
    /// Reads the kind's part of one scenario (the YAML `task`, `world` and `privileged` values
    /// under `path`), reporting every problem where it was written. Returns the task sentence
    /// and the checked body.
    fn read(
        &self,
        report: &mut Report,
        path: &YamlPath,
        task: serde_yaml::Value,
        world: serde_yaml::Value,
        privileged: serde_yaml::Value,
    ) -> Option<(String, Arc<dyn World>)>;
    /// The JSON Schema of one scenario of this kind, common fields included, with `kind` as a
    /// constant.
    fn schema(&self, generator: &mut SchemaGenerator) -> Schema;
    /// The student's prompt template.
    fn student_template(&self) -> Template;
    /// The LLM teacher's prompt template for one step (see [`Guided::teacher_vars`] for its
    /// extra variables).
    fn teacher_template(&self) -> Template;
    /// The LLM teacher's prompt template for a whole episode, answered in the LEAP paper's JSON
    /// (variables: `task`, `start`, `steps`, `facts`, `plan`, `notes`, `error`).
    fn trajectory_template(&self) -> Template;
    /// The kind's extra variables of the student's prompt, read from the agent's own history
    /// and commands only.
    fn prompt_vars(&self, history: &[Past], admissible: &[String]) -> minijinja::Value;
    /// The privileged facts of `hidden` that `reason` gives away, given everything the student
    /// had read by then (`observed`: the task and every observation so far).
    fn leaks(&self, reason: &str, hidden: &Privileged, observed: &str) -> Vec<Leak>;
    /// The reward at or below which an episode counts as failed, so that LEAP's teacher corrects
    /// it (LEAP on InterCode: 0.7); `None`: an episode fails when it is not won.
    fn failed_at_most(&self) -> Option<f64> {
        None
    }
    /// Writes `count` generated scenarios of `split` into `dir`, one file each, the same for the
    /// same seed, and returns their paths; `None` for a kind that has no generator. `data` is
    /// the input folder a kind's generator reads, if it reads one (its default otherwise).
    fn generate(
        &self,
        _dir: &Path,
        _count: usize,
        _seed: u64,
        _split: Split,
        _data: Option<&Path>,
    ) -> Option<std::io::Result<Vec<PathBuf>>> {
        None
    }
}

/// A registered kind, compared by name.
#[derive(Clone, Copy)]
pub struct Kind(&'static dyn EnvKind);

impl Kind {
    pub fn as_str(self) -> &'static str {
        self.0.name()
    }
}

impl std::ops::Deref for Kind {
    type Target = dyn EnvKind;
    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl PartialEq for Kind {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Kind {}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every kind this build knows, the default (what a prompt is for unless told) first.
pub fn registry() -> &'static [Kind] {
    &[
        Kind(&household::Household),
        Kind(&shop::kind::ShopKind),
        Kind(&shell::kind::ShellKind),
        Kind(&external::kind::ExternalKind),
    ]
}

/// The kind named `name` in scenario files.
pub fn kind(name: &str) -> Option<Kind> {
    registry().iter().copied().find(|k| k.as_str() == name)
}

/// The kinds this build knows, as an error message expects them: "`household`", or "one of
/// `a`, `b`".
pub fn expected_kinds() -> String {
    let known: Vec<String> = registry()
        .iter()
        .map(|k| format!("`{}`", k.as_str()))
        .collect();
    match known.as_slice() {
        [one] => one.clone(),
        many => format!("one of {}", many.join(", ")),
    }
}

/// The kind a prompt is for when no scenario says otherwise.
pub fn default_kind() -> Kind {
    registry()[0]
}
