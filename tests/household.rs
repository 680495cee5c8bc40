//! The household environment's rules, on real scenarios.

use std::path::PathBuf;

use leap::env::Environment;
use leap::env::household::{self, HouseholdEnv, expert};
use leap::scenario;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn load(path: &str) -> Vec<scenario::Scenario> {
    scenario::load_all(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)])
        .unwrap_or_else(|p| panic!("{p}"))
}

fn env_of(s: &scenario::Scenario) -> HouseholdEnv {
    household::body(s)
        .expect("a household scenario")
        .env(s.horizon)
}

fn showcase(id: &str) -> HouseholdEnv {
    let all = load("scenarios/showcase.yaml");
    env_of(all.iter().find(|s| s.id == id).expect("showcase scenario"))
}

#[test]
fn admissible_commands_are_exactly_the_ones_that_do_something() {
    // Random walks over the test set: every admissible command changes something or reports
    // something, and commands that are not admissible answer "Nothing happens.".
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for s in load("scenarios/household/test") {
        let mut env = env_of(&s);
        for _ in 0..s.horizon {
            let admissible = env.admissible();
            let mut sorted = admissible.clone();
            sorted.sort();
            assert_eq!(admissible, sorted, "{}: the list is sorted", s.id);
            // A command that looks right but is not admissible.
            let probe = format!(
                "take {} from nowhere 1",
                env.task().split(' ').nth(2).unwrap_or("x")
            );
            let mut probe_env = env.clone();
            probe_env.step(&probe);
            assert_eq!(
                probe_env.observation(),
                "Nothing happens.",
                "{}: `{probe}`",
                s.id
            );
            let cmd = if rng.random_bool(0.1) {
                "look".to_string()
            } else {
                admissible.choose(&mut rng).unwrap().clone()
            };
            let outcome = env.step(&cmd);
            assert_ne!(
                env.observation(),
                "Nothing happens.",
                "{}: admissible `{cmd}`",
                s.id
            );
            if outcome.done {
                break;
            }
        }
    }
}

#[test]
fn closed_receptacles_hide_their_contents_until_opened() {
    let mut env = showcase("showcase-morning-coffee");
    assert!(!env.admissible().iter().any(|c| c.starts_with("take")));
    env.step("go to cabinet 1");
    assert_eq!(env.observation(), "The cabinet 1 is closed.");
    assert!(
        !env.admissible()
            .contains(&"take mug 1 from cabinet 1".to_string())
    );
    env.step("take mug 1 from cabinet 1");
    assert_eq!(env.observation(), "Nothing happens.");
    env.step("open cabinet 1");
    assert_eq!(
        env.observation(),
        "You open the cabinet 1. The cabinet 1 is open. In it, you see a mug 1."
    );
    env.step("close cabinet 1");
    assert_eq!(env.observation(), "You close the cabinet 1.");
    env.step("go to cabinet 2");
    assert_eq!(
        env.observation(),
        "The cabinet 2 is open. In it, you see a plate 1."
    );
}

#[test]
fn one_object_in_hand_at_a_time() {
    let mut env = showcase("showcase-morning-coffee");
    env.step("go to countertop 1");
    assert_eq!(
        env.observation(),
        "On the countertop 1, you see a apple 1, and a knife 1."
    );
    env.step("take apple 1 from countertop 1");
    assert_eq!(
        env.observation(),
        "You pick up the apple 1 from the countertop 1."
    );
    assert!(!env.admissible().iter().any(|c| c.starts_with("take")));
    env.step("take knife 1 from countertop 1");
    assert_eq!(env.observation(), "Nothing happens.");
    env.step("inventory");
    assert_eq!(env.observation(), "You are carrying: a apple 1.");
    env.step("put apple 1 in/on countertop 1");
    assert_eq!(
        env.observation(),
        "You put the apple 1 in/on the countertop 1."
    );
    env.step("inventory");
    assert_eq!(env.observation(), "You are not carrying anything.");
}

#[test]
fn reward_and_done_when_the_goal_holds_and_the_game_then_repeats_itself() {
    let mut env = showcase("showcase-warm-bread");
    let plan = expert::plan(&env).unwrap();
    let mut last = None;
    for cmd in &plan {
        last = Some(env.step(cmd));
    }
    let last = last.unwrap();
    assert!(last.won && last.done);
    assert_eq!(last.reward, 1.0);
    assert_eq!(
        env.observation(),
        "You put the bread 1 in/on the diningtable 1."
    );
    let after = env.step("look");
    assert!(after.done && !after.won && after.reward == 0.0);
    assert_eq!(
        env.observation(),
        "You put the bread 1 in/on the diningtable 1."
    );
}

