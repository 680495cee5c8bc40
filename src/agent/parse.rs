//! Reading `REASON:` and `ACTION:` out of what the student wrote, tolerantly: labels in any
//! case, with or without markdown, an action with stray quotes or a full stop, an action that
//! differs from an admissible command only in case or spacing (for a template, in its fixed
//! parts: the words filled into its hole are kept as written, see `env::command`).

use serde::{Deserialize, Serialize};

use crate::env::command::admits_loosely;

/// What a response says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parsed {
    pub reason: Option<String>,
    /// The admissible command the response names, or `None` when it names none.
    pub action: Option<String>,
}

/// The text after `label:` on the first line that starts with it (ignoring case and markdown).
fn field<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let line = line.trim().trim_start_matches(['*', '#', '-', '>', ' ']);
        let head = line.get(..label.len())?;
        if !head.eq_ignore_ascii_case(label) {
            return None;
        }
        let rest = line[label.len()..].trim_start_matches(['*', ' ']);
        Some(
            rest.strip_prefix(':')?
                .trim()
                .trim_start_matches('*')
                .trim(),
        )
    })
}

/// Parses a response against the commands that were admissible.
pub fn parse(text: &str, admissible: &[String]) -> Parsed {
    let reason = field(text, "reason")
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    let action = field(text, "action").and_then(|raw| {
        // As written first (a command in one pair of backticks unwrapped): a free-text command
        // keeps its own quotes and dots (`find . -name '*.txt'`). Only what is not admitted so
        // loses stray quotes, markdown and a full stop at its ends.
        let unwrapped = raw
            .strip_prefix('`')
            .and_then(|r| r.strip_suffix('`'))
            .filter(|r| !r.contains('`'))
            .unwrap_or(raw)
            .trim();
        admits_loosely(admissible, unwrapped).or_else(|| {
            let cleaned =
                raw.trim_matches(|c: char| matches!(c, '`' | '"' | '\'' | '*' | '.' | ' '));
            admits_loosely(admissible, cleaned)
        })
    });
    Parsed { reason, action }
}

/// The response format the student is asked for.
pub fn format(reason: &str, action: &str) -> String {
    format!("REASON: {reason}\nACTION: {action}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adm() -> Vec<String> {
        vec![
            "go to fridge 1".into(),
            "open fridge 1".into(),
            "look".into(),
        ]
    }

    #[test]
    fn a_free_text_command_keeps_its_quotes_and_dots() {
        let free = vec![crate::env::command::HOLE.to_string()];
        for command in [
            "find . -name '*.txt'",
            "echo \"a b\"",
            "cd ..",
            "ls .",
            "./run.sh",
            "grep -c x *.md",
        ] {
            let p = parse(&format!("REASON: r\nACTION: {command}"), &free);
            assert_eq!(p.action.as_deref(), Some(command));
        }
        let p = parse("REASON: r\nACTION: `ls -la`", &free);
        assert_eq!(p.action.as_deref(), Some("ls -la"));
        // A command substitution is not a markdown wrapper.
        let p = parse("REASON: r\nACTION: `pwd` && `pwd`", &free);
        assert_eq!(p.action.as_deref(), Some("`pwd` && `pwd`"));
    }

    #[test]
    fn reads_the_plain_format() {
        let p = parse(
            "REASON: apples are kept cold.\nACTION: go to fridge 1",
            &adm(),
        );
        assert_eq!(p.reason.as_deref(), Some("apples are kept cold."));
        assert_eq!(p.action.as_deref(), Some("go to fridge 1"));
    }

    #[test]
    fn tolerates_case_markdown_quotes_and_spacing() {
        let p = parse(
            "**Reason:** check it\n**Action:** `Go to  Fridge 1.`",
            &adm(),
        );
        assert_eq!(p.reason.as_deref(), Some("check it"));
        assert_eq!(p.action.as_deref(), Some("go to fridge 1"));
    }

    #[test]
    fn an_inadmissible_or_missing_action_is_none() {
        assert_eq!(parse("REASON: x\nACTION: fly", &adm()).action, None);
        let p = parse("I think I should open the fridge", &adm());
        assert_eq!(
            p,
            Parsed {
                reason: None,
                action: None
            }
        );
    }

    #[test]
    fn fills_a_template_with_the_words_written() {
        let adm = vec![
            "click[back to search]".to_string(),
            "search[...]".to_string(),
        ];
        let p = parse(
            "REASON: look for it\nACTION: Search[ Red Running Shoes ]",
            &adm,
        );
        assert_eq!(p.action.as_deref(), Some("search[Red Running Shoes]"));
        let p = parse("REASON: back\nACTION: `Click[Back to Search]`.", &adm);
        assert_eq!(p.action.as_deref(), Some("click[back to search]"));
        for empty in ["search[]", "search[ ]", "search[...", "search[a]b]"] {
            let p = parse(&format!("REASON: x\nACTION: {empty}"), &adm);
            assert_eq!(p.action, None, "{empty:?}");
        }
    }

    #[test]
    fn round_trips_its_own_format() {
        let p = parse(&format("mugs live in cabinets", "look"), &adm());
        assert_eq!(
            (p.reason.as_deref(), p.action.as_deref()),
            (Some("mugs live in cabinets"), Some("look"))
        );
    }
}
