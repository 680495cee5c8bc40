//! Text helpers every kind's prompts share.

/// `text`'s first `lines` lines and at most `chars` characters, with a note of what was cut.
pub fn clip(text: &str, lines: usize, chars: usize) -> String {
    let text = text.trim_end_matches('\n');
    let total = text.lines().count();
    let mut kept: String = text.lines().take(lines).collect::<Vec<_>>().join("\n");
    let mut cut = total > lines;
    if let Some((at, _)) = kept.char_indices().nth(chars) {
        kept.truncate(at);
        cut = true;
    }
    if cut {
        let shown = kept.lines().count();
        kept.push_str(&format!("\n... ({} lines in all)", total.max(shown)));
    }
    kept
}

/// Each of `texts` clipped as a prompt shows a history: the last to `latest` (lines,
/// characters), the others to `earlier`; an empty one shown as `empty`.
pub fn clip_each(
    texts: &[String],
    earlier: (usize, usize),
    latest: (usize, usize),
    empty: &str,
) -> Vec<String> {
    let n = texts.len();
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let (lines, chars) = if i + 1 == n { latest } else { earlier };
            if text.trim().is_empty() {
                empty.to_string()
            } else {
                clip(text, lines, chars)
            }
        })
        .collect()
}

/// `text`'s first `chars` characters, with `...` when it was longer: a value quoted in a
/// message.
pub fn shorten(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}
