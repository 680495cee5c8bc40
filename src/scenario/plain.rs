//! Scenarios are plain YAML data. Two YAML features are refused where they are written, with a
//! line and column of their own: merge keys (`<<: *base`) and tags (`!!python/object:...`,
//! `!custom`). Neither survives the parser with a usable position, so a problem about them would
//! otherwise point at `1:1`.

/// Each merge key and tag in `text`: line, column (1-based) and what is wrong.
pub fn unsupported(text: &str) -> Vec<(usize, usize, String)> {
    if !text.contains("<<") && !text.contains('!') {
        return Vec::new();
    }
    let mut found = Vec::new();
    // Inside a block scalar (`|` or `>`), lines indented deeper than its key are text.
    let mut block_indent: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        if let Some(min) = block_indent {
            if line.trim().is_empty() || indent > min {
                continue;
            }
            block_indent = None;
        }
        let code = without_comment(line);
        scan_line(code, i + 1, &mut found);
        if opens_block_scalar(code) {
            block_indent = Some(indent);
        }
    }
    found
}

/// `line` up to a comment (`#` at the start or after a space, outside quotes).
fn without_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (at, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev.is_whitespace() => return &line[..at],
            _ => {}
        }
        prev = c;
    }
    line
}

fn opens_block_scalar(code: &str) -> bool {
    let last = code.trim_end().rsplit([' ', ':', '-']).next().unwrap_or("");
    last.starts_with(['|', '>'])
        && last[1..]
            .chars()
            .all(|c| matches!(c, '-' | '+') || c.is_ascii_digit())
}

/// Finds merge keys and tags where a key or a value may begin: at the start of the line, after
/// `- `, `: `, `[`, `{` or `,`, outside quotes.
fn scan_line(code: &str, line: usize, found: &mut Vec<(usize, usize, String)>) {
    let mut quote = None;
    let mut at_start = true;
    for (at, c) in code.char_indices() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        let col = code[..at].chars().count() + 1;
        match c {
            '"' | '\'' if at_start => quote = Some(c),
            '<' if at_start && code[at..].starts_with("<<") && is_key(&code[at + 2..]) => {
                found.push((
                    line,
                    col,
                    "YAML merge keys (`<<`) are not supported in scenarios; write the fields out"
                        .into(),
                ));
            }
            '!' if at_start => {
                let tag: String = code[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ']' | '}'))
                    .collect();
                found.push((
                    line,
                    col,
                    format!("YAML tag `{tag}` is not supported in scenarios; they are plain data"),
                ));
            }
            _ => {}
        }
        at_start = match c {
            ' ' | '\t' => at_start || prev_opens(code, at),
            '[' | '{' | ',' => true,
            _ => false,
        };
    }
}

/// Whether the space at `at` follows `-` or `:` (a list item or a value begins after it).
fn prev_opens(code: &str, at: usize) -> bool {
    matches!(code[..at].chars().next_back(), Some('-' | ':'))
}

/// Whether `rest` (after `<<`) makes it a key: optional spaces, then `:`.
fn is_key(rest: &str) -> bool {
    rest.trim_start().starts_with(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keys_and_tags_are_found_where_written() {
        let text = "base: &b\n  x: 1\nworld:\n  <<: *b\n  y: !!python/object:os.system [ls]\n  - !custom 3\n";
        let found = unsupported(text);
        let at: Vec<(usize, usize)> = found.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(at, [(4, 3), (5, 6), (6, 5)], "{found:?}");
        assert!(
            found[1].2.contains("`!!python/object:os.system`"),
            "{found:?}"
        );
    }

    #[test]
    fn exclamation_marks_in_text_comments_and_block_scalars_are_text() {
        let text = "task: \"wow!\"\nsay: hello! there # !!not a tag\ngold: |\n  ! grep -q x f\n  <<: not a key\nnext: 'it''s ! fine'\n";
        assert_eq!(unsupported(text), []);
    }
}
