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
