//! The household's variables of the student's prompt: the places already checked and those not
//! checked yet, read from the agent's own history and commands.

use minijinja::context;
use minijinja::value::Serde;

use crate::agent::prompt::Past;

/// `checked` and `unchecked` for the template (see `assets/prompts/household/react.j2`).
pub fn vars(history: &[Past], admissible: &[String]) -> minijinja::Value {
    context! {
        checked => Serde(&checked_places(history)),
        unchecked => Serde(&unchecked_places(history, admissible)),
    }
}

/// The places whose contents the agent's own earlier steps have shown, in the order first seen:
/// a `go to X` or `open X` answered with what is on or in X ("On the X, you see ...", "The X is
/// open. In it, you see ..."). It is the agent's memory of where it has looked, read from its
/// whole history, so that a short history window still tells it not to look there again. It
/// uses nothing the agent has not read; observations of other environments never match.
pub fn checked_places(history: &[Past]) -> Vec<&str> {
    let mut checked: Vec<&str> = Vec::new();
    for step in history {
        let place = step
            .action
            .strip_prefix("go to ")
            .or_else(|| step.action.strip_prefix("open "));
        let Some(place) = place else { continue };
        let obs = &step.observation;
        let shown = obs.contains(&format!("On the {place}, you see"))
            || obs.contains(&format!("The {place} is open. In it, you see"));
        if shown && !checked.contains(&place) {
            checked.push(place);
        }
    }
    checked
}

/// The places the agent knows of and has not checked (`checked_places`): every `go to` target
/// among the commands and among its own earlier actions (the place it stands at is not a `go to`
/// command), in natural order (`cabinet 2` before `cabinet 10`). Read from the agent's own
/// commands and history only, so it names no place the agent could not name itself.
pub fn unchecked_places<'a>(history: &'a [Past], admissible: &'a [String]) -> Vec<&'a str> {
    let checked = checked_places(history);
    let mut places: Vec<&str> = admissible
        .iter()
        .chain(history.iter().map(|step| &step.action))
        .filter_map(|command| command.strip_prefix("go to "))
        .filter(|place| !checked.contains(place))
        .collect();
    places.sort_by_key(|&place| natural_key(place));
    places.dedup();
    places
}

/// A name's sort key with its trailing number read as a number.
fn natural_key(name: &str) -> (&str, u64, &str) {
    let numbered = name
        .rsplit_once(' ')
        .and_then(|(stem, n)| Some((stem, n.parse().ok()?)));
    match numbered {
        Some((stem, n)) => (stem, n, name),
        None => (name, 0, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::prompt::tests::{past, render};
    use crate::agent::prompt::{Prompt, View};
    use crate::env::default_kind;

    #[test]
    fn the_user_message_lists_commands_but_not_the_places_again() {
        let text = render(&Prompt::builtin(4), &past(1));
        assert!(
            text.starts_with("Task: find the apple.\nYou see a fridge 1.\n"),
            "{text}"
        );
        assert!(text.contains("> look 0\nseen 0\n"), "{text}");
        assert!(text.ends_with("Now: The cabinet 1 is closed.\nCommands: go to <a place above>, inventory, open cabinet 1"), "{text}");
    }

    #[test]
    fn the_latest_observation_is_shown_once() {
        let prompt = Prompt::builtin(4);
        let admissible = vec!["go to fridge 1".to_string(), "look".to_string()];
        let user = |history: &[Past], observation: &str| {
            let view = View {
                kind: default_kind(),
                task: "find the apple.",
                start: "You see a fridge 1.",
                history,
                observation,
                admissible: &admissible,
            };
            prompt.render(&view).unwrap()[1].content.clone()
        };
        // Before any step the first observation is the latest.
        assert_eq!(
            user(&[], "You see a fridge 1."),
            "Task: find the apple.\nYou see a fridge 1.\n\nCommands: go to <a place above>, look"
        );
        // After a step it is that step's, at the end of the earlier steps.
        let history = [Past {
            action: "go to fridge 1".into(),
            observation: "The fridge 1 is closed.".into(),
        }];
        let text = user(&history, "The fridge 1 is closed.");
        assert_eq!(text.matches("The fridge 1 is closed.").count(), 1, "{text}");
        assert!(
            text.ends_with(
                "> go to fridge 1\nThe fridge 1 is closed.\n\nCommands: go to <a place above>, look"
            ),
            "{text}"
        );
        // An observation the history does not end with is still shown.
        assert!(user(&history, "Nothing happens.").contains("\nNow: Nothing happens.\nCommands: "));
    }

    #[test]
    fn the_places_already_checked_are_remembered_past_the_history_window() {
        let step = |action: &str, observation: &str| Past {
            action: action.into(),
            observation: observation.into(),
        };
        let mut history = vec![
            step(
                "go to sidetable 1",
                "On the sidetable 1, you see a desklamp 1.",
            ),
            step("go to drawer 1", "The drawer 1 is closed."),
            step(
                "open drawer 1",
                "You open the drawer 1. The drawer 1 is open. In it, you see nothing.",
            ),
            step("go to fridge 1", "The fridge 1 is closed."),
            step(
                "go to sidetable 1",
                "On the sidetable 1, you see a desklamp 1.",
            ),
            step(
                "take desklamp 1 from sidetable 1",
                "You pick up the desklamp 1.",
            ),
        ];
        assert_eq!(checked_places(&history), ["sidetable 1", "drawer 1"]);
        history.extend(past(8));
        // Two steps of history only: the first steps are out of the window, not out of mind.
        let text = render(&Prompt::builtin(2), &history);
        assert!(!text.contains("> go to sidetable 1"), "{text}");
        // The fridge was gone to but found closed: still to check, though it is out of the
        // window and not a `go to` command here.
        assert!(
            text.contains("\nNot checked yet: fridge 1\nNow: "),
            "{text}"
        );
        // Before any place is checked, there is no such line.
        assert!(!render(&Prompt::builtin(2), &past(3)).contains("checked"));
    }

    #[test]
    fn the_places_not_checked_are_the_known_places_in_natural_order() {
        let commands: Vec<String> = [
            "go to cabinet 10",
            "go to shelf 1",
            "go to cabinet 2",
            "examine drawer 1",
            "go to cabinet 1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let history = [
            Past {
                action: "go to drawer 1".into(),
                observation: "The drawer 1 is closed.".into(),
            },
            Past {
                action: "go to cabinet 1".into(),
                observation: "On the cabinet 1, you see a cup 1.".into(),
            },
            Past {
                action: "go to drawer 1".into(),
                observation: "The drawer 1 is closed.".into(),
            },
        ];
        assert_eq!(
            unchecked_places(&history, &commands),
            ["cabinet 2", "cabinet 10", "drawer 1", "shelf 1"]
        );
        assert_eq!(unchecked_places(&[], &commands).len(), 4);
    }
}
