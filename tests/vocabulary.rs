//! Our household vocabulary and room templates agree with ALFWorld's own constants
//! (`tests/data/alfworld/vocabulary.json`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use leap::env::household::vocab::{Affordance, Vocabulary, rooms};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct Alfworld {
    objects: Vec<String>,
    receptacles: Vec<String>,
    movable_receptacles: Vec<String>,
    val_receptacle_objects: BTreeMap<String, Vec<String>>,
    val_action_objects: BTreeMap<String, Vec<String>>,
}

fn alfworld() -> Alfworld {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/alfworld/vocabulary.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("vocabulary.json parses")
}

fn lower(names: &[String]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_lowercase()).collect()
}

#[test]
fn receptacle_types_match_alfworld() {
    let a = alfworld();
    let ours: BTreeSet<String> = Vocabulary::builtin().receptacles.keys().cloned().collect();
    assert_eq!(ours, lower(&a.receptacles));
    let movable: BTreeSet<String> = Vocabulary::builtin()
        .receptacles
        .iter()
        .filter(|(_, r)| r.movable)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(movable, lower(&a.movable_receptacles));
}

#[test]
fn what_fits_where_matches_alfworld() {
    let a = alfworld();
    let mut theirs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (recep, objects) in &a.val_receptacle_objects {
        for o in objects {
            theirs
                .entry(o.to_lowercase())
                .or_default()
                .insert(recep.to_lowercase());
        }
    }
    let all_objects = lower(&a.objects);
    for (object, t) in &Vocabulary::builtin().objects {
        let fits: BTreeSet<String> = t.fits.iter().cloned().collect();
        if object == "desklamp" {
            // ALFWorld's constants leave lamps out of every receptacle; its rooms stand them on
            // desks, dressers and side tables, and so do ours.
            assert!(all_objects.contains(object));
            continue;
        }
        // Types that ALFWorld's constants put in no receptacle (a mirror, a houseplant) fit
        // nowhere.
        assert_eq!(
            fits,
            theirs.get(object).cloned().unwrap_or_default(),
            "{object}"
        );
    }
    let ours: BTreeSet<&String> = Vocabulary::builtin().objects.keys().collect();
    for object in theirs.keys() {
        assert!(
            ours.contains(object),
            "{object} is missing from our vocabulary"
        );
    }
}

#[test]
fn object_types_match_alfworld_both_ways() {
    // ALFWorld's text games have an object for every type of its constants that is not a fixed
    // receptacle (`state_to_pddl`: OBJECTS_SET minus the static receptacle types), so a real
    // room can list any of them (a houseplant 1 on a countertop, a television 1 on a dresser).
    let a = alfworld();
    let vocab = Vocabulary::builtin();
    let static_receptacles: BTreeSet<String> = lower(&a.receptacles)
        .difference(&lower(&a.movable_receptacles))
        .cloned()
        .collect();
    let theirs: BTreeSet<String> = lower(&a.objects)
        .difference(&static_receptacles)
        .cloned()
        .collect();
    // The sliced variants are ALFWorld's too: they are in its `canContain` table.
    let sliced: BTreeSet<String> = a
        .val_receptacle_objects
        .values()
        .flatten()
        .map(|o| o.to_lowercase())
        .filter(|o| o.ends_with("sliced"))
        .collect();
    let ours: BTreeSet<String> = vocab.objects.keys().cloned().collect();
    let missing: Vec<&String> = theirs.difference(&ours).collect();
    assert!(
        missing.is_empty(),
        "ALFWorld object types missing from ours: {missing:?}"
    );
    let extra: Vec<&String> = ours
        .difference(&theirs)
        .filter(|o| !sliced.contains(*o))
        .collect();
    assert!(
        extra.is_empty(),
        "object types of ours that ALFWorld lacks: {extra:?}"
    );
    for kind in ["houseplant", "papertowelroll", "television", "mirror"] {
        assert!(ours.contains(kind), "{kind}");
    }
    assert!(!vocab.pickable("houseplant") && !vocab.pickable("desklamp"));
    assert!(vocab.pickable("papertowelroll") && vocab.pickable("apple"));
}

#[test]
fn affordances_match_alfworld() {
    let a = alfworld();
    for (name, affordance) in [
        ("Heatable", Affordance::Heat),
        ("Coolable", Affordance::Cool),
        ("Cleanable", Affordance::Clean),
        ("Toggleable", Affordance::Toggle),
        ("Sliceable", Affordance::Slice),
    ] {
        let theirs = lower(&a.val_action_objects[name]);
        let ours: BTreeSet<String> = Vocabulary::builtin()
            .objects
            .iter()
            .filter(|(_, t)| t.can.contains(&affordance))
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(ours, theirs, "{name}");
    }
}

#[test]
fn room_templates_only_use_known_types_and_possible_places() {
    let vocab = Vocabulary::builtin();
    for (room, room_t) in rooms() {
        for (kind, [lo, hi]) in &room_t.receptacles {
            let t = vocab
                .receptacles
                .get(kind)
                .unwrap_or_else(|| panic!("{room}: {kind} is unknown"));
            assert!(
                !t.movable,
                "{room}: {kind} is carried around, not part of a room"
            );
            assert!(lo <= hi, "{room}: {kind}");
        }
        for (object, places) in &room_t.objects {
            assert!(!places.is_empty(), "{room}: {object} has no place");
            for place in places {
                assert!(
                    vocab.fits(object, place),
                    "{room}: a {object} cannot be in a {place}"
                );
                assert!(
                    room_t.receptacles.contains_key(place),
                    "{room}: {object} sits in {place}, which the room lacks"
                );
            }
        }
    }
}
