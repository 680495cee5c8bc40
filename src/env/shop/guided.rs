//! A shop episode the expert follows: the environment and what the shopper has done in it (see
//! `expert.rs`).

use minijinja::context;
use minijinja::value::Serde;

use super::ShopEnv;
use super::expert::{self, Memory};
use crate::env::{Advice, Environment, Guided, Outcome, Privileged};

/// A shop episode with its expert.
#[derive(Clone)]
pub struct GuidedShop {
    env: ShopEnv,
    memory: Memory,
}

impl GuidedShop {
    pub fn new(env: ShopEnv) -> GuidedShop {
        GuidedShop {
            env,
            memory: Memory::default(),
        }
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
        let before = self.env.page();
        let outcome = self.env.step(action);
        self.memory.observe(before, &self.env);
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
        self.memory = Memory::default();
    }

    fn info(&self) -> Option<serde_json::Value> {
        self.env.info()
    }
}

impl Guided for GuidedShop {
    fn won(&self) -> bool {
        self.env.won()
    }

    fn advise(&self, privileged: bool) -> Option<Advice> {
        if privileged {
            expert::advise_informed(&self.env)
        } else {
            expert::advise_observed(&self.env, &self.memory)
        }
    }

    fn plan(&self) -> Option<Vec<String>> {
        expert::plan(&self.env)
    }

    fn privileged(&self) -> Privileged {
        expert::privileged(&self.env)
    }

    /// `facts` (the goal and its product at the start, as `[subject, detail]` pairs), `plan`
    /// (from here) and `page` (the page on screen: "search", "results", "item",
    /// "description", "features", "reviews" or "done").
    fn teacher_vars(&self, hidden: &Privileged) -> minijinja::Value {
        context! {
            facts => Serde(&hidden.facts),
            plan => Serde(&self.plan()),
            page => self.env.page().name(),
        }
    }
}
