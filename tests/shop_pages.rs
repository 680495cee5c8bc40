//! Fidelity: the shop's pages against the text WebShop rendered for two real products
//! (`tests/data/webshop/rendered_pages.json`), byte for byte in both text modes. Every page is
//! reached by stepping a real episode with real actions, and each page's clickables must be
//! WebShop's, in WebShop's order.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use leap::env::Environment;
use leap::env::shop::page::{DoneGoal, DonePage};
use leap::env::shop::text::render;
use leap::env::shop::{Catalogue, Goal, Product, Shop, ShopEnv, TextMode};
use serde::Deserialize;

#[derive(Deserialize)]
struct Rendered {
    text_rich: String,
    text_simple: String,
    available_actions: Actions,
}

#[derive(Deserialize)]
struct Actions {
    has_search_bar: bool,
    clickables: Vec<String>,
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/webshop")
        .join(name)
}

fn pages() -> BTreeMap<String, Rendered> {
    let path = data("rendered_pages.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (vendored in tests/data/webshop)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const MOCK: &str = "mock_item_page_with_options(tests/transfer/mocks/mock_parse_item_page_ws)";

/// The instruction a page shows: the line after `Instruction:`.
fn instruction(page: &Rendered) -> String {
    let mut lines = page.text_rich.lines();
    lines.find(|l| l.starts_with("Instruction:"));
    lines.next().expect("a line after Instruction:").to_string()
}

/// Checks the episode's page against `page` in the episode's mode, and its clickables.
fn check(env: &ShopEnv, name: &str, page: &Rendered) {
    let expected = match env.mode() {
        TextMode::Rich => &page.text_rich,
        TextMode::Simple => &page.text_simple,
    };
    assert_eq!(
        env.observation(),
        expected,
        "{name} ({:?}) differs from WebShop's",
        env.mode()
    );
    assert_eq!(
        env.clickables(),
        page.available_actions.clickables,
        "{name}: clickables"
    );
    let on_search_page = env.admissible() == ["search[...]"];
    assert_eq!(
        on_search_page, page.available_actions.has_search_bar,
        "{name}: search bar"
    );
    if !on_search_page {
        let mut clicks: Vec<String> = page
            .available_actions
            .clickables
            .iter()
            .map(|c| format!("click[{c}]"))
            .collect();
        clicks.sort();
        assert_eq!(env.admissible(), clicks, "{name}: admissible");
    }
}

fn step(env: &mut ShopEnv, action: &str) {
    let before = env.steps_taken();
    let outcome = env.step(action);
    assert_eq!(env.steps_taken(), before + 1);
    assert!(
        !outcome.done || action == "click[buy now]",
        "{action} ended the episode"
    );
}

#[test]
fn every_page_of_a_real_product_matches_webshop_in_both_modes() {
    let pages = pages();
    let catalogue = Catalogue::read(&data("products_sample2.json")).expect("sample catalogue");
    let shop = Arc::new(Shop::new(catalogue));
    let goal = Goal {
        asin: "B06Y3VLDFB".to_string(),
        attributes: Vec::new(),
        options: Vec::new(),
        price_upper: 900.0,
    };
    let instruction = instruction(&pages["search_page"]);
    for mode in [TextMode::Rich, TextMode::Simple] {
        let mut env = ShopEnv::new(shop.clone(), goal.clone(), instruction.clone(), mode, 15);
        check(&env, "search_page", &pages["search_page"]);
        step(&mut env, "search[reclaimed wood console table]");
        check(&env, "results_page", &pages["results_page"]);
        step(&mut env, "click[B06Y3VLDFB]");
        check(&env, "item_page", &pages["item_page"]);
        step(&mut env, "click[description]");
        check(&env, "description_page", &pages["description_page"]);
        step(&mut env, "click[< prev]");
        check(&env, "item_page", &pages["item_page"]);
        step(&mut env, "click[features]");
        check(&env, "features_page", &pages["features_page"]);
        step(&mut env, "click[< prev]");
        let outcome = env.step("click[buy now]");
        assert!(outcome.done && outcome.won, "{outcome:?}");
        assert_eq!(outcome.reward, 1.0);
        check(&env, "done_page", &pages["done_page"]);
    }
}

/// The product the mock item page shows, read back from the page: each option name is a plain
/// line followed by its values as indented buttons, then the title.
fn mock_product(page: &Rendered) -> Product {
    let lines: Vec<&str> = page.text_rich.lines().collect();
    let start = lines.iter().position(|l| l.contains("< Prev")).unwrap() + 1;
    let mut options: Vec<(String, Vec<String>)> = Vec::new();
    let mut i = start;
    while let Some(value) = lines[i + 1].strip_prefix("  [button] ") {
        let mut values = vec![value.trim_end_matches(" [button_]").to_string()];
        let name = lines[i].to_string();
        i += 2;
        while let Some(v) = lines[i].strip_prefix("  [button] ") {
            values.push(v.trim_end_matches(" [button_]").to_string());
            i += 1;
        }
        options.push((name, values));
    }
    Product {
        asin: "B0MOCKSHOE".to_string(),
        name: lines[i].to_string(),
        category: "fashion".to_string(),
        query: "shoes".to_string(),
        product_category: String::new(),
        description: String::new(),
        bullets: Vec::new(),
        // WebShop prices a product without pricing at $100.0.
        pricing: Vec::new(),
        price: 100.0,
        options,
        attributes: Vec::new(),
    }
}

#[test]
fn an_item_page_with_options_matches_webshop_in_both_modes() {
    let pages = pages();
    let page = &pages[MOCK];
    let product = mock_product(page);
    assert_eq!(product.options.len(), 2, "color and size");
    let title_word = product.name.split(' ').nth(3).unwrap().to_lowercase();
    let shop = Arc::new(Shop::new(Catalogue::new(vec![product])));
    let goal = Goal {
        asin: "B0MOCKSHOE".to_string(),
        attributes: Vec::new(),
        options: Vec::new(),
        price_upper: 50.0,
    };
    for mode in [TextMode::Rich, TextMode::Simple] {
        let mut env = ShopEnv::new(shop.clone(), goal.clone(), instruction(page), mode, 15);
        step(&mut env, &format!("search[{title_word}]"));
        step(&mut env, "click[b0mockshoe]");
        check(&env, MOCK, page);
    }
}

#[test]
fn the_done_page_prints_the_fields_the_template_takes() {
    let pages = pages();
    // The live environment's case: only the ASIN, options and reward, as WebShop passes them.
    let live = DonePage {
        asin: "B06Y3VLDFB".to_string(),
        reward: 1.0,
        ..DonePage::default()
    };
    assert_eq!(
        render(&live.nodes(), TextMode::Rich),
        pages["done_page"].text_rich
    );
    assert_eq!(
        render(&live.nodes(), TextMode::Simple),
        pages["done_page"].text_simple
    );

    // Every field given, as WebShop's human-session server fills them.
    let full = DonePage {
        asin: "B06Y3VLDFB".to_string(),
        options: vec![("size".to_string(), "large".to_string())],
        reward: 0.5,
        mturk_code: Some("ABCDEF".to_string()),
        purchased_attrs: Some("['solid wood']".to_string()),
        category: Some("garden".to_string()),
        query: Some("console tables".to_string()),
        product_category: Some("Home & Kitchen".to_string()),
        goal: Some(DoneGoal {
            asin: "B06Y3VLDFB".to_string(),
            goal_options: "[]".to_string(),
            attributes: "['solid wood']".to_string(),
            price_upper: "900.0".to_string(),
            instruction_text: "a console table".to_string(),
            category: "garden".to_string(),
            product_category: "Home & Kitchen".to_string(),
            query: "console tables".to_string(),
            pprint: "{'asin': 'B06Y3VLDFB'}".to_string(),
        }),
        reward_info: Some("{'r_type': 1.0}".to_string()),
    };
    let text = render(&full.nodes(), TextMode::Simple);
    assert!(
        text.starts_with(
            "Thank you for shopping with us! [SEP] Your code: [SEP] ABCDEF [SEP] (Paste it in \
             your MTurk interface.) [SEP] Purchased [SEP] asin [SEP] B06Y3VLDFB [SEP] options \
             [SEP] {\"size\": \"large\"} [SEP] attrs [SEP] ['solid wood'] [SEP] category [SEP] \
             garden [SEP] query [SEP] console tables [SEP] product category [SEP] Home & Kitchen \
             [SEP] Target [SEP] asin [SEP] B06Y3VLDFB [SEP] options [SEP] [] [SEP] attrs"
        ),
        "{text}"
    );
    assert!(
        text.ends_with(
            "query [SEP] console tables [SEP] Goal [SEP] {'asin': 'B06Y3VLDFB'} [SEP] Reward \
             [SEP] Your score (min 0.0, max 1.0) [SEP] 0.5 [SEP] Reward Details [SEP] \
             {'r_type': 1.0}"
        ),
        "{text}"
    );
}
