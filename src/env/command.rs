//! Admissible commands, literal or with a hole. A command in an admissible list is either taken
//! as it is (`go to fridge 1`) or is a template with one [`HOLE`] that the agent fills with its
//! own words (`search[...]`: any keywords). Every check of an action against an admissible list
//! goes through [`admits`] (or [`admits_loosely`] for what a model wrote), so a kind that offers
//! free text needs nothing else from the rest of leap.
//!
//! A fill is non-empty once trimmed and on one line; in a bracketed hole (the template goes on
//! with `]`) it holds no `]`, so the first `]` always closes the template.

/// The literal text that marks a hole in a command.
pub const HOLE: &str = "...";

/// Longest fill the grammars allow (see [`gbnf`]), in characters: a search's keywords and a
/// shell command line fit (InterCode's longest gold command has 176), and a model that never
/// closes the hole is made to within the response's token budget.
pub const MAX_FILL: usize = 200;

/// A command with a hole, split around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template<'a> {
    pub prefix: &'a str,
    pub suffix: &'a str,
}

impl<'a> Template<'a> {
    /// The template `command` is, or `None` for a literal command.
    pub fn of(command: &'a str) -> Option<Template<'a>> {
        let (prefix, suffix) = command.split_once(HOLE)?;
        Some(Template { prefix, suffix })
    }

    /// The hole is closed by `]`, which the fill therefore cannot hold.
    pub fn bracketed(&self) -> bool {
        self.suffix.starts_with(']')
    }

    /// Whether `c` may stand in a fill.
    pub fn allows(&self, c: char) -> bool {
        c != '\n' && c != '\r' && !(self.bracketed() && c == ']')
    }

    /// The command with `fill` in its hole, trimmed; `None` when `fill` is not a valid fill.
    pub fn with(&self, fill: &str) -> Option<String> {
        let fill = fill.trim();
        (!fill.is_empty() && fill.chars().all(|c| self.allows(c)))
            .then(|| format!("{}{fill}{}", self.prefix, self.suffix))
    }

    /// `action` as this template filled, fixed parts written exactly.
    pub fn fill(&self, action: &str) -> Option<String> {
        let middle = action
            .strip_prefix(self.prefix)?
            .strip_suffix(self.suffix)?;
        self.with(middle)
    }

    /// `action` as this template filled, fixed parts in any case and spacing.
    pub fn fill_loosely(&self, action: &str) -> Option<String> {
        let rest = strip_loosely(action.chars(), self.prefix.chars())?;
        let rest: String = rest.collect();
        let middle: String =
            strip_loosely(rest.chars().rev(), self.suffix.chars().rev())?.collect();
        let middle: String = middle.chars().rev().collect();
        self.with(&middle)
    }

    /// Whether the agent, having typed `typed`, may still be writing this template: `typed` is
    /// a beginning of the prefix, or the prefix and then fill text and perhaps the suffix begun.
    pub fn may_become(&self, typed: &str) -> bool {
        match typed.strip_prefix(self.prefix) {
            None => self.prefix.starts_with(typed),
            Some(rest) => rest.chars().all(|c| self.allows(c)) || self.closing(typed).is_some(),
        }
    }

    /// What is left to write to close the hole that `typed` has begun to fill (all or the rest
    /// of the suffix; empty once closed), or `None` when `typed` has no fill of this template.
    pub fn closing(&self, typed: &str) -> Option<&'a str> {
        let rest = typed.strip_prefix(self.prefix)?;
        let fill_end = rest
            .char_indices()
            .find(|&(_, c)| !self.allows(c))
            .map_or(rest.len(), |(i, _)| i);
        if rest[..fill_end].trim().is_empty() {
            return None;
        }
        self.suffix.strip_prefix(&rest[fill_end..])
    }

    /// Whether `typed` is this template filled and nothing can follow: the hole is bracketed,
    /// so its fill ended at the first `]`.
    pub fn closed_by(&self, typed: &str) -> bool {
        self.bracketed() && self.fill(typed).is_some()
    }
}

