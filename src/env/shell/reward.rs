//! InterCode-Bash's reward (`intercode/envs/bash/bash_env.py`, `get_reward`), to the last bit:
//! 0.01 + file diff + file changes + answer similarity, 0.33 each, summed in that order.
//!
//! Two roundings meet here. `p1` and `p2` are Python floats, so `round(x, 2)` is Python's: the
//! exact binary value rounded half to even (`0.165` is `0.17`, its binary value being above the
//! tie). `p3` multiplies a NumPy `float64` (the similarity matrix's element), and `round` on that
//! is NumPy's: `rint(x * 100) / 100`, which rounds the already-rounded product (`0.165` is
//! `0.16`). The TF-IDF cosine follows scikit-learn's arithmetic order (as its sparse rows store
//! their terms), so equal inputs give equal bits.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;

use crate::env::shell::shlex::is_python_space;

/// One reward and how it was made (stored with the submitting step).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Breakdown {
    pub reward: f64,
    /// p1: `round(0.33 * (1 - erf(missing + extra)), 2)`.
    pub file_diff: f64,
    /// p2: 0.33, or 0.33 times the share of common added/untracked paths whose hashes agree.
    pub file_changes: f64,
    /// p3: `round(0.33 * cosine, 2)`.
    pub answer_similarity: f64,
    /// The TF-IDF cosine itself (or 1/0 for exact equality when no words).
    pub similarity: f64,
    /// Changes the gold made that the agent did not, and the other way round.
    pub diff_miss: Vec<(String, String)>,
    pub diff_extra: Vec<(String, String)>,
    pub agent_output: String,
    pub gold_output: Option<String>,
}

impl Breakdown {
    /// InterCode's success: the reward is exactly 1.
    pub fn won(&self) -> bool {
        self.reward == 1.0
    }
}

/// `git status --short` as InterCode parses it: split on Python's whitespace, then each pair of
/// words is (path, status). A quoted path with a space (`?? "a b"`) splits in two, as there; an
/// odd last word, on which InterCode's `status_lst[i+1]` raises outside any handler, is dropped.
pub fn parse_status(status: &str) -> Vec<(String, String)> {
    let words: Vec<&str> = status
        .split(is_python_space)
        .filter(|w| !w.is_empty())
        .collect();
    words
        .chunks_exact(2)
        .map(|pair| (pair[1].to_string(), pair[0].to_string()))
        .collect()
}

/// The reward from both copies' changes, a hash comparison for a common added path
/// (`same(path)`), the agent's last output and the gold's (`None` when the gold failed).
pub fn score(
    agent: &[(String, String)],
    gold: &[(String, String)],
    same: &mut dyn FnMut(&str) -> bool,
    agent_output: &str,
    gold_output: Option<&str>,
) -> Breakdown {
    let agent = distinct(agent);
    let gold = distinct(gold);
    let diff_miss = difference(&gold, &agent);
    let diff_extra = difference(&agent, &gold);
    let differences = (diff_miss.len() + diff_extra.len()) as f64;
    let file_diff = python_round2(0.33 * (1.0 - libm::erf(differences)));

    // Only paths both sides added (or copied, or left untracked) are compared by content.
    let common: Vec<&(String, String)> = agent
        .iter()
        .filter(|change| gold.contains(change))
        .filter(|(_, status)| matches!(status.as_str(), "A" | "??" | "C"))
        .collect();
    let file_changes = if common.is_empty() {
        0.33
    } else {
        let agreeing = common.iter().filter(|(path, _)| same(path)).count();
        python_round2(0.33 * (agreeing as f64 / common.len() as f64))
    };

    // scikit-learn raises on an empty vocabulary, and on a missing gold output (`None.lower()`);
    // InterCode then compares the two outputs for equality.
    let (similarity, answer_similarity) =
        match gold_output.and_then(|g| tfidf_cosine(agent_output, g)) {
            Some(cosine) => (cosine, numpy_round2(0.33 * cosine)),
            None => {
                let equal = if gold_output == Some(agent_output) {
                    1.0
                } else {
                    0.0
                };
                (equal, python_round2(0.33 * equal))
            }
        };

    let mut reward = 0.01;
    reward += file_diff;
    reward += file_changes;
    reward += answer_similarity;
    Breakdown {
        reward,
        file_diff,
        file_changes,
        answer_similarity,
        similarity,
        diff_miss,
        diff_extra,
        agent_output: agent_output.to_string(),
        gold_output: gold_output.map(str::to_string),
    }
}

