//! Fidelity: replays 60 real ALFWorld transcripts (`tests/data/alfworld/transcripts.json`)
//! through our household environment. For each, the world is rebuilt from what its
//! observations reveal, the recorded commands are played (skipping `think:` lines), and every
//! observation must match the recorded one byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use leap::env::Environment;
use leap::env::household::vocab::Vocabulary;
use leap::env::household::{
    Goal, GoalKind, HouseholdEnv, Layout, ObjectSpec, ReceptacleSpec, State,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Transcripts {
    trajectories: Vec<Transcript>,
}

#[derive(Deserialize)]
struct Transcript {
    source_file: String,
    key: String,
    initial_observation: String,
    task: String,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct Step {
    action: String,
    observation: String,
}

fn transcripts() -> Vec<Transcript> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/alfworld/transcripts.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (vendored in tests/data/alfworld)",
            path.display()
        )
    });
    serde_json::from_str::<Transcripts>(&text)
        .expect("transcripts parse")
        .trajectories
}

/// The environment steps of a transcript, as (command, observation). Some recorded observations
/// carry further steps inline ("OK.\n>go to stoveburner 1\nOn the stoveburner 1, you see
/// nothing."): those are unfolded into steps of their own, and `think:` lines are dropped.
fn env_steps(t: &Transcript) -> (String, Vec<(String, String)>) {
    let mut steps = Vec::new();
    let unfold = |text: &str, steps: &mut Vec<(String, String)>| -> String {
        let mut parts = text.split("\n>");
        let mut first = parts.next().unwrap_or("");
        // A `think:` answer left behind on its own line.
        if let Some((obs, rest)) = first.split_once('\n')
            && rest.trim() == "OK."
        {
            first = obs;
        }
        let first = first.to_string();
        for part in parts {
            let (cmd, obs) = part.split_once('\n').unwrap_or((part, ""));
            steps.push((cmd.to_string(), obs.to_string()));
        }
        first
    };
    let initial = unfold(&t.initial_observation, &mut steps);
    for step in &t.steps {
        let mut inline = Vec::new();
        let first = unfold(&step.observation, &mut inline);
        if !step.action.starts_with("think:") {
            steps.push((step.action.clone(), first));
        }
        steps.extend(inline);
    }
    (initial, steps)
}

fn name(t: &Transcript) -> String {
    format!("{}:{}", t.source_file, t.key)
}

/// "a cabinet 4, a cabinet 3, and a towelholder 1" -> names; "nothing" -> none.
fn parse_list(list: &str) -> Vec<String> {
    if list == "nothing" {
        return Vec::new();
    }
    list.split(", ")
        .map(|item| {
            item.trim_start_matches("and ")
                .trim_start_matches("a ")
                .to_string()
        })
        .collect()
}

#[derive(Default)]
struct Seen {
    openable: Option<bool>,
    initially_open: Option<bool>,
    contents: Option<Vec<String>>,
    opened_by_agent: bool,
    put_before_seen: BTreeSet<String>,
    beside: Option<String>,
}

/// Rebuilds the initial world that a transcript's observations reveal.
fn rebuild(t: &Transcript) -> HouseholdEnv {
    let (initial, steps) = env_steps(t);
    let room = initial
        .strip_prefix("You are in the middle of a room. Looking quickly around you, you see ")
        .and_then(|s| s.strip_suffix('.'))
        .expect("initial observation lists the room");
    let mut recs: BTreeMap<String, Seen> = parse_list(room)
        .into_iter()
        .map(|r| (r, Seen::default()))
        .collect();
    let mut taken: Vec<(String, String)> = Vec::new();
    let reveal = |seen: &mut Seen, list: &str| {
        if seen.contents.is_none() {
            let items = parse_list(list)
                .into_iter()
                .filter(|o| !seen.put_before_seen.contains(o))
                .collect();
            seen.contents = Some(items);
        }
    };
    for (action, obs) in &steps {
        let obs = obs.as_str();
        if let Some(rest) = obs.strip_prefix("You open the ") {
            let (name, rest) = rest.split_once(". ").unwrap();
            let list = rest
                .split_once("In it, you see ")
                .map(|(_, l)| l.trim_end_matches('.'))
                .unwrap_or("nothing");
            let seen = recs.get_mut(name).unwrap();
            seen.openable = Some(true);
            if seen.initially_open.is_none() {
                seen.initially_open = Some(false);
            }
            seen.opened_by_agent = true;
            reveal(seen, list);
        } else if let Some(rest) = obs.strip_prefix("On the ") {
            let (name, list) = rest.split_once(", you see ").unwrap();
            let seen = recs.get_mut(name).unwrap();
            seen.openable = Some(false);
            reveal(seen, list.trim_end_matches('.'));
        } else if let Some(rest) = obs.strip_prefix("The ") {
            if let Some(name) = rest.strip_suffix(" is closed.") {
                let seen = recs.get_mut(name).unwrap();
                seen.openable = Some(true);
                if seen.initially_open.is_none() {
                    seen.initially_open = Some(false);
                }
            } else if let Some((name, list)) = rest.split_once(" is open. In it, you see ") {
                let seen = recs.get_mut(name).unwrap();
                seen.openable = Some(true);
                if seen.initially_open.is_none() && !seen.opened_by_agent {
                    seen.initially_open = Some(true);
                }
                reveal(seen, list.trim_end_matches('.'));
            }
        } else if let Some(rest) = obs.strip_prefix("You put the ") {
            let (object, recep) = rest
                .trim_end_matches('.')
                .split_once(" in/on the ")
                .unwrap();
            let seen = recs.get_mut(recep).unwrap();
            if seen.contents.is_none() {
                seen.put_before_seen.insert(object.to_string());
            }
        } else if let Some(rest) = obs.strip_prefix("You are facing the ") {
            let (names, _) = rest.split_once(". Next to it").unwrap();
            let names: Vec<&str> = names
                .split(", ")
                .map(|n| n.trim_start_matches("and "))
                .collect();
            for other in &names[1..] {
                recs.get_mut(*other).unwrap().beside = Some(names[0].to_string());
            }
        }
        // An object picked up where no observation showed it was there all along.
        if let Some(rest) = action.strip_prefix("take ") {
            let (object, recep) = rest.split_once(" from ").unwrap();
            taken.push((object.to_string(), recep.to_string()));
        }
    }
    for (object, recep) in taken {
        let seen = recs.get_mut(&recep).unwrap();
        let contents = seen.contents.get_or_insert_with(Vec::new);
        let shown_anywhere = recs_contains(&object, contents);
        if !shown_anywhere {
            contents.push(object);
        }
    }

    let rspecs: Vec<ReceptacleSpec> = recs
        .iter()
        .map(|(name, seen)| ReceptacleSpec {
            name: name.clone(),
            openable: seen.openable.unwrap_or(false),
            beside: seen.beside.clone(),
        })
        .collect();
    let mut objects = BTreeSet::new();
    for seen in recs.values() {
        objects.extend(seen.contents.iter().flatten().cloned());
    }
    let ospecs: Vec<ObjectSpec> = objects
        .iter()
        .map(|o| ObjectSpec { name: o.clone() })
        .collect();
    let layout =
        Arc::new(Layout::new(&rspecs, &ospecs, Vocabulary::builtin()).expect("layout builds"));
    let mut state = State::empty(&layout);
    for (name, seen) in &recs {
        let r = layout.receptacle_index(name).unwrap();
        state.open[usize::from(r)] =
            !seen.openable.unwrap_or(false) || seen.initially_open == Some(true);
        for o in seen.contents.iter().flatten() {
            state.place(layout.object_index(o).unwrap(), r);
        }
    }
    let (kind, object, target) =
        GoalKind::parse_task(&t.task).unwrap_or_else(|| panic!("task `{}` parses", t.task));
    let goal = Goal::new(kind, &object, &target, &layout);
    HouseholdEnv::new(layout, state, goal, t.task.clone(), 100)
}