#[test]
fn the_episode_ends_at_the_horizon() {
    let mut env = showcase("showcase-morning-coffee");
    for i in 1..=env.horizon() {
        let outcome = env.step("look");
        assert_eq!(outcome.done, i == env.horizon(), "step {i}");
        assert!(!outcome.won);
    }
    assert_eq!(env.steps_taken(), env.horizon());
}

#[test]
fn heating_without_a_microwave_does_nothing_and_the_task_needs_the_heat() {
    let mut env = showcase("showcase-warm-bread");
    for cmd in [
        "go to countertop 1",
        "take bread 1 from countertop 1",
        "go to diningtable 1",
    ] {
        env.step(cmd);
    }
    env.step("heat bread 1 with diningtable 1");
    assert_eq!(env.observation(), "Nothing happens.");
    let outcome = env.step("put bread 1 in/on diningtable 1");
    assert!(!outcome.won, "cold bread does not count");
}

#[test]
fn co_located_receptacles_are_reached_together() {
    let mut env = showcase("showcase-reading-light");
    env.step("go to drawer 1");
    env.step("go to drawer 2");
    assert_eq!(env.observation(), "Nothing happens.");
    env.step("look");
    assert_eq!(
        env.observation(),
        "You are facing the drawer 2, and drawer 1. Next to it, you see nothing."
    );
    assert!(
        env.admissible()
            .contains(&"take cd 1 from drawer 2".to_string())
    );
}

#[test]
fn expert_plans_replay_to_the_goal_on_every_shipped_scenario() {
    let all = load("scenarios");
    let households: Vec<&scenario::Scenario> = all
        .iter()
        .filter(|s| household::body(s).is_some())
        .collect();
    assert!(
        households.len() >= 300,
        "{} household scenarios",
        households.len()
    );
    for s in households {
        let mut env = env_of(s);
        let plan = expert::plan(&env).unwrap_or_else(|| panic!("{}: no plan", s.id));
        assert!(plan.len() <= s.horizon as usize, "{}", s.id);
        let won = plan.iter().map(|c| env.step(c)).any(|o| o.won);
        assert!(won, "{}: the plan does not reach the goal", s.id);
    }
}

// ALFWorld's own rules that real games show (issue 22). The texts are the real games'.

/// A household scenario written inline, loaded through the scenario loader.
fn world(task: &str, receptacles: &str) -> HouseholdEnv {
    let text = format!(
        "id: inline\nkind: household\nsplit: test\ntask: {task}\nhorizon: 30\nworld:\n  receptacles:\n{receptacles}"
    );
    let loaded = scenario::parse_text(std::path::Path::new("inline.yaml"), &text);
    let problems: Vec<String> = loaded.problems.iter().map(|p| p.to_string()).collect();
    assert!(problems.is_empty(), "{problems:?}");
    env_of(&loaded.scenarios[0])
}

/// Plays `commands`, each of which must be admissible, and returns the last observation.
fn play(env: &mut HouseholdEnv, commands: &[&str]) -> String {
    for cmd in commands {
        assert!(
            env.admissible().iter().any(|c| c == cmd),
            "`{cmd}` is admissible: {:?}",
            env.admissible()
        );
        env.step(cmd);
    }
    env.observation().to_string()
}

/// Steps `cmd`, which must not be admissible, and checks the game says "Nothing happens.".
fn nothing_happens(env: &mut HouseholdEnv, cmd: &str) {
    assert!(
        !env.admissible().iter().any(|c| c == cmd),
        "`{cmd}` is not admissible"
    );
    let outcome = env.step(cmd);
    assert_eq!(env.observation(), "Nothing happens.", "`{cmd}`");
    assert!(!outcome.won);
}

