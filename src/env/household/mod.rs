//! The household environment: ALFWorld's text interface over a room of receptacles and objects.
//!
//! Observations, command forms and the admissible-command list follow ALFWorld's text games
//! (the `put X in/on Y` grammar that the LEAP paper used). `tests/household_replay.rs` replays
//! real ALFWorld transcripts through it and checks every observation byte for byte.

mod command;
pub mod expert;
pub mod generate;
mod goal;
mod guided;
mod kind;
mod layout;
pub mod leak;
pub mod oracle;
mod prompt;
pub mod scenario;
mod state;
mod text;
pub mod vocab;

use std::sync::Arc;

pub use goal::{Goal, GoalKind};
pub use guided::GuidedEpisode;
pub use kind::Household;
pub use layout::{Layout, LayoutError, ObjectSpec, ReceptacleSpec, split_name};
pub use prompt::{checked_places, unchecked_places};
pub use scenario::HouseholdScenario;
pub use state::State;

use crate::env::{Environment, Outcome};
use crate::scenario::Scenario;
use command::Command;

/// The household body of `s`, when `s` is a household scenario.
pub fn body(s: &Scenario) -> Option<&HouseholdScenario> {
    s.body.as_any().downcast_ref()
}

/// One household episode: a layout, its current state, a goal and a horizon.
#[derive(Clone)]
pub struct HouseholdEnv {
    layout: Arc<Layout>,
    initial: State,
    state: State,
    goal: Goal,
    task: String,
    horizon: u32,
    steps: u32,
    done: bool,
    observation: String,
}

impl HouseholdEnv {
    pub fn new(
        layout: Arc<Layout>,
        initial: State,
        goal: Goal,
        task: String,
        horizon: u32,
    ) -> Self {
        let mut env = HouseholdEnv {
            layout,
            state: initial.clone(),
            initial,
            goal,
            task,
            horizon,
            steps: 0,
            done: false,
            observation: String::new(),
        };
        env.reset();
        env
    }

    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn goal(&self) -> &Goal {
        &self.goal
    }

    pub fn horizon(&self) -> u32 {
        self.horizon
    }

    /// Whether the goal holds in the current state.
    pub fn won(&self) -> bool {
        self.goal.holds(&self.layout, &self.state)
    }

    /// The episode is over (won, or the horizon reached).
    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl Environment for HouseholdEnv {
    fn task(&self) -> &str {
        &self.task
    }

    /// The state: where the agent is, what it holds, what is open, where everything is and
    /// each object's flags (the goal is the scenario's, and it is won only by a step).
    fn fingerprint(&self) -> Option<u64> {
        Some(crate::env::fingerprint_of(&self.state))
    }

    fn observation(&self) -> &str {
        &self.observation
    }

    fn step(&mut self, action: &str) -> Outcome {
        if self.done {
            // A finished game answers every command with its last observation, as TextWorld does.
            return Outcome {
                reward: 0.0,
                done: true,
                won: false,
            };
        }
        self.steps += 1;
        let applied = match Command::parse(&self.layout, action.trim()) {
            Some(cmd) => {
                self.observation.clear();
                self.state
                    .apply(&self.layout, cmd, Some(&mut self.observation))
            }
            None => false,
        };
        if !applied {
            self.observation.clear();
            self.observation.push_str(text::NOTHING_HAPPENS);
        }
        let won = applied && self.goal.holds(&self.layout, &self.state);
        self.done = won || self.steps >= self.horizon;
        Outcome {
            reward: if won { 1.0 } else { 0.0 },
            done: self.done,
            won,
        }
    }

    fn admissible(&self) -> Vec<String> {
        let mut commands = self.state.admissible(&self.layout);
        commands.sort_unstable();
        commands
    }

    fn steps_taken(&self) -> u32 {
        self.steps
    }

    fn reset(&mut self) {
        self.state = self.initial.clone();
        self.steps = 0;
        self.done = false;
        self.observation.clear();
        text::room(&self.layout, &mut self.observation);
    }
}