/// Whether `command` has a hole to fill.
pub fn is_template(command: &str) -> bool {
    command.contains(HOLE)
}

/// Strips `fixed` from the front of `text`, letter case and the length of whitespace runs
/// aside (whitespace before `fixed` too); the rest of `text`, or `None`.
fn strip_loosely<I, F>(text: I, fixed: F) -> Option<std::iter::Peekable<I>>
where
    I: Iterator<Item = char> + Clone,
    F: Iterator<Item = char>,
{
    let skip_space = |it: &mut std::iter::Peekable<I>| {
        let mut skipped = false;
        while it.next_if(|c| c.is_whitespace()).is_some() {
            skipped = true;
        }
        skipped
    };
    let mut text = text.peekable();
    skip_space(&mut text);
    let mut fixed = fixed.skip_while(|c| c.is_whitespace()).peekable();
    while let Some(f) = fixed.next() {
        if f.is_whitespace() {
            while fixed.next_if(|c| c.is_whitespace()).is_some() {}
            if !skip_space(&mut text) {
                return None;
            }
        } else if !text.next()?.to_lowercase().eq(f.to_lowercase()) {
            return None;
        }
    }
    Some(text)
}

fn normalise(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The admissible command `action` is, as it is written: a literal command word for word, or a
/// template with its fixed parts word for word and a valid fill (trimmed in the answer). A
/// literal wins over a template; among templates, the first in the list.
pub fn admits(admissible: &[String], action: &str) -> Option<String> {
    if let Some(literal) = admissible
        .iter()
        .find(|a| !is_template(a) && a.as_str() == action)
    {
        return Some(literal.clone());
    }
    admissible
        .iter()
        .find_map(|a| Template::of(a)?.fill(action))
}

/// The admissible command `action` names, tolerating letter case and spacing in what the
/// command fixes (a fill is kept as written, trimmed): what a model's answer is read as. Exact
/// matches ([`admits`]) first.
pub fn admits_loosely(admissible: &[String], action: &str) -> Option<String> {
    if let Some(exact) = admits(admissible, action) {
        return Some(exact);
    }
    let wanted = normalise(action);
    if let Some(literal) = admissible
        .iter()
        .find(|a| !is_template(a) && normalise(a) == wanted)
    {
        return Some(literal.clone());
    }
    admissible
        .iter()
        .find_map(|a| Template::of(a)?.fill_loosely(action))
}

/// The entry of `admissible` that admits `action` ([`admits`]): the template itself for a
/// filled one.
pub fn admitting<'a>(admissible: &'a [String], action: &str) -> Option<&'a String> {
    admissible.iter().find(|a| match Template::of(a) {
        None => a.as_str() == action,
        Some(t) => t.fill(action).is_some(),
    })
}

/// The longest command of `admissible`, in bytes, counting a hole as [`MAX_FILL`].
pub fn longest(admissible: &[String]) -> usize {
    admissible
        .iter()
        .map(|a| match Template::of(a) {
            None => a.len(),
            Some(t) => t.prefix.len() + MAX_FILL * 4 + t.suffix.len(),
        })
        .max()
        .unwrap_or(0)
}

/// The command as a GBNF alternative: a quoted literal, or a template's quoted fixed parts
/// around a character class for the fill, at most [`MAX_FILL`] characters. The fill's first
/// character is not a space, so whatever the grammar lets through is admitted.
pub fn gbnf(command: &str) -> String {
    let quote = gbnf_literal;
    let Some(t) = Template::of(command) else {
        return quote(command);
    };
    let class = if t.bracketed() { "\\]\\n\\r" } else { "\\n\\r" };
    let mut parts = Vec::new();
    if !t.prefix.is_empty() {
        parts.push(quote(t.prefix));
    }
    parts.push(format!("[^{class} \\t] [^{class}]{{0,{}}}", MAX_FILL - 1));
    if !t.suffix.is_empty() {
        parts.push(quote(t.suffix));
    }
    format!("({})", parts.join(" "))
}

