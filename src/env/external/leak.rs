//! The leak guard of external environments. leap knows nothing of what their facts mean, so it
//! guards words: a reason leaks a fact when it uses a distinctive word of the fact's value (a
//! word of four letters or more, or one with a digit, that is not a common English word or a
//! common command verb) which nothing the student has read contains: the task and the
//! observations. It errs on the side of flagging: a flag is for a person or a curation policy.

use std::collections::HashSet;

use crate::env::Privileged;
use crate::env::text::shorten;
use crate::teacher::Leak;

/// The subject of the fact that holds the privileged text, when the environment names no facts.
pub const TEXT: &str = "privileged state";

/// Words too common to give anything away.
const COMMON: &[&str] = &[
    "about",
    "above",
    "after",
    "again",
    "also",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "could",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "first",
    "from",
    "have",
    "having",
    "here",
    "into",
    "itself",
    "just",
    "last",
    "more",
    "most",
    "next",
    "only",
    "other",
    "over",
    "same",
    "should",
    "some",
    "step",
    "steps",
    "such",
    "than",
    "that",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "under",
    "until",
    "very",
    "what",
    "when",
    "where",
    "which",
    "while",
    "will",
    "with",
    "would",
    "your",
    "task",
    "none",
    "true",
    "false",
    "null",
    "take",
    "open",
    "close",
    "look",
    "examine",
    "drop",
    "move",
    "pick",
    "inventory",
    "goal",
];

/// The privileged facts of `hidden` that `reason` gives away, given everything the student had
/// read by then (`observed`).
pub fn guard(reason: &str, hidden: &Privileged, observed: &str) -> Vec<Leak> {
    let seen: HashSet<String> = words(observed).collect();
    let said: HashSet<String> = words(reason).collect();
    let mut leaks = Vec::new();
    for fact in &hidden.facts {
        let mut given: Vec<String> = words(&fact.detail)
            .filter(|w| distinctive(w) && !seen.contains(w) && said.contains(w))
            .collect();
        given.sort();
        given.dedup();
        if !given.is_empty() {
            leaks.push(Leak {
                fact: format!(
                    "{} {} {}",
                    fact.subject,
                    fact.relation,
                    shorten(&fact.detail, 80)
                ),
                text: given.join(", "),
            });
        }
    }
    leaks
}

/// The words of a text, lowercased, cut at anything but letters, digits, `-` and `_`.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
        .map(|w| w.trim_matches('-'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

fn distinctive(word: &str) -> bool {
    (word.chars().count() >= 4 || word.chars().any(|c| c.is_ascii_digit()))
        && !COMMON.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Fact;

    fn hidden(detail: &str) -> Privileged {
        Privileged {
            facts: vec![Fact {
                subject: "walkthrough".into(),
                relation: "is".into(),
                detail: detail.into(),
            }],
            plan: None,
        }
    }

    #[test]
    fn a_word_of_the_fact_not_yet_read_leaks() {
        let h = hidden("open antique trunk > take old key > unlock wooden door");
        let observed = "You are in a bedroom. You see an antique trunk.";
        let leaks = guard(
            "The key must be in the trunk, then the wooden door.",
            &h,
            observed,
        );
        assert_eq!(leaks.len(), 1);
        assert_eq!(leaks[0].text, "door, wooden");
        assert!(
            leaks[0]
                .fact
                .starts_with("walkthrough is open antique trunk")
        );
    }

    #[test]
    fn words_already_read_or_common_do_not_leak() {
        let h = hidden("open antique trunk > take old key");
        let observed = "You see an antique trunk.";
        assert!(
            guard(
                "Open the antique trunk first, then take what is there.",
                &h,
                observed
            )
            .is_empty()
        );
        assert!(guard("I have no idea.", &h, observed).is_empty());
    }

    #[test]
    fn a_number_leaks_whatever_its_length() {
        let h = hidden("the answer is 42");
        assert_eq!(guard("It must be 42.", &h, "What is it?")[0].text, "42");
        assert!(guard("It must be 42.", &h, "Try 42 or 43.").is_empty());
    }
}
