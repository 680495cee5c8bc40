//! The leakage guard: a corrected reason should teach what the student could have inferred,
//! not the secret. For every reason it flags the privileged facts the student had not observed
//! by that step: an object instance seen only in the privileged state, or an unhedged claim that
//! a task object is at its (unobserved) true place. Flags are stored with the label and counted.

use serde::{Deserialize, Serialize};

use crate::env::household::expert::PrivilegedState;
use crate::env::household::oracle::mentions;
use crate::env::household::split_name;

/// One privileged fact a reason gives away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leak {
    /// The fact, e.g. "apple 2 is in fridge 1".
    pub fact: String,
    /// The words of the reason that give it away.
    pub text: String,
}

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
pub fn household(reason: &str, privileged: &PrivilegedState, observed: &str) -> Vec<Leak> {
    let mut leaks = Vec::new();
    let lower = reason.to_lowercase();
    for (object, place) in &privileged.locations {
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
