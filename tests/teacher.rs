//! The privileged teacher: the oracle's corrections reach the goal from the student's own state,
//! its reasons at privilege 0 give nothing away, the leakage guard catches planted leaks, and
//! labels keep every decision.

use std::path::PathBuf;

use leap::env::Environment;
use leap::env::household::oracle::{Knowledge, play};
use leap::env::household::{self, HouseholdEnv};
use leap::scenario::{self, Scenario, Split};
use leap::store::{EpisodeRecord, StepRecord};
use leap::teacher::Teacher;
use leap::teacher::oracle::OracleTeacher;

fn test_split() -> Vec<Scenario> {
    let all = scenario::load_all(&[PathBuf::from("scenarios/household")]).unwrap();
    let test: Vec<Scenario> = all.into_iter().filter(|s| s.split == Split::Test).collect();
    assert_eq!(test.len(), 60);
    test
}

/// A student that wanders: a fixed pseudo-random admissible command at each step.
fn wandering_episode(s: &Scenario, steps: usize, salt: u64) -> EpisodeRecord {
    let mut env = s.body.env(s.horizon);
    let mut records = Vec::new();
    let mut x = salt
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for _ in 0..steps {
        let admissible = env.admissible();
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let action = admissible[(x >> 33) as usize % admissible.len()].clone();
        let outcome = env.step(&action);
        records.push(StepRecord::scripted(
            "I wander.".into(),
            action,
            env.observation().to_string(),
            f64::from(outcome.reward),
            outcome.done,
            admissible,
        ));
        if outcome.done {
            break;
        }
    }
    EpisodeRecord {
        key: format!("test/{}/{salt}", s.id),
        scenario_hash: s.hash.clone(),
        scenario_id: s.id.clone(),
        policy: "wanderer".into(),
        seed: salt,
        iteration: None,
        sampling: serde_json::Value::Null,
        started_at_ms: 0,
        finished_at_ms: 0,
        won: false,
        reward: 0.0,
        wall_ms: 0,
        steps: records,
        branch: None,
        stopped: None,
    }
}

/// From the student's state before step `t`, the corrected action and then the oracle alone
/// reach the goal.
fn reaches_goal_from(
    s: &Scenario,
    episode: &EpisodeRecord,
    t: usize,
    action: &str,
    privilege: f64,
) -> bool {
    let mut env: HouseholdEnv = household::body(s).unwrap().env(1_000);
    let mut knowledge = Knowledge::new(&env);
    for step in &episode.steps[..t] {
        env.step(&step.action);
        knowledge.observe(&env);
    }
    assert!(
        env.admissible().iter().any(|a| a == action),
        "{}: corrected action {action:?} at step {t} is not admissible",
        s.id
    );
    let outcome = env.step(action);
    knowledge.observe(&env);
    if outcome.won {
        return true;
    }
    let oracle = OracleTeacher::new(privilege, 7);
    play(&mut env, &mut knowledge, 300, &mut |i| {
        oracle.privileged_at("replay", i)
    });
    env.won()
}

#[test]
fn oracle_corrections_reach_the_goal_from_the_students_state_on_the_whole_test_split() {
    for privilege in [0.0, 0.5, 1.0] {
        let mut teacher = OracleTeacher::new(privilege, 11);
        let mut corrected = 0;
        for (n, s) in test_split().iter().enumerate() {
            let episode = wandering_episode(s, 6, n as u64);
            let corrections = teacher.correct(s, &episode).unwrap();
            assert!(corrections.failures.is_empty());
            // Every step of a wandering episode gets a correction (none of them wins).
            assert_eq!(
                corrections.trajectory.len(),
                episode.steps.len(),
                "{}",
                s.id
            );
            for c in &corrections.trajectory {
                let t = c.timestep as usize;
                assert!(
                    reaches_goal_from(s, &episode, t, &c.corrected_action, privilege),
                    "{} at privilege {privilege}: from step {t}, {:?} does not lead to the goal",
                    s.id,
                    c.corrected_action
                );
                assert!(!c.corrected_reason.trim().is_empty());
                if privilege == 0.0 {
                    assert!(
                        c.leaks.is_empty(),
                        "{} step {t}: reason {:?} leaks {:?}",
                        s.id,
                        c.corrected_reason,
                        c.leaks
                    );
                }
                corrected += 1;
            }
        }
        assert!(corrected >= 300, "{corrected}");
    }
}

