//! The expert: a breadth-first planner over the environment's own transition rules, restricted
//! to commands that touch the goal's objects and places. It sees the whole world (the
//! privileged state), so its plans are shortest plans.

use std::collections::{HashMap, VecDeque};

use super::HouseholdEnv;
use super::command::Command;
use super::goal::GoalKind;
use super::state::State;
use crate::env::{Fact, Privileged};

/// More states than any shipped room needs; a search that hits it reports no plan.
const MAX_STATES: usize = 500_000;

/// A shortest command sequence from the environment's current state to the goal, or `None`
/// when the goal cannot be reached.
pub fn plan(env: &HouseholdEnv) -> Option<Vec<String>> {
    plan_with(env, &|_| true)
}

/// A shortest plan that uses only the goal objects (and lamps) that `usable` allows: the plan of
/// someone who knows where those objects are and nothing else. `None` when they do not suffice.
pub fn plan_with(env: &HouseholdEnv, usable: &dyn Fn(u16) -> bool) -> Option<Vec<String>> {
    let layout = env.layout();
    let goal = env.goal();
    let start = env.state().clone();
    if goal.holds(layout, &start) {
        return Some(Vec::new());
    }

    let held = start.held;
    let relevant_object = |o: u16| {
        (goal.objects().contains(&o)
            || (goal.kind == GoalKind::LookInLight && goal.targets().contains(&o)))
            && (usable(o) || held == Some(o))
    };
    let mut relevant_place = vec![false; layout.receptacles.len()];
    for (r, contents) in start.contents.iter().enumerate() {
        relevant_place[r] = contents.iter().any(|&o| relevant_object(o));
    }
    if goal.kind != GoalKind::LookInLight {
        for &r in goal.targets() {
            relevant_place[usize::from(r)] = true;
        }
    }
    if let Some((appliance, _)) = goal.kind.appliance() {
        for (r, rec) in layout.receptacles.iter().enumerate() {
            relevant_place[r] |= rec.kind == appliance;
        }
    }
    let useful = |cmd: Command| match cmd {
        Command::GoTo(r) | Command::Open(r) => relevant_place[usize::from(r)],
        Command::Take(o, _) | Command::Use(o) => relevant_object(o),
        Command::Clean(o, _) | Command::Heat(o, _) | Command::Cool(o, _) => relevant_object(o),
        // Anything in hand that the goal does not need may be set down anywhere.
        Command::Put(o, r) => {
            !relevant_object(o)
                || (goal.kind != GoalKind::LookInLight && goal.targets().contains(&r))
        }
        _ => false,
    };

    let mut states: Vec<State> = vec![start.clone()];
    let mut parent: Vec<(usize, String)> = vec![(usize::MAX, String::new())];
    let mut seen: HashMap<State, ()> = HashMap::from([(start, ())]);
    let mut queue = VecDeque::from([0usize]);
    while let Some(i) = queue.pop_front() {
        for text in states[i].admissible(layout) {
            let Some(cmd) = Command::parse(layout, &text) else {
                continue;
            };
            if !useful(cmd) {
                continue;
            }
            let mut next = states[i].clone();
            if !next.apply(layout, cmd, None) || seen.contains_key(&next) {
                continue;
            }
            let won = goal.holds(layout, &next);
            seen.insert(next.clone(), ());
            states.push(next);
            parent.push((i, text));
            let j = states.len() - 1;
            if won {
                let mut plan = Vec::new();
                let mut k = j;
                while k != 0 {
                    plan.push(std::mem::take(&mut parent[k].1));
                    k = parent[k].0;
                }
                plan.reverse();
                return Some(plan);
            }
            if states.len() >= MAX_STATES {
                return None;
            }
            queue.push_back(j);
        }
    }
    None
}

/// Where every object the task needs is ("apple 2" in/on "fridge 1"): what the teacher sees and
/// the student never does.
pub fn locations(env: &HouseholdEnv) -> Vec<Fact> {
    let layout = env.layout();
    let state = env.state();
    let fact = |o: u16, place: String| Fact {
        subject: layout.object(o).name.clone(),
        relation: "in/on".to_string(),
        detail: place,
    };
    let mut facts = Vec::new();
    for o in hidden_objects(env) {
        // An object listed in two receptacles is in both, as in ALFWorld.
        for r in state.places_of(o) {
            facts.push(fact(o, layout.receptacle(r).name.clone()));
        }
        if state.held == Some(o) {
            facts.push(fact(o, "the agent's hand".to_string()));
        }
    }
    facts
}

/// The objects whose places the privileged state tells: the goal's objects, and the lamps of a
/// `look_in_light` task.
pub fn hidden_objects(env: &HouseholdEnv) -> Vec<u16> {
    let goal = env.goal();
    let mut objects = goal.objects().to_vec();
    if goal.kind == GoalKind::LookInLight {
        objects.extend_from_slice(goal.targets());
    }
    objects
}

/// The privileged state: where the task's objects are, and the expert's plan from here.
pub fn privileged(env: &HouseholdEnv) -> Privileged {
    Privileged {
        facts: locations(env),
        plan: plan(env),
    }
}
