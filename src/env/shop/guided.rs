//! The shop episode the expert follows (see `expert.rs`).

use crate::env::{Advice, Environment, Guided, Outcome, Privileged};

use super::ShopEnv;

/// A shop episode with its expert.
#[derive(Clone)]
pub struct GuidedShop {
    env: ShopEnv,
}

impl GuidedShop {
    pub fn new(env: ShopEnv) -> GuidedShop {
        GuidedShop { env }
    }

    pub fn env(&self) -> &ShopEnv {
        &self.env
    }
}

impl Environment for GuidedShop {
    fn task(&self) -> &str {
        self.env.task()
    }
    fn observation(&self) -> &str {
        self.env.observation()
    }
    fn step(&mut self, action: &str) -> Outcome {
        self.env.step(action)
    }
    fn admissible(&self) -> Vec<String> {
        self.env.admissible()
    }
    fn steps_taken(&self) -> u32 {
        self.env.steps_taken()
    }
    fn reset(&mut self) {
        self.env.reset()
    }
}

// SKELETON: the expert comes with its own commit.
impl Guided for GuidedShop {
    fn won(&self) -> bool {
        false
    }
    fn advise(&self, _privileged: bool) -> Option<Advice> {
        None
    }
    fn plan(&self) -> Option<Vec<String>> {
        None
    }
    fn privileged(&self) -> Privileged {
        Privileged {
            facts: Vec::new(),
            plan: None,
        }
    }
    fn teacher_vars(&self, _hidden: &Privileged) -> minijinja::Value {
        minijinja::Value::UNDEFINED
    }
}
