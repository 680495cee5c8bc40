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

/// The commands a prompt lists: at most [`COMMANDS`], the fewest words first (then in the
/// environment's order). An engine's list can run to a thousand combinations of every verb with
/// every pair of objects (ScienceWorld's); the short ones (`look around`, `go to kitchen`,
/// `focus on X`) are the moves, and alphabetical order would show forty `dunk ... into ...`.
pub fn shown(admissible: &[String]) -> Vec<&str> {
    let mut commands: Vec<&str> = admissible.iter().map(String::as_str).collect();
    commands.sort_by_key(|c| c.split_whitespace().count());
    commands.truncate(COMMANDS);
    commands
}

/// `outputs` (every observation after an action so far, clipped, aligned with the end of
/// `history`), `commands` (the admissible commands as [`shown`] picks them; empty for free text)
/// and `more` (how many were left out).
pub fn vars(history: &[Past], admissible: &[String]) -> minijinja::Value {
    let observations: Vec<String> = history.iter().map(|s| s.observation.clone()).collect();
    let free = admissible.iter().all(|a| a == command::HOLE);
    let commands: Vec<&str> = if free { Vec::new() } else { shown(admissible) };
    context! {
        outputs => Serde(&outputs(&observations)),
        commands => Serde(&commands),
        more => if free { 0 } else { admissible.len().saturating_sub(COMMANDS) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortest_commands_are_shown_in_their_order() {
        let mut admissible: Vec<String> =
            (0..50).map(|i| format!("dunk cup {i} into bowl")).collect();
        admissible.push("look around".into());
        admissible.push("go to kitchen".into());
        admissible.push("inventory".into());
        let shown = shown(&admissible);
        assert_eq!(shown.len(), COMMANDS);
        assert_eq!(
            &shown[..4],
            [
                "inventory",
                "look around",
                "go to kitchen",
                "dunk cup 0 into bowl"
            ]
        );
    }
}