#[test]
fn the_oracle_is_deterministic_for_a_seed_and_privilege_changes_its_choices() {
    let scenarios = test_split();
    let run = |privilege: f64, seed: u64| -> Vec<String> {
        let mut teacher = OracleTeacher::new(privilege, seed);
        scenarios
            .iter()
            .enumerate()
            .flat_map(|(n, s)| {
                let episode = wandering_episode(s, 4, n as u64);
                teacher
                    .correct(s, &episode)
                    .unwrap()
                    .trajectory
                    .into_iter()
                    .map(|c| c.corrected_action)
            })
            .collect()
    };
    assert_eq!(run(0.5, 3), run(0.5, 3));
    assert_ne!(run(0.0, 3), run(1.0, 3));
}

#[test]
fn privilege_one_follows_the_experts_plan_from_the_start() {
    for s in test_split() {
        let privileged = s.body.privileged(s.horizon);
        let plan = privileged.plan.clone().unwrap();
        let mut teacher = OracleTeacher::new(1.0, 0);
        let episode = wandering_episode(&s, 1, 99);
        // Step 0 is corrected from the start state: at privilege 1 that is the expert's plan.
        let c = &teacher.correct(&s, &episode).unwrap().trajectory[0];
        assert_eq!(c.corrected_action, plan[0], "{}", s.id);
    }
}

#[test]
fn the_leakage_guard_catches_planted_leaks_and_passes_common_sense() {
    let s = test_split().into_iter().next().unwrap();
    let env = s.body.env(s.horizon);
    let privileged = s.body.privileged(s.horizon);
    let (object, place) = (
        privileged.facts[0].subject.clone(),
        privileged.facts[0].detail.clone(),
    );
    let kind = object.split(' ').next().unwrap().to_string();
    let observed = format!("{}\n{}", env.task(), env.observation());
    assert!(!leap::env::household::oracle::mentions(&observed, &object));

    let planted = [
        format!("The {object} is in {place}, so I go there."),
        format!("I will take {object}."),
        format!("The {kind} is in {place}."),
    ];
    for reason in &planted {
        let leaks = s.kind().leaks(reason, &privileged, &observed);
        assert!(!leaks.is_empty(), "missed a planted leak in {reason:?}");
        assert!(leaks[0].fact.contains(&object), "{leaks:?}");
    }
    let fine = [
        format!("A {kind} is often kept in a cabinet, and I have not checked {place} yet."),
        format!("I have not found a {kind} yet, so I keep looking."),
        "I go to the countertop 1 to look around.".to_string(),
    ];
    for reason in &fine {
        let leaks = s.kind().leaks(reason, &privileged, &observed);
        assert!(leaks.is_empty(), "{reason:?} flagged: {leaks:?}");
    }
    // Once the student has seen the object, naming it is no leak.
    let seen = format!("{observed}\nYou see a {object}.");
    assert!(s.kind().leaks(&planted[1], &privileged, &seen).is_empty());
}

#[test]
fn privilege_draws_are_per_episode_by_default_and_the_same_for_a_seed() {
    use leap::teacher::Teacher;
    use leap::teacher::oracle::PrivilegeDraw;
    let episode = OracleTeacher::new(0.5, 3);
    let step = OracleTeacher::new(0.5, 3).drawing(PrivilegeDraw::Step);
    let (mut privileged, mut mixed) = (0, 0);
    for n in 0..200 {
        let key = format!("rollout/t/scenario-{n}/0");
        let draws: Vec<bool> = (0..20).map(|i| episode.privileged_at(&key, i)).collect();
        assert!(draws.iter().all(|&d| d == draws[0]), "{key}: {draws:?}");
        privileged += usize::from(draws[0]);
        // A new teacher with the same seed draws the same.
        assert_eq!(OracleTeacher::new(0.5, 3).privileged_at(&key, 7), draws[0]);
        let per_step: Vec<bool> = (0..20).map(|i| step.privileged_at(&key, i)).collect();
        mixed += usize::from(per_step.contains(&true) && per_step.contains(&false));
    }
    assert!((70..=130).contains(&privileged), "{privileged} of 200");
    assert!(mixed > 150, "per-step draws mix within an episode: {mixed}");
    assert_eq!(episode.describe(), "oracle@0.5");
    assert_eq!(step.describe(), "oracle@0.5 (per step)");
    assert_eq!(
        OracleTeacher::new(1.0, 3)
            .drawing(PrivilegeDraw::Step)
            .describe(),
        "oracle@1"
    );
}

