//! The shop's variables of the student's prompt.

use crate::agent::prompt::Past;

// SKELETON: the shop's prompt comes with its own commit.
pub fn vars(_history: &[Past], _admissible: &[String]) -> minijinja::Value {
    minijinja::context! {}
}
