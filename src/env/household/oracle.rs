//! The oracle: the best next command from any state, with a reason that states a general
//! principle. It runs in two modes. Informed by the privileged state, it follows the expert's
//! shortest plan. Limited to what the agent has observed, it searches the room systematically,
//! visiting the places where the object type usually lives first, and plans with the expert only
//! over the objects it has seen. Its reasons never name an object before it has been seen.

use super::HouseholdEnv;
use super::command::Command;
use super::expert::{hidden_objects, plan, plan_with};
use super::goal::GoalKind;
use super::vocab::likely_places;
pub use crate::env::Advice;
use crate::env::Environment;

/// What the agent has seen so far in one episode.
#[derive(Debug, Clone)]
pub struct Knowledge {
    /// Per object: named in an observation (its place is then known: only the agent moves things).
    seen: Vec<bool>,
    /// Per receptacle: its contents have been shown (the agent stood at it while it was open).
    explored: Vec<bool>,
}

impl Knowledge {
    /// What the first observation shows.
    pub fn new(env: &HouseholdEnv) -> Knowledge {
        let layout = env.layout();
        let mut k = Knowledge {
            seen: vec![false; layout.objects.len()],
            explored: vec![false; layout.receptacles.len()],
        };
        k.observe(env);
        k
    }

    /// Takes in the environment's latest observation and where the agent stands.
    pub fn observe(&mut self, env: &HouseholdEnv) {
        let layout = env.layout();
        let text = env.observation();
        for (o, obj) in layout.objects.iter().enumerate() {
            if !self.seen[o] && mentions(text, &obj.name) {
                self.seen[o] = true;
            }
        }
        let state = env.state();
        if let Some(r) = state.at
            && state.open[usize::from(r)]
        {
            self.explored[usize::from(r)] = true;
            for &o in &state.contents[usize::from(r)] {
                self.seen[usize::from(o)] = true;
            }
        }
        if let Some(h) = state.held {
            self.seen[usize::from(h)] = true;
        }
    }

    pub fn seen(&self, object: u16) -> bool {
        self.seen[usize::from(object)]
    }

    pub fn explored(&self, receptacle: u16) -> bool {
        self.explored[usize::from(receptacle)]
    }
}

/// Whether `text` names `name` as a whole ("apple 2" in "an apple 2, and" but not in "apple 21").
pub fn mentions(text: &str, name: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(name).any(|(at, _)| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + name.len()).copied();
        !before.is_some_and(|b| b.is_ascii_alphanumeric())
            && !after.is_some_and(|b| b.is_ascii_alphanumeric())
    })
}

/// The oracle's next command from the environment's current state. With `privileged` it follows
/// the expert's plan over the true state; without, it uses only `knowledge`.
pub fn advise(env: &HouseholdEnv, knowledge: &Knowledge, privileged: bool) -> Option<Advice> {
    if env.won() {
        return None;
    }
    let informed = || plan(env).and_then(|p| p.into_iter().next());
    let (action, privileged) = if privileged {
        (informed()?, true)
    } else {
        match observed_action(env, knowledge) {
            Some(a) => (a, false),
            // Nothing left to search (an object hidden where no search looks): fall back.
            None => (informed()?, true),
        }
    };
    let reason = explain(env, knowledge, &action);
    Some(Advice {
        action,
        reason,
        privileged,
    })
}

