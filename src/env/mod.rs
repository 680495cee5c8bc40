//! Text environments the student acts in. One file (or folder) per environment.

pub mod household;

/// What one step did: the reward it earned and whether the episode is over.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Outcome {
    pub reward: f32,
    /// The episode is over: the goal holds or the horizon is reached.
    pub done: bool,
    /// The goal holds.
    pub won: bool,
}

/// A text environment in ReAct form: a task, an observation after every action, and the list of
/// commands that do something.
pub trait Environment: Send {
    /// The task as the student reads it ("put some spraybottle on toilet.").
    fn task(&self) -> &str;
    /// The latest observation.
    fn observation(&self) -> &str;
    /// Applies one command; the new observation is then in [`Environment::observation`].
    fn step(&mut self, action: &str) -> Outcome;
    /// The commands that do something now, sorted.
    fn admissible(&self) -> Vec<String>;
    /// Commands applied since the start (admissible or not).
    fn steps_taken(&self) -> u32;
    /// Back to the initial state.
    fn reset(&mut self);
}
