//! The household vocabulary (object and receptacle types, what fits where, what can be done to
//! what) and the room templates, both shipped in `assets/household/`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

const VOCABULARY_YAML: &str = include_str!("../../../assets/household/vocabulary.yaml");
const ROOMS_YAML: &str = include_str!("../../../assets/household/rooms.yaml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Affordance {
    Clean,
    Cool,
    Heat,
    Slice,
    Toggle,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceptacleType {
    /// Has a door or a lid: instances start closed unless a scenario says otherwise.
    #[serde(default)]
    pub openable: bool,
    /// Carried around like an object (a bowl, a pot): never a fixed part of a room.
    #[serde(default)]
    pub movable: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectType {
    /// Receptacle types it can be put in or on.
    pub fits: Vec<String>,
    #[serde(default)]
    pub can: Vec<Affordance>,
    /// Cannot be picked up (a houseplant). Lamps, which can be turned on, never can.
    #[serde(default)]
    pub fixed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    pub receptacles: BTreeMap<String, ReceptacleType>,
    pub objects: BTreeMap<String, ObjectType>,
}

/// A room template: receptacle types with how many a layout may have, and object types with the
/// receptacle types where each usually sits, most likely first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Room {
    pub receptacles: BTreeMap<String, [u32; 2]>,
    pub objects: BTreeMap<String, Vec<String>>,
}

impl Vocabulary {
    /// The shipped vocabulary.
    pub fn builtin() -> &'static Vocabulary {
        static VOCAB: OnceLock<Vocabulary> = OnceLock::new();
        VOCAB.get_or_init(|| {
            serde_yaml::from_str(VOCABULARY_YAML)
                .expect("assets/household/vocabulary.yaml is valid")
        })
    }

    pub fn object_can(&self, kind: &str, affordance: Affordance) -> bool {
        self.objects
            .get(kind)
            .is_some_and(|o| o.can.contains(&affordance))
    }

    /// Whether `take` can pick an object of this type up (a type the vocabulary does not know can).
    pub fn pickable(&self, kind: &str) -> bool {
        self.objects
            .get(kind)
            .is_none_or(|o| !o.fixed && !o.can.contains(&Affordance::Toggle))
    }

    pub fn fits(&self, object: &str, receptacle: &str) -> bool {
        self.objects
            .get(object)
            .is_some_and(|o| o.fits.iter().any(|r| r == receptacle))
    }

    pub fn openable(&self, receptacle: &str) -> bool {
        self.receptacles.get(receptacle).is_some_and(|r| r.openable)
    }
}

/// The shipped room templates, by room name (kitchen, bathroom, bedroom, livingroom).
pub fn rooms() -> &'static BTreeMap<String, Room> {
    static ROOMS: OnceLock<BTreeMap<String, Room>> = OnceLock::new();
    ROOMS.get_or_init(|| {
        serde_yaml::from_str(ROOMS_YAML).expect("assets/household/rooms.yaml is valid")
    })
}

/// Where a person would look for `object` first: the receptacle types of every room that has
/// it, most likely first, merged in order of first mention.
pub fn likely_places(object: &str) -> Vec<&'static str> {
    let mut places: Vec<&'static str> = Vec::new();
    let lists: Vec<&Vec<String>> = rooms()
        .values()
        .filter_map(|r| r.objects.get(object))
        .collect();
    let longest = lists.iter().map(|l| l.len()).max().unwrap_or(0);
    for rank in 0..longest {
        for list in &lists {
            if let Some(place) = list.get(rank)
                && !places.contains(&place.as_str())
            {
                places.push(place.as_str());
            }
        }
    }
    places
}