/// The oracle's next command told where the objects that `told` picks are, beside `knowledge`:
/// the expert's plan over the objects seen when they suffice; else its plan over those seen and
/// told (a privileged command); else the next place of the search. Told every goal object it is
/// [`advise`] with the privileged state, told none [`advise`] without.
pub fn advise_knowing(
    env: &HouseholdEnv,
    knowledge: &Knowledge,
    told: &dyn Fn(u16) -> bool,
) -> Option<Advice> {
    let hidden = hidden_objects(env);
    if hidden.iter().all(|&o| told(o)) {
        return advise(env, knowledge, true);
    }
    if !hidden.iter().any(|&o| told(o)) || env.won() {
        return advise(env, knowledge, false);
    }
    let first = |usable: &dyn Fn(u16) -> bool| plan_with(env, usable)?.into_iter().next();
    let (action, privileged) = match first(&|o| knowledge.seen(o)) {
        Some(a) => (a, false),
        None => match first(&|o| knowledge.seen(o) || told(o)) {
            Some(a) => (a, true),
            None => return advise(env, knowledge, false),
        },
    };
    let reason = explain(env, knowledge, &action);
    Some(Advice {
        action,
        reason,
        privileged,
    })
}

/// The best command using only what has been observed: the expert's plan over seen objects when
/// they suffice, else the next place of a systematic search.
fn observed_action(env: &HouseholdEnv, knowledge: &Knowledge) -> Option<String> {
    if let Some(first) = plan_with(env, &|o| knowledge.seen(o)).and_then(|p| p.into_iter().next()) {
        return Some(first);
    }
    let layout = env.layout();
    let state = env.state();
    let r = next_to_search(env, knowledge)?;
    let name = &layout.receptacle(r).name;
    Some(if state.at == Some(r) && !state.open[usize::from(r)] {
        format!("open {name}")
    } else {
        format!("go to {name}")
    })
}

/// The object type still to be found: the goal's object, or the lamp once an object is known.
fn sought(env: &HouseholdEnv, knowledge: &Knowledge) -> String {
    let goal = env.goal();
    let known = |list: &[u16]| list.iter().filter(|&&o| knowledge.seen(o)).count();
    let need = if goal.kind == GoalKind::PickTwo { 2 } else { 1 };
    if goal.kind == GoalKind::LookInLight && known(goal.objects()) >= need {
        return goal.target.clone();
    }
    goal.object.clone()
}

/// The unexplored receptacle to search next: likely places for the sought type first (in the
/// order a person would look), then the rest, each type by instance number.
fn next_to_search(env: &HouseholdEnv, knowledge: &Knowledge) -> Option<u16> {
    let layout = env.layout();
    let kind = sought(env, knowledge);
    let likely = likely_places(&kind);
    let rank = |r: u16| {
        let rec = layout.receptacle(r);
        let type_rank = likely
            .iter()
            .position(|&t| t == rec.kind)
            .unwrap_or(likely.len());
        let number = super::split_name(&rec.name).map_or(0, |(_, n)| n);
        (type_rank, rec.kind.clone(), number)
    };
    (0..layout.receptacles.len() as u16)
        .filter(|&r| !knowledge.explored(r))
        .min_by_key(|&r| rank(r))
}

