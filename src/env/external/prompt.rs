//! The variables of external environments' student prompt: every observation clipped (a room
//! description may run to many lines, and a small student's context is short), and the
//! admissible commands clipped to a number a prompt can afford (the grammar still admits them
//! all).

use minijinja::context;
use minijinja::value::Serde;

use crate::agent::prompt::Past;
use crate::env::command;

/// Lines and characters shown of an earlier observation.
pub const EARLIER: (usize, usize) = (4, 240);
/// Lines and characters shown of the latest observation.
pub const LATEST: (usize, usize) = (24, 1200);
/// Admissible commands a prompt lists at most.
pub const COMMANDS: usize = 40;

/// Each observation as the prompts show it: clipped, the last one less.
pub fn outputs(observations: &[String]) -> Vec<String> {
    crate::env::text::clip_each(observations, EARLIER, LATEST, "")
}

/// `outputs` (every observation after an action so far, clipped, aligned with the end of
/// `history`), `commands` (the admissible commands, at most [`COMMANDS`]; empty for free text)
/// and `more` (how many were left out).
pub fn vars(history: &[Past], admissible: &[String]) -> minijinja::Value {
    let observations: Vec<String> = history.iter().map(|s| s.observation.clone()).collect();
    let free = admissible.iter().all(|a| a == command::HOLE);
    let commands: Vec<&str> = if free {
        Vec::new()
    } else {
        admissible
            .iter()
            .take(COMMANDS)
            .map(String::as_str)
            .collect()
    };
    context! {
        outputs => Serde(&outputs(&observations)),
        commands => Serde(&commands),
        more => if free { 0 } else { admissible.len().saturating_sub(COMMANDS) },
    }
}