/// The changes once each, in first-seen order (InterCode's `set`; its order is the hash's).
fn distinct(changes: &[(String, String)]) -> Vec<(String, String)> {
    let mut seen = Vec::with_capacity(changes.len());
    for change in changes {
        if !seen.contains(change) {
            seen.push(change.clone());
        }
    }
    seen
}

fn difference(a: &[(String, String)], b: &[(String, String)]) -> Vec<(String, String)> {
    a.iter().filter(|c| !b.contains(c)).cloned().collect()
}

/// Python's `round(x, 2)` on a float: the exact binary value, rounded half to even. Rust's
/// fixed-precision formatting rounds the exact value the same way.
pub fn python_round2(x: f64) -> f64 {
    format!("{x:.2}").parse().expect("a formatted float parses")
}

/// NumPy's `round(x, 2)` on a `float64`: `rint(x * 100) / 100`.
pub fn numpy_round2(x: f64) -> f64 {
    (x * 100.0).round_ties_even() / 100.0
}

/// scikit-learn's default token pattern `(?u)\b\w\w+\b` under Python's `re`: runs of two or
/// more word characters, where Python's `\w` is a letter, a number (any `N` category, so `²`
/// and `Ⅻ` too) or `_`, and not a combining mark as in Rust's own `\w`.
fn tokens(lowered: &str) -> impl Iterator<Item = &str> {
    static WORD_RUN: OnceLock<Regex> = OnceLock::new();
    WORD_RUN
        .get_or_init(|| Regex::new(r"[\p{L}\p{N}_]{2,}").expect("a valid pattern"))
        .find_iter(lowered)
        .map(|m| m.as_str())
}

