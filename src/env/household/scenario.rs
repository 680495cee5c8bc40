//! Household scenarios: the task, the room and what is in it, read and checked against the
//! vocabulary.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::expert;
use super::guided::GuidedEpisode;
use super::vocab::{Affordance, Vocabulary, rooms};
use super::{Goal, GoalKind, HouseholdEnv, Layout, ObjectSpec, ReceptacleSpec, State, split_name};
use crate::env::{Environment, Guided, Kind, Preview, World};
use crate::scenario::{Report, YamlPath};

/// A household task: what to do, with which object type, to which target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdTask {
    /// One of ALFWorld's six task types.
    pub goal: GoalKind,
    /// The object type the task is about ("apple").
    pub object: String,
    /// A receptacle type ("countertop"), or for `look_in_light` a lamp type ("desklamp").
    pub target: String,
    /// The sentence the student reads; by default ALFWorld's wording for the goal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The room at the start of the episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdWorld {
    /// Which room template it follows (kitchen, bathroom, bedroom, livingroom); informative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The receptacles of the room. The game lists them by type, then number from the highest.
    pub receptacles: Vec<ReceptacleEntry>,
}

/// One receptacle and what is in or on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceptacleEntry {
    /// Type and number, as the game prints it: "cabinet 3".
    pub name: String,
    /// Whether it opens; by default, what its type does (cabinets, drawers, fridges, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openable: Option<bool>,
    /// Whether an openable receptacle starts closed (default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<bool>,
    /// Another receptacle at the same spot: going to one reaches both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beside: Option<String>,
    /// Objects in or on it: "apple 1", "mug 2". Any object may start anywhere; one object may be
    /// listed in two receptacles that overlap, as in ALFWorld's rooms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contents: Vec<String>,
}

/// What the teacher may see beyond the world itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdPrivileged {
    /// Free-form facts for the teacher ("the user keeps spare mugs in cabinet 3").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A checked household scenario, ready to play.
#[derive(Debug, Clone)]
pub struct HouseholdScenario {
    pub task: HouseholdTask,
    pub world: HouseholdWorld,
    pub privileged: HouseholdPrivileged,
    layout: Arc<Layout>,
    initial: State,
    goal: Goal,
}

fn suggest<'a>(word: &str, options: impl Iterator<Item = &'a String>) -> String {
    let best = options
        .map(|o| (strsim::levenshtein(word, o), o))
        .filter(|(d, o)| *d > 0 && *d <= 2.max(o.len() / 3))
        .min();
    match best {
        Some((_, o)) => format!(" (did you mean `{o}`?)"),
        None => String::new(),
    }
}