#[test]
fn the_oracle_draws_each_hidden_fact_once_per_episode_and_acts_on_those_it_is_told() {
    use leap::teacher::oracle::Told;
    let teacher = OracleTeacher::new(0.5, 5);
    let (mut partial, mut privileged_steps, mut searches_untold) = (0, 0, 0);
    let (mut told_facts, mut facts) = (0, 0);
    for s in test_split() {
        let hidden = s.body.privileged(s.horizon).facts;
        let env = s.body.guided(s.horizon);
        assert!(
            env.per_fact(),
            "the household's expert acts on part of the state"
        );
        for n in 0..4 {
            let key = format!("rollout/t/{}/{n}", s.id);
            // One draw per episode and fact: every step is told the same, and so is a new
            // teacher with the same seed.
            let told = teacher.told(&*env, &hidden, &key, 0);
            for i in 1..s.horizon as usize {
                assert_eq!(
                    teacher.told(&*env, &hidden, &key, i),
                    told,
                    "{key} step {i}"
                );
            }
            assert_eq!(
                OracleTeacher::new(0.5, 5).told(&*env, &hidden, &key, 3),
                told
            );
            facts += hidden.len();
            told_facts += match &told {
                Told::Nothing => 0,
                Told::Everything => hidden.len(),
                Told::Facts(f) => f.len(),
            };
            let Told::Facts(known) = &told else {
                continue;
            };
            partial += 1;
            // The demonstration goes straight only to what it was told; what it was not told it
            // finds by searching, or not at all. (A privileged step may also be a step of the
            // plan the told facts complete: to the target, with an object already held.)
            let demo = teacher.demonstrate(&s, &key, false);
            let untold: Vec<_> = hidden.iter().filter(|f| !known.contains(f)).collect();
            let told_place = |place: &str| known.iter().any(|f| f.detail == place);
            let mut observed = demo.start.clone();
            for step in &demo.steps {
                observed.push_str(&step.observation);
                if !step.privileged {
                    continue;
                }
                privileged_steps += 1;
                // An untold object the student has seen is no longer hidden.
                let seen = |f: &&&leap::env::Fact| {
                    leap::env::household::oracle::mentions(&observed, &f.subject)
                };
                for f in untold.iter().filter(|f| !seen(f)) {
                    let names = |name: &str| {
                        step.action.ends_with(&format!(" {name}"))
                            || step.action.contains(&format!(" {name} "))
                    };
                    assert!(
                        !names(&f.subject) && (!names(&f.detail) || told_place(&f.detail)),
                        "{key}: privileged {:?} acts on the untold {f:?} (told {known:?})",
                        step.action
                    );
                }
            }
            searches_untold += usize::from(demo.steps.iter().any(|step| {
                !step.privileged && untold.iter().any(|f| step.action.contains(&f.detail))
            }));
        }
    }
    eprintln!(
        "{told_facts} of {facts} facts told; {partial} partial episodes, {privileged_steps} privileged steps, {searches_untold} searched for an untold object"
    );
    let share = told_facts as f64 / facts as f64;
    assert!((0.4..0.6).contains(&share), "{share}");
    assert!(partial >= 20, "{partial}");
    assert!(privileged_steps >= 10, "{privileged_steps}");
    assert!(searches_untold >= 5, "{searches_untold}");
}

#[test]
fn a_rerun_of_the_oracle_at_a_partial_privilege_gives_the_same_labels() {
    let scenarios = test_split();
    for (n, s) in scenarios.iter().enumerate().step_by(6) {
        let episode = wandering_episode(s, 6, n as u64);
        let first = OracleTeacher::new(0.5, 9).correct(s, &episode).unwrap();
        let again = OracleTeacher::new(0.5, 9).correct(s, &episode).unwrap();
        assert_eq!(first.trajectory, again.trajectory, "{}", s.id);
    }
}
