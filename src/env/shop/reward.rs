//! WebShop's reward (`web_agent_site/engine/goal.py`, `get_reward`), part by part:
//!
//! `total = r_type * (n_att + n_opt + r_price) / (attributes + options + 1)`
//!
//! - `r_price`: the price paid is at most the goal's limit;
//! - `n_att`: goal attributes the product has: a product attribute whose token-set ratio with it
//!   is above 85, or the attribute written in the lowercased title, bullets or description;
//! - `n_opt`: goal options some chosen option value matches (token-set ratio above 85, both
//!   colour-normalised);
//! - `r_type`: whether the product is of the goal's type at all, from the goal product's search
//!   query, its category breadcrumb and the nouns of its title (see [`r_type`]).
//!
//! A WebShop goal carries its product's `name`, `query` and `product_category`; leap's goal
//! names the product, so those come from the goal's product (`target`).

use serde::Serialize;

use super::fuzz::token_set_ratio;
use super::normalize::normalize_color;
use super::nouns::title_nouns;
use super::{Goal, Product};

/// Above this token-set ratio two phrases match.
pub const FUZZY_MATCH: u32 = 85;

/// The reward of a purchase with its parts, as WebShop's verbose reward reports them (and in
/// the same JSON shape: `r_option` and `r_price` are left out when the goal has none).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reward {
    pub total: f64,
    pub r_type: f64,
    /// The fraction of the goal's attributes the product has.
    pub r_att: f64,
    /// The fraction of the goal's options chosen; `None` when the goal asks for none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r_option: Option<f64>,
    /// The price is within the limit; `None` when the goal sets no positive limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r_price: Option<bool>,
    pub query_match: bool,
    pub category_match: bool,
    pub title_score: f64,
}

/// The type part of the reward, with what it was decided from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TypeReward {
    pub r_type: f64,
    /// The purchase was collected under the goal product's search query.
    pub query_match: bool,
    /// The two breadcrumbs share two or more segments.
    pub category_match: bool,
    /// The fraction of the goal title's nouns the purchased title has.
    pub title_score: f64,
}

/// The reward of buying `purchased` at `price` with the option values `chosen`, for `goal`,
/// whose product is `target`.
pub fn reward(
    purchased: &Product,
    price: f64,
    chosen: &[String],
    goal: &Goal,
    target: &Product,
) -> Reward {
    let kind = type_reward(purchased, target);
    let r_price = (goal.price_upper > 0.0).then_some(price <= goal.price_upper);
    let n_att = attribute_matches(purchased, &goal.attributes);
    let n_opt = option_matches(chosen, &goal.options);
    Reward {
        total: total(
            kind.r_type,
            n_att,
            n_opt,
            r_price,
            goal.attributes.len(),
            goal.options.len(),
        ),
        r_type: kind.r_type,
        r_att: attribute_reward(n_att, goal.attributes.len()),
        r_option: option_reward(n_opt, goal.options.len()),
        r_price,
        query_match: kind.query_match,
        category_match: kind.category_match,
        title_score: kind.title_score,
    }
}

/// The reward from its parts: `r_type * (n_att + n_opt + r_price) / (attributes + options + 1)`,
/// computed in WebShop's order so the float is the same. A missing `r_price` counts 0.
pub fn total(
    r_type: f64,
    n_att: usize,
    n_opt: usize,
    r_price: Option<bool>,
    attributes: usize,
    options: usize,
) -> f64 {
    let hits = n_att + n_opt + usize::from(r_price == Some(true));
    hits as f64 / (attributes + options + 1) as f64 * r_type
}

/// Whether `purchased` is the kind of thing `target` is.
pub fn type_reward(purchased: &Product, target: &Product) -> TypeReward {
    let query_match = purchased.query == target.query;
    let category_match = category_match(&purchased.product_category, &target.product_category);
    let title_score = title_score(&purchased.name, &target.name);
    TypeReward {
        r_type: r_type(query_match, category_match, title_score),
        query_match,
        category_match,
        title_score,
    }
}

