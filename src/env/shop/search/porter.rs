//! The original Porter stemmer (Porter, 1980) as Lucene's `PorterStemFilter` runs it: Martin
//! Porter's reference implementation, with its two departures from the paper (`-bli` becomes
//! `-ble`, and `-logi` becomes `-log`), words of one or two letters left alone, and any letter
//! outside a, e, i, o, u, y counted as a consonant. Snowball's English stemmer (Porter2) is a
//! different algorithm and gives different stems.

/// Stems `word` (lowercase) in place.
pub fn stem(word: &mut Vec<char>) {
    if word.len() <= 2 {
        return;
    }
    let mut s = Stemmer {
        b: std::mem::take(word),
        k: 0,
        j: 0,
    };
    s.k = s.b.len() as isize - 1;
    s.step1ab();
    s.step1c();
    s.step2();
    s.step3();
    s.step4();
    s.step5();
    s.b.truncate((s.k + 1) as usize);
    *word = s.b;
}

/// The stemmer's state, named as in Porter's reference code: the word is `b[0..=k]`, and `j`
/// marks where the suffix just matched by [`Stemmer::ends`] starts (minus one).
struct Stemmer {
    b: Vec<char>,
    k: isize,
    j: isize,
}

impl Stemmer {
    fn at(&self, i: isize) -> char {
        self.b[i as usize]
    }

    /// Whether `b[i]` is a consonant: not a vowel, and a `y` only after a vowel or at the start.
    fn cons(&self, i: isize) -> bool {
        match self.at(i) {
            'a' | 'e' | 'i' | 'o' | 'u' => false,
            'y' => i == 0 || !self.cons(i - 1),
            _ => true,
        }
    }

    /// The measure of `b[0..=j]`: how many vowel-consonant sequences it has ([C](VC)^m[V]),
    /// that is, how often a vowel is followed by a consonant.
    fn m(&self) -> usize {
        let mut n = 0;
        let mut after_vowel = false;
        for i in 0..=self.j {
            let vowel = !self.cons(i);
            n += (after_vowel && !vowel) as usize;
            after_vowel = vowel;
        }
        n
    }

    fn vowel_in_stem(&self) -> bool {
        (0..=self.j).any(|i| !self.cons(i))
    }

    /// `b[j-1..=j]` is a double consonant.
    fn double_c(&self, j: isize) -> bool {
        j >= 1 && self.at(j) == self.at(j - 1) && self.cons(j)
    }

    /// `b[i-2..=i]` is consonant-vowel-consonant and the last is not w, x or y ("hop", not
    /// "snow").
    fn cvc(&self, i: isize) -> bool {
        if i < 2 || !self.cons(i) || self.cons(i - 1) || !self.cons(i - 2) {
            return false;
        }
        !matches!(self.at(i), 'w' | 'x' | 'y')
    }

    /// Whether `b[0..=k]` ends with `s`; if so, `j` is set before the suffix.
    fn ends(&mut self, s: &str) -> bool {
        let len = s.len() as isize;
        let start = self.k - len + 1;
        if start < 0 {
            return false;
        }
        if !s
            .chars()
            .zip(&self.b[start as usize..])
            .all(|(a, &b)| a == b)
        {
            return false;
        }
        self.j = self.k - len;
        true
    }

    /// Replaces `b[j+1..=k]` with `s`.
    fn set_to(&mut self, s: &str) {
        let at = (self.j + 1) as usize;
        self.b.truncate(at);
        self.b.extend(s.chars());
        self.k = self.j + s.len() as isize;
    }

    /// [`Stemmer::set_to`] when the stem's measure is positive.
    fn r(&mut self, s: &str) {
        if self.m() > 0 {
            self.set_to(s);
        }
    }

    /// Plurals and -ed or -ing: caresses → caress, ponies → poni, meetings → meet,
    /// agreed → agree, hopping → hop, filing → file.
    fn step1ab(&mut self) {
        if self.at(self.k) == 's' {
            if self.ends("sses") {
                self.k -= 2;
            } else if self.ends("ies") {
                self.set_to("i");
            } else if self.at(self.k - 1) != 's' {
                self.k -= 1;
            }
        }
        if self.ends("eed") {
            if self.m() > 0 {
                self.k -= 1;
            }
        } else if (self.ends("ed") || self.ends("ing")) && self.vowel_in_stem() {
            self.k = self.j;
            if self.ends("at") {
                self.set_to("ate");
            } else if self.ends("bl") {
                self.set_to("ble");
            } else if self.ends("iz") {
                self.set_to("ize");
            } else if self.double_c(self.k) {
                if !matches!(self.at(self.k), 'l' | 's' | 'z') {
                    self.k -= 1;
                }
            } else if self.m() == 1 && self.cvc(self.k) {
                // `j` is still `k` here: no suffix above matched.
                self.set_to("e");
            }
        }
    }

    /// A final y becomes i when the stem has a vowel: happy → happi.
    fn step1c(&mut self) {
        if self.ends("y") && self.vowel_in_stem() {
            let k = self.k as usize;
            self.b[k] = 'i';
        }
    }

