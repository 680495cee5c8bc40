//! The shop's leak guard: a reason must not name the goal's product before the pages showed it.

use crate::env::Privileged;
use crate::teacher::Leak;

// SKELETON: the leak guard comes with its own commit.
pub fn guard(_reason: &str, _hidden: &Privileged, _observed: &str) -> Vec<Leak> {
    Vec::new()
}
