//! SKELETON (owner: the file-system and reward helper). InterCode-Bash's reward
//! (`intercode/envs/bash/bash_env.py`, `get_reward`): 0.01 + file diff + file changes + answer
//! similarity, 0.33 each.

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

/// `git status --short` as InterCode parses it: whitespace-split, then (path, status) pairs.
pub fn parse_status(_status: &str) -> Vec<(String, String)> {
    todo!("SKELETON")
}

/// The reward from both copies' changes, a hash comparison for a common added path
/// (`same(path)`), the agent's last output and the gold's (`None` when the gold failed).
pub fn score(
    _agent: &[(String, String)],
    _gold: &[(String, String)],
    _same: &mut dyn FnMut(&str) -> bool,
    _agent_output: &str,
    _gold_output: Option<&str>,
) -> Breakdown {
    todo!("SKELETON")
}

/// scikit-learn's `TfidfVectorizer()` cosine of two documents; `None` where it raises (no
/// word of two characters in either).
pub fn tfidf_cosine(_a: &str, _b: &str) -> Option<f64> {
    todo!("SKELETON")
}