    /// Double suffixes to single ones: -ization → -ize, -ational → -ate, ...
    fn step2(&mut self) {
        if self.k == 0 {
            return;
        }
        const RULES: &[(char, &[(&str, &str)])] = &[
            ('a', &[("ational", "ate"), ("tional", "tion")]),
            ('c', &[("enci", "ence"), ("anci", "ance")]),
            ('e', &[("izer", "ize")]),
            (
                'l',
                &[
                    ("bli", "ble"),
                    ("alli", "al"),
                    ("entli", "ent"),
                    ("eli", "e"),
                    ("ousli", "ous"),
                ],
            ),
            (
                'o',
                &[("ization", "ize"), ("ation", "ate"), ("ator", "ate")],
            ),
            (
                's',
                &[
                    ("alism", "al"),
                    ("iveness", "ive"),
                    ("fulness", "ful"),
                    ("ousness", "ous"),
                ],
            ),
            ('t', &[("aliti", "al"), ("iviti", "ive"), ("biliti", "ble")]),
            ('g', &[("logi", "log")]),
        ];
        self.replace_first(self.at(self.k - 1), RULES);
    }

    /// -ic-, -full, -ness and the like: -icate → -ic, -ative → , -alize → -al, ...
    fn step3(&mut self) {
        const RULES: &[(char, &[(&str, &str)])] = &[
            ('e', &[("icate", "ic"), ("ative", ""), ("alize", "al")]),
            ('i', &[("iciti", "ic")]),
            ('l', &[("ical", "ic"), ("ful", "")]),
            ('s', &[("ness", "")]),
        ];
        self.replace_first(self.at(self.k), RULES);
    }

    /// The first rule of the group for `key` whose suffix matches replaces it (if the measure
    /// allows); later rules are not tried.
    fn replace_first(&mut self, key: char, rules: &[(char, &[(&str, &str)])]) {
        let Some((_, group)) = rules.iter().find(|(c, _)| *c == key) else {
            return;
        };
        for (suffix, with) in group.iter() {
            if self.ends(suffix) {
                self.r(with);
                return;
            }
        }
    }

    /// Drops -ant, -ence, -ment, ... when the measure of what is left is above 1.
    fn step4(&mut self) {
        if self.k == 0 {
            return;
        }
        let matched = match self.at(self.k - 1) {
            'a' => self.ends("al"),
            'c' => self.ends("ance") || self.ends("ence"),
            'e' => self.ends("er"),
            'i' => self.ends("ic"),
            'l' => self.ends("able") || self.ends("ible"),
            'n' => self.ends("ant") || self.ends("ement") || self.ends("ment") || self.ends("ent"),
            'o' => {
                (self.ends("ion") && self.j >= 0 && matches!(self.at(self.j), 's' | 't'))
                    || self.ends("ou")
            }
            's' => self.ends("ism"),
            't' => self.ends("ate") || self.ends("iti"),
            'u' => self.ends("ous"),
            'v' => self.ends("ive"),
            'z' => self.ends("ize"),
            _ => false,
        };
        if matched && self.m() > 1 {
            self.k = self.j;
        }
    }

    /// A final -e goes when the measure is above 1 (or 1 and not *o), and -ll becomes -l when
    /// the measure is above 1.
    fn step5(&mut self) {
        self.j = self.k;
        if self.at(self.k) == 'e' {
            let a = self.m();
            if a > 1 || (a == 1 && !self.cvc(self.k - 1)) {
                self.k -= 1;
            }
        }
        if self.at(self.k) == 'l' && self.double_c(self.k) && self.m() > 1 {
            self.k -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stemmed(word: &str) -> String {
        let mut w: Vec<char> = word.chars().collect();
        stem(&mut w);
        w.into_iter().collect()
    }

    #[test]
    fn the_papers_examples_stem_as_published() {
        for (word, expected) in [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("cats", "cat"),
            ("feed", "feed"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("motoring", "motor"),
            ("conflated", "conflat"),
            ("hopping", "hop"),
            ("falling", "fall"),
            ("filing", "file"),
            ("happy", "happi"),
            ("relational", "relat"),
            ("generalization", "gener"),
            ("electrical", "electr"),
            ("adjustment", "adjust"),
            ("controll", "control"),
            ("running", "run"),
            ("shoes", "shoe"),
        ] {
            assert_eq!(stemmed(word), expected, "{word}");
        }
    }

    #[test]
    fn the_reference_departures_hold() {
        // The paper would leave "apologi"; the reference code (and Lucene) makes it "apolog".
        assert_eq!(stemmed("apology"), "apolog");
        assert_eq!(stemmed("possibly"), "possibl");
        assert_eq!(stemmed("is"), "is");
    }

    #[test]
    fn letters_outside_the_alphabet_count_as_consonants() {
        assert_eq!(stemmed("cafés"), "café");
        assert_eq!(stemmed("naïve"), "naïv");
    }
}