impl HouseholdScenario {
    pub(crate) fn read(
        report: &mut Report,
        path: &YamlPath,
        task: serde_yaml::Value,
        world: serde_yaml::Value,
        privileged: serde_yaml::Value,
    ) -> Option<HouseholdScenario> {
        let before = report.problems.len();
        let task_path = path.key("task");
        let world_path = path.key("world");
        let task: Option<HouseholdTask> = report.parse(&task_path, task);
        let world: Option<HouseholdWorld> = report.parse(&world_path, world);
        let privileged: Option<HouseholdPrivileged> = match privileged {
            serde_yaml::Value::Null => Some(HouseholdPrivileged::default()),
            v => report.parse(&path.key("privileged"), v),
        };
        let (task, world, privileged) = (task?, world?, privileged?);
        let vocab = Vocabulary::builtin();

        if let Some(room) = &world.room
            && !rooms().contains_key(room)
        {
            let known: Vec<&str> = rooms().keys().map(String::as_str).collect();
            report.at(
                &world_path.key("room"),
                format!(
                    "unknown room `{room}`, expected one of: {}",
                    known.join(", ")
                ),
            );
        }

        // Receptacles and their contents.
        let mut rspecs = Vec::new();
        let mut ospecs = Vec::new();
        let mut placements = Vec::new();
        let mut names: HashMap<&str, YamlPath> = HashMap::new();
        let mut objects: HashSet<&str> = HashSet::new();
        let mut placed: HashMap<(&str, &str), YamlPath> = HashMap::new();
        let receptacle_types: Vec<String> = vocab
            .receptacles
            .iter()
            .filter(|(_, t)| !t.movable)
            .map(|(k, _)| k.clone())
            .collect();
        for (i, entry) in world.receptacles.iter().enumerate() {
            let rpath = world_path.key("receptacles").index(i);
            let name_path = rpath.key("name");
            let Some((kind, _)) = split_name(&entry.name) else {
                report.at(&name_path, format!("`{}` is not a receptacle name, expected a type and a number like `cabinet 3`", entry.name));
                continue;
            };
            match vocab.receptacles.get(kind) {
                None => {
                    let hint = suggest(kind, receptacle_types.iter());
                    report.at(&name_path, format!("unknown receptacle type `{kind}`{hint}, expected one of the receptacle types in assets/household/vocabulary.yaml"));
                    continue;
                }
                Some(t) if t.movable => {
                    report.at(&name_path, format!("`{kind}` is carried around, not a fixed receptacle: list `{}` in the contents of a receptacle", entry.name));
                    continue;
                }
                Some(_) => {}
            }
            if let Some(first) = names.insert(entry.name.as_str(), name_path.clone()) {
                report.at(
                    &name_path,
                    format!(
                        "`{}` is named twice (first at {}), expected each name once",
                        entry.name,
                        report.origin(&first)
                    ),
                );
                continue;
            }
            let openable = entry.openable.unwrap_or_else(|| vocab.openable(kind));
            if entry.closed.is_some() && !openable {
                report.at(&rpath.key("closed"), format!("`{}` does not open, so it cannot be closed; set `openable: true` or remove `closed`", entry.name));
            }
            rspecs.push(ReceptacleSpec {
                name: entry.name.clone(),
                openable,
                beside: entry.beside.clone(),
            });
            for (j, object) in entry.contents.iter().enumerate() {
                let opath = rpath.key("contents").index(j);
                let Some((okind, _)) = split_name(object) else {
                    report.at(&opath, format!("`{object}` is not an object name, expected a type and a number like `apple 1`"));
                    continue;
                };
                if !vocab.objects.contains_key(okind) {
                    let hint = suggest(okind, vocab.objects.keys());
                    report.at(&opath, format!("unknown object type `{okind}`{hint}, expected one of the object types in assets/household/vocabulary.yaml"));
                    continue;
                }
                // Where an object starts is not limited by what `put` allows (ALFWorld's scenes
                // start a desklamp on a shelf), and one object may be listed in two receptacles
                // that overlap (a pan on two stoveburners); listed twice in one is a mistake.
                if let Some(first) =
                    placed.insert((object.as_str(), entry.name.as_str()), opath.clone())
                {
                    report.at(
                        &opath,
                        format!(
                            "`{object}` is listed twice in `{}` (first at {}), expected each object once per receptacle",
                            entry.name,
                            report.origin(&first)
                        ),
                    );
                    continue;
                }
                if objects.insert(object.as_str()) {
                    ospecs.push(ObjectSpec {
                        name: object.clone(),
                    });
                }
                placements.push((object.clone(), entry.name.clone()));
            }
        }
        for (i, entry) in world.receptacles.iter().enumerate() {
            if let Some(beside) = &entry.beside
                && (beside == &entry.name || !rspecs.iter().any(|r| &r.name == beside))
            {
                report.at(&world_path.key("receptacles").index(i).key("beside"), format!("`{beside}` is not a receptacle of this room, expected the name of another receptacle"));
            }
        }

        // The task must name things this room has.
        let count = |kind: &str| {
            ospecs
                .iter()
                .filter(|o| split_name(&o.name).is_some_and(|(k, _)| k == kind))
                .count()
        };
        let has_receptacle = |kind: &str| {
            rspecs
                .iter()
                .any(|r| split_name(&r.name).is_some_and(|(k, _)| k == kind))
        };
        let need = if task.goal == GoalKind::PickTwo { 2 } else { 1 };
        if !vocab.objects.contains_key(&task.object) {
            let hint = suggest(&task.object, vocab.objects.keys());
            report.at(
                &task_path.key("object"),
                format!(
                    "unknown object type `{}`{hint}, expected an object type of the vocabulary",
                    task.object
                ),
            );
        } else if !vocab.pickable(&task.object) {
            report.at(
                &task_path.key("object"),
                format!(
                    "a {} cannot be picked up, expected an object type the task can carry",
                    task.object
                ),
            );
        } else if count(&task.object) < need {
            report.at(
                &task_path.key("object"),
                format!(
                    "the task needs {need} {}, but the world has {}: place one in a receptacle",
                    task.object,
                    count(&task.object)
                ),
            );
        }
        let target_path = task_path.key("target");
        if task.goal == GoalKind::LookInLight {
            if !vocab.object_can(&task.target, Affordance::Toggle) {
                report.at(
                    &target_path,
                    format!(
                        "`{}` is not a lamp, expected a type that can be turned on (desklamp)",
                        task.target
                    ),
                );
            } else if count(&task.target) == 0 {
                report.at(
                    &target_path,
                    format!("the task needs a {}, but the world has none", task.target),
                );
            }
        } else if !has_receptacle(&task.target) {
            let hint = suggest(&task.target, receptacle_types.iter());
            report.at(
                &target_path,
                format!(
                    "the task names `{}`{hint}, but the world has no receptacle of that type",
                    task.target
                ),
            );
        } else if vocab.objects.contains_key(&task.object)
            && !vocab.fits(&task.object, &task.target)
        {
            report.at(
                &target_path,
                format!(
                    "a {} cannot be put in or on a {}, expected a receptacle it fits",
                    task.object, task.target
                ),
            );
        }
        if let Some((appliance, _)) = task.goal.appliance() {
            let affordance = match task.goal {
                GoalKind::CleanThenPlace => Affordance::Clean,
                GoalKind::HeatThenPlace => Affordance::Heat,
                _ => Affordance::Cool,
            };
            if !has_receptacle(appliance) {
                report.at(
                    &task_path.key("goal"),
                    format!(
                        "`{}` needs a {appliance}, but the world has none",
                        task.goal.as_str()
                    ),
                );
            }
            if vocab.objects.contains_key(&task.object)
                && !vocab.object_can(&task.object, affordance)
            {
                report.at(
                    &task_path.key("object"),
                    format!(
                        "a {} cannot be {}ed, expected an object type that can",
                        task.object,
                        format!("{affordance:?}").to_lowercase()
                    ),
                );
            }
        }
        if report.problems.len() > before {
            return None;
        }

        let layout = match Layout::new(&rspecs, &ospecs, vocab) {
            Ok(l) => Arc::new(l),
            Err(err) => {
                report.at(&world_path, err.to_string());
                return None;
            }
        };
        let mut initial = State::empty(&layout);
        for (entry, spec) in world.receptacles.iter().zip(&rspecs) {
            let r = layout.receptacle_index(&entry.name).expect("placed above");
            initial.open[usize::from(r)] = !spec.openable || entry.closed == Some(false);
        }
        for (object, receptacle) in &placements {
            let o = layout.object_index(object).expect("placed above");
            let r = layout.receptacle_index(receptacle).expect("placed above");
            initial.place(o, r);
        }
        let goal = Goal::new(task.goal, &task.object, &task.target, &layout);
        if goal.holds(&layout, &initial) {
            report.at(
                &task_path,
                "the goal already holds at the start, expected a task that needs doing",
            );
            return None;
        }
        Some(HouseholdScenario {
            task,
            world,
            privileged,
            layout,
            initial,
            goal,
        })
    }

