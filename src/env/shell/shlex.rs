//! Python's `shlex.split` (POSIX mode), exactly: InterCode's container runtime splits
//! `/bin/bash -c "<action>"` with it before bash sees it, so its rules decide which command runs.
//!
//! This is `shlex.shlex(s, posix=True)` with `whitespace_split = True` and no comment characters,
//! read one code point at a time as Python reads its `StringIO`. What differs from a shell: only
//! space, tab, CR and LF separate words; inside double quotes a backslash escapes only `"` and
//! `\` (before anything else it stays); a backslash-newline is a newline, not a continuation;
//! `$`, `;`, `|` and friends are ordinary characters.

/// Why Python's `shlex.split` raises (`ValueError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShlexError {
    #[error("No closing quotation")]
    NoClosingQuotation,
    #[error("No escaped character")]
    NoEscapedCharacter,
}

/// Where the lexer is: `shlex.state`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between words (`' '`).
    Between,
    /// In a word (`'a'`).
    Word,
    /// Inside a quote (`'` or `"`).
    Quoted(char),
    /// Just after a backslash; the state to go back to.
    Escaped(Back),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Back {
    Word,
    DoubleQuoted,
}

fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `shlex.split(text)` (posix, no comments). An empty quoted word (`''`, `""`) is a word.
pub fn split(text: &str) -> Result<Vec<String>, ShlexError> {
    let mut words = Vec::new();
    // Python emits a word whenever it leaves the in-word state: every way into that state either
    // adds a character or closes a quote, so an empty word (`''`) is always a quoted one.
    let mut word = String::new();
    let mut state = State::Between;
    for c in text.chars() {
        state = match state {
            State::Between => match c {
                _ if is_separator(c) => State::Between,
                '\\' => State::Escaped(Back::Word),
                '\'' | '"' => State::Quoted(c),
                _ => {
                    word.push(c);
                    State::Word
                }
            },
            State::Word => match c {
                _ if is_separator(c) => {
                    words.push(std::mem::take(&mut word));
                    State::Between
                }
                '\'' | '"' => State::Quoted(c),
                '\\' => State::Escaped(Back::Word),
                _ => {
                    word.push(c);
                    State::Word
                }
            },
            State::Quoted(q) => {
                if c == q {
                    State::Word
                } else if q == '"' && c == '\\' {
                    State::Escaped(Back::DoubleQuoted)
                } else {
                    word.push(c);
                    State::Quoted(q)
                }
            }
            State::Escaped(back) => {
                if back == Back::DoubleQuoted && c != '\\' && c != '"' {
                    word.push('\\');
                }
                word.push(c);
                match back {
                    Back::Word => State::Word,
                    Back::DoubleQuoted => State::Quoted('"'),
                }
            }
        };
    }
    match state {
        State::Quoted(_) => Err(ShlexError::NoClosingQuotation),
        State::Escaped(_) => Err(ShlexError::NoEscapedCharacter),
        State::Word => {
            words.push(word);
            Ok(words)
        }
        State::Between => Ok(words),
    }
}

/// Python's `str.isspace`: Unicode's `White_Space` and the four separators `\x1c`..`\x1f`, which
/// Python counts (bidirectional class B or S) and Rust's `char::is_whitespace` does not. InterCode
/// strips actions and splits `git status` with it.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python's `text.strip()`.
pub fn python_strip(text: &str) -> &str {
    text.trim_matches(is_python_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<String> {
        split(text).unwrap()
    }

    #[test]
    fn inner_double_quotes_end_the_outer_ones() {
        assert_eq!(
            ok(r#"/bin/bash -c "echo "a b"""#),
            ["/bin/bash", "-c", "echo a", "b"]
        );
    }

    #[test]
    fn empty_quotes_are_words_and_escapes_follow_posix_quoting() {
        assert_eq!(ok(r#"'' "" a''"#), ["", "", "a"]);
        assert_eq!(ok(r#""a\$b\"c\\d""#), [r#"a\$b"c\d"#]);
        assert_eq!(ok(r"'a\b' \x"), [r"a\b", "x"]);
    }

    #[test]
    fn errors_are_pythons() {
        assert_eq!(split("echo 'a"), Err(ShlexError::NoClosingQuotation));
        assert_eq!(split(r#"echo "a\""#), Err(ShlexError::NoClosingQuotation));
        assert_eq!(split(r#"echo "a\"#), Err(ShlexError::NoEscapedCharacter));
        assert_eq!(split("echo a\\"), Err(ShlexError::NoEscapedCharacter));
    }

    #[test]
    fn python_strips_the_information_separators_too() {
        assert_eq!(python_strip("\x1c\u{3000} a b\t\x1f"), "a b");
        assert_eq!(python_strip("\u{200b}a"), "\u{200b}a");
    }
}