/// WebShop's rule: 1 when the query, the category or more than a fifth of the title's nouns
/// match, else 0.5; whatever else matches, 0.1 when under a tenth of the nouns do and 0 when
/// none does.
pub fn r_type(query_match: bool, category_match: bool, title_score: f64) -> f64 {
    if title_score == 0.0 {
        0.0
    } else if title_score < 0.1 {
        0.1
    } else if query_match || category_match || title_score > 0.2 {
        1.0
    } else {
        0.5
    }
}

/// Two breadcrumbs ("Home & Kitchen › Furniture › ...") share two or more segments, in any
/// order.
pub fn category_match(a: &str, b: &str) -> bool {
    let segments = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s.split('›').map(|x| x.trim().to_string()).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let theirs = segments(b);
    segments(a).iter().filter(|s| theirs.contains(s)).count() >= 2
}

/// The fraction of `desired`'s title nouns (repeats counted) whose word is among `purchased`'s
/// title nouns (repeats counted once); 0.2 when `desired` has no noun.
pub fn title_score(purchased: &str, desired: &str) -> f64 {
    let desired = title_nouns(desired);
    if desired.is_empty() {
        return 0.2;
    }
    let mut bought = title_nouns(purchased);
    bought.sort_unstable();
    let mut wanted = desired.clone();
    wanted.sort_unstable();
    wanted.dedup();
    let shared = wanted
        .iter()
        .filter(|w| bought.binary_search(w).is_ok())
        .count();
    shared as f64 / desired.len() as f64
}

/// How many of `goal_attributes` `product` has: a product attribute matches it fuzzily, or it
/// is written in the lowercased title, bullets (joined by spaces) or description.
pub fn attribute_matches(product: &Product, goal_attributes: &[String]) -> usize {
    let title = product.name.to_lowercase();
    let bullets = product.bullets.join(" ").to_lowercase();
    let description = product.description.to_lowercase();
    goal_attributes
        .iter()
        .filter(|g| {
            product
                .attributes
                .iter()
                .any(|p| token_set_ratio(p, g) > FUZZY_MATCH)
                || title.contains(g.as_str())
                || bullets.contains(g.as_str())
                || description.contains(g.as_str())
        })
        .count()
}

/// `r_att`: the fraction of `attributes` goal attributes matched. WebShop's goals always have
/// one; for none, nothing was missed and it is 1.
pub fn attribute_reward(matched: usize, attributes: usize) -> f64 {
    if attributes == 0 {
        1.0
    } else {
        matched as f64 / attributes as f64
    }
}

/// How many of `goal_options` some value of `chosen` matches, both colour-normalised.
pub fn option_matches(chosen: &[String], goal_options: &[String]) -> usize {
    let chosen: Vec<&str> = chosen.iter().map(|o| normalize_color(o)).collect();
    goal_options
        .iter()
        .filter(|g| {
            let g = normalize_color(g);
            chosen.iter().any(|c| token_set_ratio(c, g) > FUZZY_MATCH)
        })
        .count()
}