    /// The task sentence the student reads.
    pub fn task_text(&self) -> String {
        self.task.text.clone().unwrap_or_else(|| {
            self.task
                .goal
                .describe(&self.task.object, &self.task.target)
        })
    }

    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// A fresh episode of this scenario.
    pub fn env(&self, horizon: u32) -> HouseholdEnv {
        HouseholdEnv::new(
            self.layout.clone(),
            self.initial.clone(),
            self.goal.clone(),
            self.task_text(),
            horizon,
        )
    }
}

impl World for HouseholdScenario {
    fn kind(&self) -> Kind {
        crate::env::kind("household").expect("registered")
    }

    fn env(&self, horizon: u32) -> Box<dyn Environment> {
        Box::new(HouseholdScenario::env(self, horizon))
    }

    fn guided(&self, horizon: u32) -> Box<dyn Guided> {
        Box::new(GuidedEpisode::new(HouseholdScenario::env(self, horizon)))
    }

    fn hint(&self) -> String {
        let facts: Vec<String> = expert::locations(&HouseholdScenario::env(self, 1))
            .iter()
            .map(|f| format!("{} is in {}", f.subject, f.detail))
            .collect();
        format!("Hidden facts: {}.", facts.join("; "))
    }

    fn task_type(&self) -> &str {
        self.task.goal.as_str()
    }

    fn notes(&self) -> Vec<String> {
        self.privileged.notes.clone()
    }

    fn preview(&self) -> Preview {
        let room = self.world.room.as_deref().unwrap_or("room");
        let lines = self
            .world
            .receptacles
            .iter()
            .map(|r| {
                let mut text = format!("  {}", r.name);
                if r.openable == Some(true) || r.closed.is_some() {
                    if r.closed == Some(false) {
                        text.push_str(" (open)");
                    } else {
                        text.push_str(" (closed)");
                    }
                }
                if !r.contents.is_empty() {
                    text.push_str(": ");
                    text.push_str(&r.contents.join(", "));
                }
                text
            })
            .collect();
        Preview {
            title: format!("World ({room})"),
            lines,
            notes: self.privileged.notes.clone(),
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
