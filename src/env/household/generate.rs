//! Generated household scenario sets: layouts from the room templates, objects placed where
//! they usually are, tasks of all six types.
//!
//! The test split measures generalisation the way ALFWorld's unseen split does: a layout (a room
//! and its receptacle counts) and a task's (object, target) pair each fall on one side of a fixed
//! hash partition, so no test layout and no test pair ever occurs in train, whatever the seeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::GoalKind;
use super::expert;
use super::scenario::{HouseholdTask, HouseholdWorld, ReceptacleEntry};
use super::vocab::{Affordance, Room, Vocabulary, rooms};
use crate::scenario::{Split, parse_text};

/// Steps before a generated episode ends unsolved (LEAP evaluated ALFWorld with 20 to 30).
pub const HORIZON: u32 = 30;

/// Which side of the train/test partition a key falls on: one key in four is test.
fn side(key: &str) -> Split {
    let digest = Sha256::digest(key.as_bytes());
    if digest[0] % 4 == 0 {
        Split::Test
    } else {
        Split::Train
    }
}

/// The partition key of a layout: its room and how many receptacles of each type it has.
pub fn layout_key(room: &str, world: &HouseholdWorld) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &world.receptacles {
        let kind = r.name.rsplit_once(' ').map_or(r.name.as_str(), |(k, _)| k);
        *counts.entry(kind).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k}={n}")).collect();
    format!("{room}:{}", parts.join(","))
}

/// The partition key of a task: its object and target types.
pub fn pair_key(task: &HouseholdTask) -> String {
    format!("{}->{}", task.object, task.target)
}

/// The layout split and the task-pair split of a scenario.
pub fn sides(room: &str, world: &HouseholdWorld, task: &HouseholdTask) -> (Split, Split) {
    (side(&layout_key(room, world)), side(&pair_key(task)))
}

#[derive(Serialize)]
struct Doc<'a> {
    id: &'a str,
    kind: &'static str,
    split: Split,
    task: &'a HouseholdTask,
    horizon: u32,
    world: &'a HouseholdWorld,
}

/// One generated scenario as YAML text.
pub struct Generated {
    pub id: String,
    pub yaml: String,
}

fn rooms_for(goal: GoalKind) -> &'static [&'static str] {
    match goal {
        GoalKind::HeatThenPlace | GoalKind::CoolThenPlace => &["kitchen"],
        GoalKind::CleanThenPlace => &["kitchen", "bathroom"],
        GoalKind::LookInLight => &["bedroom", "livingroom"],
        GoalKind::PickAndPlace | GoalKind::PickTwo => {
            &["kitchen", "bathroom", "bedroom", "livingroom"]
        }
    }
}

fn affordance(goal: GoalKind) -> Option<Affordance> {
    match goal {
        GoalKind::CleanThenPlace => Some(Affordance::Clean),
        GoalKind::HeatThenPlace => Some(Affordance::Heat),
        GoalKind::CoolThenPlace => Some(Affordance::Cool),
        _ => None,
    }
}

/// ALFWorld's second wording of each task type.
fn other_wording(goal: GoalKind, object: &str, target: &str) -> String {
    match goal {
        GoalKind::PickAndPlace => format!("find some {object} and put it in {target}."),
        GoalKind::LookInLight => format!("examine the {object} with the {target}."),
        GoalKind::CleanThenPlace => format!("clean some {object} and put it in {target}."),
        GoalKind::HeatThenPlace => format!("heat some {object} and put it in {target}."),
        GoalKind::CoolThenPlace => format!("cool some {object} and put it in {target}."),
        GoalKind::PickTwo => format!("find two {object} and put them in {target}."),
    }
}

/// Receptacle counts for a room, redrawn until the layout falls on `split`'s side.
fn draw_layout(rng: &mut ChaCha8Rng, room_name: &str, room: &Room, split: Split) -> HouseholdWorld {
    loop {
        let mut receptacles = Vec::new();
        for (kind, [lo, hi]) in &room.receptacles {
            let n = rng.random_range(*lo..=*hi);
            for i in (1..=n).rev() {
                receptacles.push(ReceptacleEntry {
                    name: format!("{kind} {i}"),
                    openable: None,
                    closed: None,
                    beside: None,
                    contents: Vec::new(),
                });
            }
        }
        let world = HouseholdWorld {
            room: Some(room_name.to_string()),
            receptacles,
        };
        if side(&layout_key(room_name, &world)) == split {
            return world;
        }
    }
}