/// `text` as a GBNF string literal, quotes and backslashes escaped.
pub fn gbnf_literal(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adm() -> Vec<String> {
        ["click[back to search]", "search[...]", "look"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn a_literal_is_admitted_word_for_word() {
        assert_eq!(admits(&adm(), "look").as_deref(), Some("look"));
        assert_eq!(admits(&adm(), "Look"), None);
        assert_eq!(admits_loosely(&adm(), " Look ").as_deref(), Some("look"));
        assert_eq!(
            admits_loosely(&adm(), "Click[Back  to search]").as_deref(),
            Some("click[back to search]")
        );
    }

    #[test]
    fn a_hole_takes_any_one_line_fill_trimmed() {
        assert_eq!(
            admits(&adm(), "search[red shoes, size 9]").as_deref(),
            Some("search[red shoes, size 9]")
        );
        assert_eq!(
            admits(&adm(), "search[ Red Shoes ]").as_deref(),
            Some("search[Red Shoes]")
        );
        let bad = [
            "search[]",
            "search[  ]",
            "search[a]b]",
            "search[a\nb]",
            "search[a",
        ];
        for action in bad {
            assert_eq!(admits(&adm(), action), None, "{action:?}");
            assert_eq!(admits_loosely(&adm(), action), None, "{action:?}");
        }
        // Three dots are words like any other.
        let dots = admits(&adm(), "search[...]");
        assert_eq!(dots.as_deref(), Some("search[...]"));
    }

    #[test]
    fn loose_matching_bends_the_fixed_parts_only() {
        assert_eq!(
            admits_loosely(&adm(), "  SEARCH[Red Shoes]").as_deref(),
            Some("search[Red Shoes]")
        );
        assert_eq!(admits_loosely(&adm(), "search [red]"), None);
        let spaced = vec!["put ... in box".to_string()];
        assert_eq!(
            admits_loosely(&spaced, "Put  the Apple   IN box").as_deref(),
            Some("put the Apple in box")
        );
        assert_eq!(admits_loosely(&spaced, "put in box"), None);
    }

    #[test]
    fn the_entry_that_admits_an_action() {
        let a = adm();
        assert_eq!(admitting(&a, "search[x]"), Some(&a[1]));
        assert_eq!(admitting(&a, "look"), Some(&a[2]));
        assert_eq!(admitting(&a, "fly"), None);
    }

    #[test]
    fn what_may_still_become_a_template() {
        let t = Template::of("search[...]").unwrap();
        for typed in ["", "sea", "search[", "search[red sh", "search[red]"] {
            assert!(t.may_become(typed), "{typed:?}");
        }
        for typed in ["look", "search[]", "search[a]]", "search[a]x"] {
            assert!(!t.may_become(typed), "{typed:?}");
        }
        assert_eq!(t.closing("search[red sh"), Some("]"));
        assert_eq!(t.closing("search[red]"), Some(""));
        assert_eq!(t.closing("search["), None, "nothing to close yet");
        assert_eq!(t.closing("look"), None);
        let spaced = Template::of("put ... in box").unwrap();
        assert_eq!(spaced.closing("put the apple in"), Some(" in box"));
        assert!(t.closed_by("search[red]"));
        assert!(!t.closed_by("search[red"));
        assert!(!Template::of("say ...").unwrap().closed_by("say hi"));
    }

    #[test]
    fn gbnf_of_literals_and_templates() {
        assert_eq!(gbnf("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(
            gbnf("search[...]"),
            "(\"search[\" [^\\]\\n\\r \\t] [^\\]\\n\\r]{0,199} \"]\")"
        );
        assert_eq!(gbnf("say ..."), "(\"say \" [^\\n\\r \\t] [^\\n\\r]{0,199})");
    }

    #[test]
    fn the_longest_command_counts_a_full_hole() {
        assert_eq!(longest(&["look".to_string()]), 4);
        assert_eq!(longest(&adm()), "search[]".len() + 4 * MAX_FILL);
    }
}
