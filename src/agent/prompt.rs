//! The student's prompt, rendered from a minijinja template (its environment kind's
//! `assets/prompts/<kind>/react.j2` unless the user gives another) with two blocks, `system` and
//! `user`. Every template gets the step's view and the kind's own variables
//! ([`crate::env::EnvKind::prompt_vars`]).

use std::path::{Path, PathBuf};

use minijinja::value::Serde;
use minijinja::{Environment, context};
use serde::Serialize;
use thiserror::Error;

use super::{Message, Role};
use crate::env::{Kind, registry};

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
    #[error("no prompt template for `{kind}` scenarios (this prompt is for {known})")]
    NoTemplate { kind: String, known: String },
}

/// Earlier steps the prompt shows by default. A kind may remember more of the history through
/// its own variables (the places already checked, whatever the window), so a short window loses
/// little and keeps rows short.
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
    /// The kind of the scenario: which template renders the step.
    #[serde(skip)]
    pub kind: Kind,
    pub task: &'a str,
    /// The episode's first observation (in a room, say, every place in it).
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

/// The student's prompt: a compiled template for each environment kind it renders, chosen by
/// the scenario's kind at every step.
pub struct Prompt {
    templates: Vec<(Kind, Blocks)>,
    /// How many earlier steps the prompt shows.
    pub history: usize,
}

impl Prompt {
    /// Every kind's shipped template, showing the last `history` steps.
    pub fn builtin(history: usize) -> Prompt {
        let templates = registry()
            .iter()
            .map(|&kind| {
                let template = kind.student_template();
                let blocks = Blocks::compile(template.name, template.source.to_string())
                    .expect("the shipped prompt compiles");
                (kind, blocks)
            })
            .collect();
        Prompt::checked(templates, history).expect("the shipped prompts render")
    }

    /// `kind`'s shipped template alone, showing the last `history` steps.
    pub fn for_kind(kind: Kind, history: usize) -> Prompt {
        let template = kind.student_template();
        Blocks::compile(template.name, template.source.to_string())
            .and_then(|blocks| Prompt::checked(vec![(kind, blocks)], history))
            .expect("the shipped prompt compiles")
    }

    /// The template file at `file` for the scenarios of `kinds` ([`Prompt::from_file`]), else
    /// every kind's shipped template.
    pub fn file_or_builtin(
        file: Option<&Path>,
        history: usize,
        kinds: impl IntoIterator<Item = Kind>,
    ) -> Result<Prompt, PromptError> {
        match file {
            Some(path) => Prompt::from_file(path, history, kinds),
            None => Ok(Prompt::builtin(history)),
        }
    }

    /// A template from a file for the scenarios of `kinds` (every kind when none is given),
    /// checked by rendering it once for each: a template that uses one environment's variables
    /// (the household's `checked`) serves that environment's scenarios.
    pub fn from_file(
        path: &Path,
        history: usize,
        kinds: impl IntoIterator<Item = Kind>,
    ) -> Result<Prompt, PromptError> {
        let mut wanted: Vec<Kind> = Vec::new();
        for kind in kinds {
            if !wanted.contains(&kind) {
                wanted.push(kind);
            }
        }
        if wanted.is_empty() {
            wanted = registry().to_vec();
        }
        let templates = wanted
            .into_iter()
            .map(|kind| Ok((kind, Blocks::from_file(path)?)))
            .collect::<Result<_, PromptError>>()?;
        Prompt::checked(templates, history)
    }

    /// A template from a file for `kind`'s scenarios only, checked by rendering it once.
    pub fn from_file_for(kind: Kind, path: &Path, history: usize) -> Result<Prompt, PromptError> {
        Prompt::checked(vec![(kind, Blocks::from_file(path)?)], history)
    }

    /// A prompt from compiled blocks, checked by rendering a small view once for each kind.
    fn checked(templates: Vec<(Kind, Blocks)>, history: usize) -> Result<Prompt, PromptError> {
        let prompt = Prompt { templates, history };
        for &(kind, _) in &prompt.templates {
            let probe = View {
                kind,
                task: "t",
                start: "s",
                history: &[],
                observation: "o",
                admissible: &[],
            };
            prompt.render(&probe)?;
        }
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
        let blocks = self
            .templates
            .iter()
            .find(|(kind, _)| *kind == view.kind)
            .map(|(_, blocks)| blocks)
            .ok_or_else(|| PromptError::NoTemplate {
                kind: view.kind.as_str().to_string(),
                known: self
                    .templates
                    .iter()
                    .map(|(k, _)| format!("`{}`", k.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        blocks.render(context! {
            task => view.task,
            start => view.start,
            history => Serde(&view.history[skip..]),
            observation => view.observation,
            admissible => Serde(view.admissible),
            ..view.kind.prompt_vars(view.history, view.admissible)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::env::default_kind;

    pub(crate) fn past(n: usize) -> Vec<Past> {
        (0..n)
            .map(|i| Past {
                action: format!("look {i}"),
                observation: format!("seen {i}"),
            })
            .collect()
    }

    pub(crate) fn render(prompt: &Prompt, history: &[Past]) -> String {
        let admissible: Vec<String> = ["go to fridge 1", "inventory", "open cabinet 1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let view = View {
            kind: default_kind(),
            task: "find the apple.",
            start: "You see a fridge 1.",
            history,
            observation: "The cabinet 1 is closed.",
            admissible: &admissible,
        };
        prompt.render(&view).unwrap()[1].content.clone()
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

    /// A file that uses one environment's variables serves that environment's scenarios: the
    /// household's template as a file, for the household, renders as the shipped one does.
    #[test]
    fn a_template_file_serves_the_kinds_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.j2");
        std::fs::write(&path, default_kind().student_template().source).unwrap();
        let mine = Prompt::from_file(&path, 4, [default_kind()]).unwrap();
        let shipped = Prompt::builtin(4);
        assert_eq!(render(&mine, &past(3)), render(&shipped, &past(3)));
        // Every kind: the other environments have no `checked`, and the error names the file.
        let err = Prompt::from_file(&path, 4, []).err().unwrap().to_string();
        assert!(
            err.contains("mine.j2") && err.contains("undefined"),
            "{err}"
        );
    }
}
