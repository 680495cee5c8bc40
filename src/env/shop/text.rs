//! How a page's visible text nodes become the observation: WebShop's `convert_html_to_text`
//! (`web_agent_site/envs/web_agent_text_env.py`), and the JSON its pages and URLs print.

use super::TextMode;

/// One visible text node of a page, told apart the way `convert_html_to_text` tells them: by
/// the tag around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Plain text, printed as it is (a leading space in a template stays).
    Text(String),
    /// A `<button>`: `[button] X [button_]`.
    Button(&'static str),
    /// An option value's `<label>`: indented by two spaces, `[clicked button]` when the page's
    /// URL holds it in quotes (then a `You have clicked X.` line heads the page).
    OptionValue {
        /// The option's name (the radio button's `name`), which choosing it sets.
        name: String,
        value: String,
        clicked: bool,
    },
    /// A result's ASIN link: a blank line first, `[clicked button]` once the product was opened.
    Product {
        /// The product's position in the catalogue.
        position: usize,
        asin: String,
        visited: bool,
    },
}

impl Node {
    fn text(&self) -> &str {
        match self {
            Node::Text(t) => t,
            Node::Button(t) => t,
            Node::OptionValue { value, .. } => value,
            Node::Product { asin, .. } => asin,
        }
    }
}

/// The observation of a page made of `nodes`.
///
/// The templates' indentation never reaches the samples WebShop recorded, so only content
/// nodes are modelled; like BeautifulSoup, an empty string makes no node, and like WebShop a
/// node that is exactly `"\n"` is skipped.
pub fn render(nodes: &[Node], mode: TextMode) -> String {
    let visible = nodes
        .iter()
        .filter(|n| !n.text().is_empty() && n.text() != "\n");
    match mode {
        TextMode::Simple => visible
            .map(|n| n.text().trim())
            .collect::<Vec<_>>()
            .join(" [SEP] "),
        TextMode::Rich => {
            let mut clicked_lines = Vec::new();
            let mut body = String::new();
            for node in visible {
                match node {
                    Node::Text(t) => body.push_str(t),
                    Node::Button(t) => {
                        body.push_str(&format!("[button] {t} [button_]"));
                    }
                    Node::OptionValue {
                        value,
                        clicked: true,
                        ..
                    } => {
                        body.push_str(&format!("  [clicked button] {value} [clicked button_]"));
                        clicked_lines.push(format!("You have clicked {value}.\n"));
                    }
                    Node::OptionValue { value, .. } => {
                        body.push_str(&format!("  [button] {value} [button_]"));
                    }
                    Node::Product {
                        asin,
                        visited: true,
                        ..
                    } => body.push_str(&format!("\n[clicked button] {asin} [clicked button_]")),
                    Node::Product { asin, .. } => {
                        body.push_str(&format!("\n[button] {asin} [button_]"));
                    }
                }
                body.push('\n');
            }
            // Each clicked option's line is put in front of everything so far: the last one
            // on the page comes first.
            clicked_lines.reverse();
            clicked_lines.concat() + &body
        }
    }
}

/// `s` as Python's `json.dumps` writes a string (`ensure_ascii`: everything outside printable
/// ASCII escaped, lower-case hex, surrogate pairs above U+FFFF).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// A dict of strings as `json.dumps` writes it: `{"color": "grey", "size": "large"}`.
pub fn json_object<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let body: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{}: {}", json_string(k), json_string(v)))
        .collect();
    format!("{{{}}}", body.join(", "))
}

/// A dict of strings as Flask's `tojson` filter prints it in a page: keys sorted, and `<`, `>`,
/// `&` and `'` escaped so that the text is safe inside HTML.
pub fn tojson(options: &[(String, String)]) -> String {
    let mut sorted: Vec<(&str, &str)> = options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    json_object(sorted)
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\'', "\\u0027")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_python_json_dumps_escapes_them() {
        assert_eq!(json_string("grey"), "\"grey\"");
        assert_eq!(json_string("5\" x 7\""), "\"5\\\" x 7\\\"\"");
        assert_eq!(json_string("café"), "\"caf\\u00e9\"");
        assert_eq!(json_string("🙂"), "\"\\ud83d\\ude42\"");
        assert_eq!(
            json_object([("color", "grey"), ("size", "l")]),
            r#"{"color": "grey", "size": "l"}"#
        );
    }

    #[test]
    fn tojson_sorts_keys_and_escapes_html() {
        let options = vec![
            ("size".to_string(), "<l>".to_string()),
            ("color".to_string(), "black & white".to_string()),
        ];
        assert_eq!(
            tojson(&options),
            r#"{"color": "black \u0026 white", "size": "\u003cl\u003e"}"#
        );
        assert_eq!(tojson(&[]), "{}");
    }

    #[test]
    fn rich_text_puts_the_last_clicked_option_first() {
        let option = |value: &str, clicked| Node::OptionValue {
            name: "n".into(),
            value: value.into(),
            clicked,
        };
        let nodes = vec![
            Node::Text("color".into()),
            option("black", true),
            option("red", false),
            Node::Text("size".into()),
            option("8", true),
        ];
        assert_eq!(
            render(&nodes, TextMode::Rich),
            "You have clicked 8.\nYou have clicked black.\ncolor\n  [clicked button] black \
             [clicked button_]\n  [button] red [button_]\nsize\n  [clicked button] 8 [clicked \
             button_]\n"
        );
        assert_eq!(
            render(&nodes, TextMode::Simple),
            "color [SEP] black [SEP] red [SEP] size [SEP] 8"
        );
    }
}