/// A reason for `action` that a student could have reached from what it has seen: a general
/// principle about where things are kept or what the task needs, never a hidden fact.
pub fn explain(env: &HouseholdEnv, knowledge: &Knowledge, action: &str) -> String {
    let layout = env.layout();
    let goal = env.goal();
    let object = &goal.object;
    let target = &goal.target;
    let Some(cmd) = Command::parse(layout, action) else {
        return "This brings me closer to the task.".to_string();
    };
    let step_for = |o: u16| match goal.kind.appliance() {
        Some((appliance, flag)) if env.state().flags[usize::from(o)] & flag == 0 => {
            let verb = match goal.kind {
                GoalKind::CleanThenPlace => "cleaned",
                GoalKind::HeatThenPlace => "heated",
                _ => "cooled",
            };
            format!("the {object} must be {verb} with a {appliance} first")
        }
        _ if goal.kind == GoalKind::LookInLight => {
            format!("I need to look at the {object} under a {target}")
        }
        _ => format!("it has to end up in or on a {target}"),
    };
    match cmd {
        Command::GoTo(r) => {
            let rec = layout.receptacle(r);
            let place = &rec.name;
            let held = env.state().held;
            let holding_goal = held.is_some_and(|h| goal.objects().contains(&h));
            if holding_goal && goal.kind.appliance().map(|(a, _)| a) == Some(rec.kind.as_str()) {
                let verb = match goal.kind {
                    GoalKind::CleanThenPlace => "clean",
                    GoalKind::HeatThenPlace => "heat",
                    _ => "cool",
                };
                return format!(
                    "I have the {object}; to {verb} it I go to the {}, {place}.",
                    rec.kind
                );
            }
            if holding_goal && goal.kind != GoalKind::LookInLight && rec.kind == *target {
                return format!("I am holding the {object} it needs, so I take it to {place}.");
            }
            let known_here = env.state().contents[usize::from(r)]
                .iter()
                .find(|&&o| knowledge.seen(o) && is_sought(env, o, knowledge));
            if let Some(&o) = known_here {
                let name = &layout.object(o).name;
                return format!("I saw {name} at {place} earlier; I go back for it.");
            }
            let kind = sought(env, knowledge);
            if knowledge.explored(r) {
                return format!("I go to {place}, a step towards completing the task.");
            }
            if likely_places(&kind).contains(&rec.kind.as_str()) {
                format!(
                    "A {kind} is often kept in or on a {}, and I have not checked {place} yet.",
                    rec.kind
                )
            } else {
                format!("I have not found a {kind} yet, and {place} is still unchecked.")
            }
        }
        Command::Open(r) => {
            let kind = sought(env, knowledge);
            let place = &layout.receptacle(r).name;
            format!("{place} is closed; I open it to see whether a {kind} is inside.")
        }
        Command::Take(o, r) => {
            let name = &layout.object(o).name;
            let place = &layout.receptacle(r).name;
            if goal.objects().contains(&o) {
                format!(
                    "Here is {name} on {place}; I pick it up because {}.",
                    step_for(o)
                )
            } else {
                format!("I take {name} from {place} to make room for what the task needs.")
            }
        }
        Command::Put(o, r) => {
            let name = &layout.object(o).name;
            let place = &layout.receptacle(r).name;
            if goal.objects().contains(&o) {
                format!("I am at {place} with {name}; putting it here is what the task asks.")
            } else {
                format!("{name} is not needed, so I put it down on {place}.")
            }
        }
        Command::Clean(o, r) | Command::Heat(o, r) | Command::Cool(o, r) => {
            let name = &layout.object(o).name;
            let place = &layout.receptacle(r).name;
            let verb = action.split(' ').next().unwrap_or("use");
            format!("I hold {name} at {place}, so I can {verb} it now, as the task needs.")
        }
        Command::Use(o) => {
            let name = &layout.object(o).name;
            format!(
                "I hold the {object} and {name} is here; turning it on lets me look at the {object} under it."
            )
        }
        Command::Close(_)
        | Command::ExamineReceptacle(_)
        | Command::ExamineObject(_)
        | Command::Inventory
        | Command::Look => "This brings me closer to the task.".to_string(),
    }
}

/// Whether object `o` is one the agent is still looking for.
fn is_sought(env: &HouseholdEnv, o: u16, knowledge: &Knowledge) -> bool {
    let kind = sought(env, knowledge);
    env.layout().object(o).kind == kind
}

/// Plays the oracle from the environment's current state until the goal holds or `max_steps`
/// commands have been given; returns the commands. `privileged(step)` picks the mode per step.
pub fn play(
    env: &mut HouseholdEnv,
    knowledge: &mut Knowledge,
    max_steps: usize,
    privileged: &mut dyn FnMut(usize) -> bool,
) -> Vec<Advice> {
    let mut taken = Vec::new();
    for step in 0..max_steps {
        let Some(advice) = advise(env, knowledge, privileged(step)) else {
            break;
        };
        env.step(&advice.action);
        knowledge.observe(env);
        let done = env.is_done();
        taken.push(advice);
        if done {
            break;
        }
    }
    taken
}
