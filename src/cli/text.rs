//! How the CLI prints labels and evaluations as text.

use std::fmt::Write;

use leap::eval::{EvalReport, StepAgreement};
use leap::store::{Label, LabelCounts, LabelEvent};
use leap::train::TrainSummary;

/// A label on one line.
pub fn label_line(l: &Label) -> String {
    format!(
        "#{:<6} {:<8} {} ep {} step {:>2} {} {}{}",
        l.id,
        l.status.as_str(),
        l.scenario_id,
        l.episode_id,
        l.idx,
        if l.changed { "≠" } else { "=" },
        l.target().1,
        if l.leaks.is_empty() {
            String::new()
        } else {
            format!("  [{} leak]", l.leaks.len())
        }
    )
}

pub fn counts_line(c: &LabelCounts) -> String {
    format!(
        "{} labels: {} pending, {} accepted, {} edited, {} rejected; {} changed, {} with leak flags",
        c.total, c.pending, c.accepted, c.edited, c.rejected, c.changed, c.leaking
    )
}

/// A label in full with its history of decisions, a line each.
pub fn label_details(label: &Label, history: &[LabelEvent]) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(label_line(label));
    line(format!(
        "  student: {} -> {}",
        label.student_reason.as_deref().unwrap_or("(no reason)"),
        label.student_action
    ));
    line(format!(
        "  teacher: {} -> {}",
        label.teacher_reason, label.teacher_action
    ));
    if let (Some(r), Some(a)) = (&label.edited_reason, &label.edited_action) {
        line(format!("  edited:  {r} -> {a}"));
    }
    for leak in &label.leaks {
        line(format!("  leak: {} (\"{}\")", leak.fact, leak.text));
    }
    for e in history {
        line(format!(
            "  {} {} by {}{}",
            e.at_ms,
            e.status,
            e.decided_by.as_deref().unwrap_or("?"),
            if e.undone { " (undone)" } else { "" }
        ));
    }
    out
}

/// Teacher-forced agreements as an aligned table.
pub fn stepwise_table(reports: &[StepAgreement]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<44} {:>6} {:>7} {:>15} {:>7} {:>8} {:>14}",
        "policy", "steps", "good", "95% Wilson", "same", "invalid", "good^steps"
    );
    for r in reports {
        let n = r.steps.max(1) as f64;
        let _ = writeln!(
            out,
            "{:<44} {:>6} {:>6.1}% {:>6.1}–{:>5.1}% {:>6.1}% {:>7.1}% {:>13.1}%",
            r.policy,
            r.steps,
            r.good_rate * 100.0,
            r.good_low * 100.0,
            r.good_high * 100.0,
            r.same as f64 / n * 100.0,
            r.invalid as f64 / n * 100.0,
            r.good_rate.powf(r.mean_demo_steps) * 100.0,
        );
        let verbs: Vec<String> = r
            .by_verb
            .iter()
            .map(|(v, a)| format!("{v} {}/{}", a.good, a.steps))
            .collect();
        let _ = writeln!(out, "{:<44} {}", "", verbs.join(", "));
    }
    out
}

/// Evaluations as an aligned table.
pub fn eval_table(rows: &[Option<&EvalReport>]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:>5} {:>9} {:>15} {:>7} {:>7} {:>8}  score [95% normal]",
        "evaluation", "n", "success", "95% Wilson", "reward", "steps", "invalid"
    );
    for r in rows.iter().flatten() {
        let _ = writeln!(
            out,
            "{:<28} {:>5} {:>8.1}% {:>6.1}–{:>5.1}% {:>7.3} {:>7.1} {:>7.1}%  {}",
            r.label,
            r.episodes,
            r.success_rate * 100.0,
            r.success_low * 100.0,
            r.success_high * 100.0,
            r.mean_reward,
            r.mean_steps,
            r.invalid_action_rate * 100.0,
            r.score.map_or("–".into(), |s| s.to_string())
        );
        let tasks: Vec<String> = r
            .per_task
            .iter()
            .map(|(k, t)| match t.score {
                Some(s) => format!("{k} {}/{} score {:.1}", t.wins, t.episodes, s.mean),
                None => format!("{k} {}/{}", t.wins, t.episodes),
            })
            .collect();
        let _ = writeln!(out, "{:<28} {}", "", tasks.join(", "));
    }
    out
}

