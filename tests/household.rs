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
