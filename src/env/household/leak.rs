//! The household's leakage guard: a corrected reason should teach what the student could have
//! inferred, not the secret. For every reason it flags the privileged facts the student had not
//! observed by that step: an object instance seen only in the privileged state, or an unhedged
//! claim that a task object is at its (unobserved) true place.

use super::oracle::mentions;
use super::split_name;
use crate::env::Privileged;
use crate::teacher::Leak;

/// Words that turn a claim into a guess from common sense ("apples are often in a fridge").
const HEDGES: &[&str] = &[
    "often",
    "usually",
    "typically",
    "commonly",
    "may",
    "might",
    "could",
    "likely",
    "probably",
    "perhaps",
    "maybe",
    "possibly",
    "not checked",
    "unchecked",
    "unexplored",
    "not explored",
    "have not",
    "haven't",
    "yet",
    "whether",
    "if ",
    "saw",
    "seen",
];

/// The privileged facts of a household scenario that `reason` gives away, given everything the
/// student had read by then (`observed`: the task and every observation so far).
pub fn guard(reason: &str, privileged: &Privileged, observed: &str) -> Vec<Leak> {
    let mut leaks = Vec::new();
    let lower = reason.to_lowercase();
    for f in &privileged.facts {
        let (object, place) = (&f.subject, &f.detail);
        if mentions(observed, object) {
            continue; // the student saw it: no secret any more
        }
        let fact = format!("{object} is in {place}");
        if mentions(&lower, object) {
            leaks.push(Leak {
                fact: fact.clone(),
                text: object.clone(),
            });
            continue;
        }
        let kind = split_name(object).map_or(object.as_str(), |(k, _)| k);
        for sentence in lower.split(['.', ';', '!', '?']) {
            let names_kind = mentions(sentence, kind) || mentions(sentence, &format!("{kind}s"));
            let claims = names_kind && mentions(sentence, place);
            if claims && !HEDGES.iter().any(|h| sentence.contains(h)) {
                leaks.push(Leak {
                    fact: fact.clone(),
                    text: sentence.trim().to_string(),
                });
                break;
            }
        }
    }
    leaks
}
