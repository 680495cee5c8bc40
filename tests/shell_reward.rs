//! InterCode-Bash's reward against real scikit-learn, NumPy and Python
//! (`tests/data/intercode_bash/reward_vectors.json`, made as `tests/data/README.md` says), and
//! against the per-turn rewards of GPT-4's recorded runs.

use leap::env::shell::reward::{numpy_round2, python_round2, score, tfidf_cosine};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/intercode_bash/reward_vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A float written as Python's `repr`, which round-trips exactly.
fn float(v: &Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn the_cosine_is_scikit_learns_to_the_bit() {
    let vectors = vectors();
    let pairs = vectors["similarity"].as_array().unwrap();
    assert!(pairs.len() > 400, "{} pairs", pairs.len());
    let mut mismatches = Vec::new();
    for pair in pairs {
        let (a, b) = (text(&pair["a"]), text(&pair["b"]));
        let ours = tfidf_cosine(a, b);
        let theirs = pair["cosine"].as_str().map(|c| c.parse::<f64>().unwrap());
        let p3 = score(&[], &[], &mut |_| true, a, Some(b)).answer_similarity;
        if ours.map(f64::to_bits) != theirs.map(f64::to_bits)
            || p3 != float(&pair["answer_similarity"])
        {
            mismatches.push(format!(
                "{a:?} / {b:?}: ours {ours:?} p3 {p3}, sklearn {theirs:?} {}",
                pair["answer_similarity"]
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {}:\n{}",
        mismatches.len(),
        pairs.len(),
        mismatches.join("\n")
    );
}

#[test]
fn python_and_numpy_round_as_they_do() {
    let vectors = vectors();
    let rounds = vectors["rounds"].as_array().unwrap();
    let mut differing = 0;
    for r in rounds {
        let x = float(&r[0]);
        assert_eq!(
            python_round2(x).to_bits(),
            float(&r[1]).to_bits(),
            "Python's round({x}, 2)"
        );
        assert_eq!(
            numpy_round2(x).to_bits(),
            float(&r[2]).to_bits(),
            "NumPy's round({x}, 2)"
        );
        differing += usize::from(r[1] != r[2]);
    }
    // The two roundings must really disagree somewhere, or this test could not tell them apart.
    assert!(differing > 100, "{differing} of {}", rounds.len());
}

#[test]
fn p1_for_any_number_of_differences() {
    let vectors = vectors();
    for (n, expected) in vectors["p1"].as_array().unwrap().iter().enumerate() {
        let extra: Vec<(String, String)> = (0..n).map(|i| (format!("f{i}"), "??".into())).collect();
        let b = score(&extra, &[], &mut |_| true, "", Some(""));
        assert_eq!(
            b.file_diff.to_bits(),
            float(expected).to_bits(),
            "{n} differences"
        );
    }
}

#[test]
fn whole_rewards_equal_get_rewards() {
    let vectors = vectors();
    let cases = vectors["rewards"].as_array().unwrap();
    let changes = |v: &Value| -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| (text(&c[0]).to_string(), text(&c[1]).to_string()))
            .collect()
    };
    for case in cases {
        let agrees: Vec<&str> = case["agrees"]
            .as_array()
            .unwrap()
            .iter()
            .map(text)
            .collect();
        let b = score(
            &changes(&case["agent"]),
            &changes(&case["gold"]),
            &mut |path| agrees.contains(&path),
            text(&case["agent_output"]),
            case["gold_output"].as_str(),
        );
        let parts = [b.file_diff, b.file_changes, b.answer_similarity].map(f64::to_bits);
        let expected = case["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| float(p).to_bits());
        assert!(parts.into_iter().eq(expected), "{case}: {b:?}");
        assert_eq!(
            b.reward.to_bits(),
            float(&case["reward"]).to_bits(),
            "{case}: {b:?}"
        );
    }
}

/// Whether an action may change the file system (conservatively: anything that looks like it;
/// only redirections to `/dev/null` and between descriptors are known harmless).
fn may_write(action: &str) -> bool {
    let harmless = regex::Regex::new(r"[0-9&]?>\s*/dev/null|[0-9]?>&[0-9]").unwrap();
    let writers = regex::Regex::new(
        r"\b(rm|mv|cp|mkdir|rmdir|touch|chmod|chown|chgrp|ln|tar|zip|unzip|gzip|gunzip|bzip2|xz|truncate|tee|dd|install|rsync|patch|split|shred|git)\b|>|sed\s+-\w*i|-delete",
    )
    .unwrap();
    writers.is_match(&harmless.replace_all(action, ""))
}

/// InterCode scored each turn by submitting right after it, so turn i's reward is
/// `0.01 + p1 + p2 + p3(observation i, gold output)`. In an episode that ends at 1.0 the last
/// observation stands in for the gold output. Where no action of the episode can write, neither
/// side changed the file system (a 1.0 needs the gold's changes to equal the agent's), so p1 and
/// p2 are 0.33 and the whole reward must come out exactly; elsewhere some reachable p1 and p2
/// must explain it.
#[test]
fn recorded_rewards_follow_from_the_recorded_outputs() {
    let mut exact = 0;
    let mut explained = 0;
    let mut failures = Vec::new();
    let reachable_p2: Vec<f64> = (1..=10)
        .flat_map(|t| (0..=t).map(move |s| python_round2(0.33 * (s as f64 / t as f64))))
        .collect();
    for fs in 1..=4 {
        let path = format!(
            "{}/tests/data/intercode_bash/reference_runs/ic_bash_multiturn_gpt-4_10_turns_fs_{fs}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let runs: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for (id, episode) in runs.as_object().unwrap() {
            let turns = &episode["turn_history"];
            let rewards: Vec<f64> = turns["rewards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_f64().unwrap())
                .collect();
            if rewards.last() != Some(&1.0) {
                continue;
            }
            let actions: Vec<&str> = turns["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(text)
                .collect();
            let observations: Vec<&str> = turns["observations"]
                .as_array()
                .unwrap()
                .iter()
                .map(text)
                .collect();
            let gold = *observations.last().unwrap();
            let read_only = !actions.iter().any(|a| may_write(a));
            for (turn, (observation, &recorded)) in observations.iter().zip(&rewards).enumerate() {
                let b = score(
                    &[],
                    &[],
                    &mut |_| unreachable!("no common change"),
                    observation,
                    Some(gold),
                );
                if read_only {
                    exact += 1;
                    if b.reward != recorded {
                        failures.push(format!(
                            "fs{fs} #{id} turn {turn}: ours {b:?}, recorded {recorded}"
                        ));
                    }
                    continue;
                }
                explained += 1;
                let fits = [0.33, 0.05, 0.0].iter().any(|&p1| {
                    reachable_p2.iter().any(|&p2| {
                        let mut reward = 0.01;
                        reward += p1;
                        reward += p2;
                        reward += b.answer_similarity;
                        reward == recorded
                    })
                });
                if !fits {
                    failures.push(format!(
                        "fs{fs} #{id} turn {turn}: no p1, p2 give {recorded} with p3 {}",
                        b.answer_similarity
                    ));
                }
            }
        }
    }
    eprintln!("{exact} turns recomputed exactly, {explained} explained by some p1 and p2");
    assert!(
        exact >= explained,
        "only {exact} read-only turns of {}",
        exact + explained
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