/// `leap train --json`'s summary.
pub fn train_json(summary: &TrainSummary) -> serde_json::Value {
    serde_json::json!({
        "adapter": summary.adapter,
        "rows": summary.rows,
        "tokens": summary.tokens,
        "epochs": summary.epochs,
        "train_loss_first": summary.train_loss_first,
        "train_loss_last": summary.train_loss_last,
        "eval_loss": summary.eval_loss,
        "tokens_per_s": summary.tokens_per_s,
        "peak_rss_mb": summary.peak_rss_mb,
        "steps": summary.steps,
        "n_ctx": summary.n_ctx,
        "base": summary.base.kind,
        "matmul": summary.matmul,
        "objective": summary.objective,
        "preferred": summary.preferred,
    })
}

/// `leap train`'s summary in words, with the time per ggml operation when profiled.
pub fn train_text(summary: &TrainSummary) -> String {
    let mut out = String::new();
    let (what, objective) = match summary.objective.preference() {
        None => ("rows", String::new()),
        Some(p) => (
            "pairs",
            format!(
                "dpo ({}, beta {}{}{}): ",
                p.loss.as_str(),
                p.beta,
                if p.sft_weight > 0.0 {
                    format!(", SFT weight {}", p.sft_weight)
                } else {
                    String::new()
                },
                summary.preferred.map_or_else(String::new, |s| format!(
                    ", {:.0}% of held-out pairs preferred",
                    s * 100.0
                )),
            ),
        ),
    };
    let _ = writeln!(
        out,
        "{}: {objective}{} {what}, {} tokens, {} epochs ({} steps of {} tokens, {:.0}% of them row tokens{}); loss {:.4} -> {:.4}{}; {:.0} tokens/s ({} products); peak memory {}",
        summary.adapter.display(),
        summary.rows,
        summary.tokens,
        summary.epochs,
        summary.steps,
        summary.n_ctx,
        summary.packing * 100.0,
        match summary.pack {
            leap::train::Pack::Flat => "",
            leap::train::Pack::Tree => ", the rows' shared starts stored once",
        },
        summary.train_loss_first,
        summary.train_loss_last,
        summary
            .eval_loss
            .map_or_else(String::new, |l| format!(", held-out {l:.4}")),
        summary.tokens_per_s,
        summary.matmul.as_str(),
        summary
            .peak_rss_mb
            .map_or_else(|| "unknown".to_owned(), |m| format!("{m:.0} MB")),
    );
    if !summary.op_times.is_empty() {
        let total: f64 = summary.op_times.iter().map(|o| o.ms).sum();
        let _ = writeln!(out, "time per ggml operation over {} steps:", summary.steps);
        for o in summary.op_times.iter().filter(|o| o.ms / total >= 0.005) {
            let _ = writeln!(
                out,
                "  {:<24} {:>7} calls {:>10.0} ms {:>5.1}%",
                o.op,
                o.calls,
                o.ms,
                100.0 * o.ms / total
            );
        }
    }
    if let Some(peak) = &summary.peak_memory {
        let _ = writeln!(
            out,
            "graph memory at the first step's peak (at {}): {:.0} MB alive of a {:.0} MB buffer:",
            peak.at, peak.peak_mb, peak.buffer_mb
        );
        for p in peak.parts.iter().filter(|p| p.mb / peak.peak_mb >= 0.01) {
            let _ = writeln!(
                out,
                "  {:<32} {:>4} tensors {:>8.1} MB {:>5.1}%",
                p.kind,
                p.tensors,
                p.mb,
                100.0 * p.mb / peak.peak_mb
            );
        }
    }
    out
}
