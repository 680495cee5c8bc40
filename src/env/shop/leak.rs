//! The shop's leak guard: a corrected reason must not name the goal's product before the pages
//! showed it. The goal's attributes, options and price limit are written in the instruction the
//! student reads, so only the matching product can leak: its ASIN, or its title, whole or a
//! distinctive run of it: four or more title words in a row, three of them words the student
//! has not read ("upholstered 3-seat sofa couch" leaks before the title is shown; "a 3-seat sofa
//! couch", for an instruction that asks for a sofa couch, does not).

use crate::env::Privileged;
use crate::teacher::Leak;

/// The subject of the fact that holds the matching product's title.
pub const PRODUCT: &str = "matching product";
/// The subject of the fact that holds the matching product's ASIN.
pub const PRODUCT_ASIN: &str = "matching product asin";

/// Title words in a row that make a quotation.
const RUN: usize = 4;
/// Words of such a run the student must not have read for it to be distinctive.
const UNSEEN: usize = 3;

/// The privileged facts of a shop scenario that `reason` gives away, given everything the
/// student had read by then (`observed`: the task and every page so far).
pub fn guard(reason: &str, hidden: &Privileged, observed: &str) -> Vec<Leak> {
    let seen = observed.to_lowercase();
    let mut leaks = Vec::new();
    for f in &hidden.facts {
        let text = match f.subject.as_str() {
            PRODUCT_ASIN => asin_named(reason, &f.detail, &seen),
            PRODUCT => title_quoted(reason, &f.detail, &seen),
            _ => None,
        };
        if let Some(text) = text {
            leaks.push(Leak {
                fact: format!("the {} is {}", f.subject, f.detail),
                text,
            });
        }
    }
    leaks
}

/// The word of `reason` that is `asin` (any case), unless the student has seen it.
fn asin_named(reason: &str, asin: &str, seen: &str) -> Option<String> {
    let asin = asin.to_lowercase();
    if asin.is_empty() || seen.contains(&asin) {
        return None;
    }
    words(reason)
        .find(|w| w.text.to_lowercase() == asin)
        .map(|w| w.text.to_string())
}

/// The longest part of `reason` that quotes `title`, unless the student has seen the title:
/// the whole title, or a run of [`RUN`] title words with [`UNSEEN`] words not in `seen`.
fn title_quoted(reason: &str, title: &str, seen: &str) -> Option<String> {
    if title.trim().is_empty() || seen.contains(&title.to_lowercase()) {
        return None;
    }
    let said: Vec<Word> = words(reason).collect();
    let said_lower: Vec<String> = said.iter().map(|w| w.text.to_lowercase()).collect();
    let title: Vec<String> = words(title).map(|w| w.text.to_lowercase()).collect();
    let seen_words: Vec<String> = words(seen).map(|w| w.text.to_string()).collect();
    let unseen = |run: &[String]| {
        let mut fresh: Vec<&String> = run.iter().filter(|w| !seen_words.contains(w)).collect();
        fresh.sort_unstable();
        fresh.dedup();
        fresh.len()
    };
    let mut best: Option<(usize, usize)> = None; // (start in reason, length)
    for i in 0..said_lower.len() {
        for j in 0..title.len() {
            let len = said_lower[i..]
                .iter()
                .zip(&title[j..])
                .take_while(|(a, b)| a == b)
                .count();
            let whole = len == title.len();
            let quoted = (len >= RUN && unseen(&title[j..j + len]) >= UNSEEN)
                || (whole && unseen(&title) >= 1);
            if quoted && best.is_none_or(|(_, l)| len > l) {
                best = Some((i, len));
            }
        }
    }
    best.map(|(i, len)| reason[said[i].start..said[i + len - 1].end].to_string())
}

/// A run of letters and digits in a text, with its byte range.
struct Word<'a> {
    text: &'a str,
    start: usize,
    end: usize,
}

