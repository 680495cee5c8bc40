//! A household episode the oracle follows: the environment and what the agent has seen in it.

use minijinja::context;
use minijinja::value::Serde;

use super::HouseholdEnv;
use super::expert;
use super::oracle::{Knowledge, advise, advise_knowing};
use crate::env::{Advice, Environment, Fact, Guided, Outcome, Privileged};

pub struct GuidedEpisode {
    env: HouseholdEnv,
    knowledge: Knowledge,
}

impl GuidedEpisode {
    pub fn new(env: HouseholdEnv) -> GuidedEpisode {
        GuidedEpisode {
            knowledge: Knowledge::new(&env),
            env,
        }
    }
}

impl Environment for GuidedEpisode {
    fn task(&self) -> &str {
        self.env.task()
    }

    fn observation(&self) -> &str {
        self.env.observation()
    }

    fn step(&mut self, action: &str) -> Outcome {
        let outcome = self.env.step(action);
        self.knowledge.observe(&self.env);
        outcome
    }

    fn admissible(&self) -> Vec<String> {
        self.env.admissible()
    }

    fn steps_taken(&self) -> u32 {
        self.env.steps_taken()
    }

    fn reset(&mut self) {
        self.env.reset();
        self.knowledge = Knowledge::new(&self.env);
    }
}

impl Guided for GuidedEpisode {
    fn won(&self) -> bool {
        self.env.won()
    }

    fn advise(&self, privileged: bool) -> Option<Advice> {
        advise(&self.env, &self.knowledge, privileged)
    }

    fn per_fact(&self) -> bool {
        true
    }

    /// Told where some of the task's objects are (facts `object in/on place`): it knows those
    /// objects' places as if it had seen them, and searches for the others.
    fn advise_told(&self, told: &[Fact]) -> Option<Advice> {
        let layout = self.env.layout();
        let told: Vec<bool> = layout
            .objects
            .iter()
            .map(|o| told.iter().any(|f| f.subject == o.name))
            .collect();
        advise_knowing(&self.env, &self.knowledge, &|o| told[usize::from(o)])
    }

    fn plan(&self) -> Option<Vec<String>> {
        expert::plan(&self.env)
    }

    fn privileged(&self) -> Privileged {
        expert::privileged(&self.env)
    }

    /// `locations` (where the task's objects were at the start) and `plan` (from here), as
    /// `assets/prompts/household/correct_step.j2` reads them.
    fn teacher_vars(&self, hidden: &Privileged) -> minijinja::Value {
        context! {
            locations => Serde(&hidden.facts),
            plan => Serde(&self.plan()),
        }
    }
}
