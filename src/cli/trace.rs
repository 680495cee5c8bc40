//! How the CLI prints episodes: a list with a summary, and one episode's trace.

use std::fmt::Write as _;

use leap::store::{Episode, EpisodeSummary, Summary};

/// Episodes as an aligned table, then their summary.
pub fn render_list(rows: &[EpisodeSummary], summary: &Summary) -> String {
    let mut out = String::new();
    let scenario_width = rows
        .iter()
        .map(|r| r.scenario_id.len())
        .max()
        .unwrap_or(0)
        .max(8);
    if !rows.is_empty() {
        let _ = writeln!(
            out,
            "{:>6}  {:3}  {:>6}  {:>5}  {:>7}  {:>4}  {:scenario_width$}  key",
            "id", "won", "reward", "steps", "invalid", "iter", "scenario"
        );
    }
    for r in rows {
        let iteration = r.iteration.map_or("-".to_string(), |i| i.to_string());
        let _ = writeln!(
            out,
            "{:>6}  {:3}  {:>6.2}  {:>5}  {:>7}  {:>4}  {:scenario_width$}  {}",
            r.id,
            if r.won { "yes" } else { "no" },
            r.reward,
            r.steps,
            r.invalid_actions,
            iteration,
            r.scenario_id,
            r.key
        );
    }
    let s = summary;
    let _ = writeln!(
        out,
        "{} episode{}, {} won ({:.1}%), mean reward {:.3}, mean steps {:.1}, invalid actions {:.1}% of {} steps, \
         tokens {} prompt ({} cached) + {} generated",
        s.episodes,
        if s.episodes == 1 { "" } else { "s" },
        s.wins,
        100.0 * s.success_rate,
        s.mean_reward,
        s.mean_steps,
        100.0 * s.invalid_action_rate,
        s.steps,
        s.prompt_tokens,
        s.cached_tokens,
        s.gen_tokens
    );
    out
}

/// The trace as a person reads it: for each step the reason, the action (marked when it was
/// not admissible) and the observation that came back, who chose it when the student did not
/// and what the environment reported beyond the reward (its info); then the outcome.
pub fn render_trace(episode: &Episode, full: bool) -> String {
    let e = &episode.record;
    let mut out = String::new();
    let _ = writeln!(out, "episode {}  {}", episode.id, e.key);
    let short_hash = e.scenario_hash.get(..12).unwrap_or(&e.scenario_hash);
    let _ = writeln!(out, "scenario  {} ({short_hash})", e.scenario_id);
    let _ = writeln!(out, "policy    {}", e.policy);
    let iteration = e.iteration.map_or("-".to_string(), |i| i.to_string());
    let _ = writeln!(
        out,
        "seed {}, iteration {iteration}, sampling {}",
        e.seed, e.sampling
    );
    if let Some(b) = e.branch {
        let _ = writeln!(
            out,
            "branch of episode {} at step {}: {} copied from it",
            b.from,
            b.at + 1,
            match b.at {
                0 => "no step".to_string(),
                1 => "its first step".to_string(),
                n => format!("its first {n} steps"),
            }
        );
    }
    if let Some(why) = &e.stopped {
        let _ = writeln!(out, "stopped: {why}");
    }
    for (i, s) in e.steps.iter().enumerate() {
        match &s.intervention {
            Some(by) => {
                let _ = writeln!(out, "\n── step {} ── intervention by {by}", i + 1);
            }
            None => {
                let _ = writeln!(out, "\n── step {} ──", i + 1);
            }
        }
        if full {
            field(&mut out, "PROMPT", &s.prompt);
            field(&mut out, "RAW", &s.raw_output);
        }
        match &s.reason {
            Some(reason) => field(&mut out, "REASON", reason),
            None if full => field(&mut out, "REASON", "(none parsed)"),
            None => field(
                &mut out,
                "REASON",
                &format!("(none parsed; raw output: {:?})", s.raw_output),
            ),
        }
        let mark = if s.valid { "" } else { "   ✗ not admissible" };
        field(&mut out, "ACTION", &format!("{}{mark}", s.action));
        let mut observation = s.observation.lines();
        let _ = writeln!(out, "{:8}→ {}", "", observation.next().unwrap_or(""));
        for line in observation {
            let _ = writeln!(out, "{:10}{line}", "");
        }
        if s.reward != 0.0 {
            let _ = writeln!(out, "        reward {}", s.reward);
        }
        if let Some(info) = &s.info {
            let _ = writeln!(out, "        info: {info}");
        }
    }
    let verdict = if e.won { "WON" } else { "LOST" };
    let invalid = e.invalid_actions();
    let _ = writeln!(
        out,
        "\n{verdict} in {} steps, reward {}, {invalid} invalid action{}; tokens {} prompt ({} cached) + {} generated; {:.1} s",
        e.steps.len(),
        e.reward,
        if invalid == 1 { "" } else { "s" },
        e.prompt_tokens(),
        e.cached_tokens(),
        e.gen_tokens(),
        e.wall_ms as f64 / 1000.0
    );
    out
}

/// `LABEL   text`, with continuation lines indented under the text.
fn field(out: &mut String, label: &str, text: &str) {
    let mut lines = text.lines();
    let _ = writeln!(out, "{label:8}{}", lines.next().unwrap_or(""));
    for line in lines {
        let _ = writeln!(out, "{:8}{line}", "");
    }
}

#[cfg(test)]
mod tests {
    use leap::store::{EpisodeRecord, StepRecord};

    use super::*;

    #[test]
    fn a_steps_info_is_one_indented_line_under_it() {
        let step = |action: &str, info| StepRecord {
            info,
            ..StepRecord::scripted(
                "r".into(),
                action.into(),
                "obs".into(),
                0.0,
                false,
                Vec::new(),
            )
        };
        let episode = Episode {
            id: 3,
            record: EpisodeRecord {
                key: "rollout/x/s/0".into(),
                scenario_hash: "abc".into(),
                scenario_id: "s".into(),
                policy: "p".into(),
                seed: 0,
                iteration: None,
                sampling: serde_json::json!({}),
                started_at_ms: 0,
                finished_at_ms: 0,
                won: false,
                reward: 0.0,
                wall_ms: 0,
                steps: vec![
                    step("search[red shoes]", None),
                    step("click[buy now]", Some(serde_json::json!({"r_price": true}))),
                ],
                branch: None,
                stopped: None,
            },
        };
        let text = render_trace(&episode, false);
        let infos: Vec<&str> = text.lines().filter(|l| l.contains("info:")).collect();
        assert_eq!(infos, [r#"        info: {"r_price":true}"#], "{text}");
        let after_buy = text.split("click[buy now]").nth(1).unwrap();
        assert!(
            after_buy.contains("info:"),
            "under the step it belongs to: {text}"
        );
    }
}
