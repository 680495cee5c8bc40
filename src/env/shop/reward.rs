//! WebShop's reward (`web_agent_site/engine/goal.py`).

use serde::Serialize;

use super::{Goal, Product};

/// The reward of a purchase with its parts, as WebShop's verbose reward reports them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reward {
    pub total: f64,
    pub r_type: f64,
    pub r_att: f64,
    pub r_option: Option<f64>,
    pub r_price: Option<bool>,
    pub query_match: bool,
    pub category_match: bool,
    pub title_score: f64,
}

/// The reward of buying `purchased` at `price` with the option values `chosen`, for `goal`,
/// whose product is `target`.
// SKELETON: the reward comes with its own commit.
pub fn reward(
    purchased: &Product,
    _price: f64,
    _chosen: &[String],
    goal: &Goal,
    _target: &Product,
) -> Reward {
    let won = purchased.asin == goal.asin;
    Reward {
        total: f64::from(u8::from(won)),
        r_type: 1.0,
        r_att: 0.0,
        r_option: None,
        r_price: None,
        query_match: false,
        category_match: false,
        title_score: 0.0,
    }
}