/// A task for this layout whose (object, target) pair falls on `split`'s side.
fn draw_task(
    rng: &mut ChaCha8Rng,
    goal: GoalKind,
    room: &Room,
    world: &HouseholdWorld,
    split: Split,
) -> Option<HouseholdTask> {
    let vocab = Vocabulary::builtin();
    let present = |kind: &str| {
        world
            .receptacles
            .iter()
            .any(|r| r.name.rsplit_once(' ').is_some_and(|(k, _)| k == kind))
    };
    let mut pairs = Vec::new();
    for object in room.objects.keys() {
        if vocab.object_can(object, Affordance::Toggle)
            || affordance(goal).is_some_and(|a| !vocab.object_can(object, a))
        {
            continue;
        }
        if goal == GoalKind::LookInLight {
            pairs.push((object.clone(), "desklamp".to_string()));
            continue;
        }
        for r in &world.receptacles {
            let Some((target, _)) = r.name.rsplit_once(' ') else {
                continue;
            };
            let appliance = goal.appliance().map(|(a, _)| a);
            let ok = vocab.fits(object, target) && Some(target) != appliance;
            let pair = (object.clone(), target.to_string());
            if ok && !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
    }
    if let Some((appliance, _)) = goal.appliance()
        && !present(appliance)
    {
        return None;
    }
    if goal == GoalKind::LookInLight && !room.objects.contains_key("desklamp") {
        return None;
    }
    pairs.retain(|(object, target)| {
        let task = HouseholdTask {
            goal,
            object: object.clone(),
            target: target.clone(),
            text: None,
        };
        side(&pair_key(&task)) == split
    });
    let (object, target) = pairs.choose(rng)?.clone();
    let text = rng
        .random_bool(0.5)
        .then(|| other_wording(goal, &object, &target));
    Some(HouseholdTask {
        goal,
        object,
        target,
        text,
    })
}

/// Places objects of the room's types where they usually are.
fn furnish(rng: &mut ChaCha8Rng, room: &Room, world: &mut HouseholdWorld, task: &HouseholdTask) {
    let vocab = Vocabulary::builtin();
    let by_kind = |world: &HouseholdWorld, kind: &str| -> Vec<usize> {
        (0..world.receptacles.len())
            .filter(|&i| {
                world.receptacles[i]
                    .name
                    .rsplit_once(' ')
                    .is_some_and(|(k, _)| k == kind)
            })
            .collect()
    };
    for (object, places) in &room.objects {
        let is_goal = *object == task.object;
        let is_lamp = vocab.object_can(object, Affordance::Toggle);
        let count = if is_goal {
            if task.goal == GoalKind::PickTwo {
                rng.random_range(2..=3)
            } else {
                rng.random_range(1..=2)
            }
        } else if is_lamp {
            usize::from(task.goal == GoalKind::LookInLight)
        } else {
            rng.random_range(0..=2usize)
                .saturating_sub(usize::from(rng.random_bool(0.3)))
        };
        for n in 1..=count {
            // Most likely place first, each later one half as likely; never the task's target.
            let candidates: Vec<(&String, Vec<usize>)> = places
                .iter()
                .filter(|p| !(is_goal && **p == task.target) && vocab.fits(object, p))
                .map(|p| (p, by_kind(world, p)))
                .filter(|(_, at)| !at.is_empty())
                .collect();
            if candidates.is_empty() {
                break;
            }
            let mut pick = candidates.len() - 1;
            for i in 0..candidates.len() {
                if rng.random_bool(0.5) {
                    pick = i;
                    break;
                }
            }
            let at = *candidates[pick].1.choose(rng).expect("non-empty");
            world.receptacles[at].contents.push(format!("{object} {n}"));
        }
    }
    for r in &mut world.receptacles {
        r.contents.sort();
    }
}

/// `count` scenarios for `split`, the same for the same seed.
pub fn household(count: usize, seed: u64, split: Split) -> Vec<Generated> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ if split == Split::Test { 0x7e57 } else { 0 });
    let all_rooms = rooms();
    let mut out = Vec::with_capacity(count);
    let mut attempt = 0usize;
    while out.len() < count {
        attempt += 1;
        assert!(
            attempt < count * 1000 + 1000,
            "the room templates cannot make this many scenarios"
        );
        let goal = GoalKind::ALL[out.len() % GoalKind::ALL.len()];
        let room_name = *rooms_for(goal)
            .choose(&mut rng)
            .expect("every goal has rooms");
        let room = &all_rooms[room_name];
        let mut world = draw_layout(&mut rng, room_name, room, split);
        let Some(task) = draw_task(&mut rng, goal, room, &world, split) else {
            continue;
        };
        furnish(&mut rng, room, &mut world, &task);
        let id = format!(
            "{}-{room_name}-{}-{:04}",
            split.as_str(),
            goal.as_str(),
            out.len()
        );
        let doc = Doc {
            id: &id,
            kind: "household",
            split,
            task: &task,
            horizon: HORIZON,
            world: &world,
        };
        let yaml = format!(
            "# Generated: leap scenarios generate household --seed {seed} --split {} (scenario {}).\n{}",
            split.as_str(),
            out.len(),
            serde_yaml::to_string(&doc).expect("a scenario serializes")
        );
        // Keep only what loads cleanly and what the expert solves within the horizon.
        let loaded = parse_text(Path::new(&id), &yaml);
        let solvable = loaded.problems.is_empty()
            && loaded.scenarios.iter().all(|s| {
                super::body(s).is_some_and(|h| {
                    expert::plan(&h.env(s.horizon)).is_some_and(|p| p.len() <= s.horizon as usize)
                })
            });
        if solvable {
            out.push(Generated { id, yaml });
        }
    }
    out
}

/// Writes `count` scenarios for `split` into `dir`, one file each. Returns the paths written.
pub fn write_household(
    dir: &Path,
    count: usize,
    seed: u64,
    split: Split,
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::with_capacity(count);
    for g in household(count, seed, split) {
        let path = dir.join(format!("{}.yaml", g.id));
        let tmp = path.with_extension("yaml.tmp");
        std::fs::write(&tmp, &g.yaml)?;
        std::fs::rename(&tmp, &path)?;
        written.push(path);
    }
    Ok(written)
}
