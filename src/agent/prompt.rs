//! The student's prompt, rendered from a minijinja template (`assets/prompts/react.j2` unless
//! the user gives another) with two blocks, `system` and `user`.

use std::path::{Path, PathBuf};

use minijinja::value::Serde;
use minijinja::{Environment, context};
use serde::Serialize;
use thiserror::Error;

use super::{Message, Role};

const DEFAULT_TEMPLATE: &str = include_str!("../../assets/prompts/react.j2");

#[derive(Debug, Error)]
pub enum PromptError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{name}: {source}")]
    Template {
        name: String,
        source: minijinja::Error,
    },
}

/// Earlier steps the prompt shows by default. The places already checked are listed whatever
/// the window (`checked_places`), so a short window loses little and keeps rows short.
pub const DEFAULT_HISTORY: usize = 4;

/// One earlier step as the prompt shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Past {
    pub action: String,
    pub observation: String,
}

/// What the student knows at one step.
#[derive(Debug, Clone, Serialize)]
pub struct View<'a> {
    pub task: &'a str,
    /// The episode's first observation (for the household: the room and every place in it).
    pub start: &'a str,
    /// Earlier steps, oldest first (the prompt shows the last `history` of them).
    pub history: &'a [Past],
    pub observation: &'a str,
    pub admissible: &'a [String],
}

/// A compiled template with two blocks, `system` and `user`, rendered into chat messages.
pub struct Blocks {
    env: Environment<'static>,
    name: String,
}

impl Blocks {
    /// Compiles `source`; `name` (a file path, usually) names it in errors.
    pub fn compile(name: &str, source: String) -> Result<Blocks, PromptError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_template_owned(name.to_string(), source)
            .map_err(|source| PromptError::Template {
                name: name.to_string(),
                source,
            })?;
        Ok(Blocks {
            env,
            name: name.to_string(),
        })
    }

    /// Reads and compiles a template file.
    pub fn from_file(path: &Path) -> Result<Blocks, PromptError> {
        let source = std::fs::read_to_string(path).map_err(|source| PromptError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Blocks::compile(&path.display().to_string(), source)
    }

    /// The system and user messages for `ctx`.
    pub fn render<S: Serialize>(&self, ctx: S) -> Result<Vec<Message>, PromptError> {
        let err = |source| PromptError::Template {
            name: self.name.clone(),
            source,
        };
        let template = self.env.get_template(&self.name).map_err(err)?;
        let ctx = minijinja::Value::from(Serde(&ctx));
        let mut captured = template.render_captured(ctx).map_err(err)?;
        let (system, user) = captured
            .with_state_mut(|state| {
                Ok((state.render_block("system")?, state.render_block("user")?))
            })
            .map_err(err)?;
        Ok(vec![
            Message::new(Role::System, system.trim()),
            Message::new(Role::User, user.trim()),
        ])
    }
}

/// A compiled prompt template.
pub struct Prompt {
    blocks: Blocks,
    /// How many earlier steps the prompt shows.
    pub history: usize,
}

impl Prompt {
    /// The shipped template, showing the last `history` steps.
    pub fn builtin(history: usize) -> Prompt {
        Blocks::compile("assets/prompts/react.j2", DEFAULT_TEMPLATE.to_string())
            .and_then(|blocks| Prompt::checked(blocks, history))
            .expect("the shipped prompt compiles")
    }

    /// A template from a file, checked by rendering it once.
    pub fn from_file(path: &Path, history: usize) -> Result<Prompt, PromptError> {
        Prompt::checked(Blocks::from_file(path)?, history)
    }

    /// A prompt from compiled blocks, checked by rendering a small view once.
    fn checked(blocks: Blocks, history: usize) -> Result<Prompt, PromptError> {
        let prompt = Prompt { blocks, history };
        let probe = View {
            task: "t",
            start: "s",
            history: &[],
            observation: "o",
            admissible: &[],
        };
        prompt.render(&probe)?;
        Ok(prompt)
    }

    /// The system and user messages for `view`.
    pub fn render(&self, view: &View) -> Result<Vec<Message>, PromptError> {
        // Show the last `history` steps, but move the window on in jumps of half its length, so
        // that the shown history (and the cached prefix) stays the same for several steps.
        let n = view.history.len();
        let skip = if n <= self.history {
            0
        } else {
            let jump = (self.history / 2).max(1);
            (n - self.history).div_ceil(jump) * jump
        };
        self.blocks.render(context! {
            task => view.task,
            start => view.start,
            history => Serde(&view.history[skip..]),
            checked => Serde(&checked_places(view.history)),
            unchecked => Serde(&unchecked_places(view.history, view.admissible)),
            observation => view.observation,
            admissible => Serde(view.admissible),
        })
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

    fn past(n: usize) -> Vec<Past> {
        (0..n)
            .map(|i| Past {
                action: format!("look {i}"),
                observation: format!("seen {i}"),
            })
            .collect()
    }

    fn render(prompt: &Prompt, history: &[Past]) -> String {
        let admissible: Vec<String> = ["go to fridge 1", "inventory", "open cabinet 1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let view = View {
            task: "find the apple.",
            start: "You see a fridge 1.",
            history,
            observation: "The cabinet 1 is closed.",
            admissible: &admissible,
        };
        prompt.render(&view).unwrap()[1].content.clone()
    }

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

    #[test]
    fn the_history_window_moves_in_jumps_so_the_prefix_stays_put() {
        let prompt = Prompt::builtin(4);
        let shown = |n: usize| {
            (0..n)
                .filter(|i| render(&prompt, &past(n)).contains(&format!("> look {i}\n")))
                .count()
        };
        assert_eq!(
            (1..=10).map(shown).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 3, 4, 3, 4, 3, 4]
        );
        // Steps 5 and 6 show the same first steps, so one prompt extends the other's prefix.
        let (a, b) = (render(&prompt, &past(5)), render(&prompt, &past(6)));
        let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        assert!(a[..common].contains("> look 4\nseen 4\n"), "{a}\n---\n{b}");
    }
}