#[test]
fn every_alfworld_object_type_can_be_in_a_room() {
    // Real rooms list houseplants, paper towel rolls, mirrors and televisions.
    let mut env = world(
        "{goal: pick_and_place, object: apple, target: diningtable}",
        "    - {name: countertop 2, contents: [apple 2, butterknife 2, fork 3, houseplant 1, knife 2, lettuce 3, spatula 1, winebottle 1]}
    - {name: countertop 1, contents: [cellphone 2, creditcard 4, creditcard 3, creditcard 2, mirror 1, pencil 2, pencil 1]}
    - {name: diningtable 1, contents: [papertowelroll 1]}
    - {name: dresser 1, contents: [mug 1, television 1]}
",
    );
    assert_eq!(
        play(&mut env, &["go to countertop 2"]),
        "On the countertop 2, you see a apple 2, a butterknife 2, a fork 3, a houseplant 1, a knife 2, a lettuce 3, a spatula 1, and a winebottle 1."
    );
    // A houseplant is not pickupable in ALFWorld's scenes.
    nothing_happens(&mut env, "take houseplant 1 from countertop 2");
    assert_eq!(
        play(&mut env, &["go to countertop 1"]),
        "On the countertop 1, you see a cellphone 2, a creditcard 4, a creditcard 3, a creditcard 2, a mirror 1, a pencil 2, and a pencil 1."
    );
    nothing_happens(&mut env, "take mirror 1 from countertop 1");
    assert_eq!(
        play(&mut env, &["go to dresser 1"]),
        "On the dresser 1, you see a mug 1, and a television 1."
    );
    assert_eq!(
        play(
            &mut env,
            &[
                "go to diningtable 1",
                "take papertowelroll 1 from diningtable 1"
            ]
        ),
        "You pick up the papertowelroll 1 from the diningtable 1."
    );
}

#[test]
fn one_object_listed_in_two_receptacles_stays_in_the_other_when_taken() {
    // ALFWorld lists an object on every receptacle it overlaps in the 3-D scene; taking it
    // from one removes only that listing (PickupObject's effect is `not inReceptacle o r`).
    let mut env = world(
        "{goal: pick_and_place, object: pan, target: countertop}",
        "    - {name: stoveburner 1, contents: [pan 1]}
    - {name: stoveburner 2, contents: [pan 1]}
    - {name: countertop 1}
",
    );
    assert_eq!(
        play(&mut env, &["go to stoveburner 1"]),
        "On the stoveburner 1, you see a pan 1."
    );
    assert_eq!(
        play(&mut env, &["go to stoveburner 2"]),
        "On the stoveburner 2, you see a pan 1."
    );
    assert_eq!(
        play(&mut env, &["take pan 1 from stoveburner 2"]),
        "You pick up the pan 1 from the stoveburner 2."
    );
    assert_eq!(
        play(&mut env, &["go to stoveburner 1"]),
        "On the stoveburner 1, you see a pan 1."
    );
    // One thing in hand at a time: the listing that stays cannot be taken again.
    nothing_happens(&mut env, "take pan 1 from stoveburner 1");
    assert_eq!(play(&mut env, &["inventory"]), "You are carrying: a pan 1.");
    let outcome = env.step("go to countertop 1");
    assert!(!outcome.won);
    env.step("put pan 1 in/on countertop 1");
    assert_eq!(
        env.observation(),
        "You put the pan 1 in/on the countertop 1."
    );
    assert!(env.won());
}

#[test]
fn cooling_an_object_still_listed_in_the_target_wins_with_it_in_hand() {
    // The real game won right after `cool mug 2 with fridge 1`, the mug in hand: mug 2 was
    // listed on the countertop and in the coffeemachine, the agent took it from the countertop,
    // and ALFWorld's goal (`isCool ?o` and `inReceptacle ?o ?r` for a coffeemachine) then holds.
    let mut env = world(
        "{goal: cool_then_place, object: mug, target: coffeemachine}",
        "    - {name: countertop 1, contents: [mug 2]}
    - {name: coffeemachine 1, contents: [mug 2]}
    - {name: fridge 1}
",
    );
    play(
        &mut env,
        &[
            "go to countertop 1",
            "take mug 2 from countertop 1",
            "go to fridge 1",
        ],
    );
    assert_eq!(play(&mut env, &["inventory"]), "You are carrying: a mug 2.");
    let outcome = env.step("cool mug 2 with fridge 1");
    assert_eq!(env.observation(), "You cool the mug 2 using the fridge 1.");
    assert!(outcome.won, "ALFWorld says won here");
}