fn recs_contains(object: &str, contents: &[String]) -> bool {
    contents.iter().any(|c| c == object)
}

/// The first step whose observation differs: (step index, command, expected, got).
fn replay(t: &Transcript) -> Result<bool, (usize, String, String, String)> {
    let mut env = rebuild(t);
    let (initial, steps) = env_steps(t);
    assert_eq!(
        env.observation(),
        initial,
        "{}: initial observation",
        name(t)
    );
    let mut won = false;
    for (i, (action, expected)) in steps.iter().enumerate() {
        let outcome = env.step(action);
        won |= outcome.won;
        if env.observation() != expected {
            return Err((
                i,
                action.clone(),
                expected.clone(),
                env.observation().to_string(),
            ));
        }
    }
    Ok(won)
}

/// Transcripts whose recorded text no game can produce: they were edited by hand for the ReAct
/// prompts. The reason for each.
const UNREPLAYABLE: [(&str, &str); 9] = [
    ("alfworld.json:react_put_0", LIST_WITHOUT_AND),
    ("alfworld.json:act_put_0", LIST_WITHOUT_AND),
    ("alfworld_3prompts.json:react_put_0", LIST_WITHOUT_AND),
    ("alfworld_3prompts.json:act_put_0", LIST_WITHOUT_AND),
    ("alfworld.json:react_heat_0", OPEN_FROM_AFAR),
    ("alfworld.json:act_heat_0", OPEN_FROM_AFAR),
    ("alfworld_3prompts.json:react_heat_0", OPEN_FROM_AFAR),
    ("alfworld_3prompts.json:act_heat_0", OPEN_FROM_AFAR),
    (
        "alfworld_3prompts.json:react_cool_0",
        "the observation of `take pan 1 from stoveburner 3` is empty",
    ),
];
const LIST_WITHOUT_AND: &str = "a three-item list without the \", and\" that every game list has";
const OPEN_FROM_AFAR: &str =
    "`open fridge 1` succeeds before any `go to fridge 1`: the step that went there was cut";

#[test]
fn replays_real_alfworld_transcripts_exactly() {
    let all = transcripts();
    assert_eq!(all.len(), 60);
    let mut exact = 0;
    let mut failures = Vec::new();
    for t in &all {
        match replay(t) {
            Ok(won) => {
                exact += 1;
                assert!(
                    won,
                    "{}: the recorded commands solve the task, so the environment must say won",
                    name(t)
                );
            }
            Err((i, action, expected, got)) => {
                let known = UNREPLAYABLE.iter().find(|(k, _)| *k == name(t));
                match known {
                    Some((_, why)) => eprintln!("{}: not replayable ({why})", name(t)),
                    None => failures.push(format!(
                        "{} step {i} `{action}`:\n  expected: {expected:?}\n  got:      {got:?}",
                        name(t)
                    )),
                }
            }
        }
    }
    eprintln!("{exact} of {} transcripts replay exactly", all.len());
    assert!(
        failures.is_empty(),
        "observations differ:\n{}",
        failures.join("\n")
    );
    assert_eq!(exact, all.len() - UNREPLAYABLE.len());
}
