//! The six ALFWorld task types and when each one holds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::layout::Layout;
use super::state::{CLEAN, COOL, HOT, ON, State};

/// ALFWorld's six task types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GoalKind {
    /// Put an object in or on a receptacle.
    PickAndPlace,
    /// Hold an object where a lamp of the given type is turned on.
    LookInLight,
    /// Clean an object in a sinkbasin, then put it in or on a receptacle.
    CleanThenPlace,
    /// Heat an object in a microwave, then put it in or on a receptacle.
    HeatThenPlace,
    /// Cool an object in a fridge, then put it in or on a receptacle.
    CoolThenPlace,
    /// Put two objects of one type in or on the same receptacle.
    PickTwo,
}

impl GoalKind {
    pub const ALL: [GoalKind; 6] = [
        GoalKind::PickAndPlace,
        GoalKind::LookInLight,
        GoalKind::CleanThenPlace,
        GoalKind::HeatThenPlace,
        GoalKind::CoolThenPlace,
        GoalKind::PickTwo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GoalKind::PickAndPlace => "pick_and_place",
            GoalKind::LookInLight => "look_in_light",
            GoalKind::CleanThenPlace => "clean_then_place",
            GoalKind::HeatThenPlace => "heat_then_place",
            GoalKind::CoolThenPlace => "cool_then_place",
            GoalKind::PickTwo => "pick_two",
        }
    }

    /// The receptacle type the object must visit first, and the state it gets there.
    pub fn appliance(self) -> Option<(&'static str, u8)> {
        match self {
            GoalKind::CleanThenPlace => Some(("sinkbasin", CLEAN)),
            GoalKind::HeatThenPlace => Some(("microwave", HOT)),
            GoalKind::CoolThenPlace => Some(("fridge", COOL)),
            _ => None,
        }
    }

    /// Reads a task sentence in any of ALFWorld's wordings ("heat some egg and put it in
    /// diningtable.", "examine the pen with the desklamp.") into (kind, object, target).
    pub fn parse_task(text: &str) -> Option<(GoalKind, String, String)> {
        let text = text.trim().trim_end_matches('.');
        let split = |rest: &str, sep: &str| -> Option<(String, String)> {
            let (a, b) = rest.split_once(sep)?;
            let one_word = |w: &str| !w.is_empty() && !w.contains(' ');
            (one_word(a) && one_word(b)).then(|| (a.to_string(), b.to_string()))
        };
        let forms: [(&str, &str, GoalKind); 14] = [
            ("look at ", " under the ", GoalKind::LookInLight),
            ("examine the ", " with the ", GoalKind::LookInLight),
            ("put two ", " in ", GoalKind::PickTwo),
            ("find two ", " and put them in ", GoalKind::PickTwo),
            ("put a clean ", " in ", GoalKind::CleanThenPlace),
            ("clean some ", " and put it in ", GoalKind::CleanThenPlace),
            ("put a hot ", " in ", GoalKind::HeatThenPlace),
            ("heat some ", " and put it in ", GoalKind::HeatThenPlace),
            ("put a cool ", " in ", GoalKind::CoolThenPlace),
            ("cool some ", " and put it in ", GoalKind::CoolThenPlace),
            ("put some ", " on ", GoalKind::PickAndPlace),
            ("put some ", " in ", GoalKind::PickAndPlace),
            ("put a ", " in ", GoalKind::PickAndPlace),
            ("find some ", " and put it in ", GoalKind::PickAndPlace),
        ];
        forms.iter().find_map(|(prefix, sep, kind)| {
            let (object, target) = split(text.strip_prefix(prefix)?, sep)?;
            Some((*kind, object, target))
        })
    }

    /// The task sentence in ALFWorld's wording.
    pub fn describe(self, object: &str, target: &str) -> String {
        match self {
            GoalKind::PickAndPlace => format!("put some {object} on {target}."),
            GoalKind::LookInLight => format!("look at {object} under the {target}."),
            GoalKind::CleanThenPlace => format!("put a clean {object} in {target}."),
            GoalKind::HeatThenPlace => format!("put a hot {object} in {target}."),
            GoalKind::CoolThenPlace => format!("put a cool {object} in {target}."),
            GoalKind::PickTwo => format!("put two {object} in {target}."),
        }
    }
}

/// A goal over one layout: an object type and a target type (a receptacle type, or for
/// `look_in_light` a lamp type), resolved to instances once.
#[derive(Debug, Clone)]
pub struct Goal {
    pub kind: GoalKind,
    pub object: String,
    pub target: String,
    objects: Vec<u16>,
    targets: Vec<u16>,
}

impl Goal {
    pub fn new(kind: GoalKind, object: &str, target: &str, layout: &Layout) -> Goal {
        let objects = (0..layout.objects.len() as u16)
            .filter(|&o| layout.object(o).kind == object)
            .collect();
        let targets = if kind == GoalKind::LookInLight {
            (0..layout.objects.len() as u16)
                .filter(|&o| layout.object(o).kind == target)
                .collect()
        } else {
            (0..layout.receptacles.len() as u16)
                .filter(|&r| layout.receptacle(r).kind == target)
                .collect()
        };
        Goal {
            kind,
            object: object.to_string(),
            target: target.to_string(),
            objects,
            targets,
        }
    }

    /// Instances of the goal's object type.
    pub fn objects(&self) -> &[u16] {
        &self.objects
    }

    /// Instances of the target type: receptacles, or lamps for `look_in_light`.
    pub fn targets(&self) -> &[u16] {
        &self.targets
    }

    pub fn holds(&self, layout: &Layout, state: &State) -> bool {
        let flag = self.kind.appliance().map_or(0, |(_, f)| f);
        let in_target = |o: u16, flag: u8| {
            state.flags[usize::from(o)] & flag == flag
                && self
                    .targets
                    .iter()
                    .any(|&r| state.contents[usize::from(r)].binary_search(&o).is_ok())
        };
        match self.kind {
            GoalKind::PickTwo => self.targets.iter().any(|&r| {
                let contents = &state.contents[usize::from(r)];
                self.objects
                    .iter()
                    .filter(|o| contents.binary_search(o).is_ok())
                    .count()
                    >= 2
            }),
            GoalKind::LookInLight => {
                let holding = state.held.is_some_and(|h| self.objects.contains(&h));
                holding
                    && self.targets.iter().any(|&lamp| {
                        state.flags[usize::from(lamp)] & ON != 0
                            && state
                                .places_of(lamp)
                                .any(|r| state.spot(layout) == Some(layout.receptacle(r).spot))
                    })
            }
            _ => self.objects.iter().any(|&o| in_target(o, flag)),
        }
    }
}
