//! Text from a model or an environment, made safe to show on a terminal.
//!
//! Model output and environment text are stored exactly as they came, but a reason holding an
//! escape sequence must not move the cursor, recolour the screen or retitle the window of
//! whoever reads it. Every front-end passes such text through [`escape_controls`] on its way to
//! the terminal: the CLI for everything it prints, the workbench for every screen.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character except newline and tab written out as an escape
/// (`\x1b`, `\r`, `\u009b`), so that it shows as text instead of acting on the terminal.
/// Text without control characters comes back unchanged, without a copy.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_unsafe(c) {
            out.push(c);
            continue;
        }
        match c {
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            // DEL and C1 pass through JSON unescaped; written as JSON writes escapes, a JSON
            // printout stays valid and decodes to the same text.
            c => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// Control characters (C0, DEL, C1) that a terminal may act on; newline and tab only lay text out.
fn is_unsafe(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_act_as_text() {
        assert_eq!(
            escape_controls("red \x1b[31mTEXT\x1b[0m\x07 done\r"),
            "red \\x1b[31mTEXT\\x1b[0m\\x07 done\\r"
        );
        assert_eq!(
            escape_controls("csi \u{9b}2J del \x7f"),
            "csi \\u009b2J del \\u007f"
        );
        assert_eq!(escape_controls("a\0b"), "a\\0b");
    }

    #[test]
    fn plain_text_is_unchanged_and_not_copied() {
        let text = "go to shelf 1\n\tthen look → ok ⏎";
        assert!(matches!(escape_controls(text), Cow::Borrowed(t) if t == text));
    }
}
