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
    /// Earlier steps, oldest first (the prompt shows the last `history` of them).
    pub history: &'a [Past],
    pub observation: &'a str,
    pub admissible: &'a [String],
}

/// A compiled prompt template.
pub struct Prompt {
    env: Environment<'static>,
    name: String,
    /// How many earlier steps the prompt shows.
    pub history: usize,
}

impl Prompt {
    /// The shipped template, showing the last `history` steps.
    pub fn builtin(history: usize) -> Prompt {
        Prompt::from_source(
            "assets/prompts/react.j2",
            DEFAULT_TEMPLATE.to_string(),
            history,
        )
        .expect("the shipped prompt compiles")
    }

    /// A template from a file, checked by rendering it once.
    pub fn from_file(path: &Path, history: usize) -> Result<Prompt, PromptError> {
        let source = std::fs::read_to_string(path).map_err(|source| PromptError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Prompt::from_source(&path.display().to_string(), source, history)
    }

    fn from_source(name: &str, source: String, history: usize) -> Result<Prompt, PromptError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let err = |source| PromptError::Template {
            name: name.to_string(),
            source,
        };
        env.add_template_owned(name.to_string(), source)
            .map_err(err)?;
        let prompt = Prompt {
            env,
            name: name.to_string(),
            history,
        };
        let probe = View {
            task: "t",
            history: &[],
            observation: "o",
            admissible: &[],
        };
        prompt.render(&probe)?;
        Ok(prompt)
    }

    /// The system and user messages for `view`.
    pub fn render(&self, view: &View) -> Result<Vec<Message>, PromptError> {
        let err = |source| PromptError::Template {
            name: self.name.clone(),
            source,
        };
        let template = self.env.get_template(&self.name).map_err(err)?;
        let skip = view.history.len().saturating_sub(self.history);
        let ctx = context! {
            task => view.task,
            history => Serde(&view.history[skip..]),
            observation => view.observation,
            admissible => Serde(view.admissible),
        };
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
