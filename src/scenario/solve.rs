//! `leap scenarios solve`: the expert's plan for a scenario from its start, and the privileged
//! state it sees.

use serde::Serialize;

use super::Scenario;
use crate::env::Privileged;

/// Whether the expert reaches the goal of a scenario within its horizon.
#[derive(Debug, Serialize)]
pub struct Solved {
    pub id: String,
    pub solved: bool,
    /// The shortest plan's length; `None` when no plan reaches the goal.
    pub steps: Option<usize>,
    pub horizon: u32,
    #[serde(flatten)]
    pub privileged: Privileged,
}

/// Plans `s` from its start.
pub fn solve(s: &Scenario) -> Solved {
    let privileged = s.body.privileged(s.horizon);
    let steps = privileged.plan.as_ref().map(Vec::len);
    Solved {
        id: s.id.clone(),
        solved: steps.is_some_and(|n| n <= s.horizon as usize),
        steps,
        horizon: s.horizon,
        privileged,
    }
}