/// scikit-learn's `TfidfVectorizer()` cosine of two documents; `None` where it raises (no
/// word of two characters in either).
///
/// Defaults: lowercased (Python's `str.lower`, which Rust's `to_lowercase` matches, final sigma
/// included), raw counts, smooth idf `ln((1 + 2) / (1 + df)) + 1`, each row divided by its l2
/// norm. Sums run in the order the rows store their terms in scikit-learn 1.2, which InterCode's
/// runs used: the idf product (a sparse product with a diagonal matrix) leaves each row in the
/// reverse order of first appearance across both documents, and the normaliser and the product
/// `tfidf * tfidf.T` add in that order. (Later releases, 1.9 for one, multiply in place and keep the
/// forward order, which can move the last bit.)
pub fn tfidf_cosine(a: &str, b: &str) -> Option<f64> {
    let docs = [a.to_lowercase(), b.to_lowercase()];
    let mut index: HashMap<&str, usize> = HashMap::new();
    // counts[term] = (count in a, count in b), terms in order of first appearance.
    let mut counts: Vec<[u32; 2]> = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        for token in tokens(doc) {
            let next = counts.len();
            let term = *index.entry(token).or_insert(next);
            if term == next {
                counts.push([0, 0]);
            }
            counts[term][d] += 1;
        }
    }
    if counts.is_empty() {
        return None;
    }
    let weights: Vec<[f64; 2]> = counts
        .iter()
        .map(|c| {
            let df = c.iter().filter(|&&n| n > 0).count() as f64;
            let idf = (3.0 / (1.0 + df)).ln() + 1.0;
            [f64::from(c[0]) * idf, f64::from(c[1]) * idf]
        })
        .collect();
    let norm = |d: usize| {
        let squares: f64 = weights
            .iter()
            .rev()
            .map(|w| w[d] * w[d])
            .fold(0.0, |s, x| s + x);
        // scikit-learn leaves an empty row as it is.
        if squares == 0.0 { 1.0 } else { squares.sqrt() }
    };
    let (norm_a, norm_b) = (norm(0), norm(1));
    let mut dot = 0.0;
    for w in weights.iter().rev() {
        if w[0] > 0.0 && w[1] > 0.0 {
            dot += (w[0] / norm_a) * (w[1] / norm_b);
        }
    }
    Some(dot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .collect()
    }

    #[test]
    fn status_pairs_come_path_first() {
        assert_eq!(
            parse_status(" M testbed/a.txt\n?? testbed/new/\nD  x\n"),
            changes(&[("testbed/a.txt", "M"), ("testbed/new/", "??"), ("x", "D")])
        );
        assert_eq!(parse_status("?? \"a b\"\n"), changes(&[("\"a", "??")]));
        assert!(parse_status("").is_empty());
    }

    #[test]
    fn identical_outcomes_score_exactly_one() {
        let same = changes(&[("testbed/x.txt", "??")]);
        let b = score(&same, &same, &mut |_| true, "3 files\n", Some("3 files\n"));
        assert_eq!(
            (b.file_diff, b.file_changes, b.answer_similarity),
            (0.33, 0.33, 0.33)
        );
        assert!(b.won(), "{b:?}");
    }

    #[test]
    fn one_difference_costs_p1_and_a_wrong_file_costs_p2() {
        let agent = changes(&[("a.txt", "??"), ("b", "M")]);
        let gold = changes(&[("a.txt", "??")]);
        let mut asked = Vec::new();
        let b = score(
            &agent,
            &gold,
            &mut |p| {
                asked.push(p.to_string());
                false
            },
            "",
            Some(""),
        );
        assert_eq!(b.diff_extra, changes(&[("b", "M")]));
        assert!(b.diff_miss.is_empty());
        assert_eq!(
            (b.file_diff, b.file_changes, b.answer_similarity),
            (0.05, 0.0, 0.33)
        );
        assert_eq!(asked, ["a.txt"]);
        assert_eq!(b.reward, 0.01 + 0.05 + 0.0 + 0.33);
    }

    #[test]
    fn a_failed_gold_output_matches_nothing() {
        let b = score(&[], &[], &mut |_| true, "", None);
        assert_eq!((b.similarity, b.answer_similarity), (0.0, 0.0));
    }

    /// Python's `\w` over every code point Python's Unicode database assigns, from the vectors.
    #[test]
    fn word_characters_are_pythons() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/intercode_bash/reward_vectors.json"
        );
        let vectors: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let runs = |key: &str| -> Vec<(u32, u32)> {
            let runs = vectors[key].as_array().unwrap().iter();
            runs.map(|r| (r[0].as_u64().unwrap() as u32, r[1].as_u64().unwrap() as u32))
                .collect()
        };
        // The runs are sorted and disjoint: the last one starting at or before `cp` decides.
        let inside = |runs: &[(u32, u32)], cp: u32| {
            let after = runs.partition_point(|&(start, _)| start <= cp);
            after > 0 && cp <= runs[after - 1].1
        };
        let (words, unassigned) = (runs("word_runs"), runs("unassigned_runs"));
        let assigned: Vec<char> = (0..=0x10FFFF)
            .filter(|&cp| !inside(&unassigned, cp))
            .filter_map(char::from_u32)
            .collect();
        let mut doubled = String::new();
        for c in &assigned {
            doubled.extend([*c, *c, ' ']);
        }
        let ours: std::collections::HashSet<char> = tokens(&doubled)
            .map(|t| t.chars().next().unwrap())
            .collect();
        let wrong: Vec<String> = assigned
            .iter()
            .filter(|&&c| ours.contains(&c) != inside(&words, c as u32))
            .map(|c| format!("U+{:04X}", *c as u32))
            .collect();
        assert!(assigned.len() > 280_000, "{}", assigned.len());
        assert!(
            wrong.is_empty(),
            "{} differ: {}",
            wrong.len(),
            wrong.join(" ")
        );
    }

    #[test]
    fn the_two_roundings_differ_where_python_and_numpy_do() {
        assert_eq!(python_round2(0.165), 0.17);
        assert_eq!(numpy_round2(0.165), 0.16);
        assert_eq!(python_round2(0.125), 0.12);
    }
}
