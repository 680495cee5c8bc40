//! Lucene's English analysis, chained as Pyserini's `DefaultEnglishAnalyzer` chains it for
//! WebShop's index and its queries: the standard tokenizer (Unicode word boundaries, UAX #29),
//! possessive stripping, lowercasing, Lucene's English stop words, Porter stemming.

use unicode_segmentation::UnicodeSegmentation;

use super::porter;

/// Lucene's `EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`, sorted.
pub const STOP_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// The terms of `text` in order, as the index stores them ("Men's Running Shoes" → `men`,
/// `run`, `shoe`).
pub fn analyze(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    Analyzer::default().each(text, |t| terms.push(t.to_string()));
    terms
}

/// The analysis with its buffers, kept across texts while an index is built.
#[derive(Default)]
pub(super) struct Analyzer {
    chars: Vec<char>,
    term: String,
}

impl Analyzer {
    /// Calls `f` with each term of `text`, in order.
    pub(super) fn each(&mut self, text: &str, mut f: impl FnMut(&str)) {
        for word in text.unicode_words() {
            self.chars.clear();
            self.chars
                .extend(without_possessive(word).chars().map(lowercase));
            self.term.clear();
            self.term.extend(&self.chars);
            if STOP_WORDS.binary_search(&self.term.as_str()).is_ok() {
                continue;
            }
            porter::stem(&mut self.chars);
            self.term.clear();
            self.term.extend(&self.chars);
            f(&self.term);
        }
    }
}

/// `EnglishPossessiveFilter`: a trailing `'s` (any of three apostrophes, either case) goes.
fn without_possessive(word: &str) -> &str {
    let mut end = word.chars().rev();
    match (end.next(), end.next()) {
        (Some('s' | 'S'), Some(apostrophe @ ('\'' | '\u{2019}' | '\u{FF07}'))) => {
            &word[..word.len() - 1 - apostrophe.len_utf8()]
        }
        _ => word,
    }
}

/// `LowerCaseFilter`: Java's one-to-one lower case of each character.
fn lowercase(c: char) -> char {
    if c.is_ascii() {
        c.to_ascii_lowercase()
    } else {
        c.to_lowercase().next().unwrap_or(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_words_are_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn possessives_lose_their_s_with_any_apostrophe() {
        assert_eq!(without_possessive("women's"), "women");
        assert_eq!(without_possessive("WOMEN'S"), "WOMEN");
        assert_eq!(without_possessive("women\u{2019}s"), "women");
        assert_eq!(without_possessive("women\u{FF07}s"), "women");
        assert_eq!(without_possessive("womens"), "womens");
        assert_eq!(without_possessive("don't"), "don't");
    }
}
