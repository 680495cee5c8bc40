//! The shop's reward against nine real WebShop human sessions (`tests/data/webshop/human_sessions/`,
//! one page a line, the last the `done` page with WebShop's reward and its breakdown).
//!
//! What is recomputed exactly, for every session: the price part (the price paid against the
//! goal's limit), the option part (the chosen values against the goal's options, fuzzy and
//! colour-normalised: "z2-pink" is "pink"), the type part from the recorded query match,
//! category match and title score (WebShop's thresholds), and the total from the parts and
//! their weights (`n_att = r_att x attributes`). In 20220427_1_7 the shopper bought the goal's own
//! product, so its whole reward is recomputed from the goal's title, query and breadcrumb.
//!
//! What cannot be: the other purchased products' titles, breadcrumbs, attributes, bullets and
//! descriptions are not in the data (a session records only their ASIN), so their attribute
//! part, their query and category matches and their title scores are taken as recorded. Title
//! scores are not exact even for 20220427_1_7: WebShop takes nouns with spaCy 3.3's tagger, leap
//! with a word filter (see `src/env/shop/nouns.rs`); there it counts 24 distinct nouns of 26
//! where spaCy counted 21 of 23, so the test asks only for the same type reward and a score
//! within 0.02.

use std::path::{Path, PathBuf};

use leap::env::shop::reward::{
    category_match, option_matches, option_reward, r_type, reward, title_score, total,
};
use leap::env::shop::{Goal, Product};
use serde_json::Value;

/// A session's end: the goal, what was bought, and what WebShop paid for it.
struct Done {
    file: String,
    goal: Value,
    asin: String,
    chosen: Vec<String>,
    price: f64,
    reward: f64,
    info: Value,
}

fn sessions() -> Vec<Done> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/webshop/human_sessions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files.iter().map(|p| done(p)).collect()
}

fn done(path: &Path) -> Done {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (n, last) = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .last()
        .unwrap_or_else(|| panic!("{file}: no pages"));
    let page: Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{file}:{}: {e}", n + 1));
    assert_eq!(page["page"], "done", "{file}:{}: the last page", n + 1);
    let field = |v: &Value, name: &str| -> Value {
        v.get(name)
            .cloned()
            .unwrap_or_else(|| panic!("{file}:{}: no `{name}`", n + 1))
    };
    let content = field(&page, "content");
    let chosen = field(&content, "options")
        .as_object()
        .unwrap_or_else(|| panic!("{file}: `options` is not an object"))
        .values()
        .map(|v| v.as_str().expect("an option value").to_string())
        .collect();
    Done {
        goal: field(&page, "goal"),
        asin: field(&content, "asin").as_str().unwrap().to_string(),
        chosen,
        price: field(&content, "price").as_f64().unwrap(),
        reward: field(&page, "reward").as_f64().unwrap(),
        info: field(&page, "reward_info"),
        file,
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

fn goal(d: &Done) -> Goal {
    Goal {
        asin: d.goal["asin"].as_str().unwrap().to_string(),
        attributes: strings(&d.goal["attributes"]),
        options: strings(&d.goal["goal_options"]),
        price_upper: d.goal["price_upper"].as_f64().unwrap(),
    }
}

fn flag(d: &Done, name: &str) -> bool {
    d.info[name]
        .as_bool()
        .unwrap_or_else(|| panic!("{}: reward_info.{name} is not a bool", d.file))
}

fn number(d: &Done, name: &str) -> f64 {
    d.info[name]
        .as_f64()
        .unwrap_or_else(|| panic!("{}: reward_info.{name} is not a number", d.file))
}

#[test]
fn all_nine_sessions_are_read() {
    let all = sessions();
    assert_eq!(all.len(), 9);
    assert!(all.iter().all(|d| d.reward > 0.0));
}

#[test]
fn the_price_part_is_the_price_paid_against_the_limit() {
    for d in sessions() {
        let g = goal(&d);
        assert_eq!(
            d.price <= g.price_upper,
            flag(&d, "r_price"),
            "{}: paid {} with a limit of {}",
            d.file,
            d.price,
            g.price_upper
        );
    }
}

#[test]
fn the_option_part_matches_chosen_values_fuzzily_after_colour_normalisation() {
    let mut with_options = 0;
    for d in sessions() {
        let g = goal(&d);
        let ours = option_reward(option_matches(&d.chosen, &g.options), g.options.len());
        let theirs = d.info.get("r_option").map(|v| v.as_f64().unwrap());
        assert_eq!(
            ours, theirs,
            "{}: chose {:?} for {:?}",
            d.file, d.chosen, g.options
        );
        with_options += usize::from(theirs.is_some());
    }
    // Six sessions ask for options: two missed (none chosen; "3t280" for a silver), four hit
    // (one through "z2-pink").
    assert_eq!(with_options, 6);
}

#[test]
fn the_type_part_follows_from_query_category_and_title() {
    for d in sessions() {
        let ours = r_type(
            flag(&d, "query_match"),
            flag(&d, "category_match"),
            number(&d, "title_score"),
        );
        assert_eq!(ours, number(&d, "r_type"), "{}", d.file);
    }
}

#[test]
fn the_total_is_the_weighted_sum_of_the_parts() {
    for d in sessions() {
        let g = goal(&d);
        let attributes = g.attributes.len();
        let n_att = number(&d, "r_att") * attributes as f64;
        assert_eq!(n_att.fract(), 0.0, "{}: r_att x attributes", d.file);
        let n_opt = d
            .info
            .get("r_option")
            .map_or(0.0, |r| r.as_f64().unwrap() * g.options.len() as f64);
        assert_eq!(n_opt.fract(), 0.0, "{}: r_option x options", d.file);
        let ours = total(
            number(&d, "r_type"),
            n_att as usize,
            n_opt as usize,
            Some(flag(&d, "r_price")),
            attributes,
            g.options.len(),
        );
        assert_eq!(ours, d.reward, "{}", d.file);
    }
}

#[test]
fn buying_the_goals_own_product_is_recomputed_whole() {
    let all = sessions();
    let d = all
        .iter()
        .find(|d| d.file == "20220427_1_7.jsonl")
        .expect("session 20220427_1_7");
    let g = goal(d);
    assert_eq!(d.asin, g.asin, "the purchase is the goal's product");
    let text = |name: &str| d.goal[name].as_str().unwrap().to_string();
    // Only what the goal records of its product: the attribute is found in the title.
    let product = Product {
        asin: d.asin.clone(),
        name: text("name"),
        category: text("category"),
        query: text("query"),
        product_category: text("product_category"),
        description: String::new(),
        bullets: Vec::new(),
        pricing: vec![d.price],
        price: d.price,
        options: Vec::new(),
        attributes: Vec::new(),
    };
    assert!(category_match(
        &product.product_category,
        &product.product_category
    ));
    let r = reward(&product, d.price, &d.chosen, &g, &product);
    assert_eq!(r.total, d.reward);
    assert_eq!(r.r_type, number(d, "r_type"));
    assert_eq!(r.r_att, number(d, "r_att"));
    assert_eq!(r.r_option, None);
    assert!(d.info.get("r_option").is_none());
    assert_eq!(r.r_price, Some(flag(d, "r_price")));
    assert_eq!(r.query_match, flag(d, "query_match"));
    assert_eq!(r.category_match, flag(d, "category_match"));
    let recorded = number(d, "title_score");
    assert_eq!(r.title_score, title_score(&product.name, &product.name));
    assert!(
        (r.title_score - recorded).abs() < 0.02,
        "title score {} against WebShop's {recorded}",
        r.title_score
    );
}
