//! The shop environment: WebShop's text interface (Yao et al., 2022) as LEAP ran it, over a
//! catalogue leap builds itself. Pages, actions and the `text_rich` observation follow WebShop's
//! simulated server; search is BM25 as its Lucene index scores; the reward is its `goal.py`.

pub mod catalogue;
pub mod generate;
pub mod guided;
pub mod kind;
pub mod leak;
pub mod prompt;
pub mod reward;
pub mod scenario;
pub mod search;
pub mod vocab;

use std::sync::Arc;

pub use catalogue::{Catalogue, Goal, Product};
pub use guided::GuidedShop;
pub use search::SearchIndex;

use crate::env::{Environment, Outcome};

/// A catalogue with its search index: built once, shared by every episode over it.
#[derive(Debug)]
pub struct Shop {
    pub catalogue: Catalogue,
    pub index: SearchIndex,
}

impl Shop {
    pub fn new(catalogue: Catalogue) -> Shop {
        let index = SearchIndex::new(&catalogue);
        Shop { catalogue, index }
    }
}

/// How pages become text: WebShop's `text_rich` (one node a line, buttons marked; what LEAP
/// used) or `text` (nodes joined by ` [SEP] `).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextMode {
    #[default]
    Rich,
    Simple,
}

/// One shopping episode.
#[derive(Clone)]
pub struct ShopEnv {
    shop: Arc<Shop>,
    goal: Arc<Goal>,
    instruction: String,
    mode: TextMode,
    horizon: u32,
    steps: u32,
    observation: String,
}

impl ShopEnv {
    /// An episode on the search page. `instruction` is the text the shopper reads.
    pub fn new(
        shop: Arc<Shop>,
        goal: Goal,
        instruction: String,
        mode: TextMode,
        horizon: u32,
    ) -> ShopEnv {
        let mut env = ShopEnv {
            shop,
            goal: Arc::new(goal),
            instruction,
            mode,
            horizon,
            steps: 0,
            observation: String::new(),
        };
        env.reset();
        env
    }

    pub fn shop(&self) -> &Arc<Shop> {
        &self.shop
    }

    pub fn goal(&self) -> &Goal {
        &self.goal
    }

    pub fn horizon(&self) -> u32 {
        self.horizon
    }

    pub fn mode(&self) -> TextMode {
        self.mode
    }
}

// SKELETON: the pages, actions and transitions come with the environment's own commit.
impl Environment for ShopEnv {
    fn task(&self) -> &str {
        &self.instruction
    }

    fn observation(&self) -> &str {
        &self.observation
    }

    fn step(&mut self, _action: &str) -> Outcome {
        self.steps += 1;
        Outcome {
            reward: 0.0,
            done: self.steps >= self.horizon,
            won: false,
        }
    }

    fn admissible(&self) -> Vec<String> {
        vec!["search[...]".to_string()]
    }

    fn steps_taken(&self) -> u32 {
        self.steps
    }

    fn reset(&mut self) {
        self.steps = 0;
        self.observation = format!(
            "WebShop\nInstruction: \n{}\n[button] Search [button_]\n",
            self.instruction
        );
    }
}