#[test]
fn starting_places_are_not_limited_by_put_and_put_follows_what_fits() {
    // Real rooms start a desklamp on a shelf and a glassbottle in a garbagecan; in real games
    // a candle into a garbagecan, a glassbottle into a drawer and a towel onto a countertop
    // all answered "Nothing happens.".
    let mut env = world(
        "{goal: pick_and_place, object: candle, target: toilet}",
        "    - {name: shelf 1, contents: [desklamp 1]}
    - {name: garbagecan 1, contents: [glassbottle 1]}
    - {name: countertop 1, contents: [candle 1, towel 1]}
    - {name: drawer 1, closed: false}
    - {name: toilet 1}
    - {name: towelholder 1}
",
    );
    assert_eq!(
        play(&mut env, &["go to shelf 1"]),
        "On the shelf 1, you see a desklamp 1."
    );
    play(
        &mut env,
        &["go to garbagecan 1", "take glassbottle 1 from garbagecan 1"],
    );
    nothing_happens(&mut env, "put glassbottle 1 in/on garbagecan 1");
    play(&mut env, &["go to drawer 1"]);
    nothing_happens(&mut env, "put glassbottle 1 in/on drawer 1");
    play(
        &mut env,
        &[
            "go to countertop 1",
            "put glassbottle 1 in/on countertop 1",
            "take towel 1 from countertop 1",
        ],
    );
    nothing_happens(&mut env, "put towel 1 in/on countertop 1");
    play(
        &mut env,
        &[
            "go to towelholder 1",
            "put towel 1 in/on towelholder 1",
            "go to countertop 1",
            "take candle 1 from countertop 1",
            "go to garbagecan 1",
        ],
    );
    nothing_happens(&mut env, "put candle 1 in/on garbagecan 1");
    play(&mut env, &["go to toilet 1"]);
    let outcome = env.step("put candle 1 in/on toilet 1");
    assert!(outcome.won);
}

#[test]
fn clean_heat_and_cool_only_what_can_be() {
    // Real games: `clean handtowel 1 with sinkbasin 1` is "Nothing happens.".
    let mut env = world(
        "{goal: heat_then_place, object: apple, target: countertop}",
        "    - {name: sinkbasin 1, contents: [handtowel 1]}
    - {name: microwave 1, closed: false}
    - {name: fridge 1, closed: false, contents: [apple 1, cellphone 1]}
    - {name: countertop 1}
",
    );
    play(
        &mut env,
        &["go to sinkbasin 1", "take handtowel 1 from sinkbasin 1"],
    );
    nothing_happens(&mut env, "clean handtowel 1 with sinkbasin 1");
    play(&mut env, &["go to fridge 1"]);
    nothing_happens(&mut env, "put handtowel 1 in/on fridge 1");
    play(
        &mut env,
        &["go to sinkbasin 1", "put handtowel 1 in/on sinkbasin 1"],
    );
    play(
        &mut env,
        &["go to fridge 1", "take cellphone 1 from fridge 1"],
    );
    nothing_happens(&mut env, "cool cellphone 1 with fridge 1");
    // Heating then cooling leaves the apple cool, not hot (HeatObject and CoolObject each undo
    // the other), so the heat task is not done.
    play(
        &mut env,
        &[
            "go to countertop 1",
            "put cellphone 1 in/on countertop 1",
            "go to fridge 1",
            "take apple 1 from fridge 1",
            "go to microwave 1",
            "heat apple 1 with microwave 1",
            "go to fridge 1",
            "cool apple 1 with fridge 1",
            "go to countertop 1",
        ],
    );
    let outcome = env.step("put apple 1 in/on countertop 1");
    assert_eq!(
        env.observation(),
        "You put the apple 1 in/on the countertop 1."
    );
    assert!(!outcome.won, "the apple was cooled after it was heated");
    play(
        &mut env,
        &[
            "take apple 1 from countertop 1",
            "go to microwave 1",
            "heat apple 1 with microwave 1",
            "go to countertop 1",
        ],
    );
    let outcome = env.step("put apple 1 in/on countertop 1");
    assert!(outcome.won);
}

#[test]
fn look_in_the_middle_of_the_room_sees_nothing() {
    let mut env = world(
        "{goal: pick_and_place, object: apple, target: countertop}",
        "    - {name: fridge 1, contents: [apple 1]}
    - {name: countertop 1}
",
    );
    assert_eq!(
        env.observation(),
        "You are in the middle of a room. Looking quickly around you, you see a countertop 1, and a fridge 1."
    );
    assert_eq!(
        play(&mut env, &["look"]),
        "You are in the middle of a room. Looking quickly around you, you see nothing."
    );
    assert_eq!(
        play(&mut env, &["go to countertop 1", "look"]),
        "You are facing the countertop 1. Next to it, you see nothing."
    );
}
