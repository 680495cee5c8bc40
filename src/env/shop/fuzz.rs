//! The fuzzy match WebShop's reward counts attributes and options by: `thefuzz`'s
//! `fuzz.token_set_ratio` (thefuzz 0.20 and later, a wrapper over RapidFuzz), to the integer.
//!
//! thefuzz first processes both strings: it drops the characters U+0080 to U+00FF (its
//! `force_ascii`, so "café" becomes "caf"), then RapidFuzz's `default_process` turns every
//! character that is not a letter or digit into a space, lowercases, and trims. The ratio then
//! compares the words the strings share and the words each has alone (see [`token_set_ratio`]),
//! measuring text by RapidFuzz's Indel distance, and Python's `int(round(x))` makes it an integer
//! (halves to even). Letters and digits are Rust's (Unicode Alphabetic or Numeric), which differ
//! from Python's only on combining marks outside Latin-1; shop text is ASCII in practice.

use rapidfuzz::distance::indel;

/// thefuzz's `utils.full_process(s, force_ascii=True)`.
pub fn full_process(s: &str) -> String {
    let mapped: String = s
        .chars()
        .filter(|c| !('\u{80}'..='\u{ff}').contains(c))
        .map(|c| {
            if c.is_alphanumeric() {
                // RapidFuzz lowercases one character to one (its simple case mapping): the
                // first of Rust's full mapping is that character ('İ' gives 'i').
                c.to_lowercase().next().unwrap_or(c)
            } else {
                ' '
            }
        })
        .collect();
    mapped.trim_matches(' ').to_string()
}

/// `fuzz.token_set_ratio(a, b)` as thefuzz returns it: 0 to 100, 100 when the words of one are
/// all among the other's ("grey" and "light grey"), 0 when either has no word.
pub fn token_set_ratio(a: &str, b: &str) -> u32 {
    let (a, b) = (full_process(a), full_process(b));
    let score = token_set_score(&a, &b);
    // Python's round() takes halves to even; the score is in [0, 100].
    score.round_ties_even() as u32
}

/// RapidFuzz's `token_set_ratio` on processed strings, before rounding.
fn token_set_score(a: &str, b: &str) -> f64 {
    let mut tokens_a: Vec<&str> = a.split_whitespace().collect();
    let mut tokens_b: Vec<&str> = b.split_whitespace().collect();
    if tokens_a.is_empty() || tokens_b.is_empty() {
        return 0.0;
    }
    tokens_a.sort_unstable();
    tokens_a.dedup();
    tokens_b.sort_unstable();
    tokens_b.dedup();
    let intersect: Vec<&str> = tokens_a
        .iter()
        .copied()
        .filter(|t| tokens_b.contains(t))
        .collect();
    let diff_ab: Vec<&str> = tokens_a
        .iter()
        .copied()
        .filter(|t| !intersect.contains(t))
        .collect();
    let diff_ba: Vec<&str> = tokens_b
        .iter()
        .copied()
        .filter(|t| !intersect.contains(t))
        .collect();
    if !intersect.is_empty() && (diff_ab.is_empty() || diff_ba.is_empty()) {
        return 100.0;
    }
    // Lengths in characters, as Python counts them; the differences are joined sorted.
    let joined = |tokens: &[&str]| tokens.join(" ");
    let (ab, ba) = (joined(&diff_ab), joined(&diff_ba));
    let chars = |s: &str| s.chars().count();
    let (ab_len, ba_len, sect_len) = (chars(&ab), chars(&ba), chars(&joined(&intersect)));
    let gap = usize::from(sect_len != 0);
    let sect_ab_len = sect_len + gap + ab_len;
    let sect_ba_len = sect_len + gap + ba_len;
    let dist = indel::distance(ab.chars(), ba.chars());
    let result = norm_distance(dist, sect_ab_len + sect_ba_len);
    if sect_len == 0 {
        return result;
    }
    // "sect ab" against "sect" differs only by the words of ab and the space before them.
    let sect_ab = norm_distance(gap + ab_len, sect_len + sect_ab_len);
    let sect_ba = norm_distance(gap + ba_len, sect_len + sect_ba_len);
    result.max(sect_ab).max(sect_ba)
}

/// RapidFuzz's `norm_distance<100>`: a distance as a similarity out of 100.
fn norm_distance(dist: usize, lensum: usize) -> f64 {
    if lensum == 0 {
        100.0
    } else {
        100.0 - 100.0 * dist as f64 / lensum as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processing_keeps_lowercase_letters_and_digits_and_drops_latin_1() {
        // Expected values printed by thefuzz 0.22.1 (RapidFuzz 3.14.6):
        // `utils.full_process(s, force_ascii=True)`.
        assert_eq!(full_process("a_b"), "a b");
        assert_eq!(full_process("Straße ÉCOLE"), "strae cole");
        assert_eq!(full_process("İstanbul"), "istanbul");
        assert_eq!(full_process("x\tY\u{a0}z"), "x yz");
        assert_eq!(full_process("½ inch"), "inch");
        assert_eq!(full_process("naïve café"), "nave caf");
        assert_eq!(full_process("  38 | 40 | 41 mm "), "38   40   41 mm");
    }

    #[test]
    fn the_ratio_is_thefuzz_s() {
        // Expected values printed by thefuzz 0.22.1 (RapidFuzz 3.14.6):
        // `fuzz.token_set_ratio(a, b)`; RapidFuzz's unrounded score in the comment where it
        // shows the rounding (halves go to the even integer: 62.5 is 62, 87.5 is 88). The same
        // check over 50,000 pairs of WebShop attributes and options (random, sharing a word, one
        // character changed) found no difference.
        let cases = [
            ("sofa bed", "sgfa bed", 88),           // 87.5
            ("ipad pro", "ipadcpro", 88),           // 87.5
            ("power supply", "power cable", 62),    // 62.5
            ("easy carry", "tv box", 12),           // 12.5
            ("blu ray", "blu rjy", 86),             // 85.714
            ("sd card", "sh card", 86),             // 85.714
            ("foam mattress", "f-am mattress", 85), // 84.615
            ("natural hair", "natural-hair", 100),
            ("synthetic sole", "bluetooth speaker", 32), // 32.258
            ("bathing suits", "eco friendly", 16),
            (
                "fuzzy was a bear but not a dog",
                "fuzzy was a bear but not a cat",
                92,
            ),
            ("", "", 0),
            ("!!!", "a", 0),
            ("grey", "light grey", 100),
            ("x-large", "large", 100),
            ("z2-pink", "pink", 100),
            ("rl56 | 60 silver mist", "silver", 100),
            ("38 | 40 | 41 mm", "teal", 0),
            ("stainless steel", "stainlesss steel", 97),
            ("Wood Frame", "wood-frame", 100),
        ];
        for (a, b, expected) in cases {
            assert_eq!(token_set_ratio(a, b), expected, "{a:?} / {b:?}");
            assert_eq!(token_set_ratio(b, a), expected, "{b:?} / {a:?}");
        }
    }
}