/// `r_option`: the fraction of `options` goal options matched; `None` when there are none.
pub fn option_reward(matched: usize, options: usize) -> Option<f64> {
    (options > 0).then(|| matched as f64 / options as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(name: &str) -> Product {
        Product {
            asin: "B000000001".into(),
            name: name.into(),
            category: "garden".into(),
            query: "sofas and couches".into(),
            product_category: "Home & Kitchen › Furniture › Living Room Furniture › Sofas".into(),
            description: "Solid wood frame. Easy to assemble.".into(),
            bullets: vec!["Machine Washable cover".into(), "Seats three".into()],
            pricing: vec![300.0],
            price: 300.0,
            options: vec![("color".into(), vec!["grey".into(), "navy".into()])],
            attributes: vec!["living room".into()],
        }
    }

    fn goal(attributes: &[&str], options: &[&str], price_upper: f64) -> Goal {
        Goal {
            asin: "B000000001".into(),
            attributes: attributes.iter().map(|s| s.to_string()).collect(),
            options: options.iter().map(|s| s.to_string()).collect(),
            price_upper,
        }
    }

    #[test]
    fn the_gold_product_with_its_options_scores_one() {
        let p = product("Modern Linen Sofa Couch for Living Room");
        let g = goal(&["living room", "wood frame"], &["grey"], 400.0);
        let r = reward(&p, 300.0, &["grey".into()], &g, &p);
        assert_eq!(r.total, 1.0);
        assert_eq!(
            (r.r_att, r.r_option, r.r_price),
            (1.0, Some(1.0), Some(true))
        );
        assert!(r.query_match && r.category_match);
        assert_eq!(r.title_score, 1.0);
    }

    #[test]
    fn each_missing_part_costs_its_share() {
        let p = product("Modern Linen Sofa Couch for Living Room");
        // The wrong option and over the price: 2 of 4.
        let g = goal(&["living room", "wood frame"], &["grey"], 250.0);
        let r = reward(&p, 300.0, &["navy".into()], &g, &p);
        assert_eq!(
            (r.total, r.r_option, r.r_price),
            (0.5, Some(0.0), Some(false))
        );
        // One attribute of three found nowhere: r_att 2/3, total 3/4.
        let g = goal(&["living room", "machine washable", "leather"], &[], 400.0);
        let r = reward(&p, 300.0, &[], &g, &p);
        assert_eq!((r.r_att, r.total), (2.0 / 3.0, 0.75));
        assert_eq!(r.r_option, None);
    }

    #[test]
    fn another_kind_of_product_loses_the_type_part() {
        let target = product("Modern Linen Sofa Couch for Living Room");
        let mut lamp = product("Brass Desk Lamp with USB Port");
        lamp.query = "lamps".into();
        lamp.product_category = "Tools › Lighting".into();
        let g = goal(&["living room"], &[], 400.0);
        let r = reward(&lamp, 300.0, &[], &g, &target);
        assert_eq!((r.r_type, r.title_score, r.total), (0.0, 0.0, 0.0));
        // The same product under the goal's query keeps a share of its nouns.
        lamp.name = "Sofa Lamp".into();
        let r = reward(&lamp, 300.0, &[], &g, &target);
        assert_eq!(r.title_score, 1.0 / 6.0);
        assert_eq!(r.r_type, 0.5);
    }

    #[test]
    fn the_type_rule_follows_webshops_thresholds() {
        assert_eq!(r_type(true, true, 0.0), 0.0);
        assert_eq!(r_type(true, false, 0.05), 0.1);
        assert_eq!(r_type(false, false, 0.1), 0.5);
        assert_eq!(r_type(false, false, 0.2), 0.5);
        assert_eq!(r_type(false, false, 0.21), 1.0);
        assert_eq!(r_type(false, true, 0.1), 1.0);
        assert_eq!(r_type(true, false, 0.15), 1.0);
    }

    #[test]
    fn categories_match_on_two_shared_segments_in_any_order() {
        let a = "Home & Kitchen › Furniture › Living Room Furniture";
        assert!(category_match(a, "Furniture › Home & Kitchen"));
        assert!(!category_match(a, "Home & Kitchen › Bedding"));
        // Repeated segments count once, as in WebShop's sets.
        assert!(!category_match("Tools › Tools", "Tools › Tools"));
    }

    #[test]
    fn a_title_without_nouns_scores_a_fifth() {
        assert_eq!(title_score("Sofa", "For the 2 of us"), 0.2);
        // Repeated nouns of the goal's title count in the denominator.
        assert_eq!(
            title_score("Intel laptop", "Intel laptop, Intel inside"),
            2.0 / 4.0
        );
    }

    #[test]
    fn the_reward_serializes_as_webshops_info() {
        let p = product("Sofa");
        let r = reward(&p, 300.0, &[], &goal(&["living room"], &[], 400.0), &p);
        let json = serde_json::to_value(&r).unwrap();
        assert!(json.get("r_option").is_none(), "{json}");
        assert_eq!(json["r_price"], true);
        assert_eq!(json["total"], 1.0);
    }
}