fn words(text: &str) -> impl Iterator<Item = Word<'_>> {
    let mut rest = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while rest.next_if(|(_, c)| !c.is_alphanumeric()).is_some() {}
        let (start, _) = *rest.peek()?;
        let mut end = start;
        while let Some((i, c)) = rest.next_if(|(_, c)| c.is_alphanumeric()) {
            end = i + c.len_utf8();
        }
        Some(Word {
            text: &text[start..end],
            start,
            end,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Fact;

    const TITLE: &str = "Nolany Modern Upholstered 3-Seat Sofa Couch w/Scrolled Arm, Linen Fabric";
    const TASK: &str = "i'm looking for a grey sofa couch with a wood frame for the living room, \
                        and price lower than 490.00 dollars";

    fn hidden() -> Privileged {
        let fact = |subject: &str, detail: &str| Fact {
            subject: subject.into(),
            relation: "is".into(),
            detail: detail.into(),
        };
        Privileged {
            facts: vec![
                fact("goal attribute", "wood frame"),
                fact("goal option", "grey"),
                fact("price limit", "490.00 dollars"),
                fact(PRODUCT, TITLE),
                fact(PRODUCT_ASIN, "B097MRL84T"),
            ],
            plan: None,
        }
    }

    fn leaked(reason: &str, observed: &str) -> Vec<String> {
        guard(reason, &hidden(), observed)
            .into_iter()
            .map(|l| l.text)
            .collect()
    }

    #[test]
    fn the_asin_leaks_in_any_case_until_a_page_shows_it() {
        let reason = "Open b097mrl84t, it is the grey sofa.";
        assert_eq!(leaked(reason, TASK), ["b097mrl84t"]);
        let l = &guard(reason, &hidden(), TASK)[0];
        assert_eq!(l.fact, "the matching product asin is B097MRL84T");
        let results = format!("{TASK}\n[button] B097MRL84T [button_]\n{TITLE}\n$129.99");
        assert!(leaked(reason, &results).is_empty());
    }

    #[test]
    fn a_distinctive_run_of_the_title_leaks_until_a_page_shows_the_title() {
        let reason = "Search for the Nolany Modern Upholstered sofa.";
        assert!(
            leaked(reason, TASK).is_empty(),
            "three words are not a quotation"
        );
        let reason = "Search for nolany modern upholstered 3-seat sofa, grey.";
        assert_eq!(
            leaked(reason, TASK),
            ["nolany modern upholstered 3-seat sofa"]
        );
        let item = format!("{TASK}\n[button] < Prev [button_]\n{TITLE}\nPrice: $129.99");
        assert!(leaked(reason, &item).is_empty());
    }

    #[test]
    fn words_of_the_instruction_in_title_order_do_not_leak() {
        // "sofa couch" and the options are the instruction's own words.
        let reason =
            "The instruction asks for a grey sofa couch with a wood frame under 490 dollars.";
        assert!(leaked(reason, TASK).is_empty());
        // Four title words in a row, two of them unread: not distinctive.
        assert!(leaked("A 3-seat sofa couch.", TASK).is_empty());
        // Three unread: a quotation.
        assert_eq!(
            leaked("An Upholstered 3-Seat Sofa Couch.", TASK),
            ["Upholstered 3-Seat Sofa Couch"]
        );
    }

    #[test]
    fn goal_attributes_options_and_price_never_leak() {
        let reason = "It needs a wood frame, the grey option and a price under 490.00 dollars.";
        assert!(leaked(reason, "").is_empty());
    }

    #[test]
    fn a_short_title_leaks_whole() {
        let mut hidden = hidden();
        hidden.facts[3].detail = "Zorbex Lamp".into();
        let leaks = guard("Buy the zorbex lamp.", &hidden, "i need a desk lamp");
        assert_eq!(leaks.len(), 1);
        assert_eq!(leaks[0].text, "zorbex lamp");
        assert!(guard("Buy a lamp.", &hidden, "i need a desk lamp").is_empty());
    }
}
