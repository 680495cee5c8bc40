//! The shop's expert: informed by the goal (privilege 1) it buys the goal's product with the
//! goal's options for the whole reward; limited to the pages (privilege 0) it shops from the
//! instruction alone and never names the goal's product before a page shows it.

use std::path::PathBuf;
use std::sync::Arc;

use leap::env::shop::{Catalogue, Goal, GuidedShop, Product, Shop, ShopEnv, TextMode};
use leap::env::{Environment, Fact, Guided};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/webshop")
        .join(name)
}

fn shoe(asin: &str, name: &str, price: f64, colors: &[&str]) -> Product {
    Product {
        asin: asin.to_string(),
        name: name.to_string(),
        category: "fashion".to_string(),
        query: "women's flats".to_string(),
        product_category: "Clothing, Shoes & Jewelry › Women › Shoes › Flats".to_string(),
        description: "Comfortable walking shoes.".to_string(),
        bullets: vec!["Rubber sole".to_string()],
        pricing: vec![price],
        price,
        options: vec![
            (
                "color".to_string(),
                colors.iter().map(|c| c.to_string()).collect(),
            ),
            (
                "size".to_string(),
                ["6.5", "7.5", "8", "8.5", "9"].map(String::from).to_vec(),
            ),
        ],
        attributes: vec!["rubber sole".to_string()],
    }
}

/// The two real products, and shoes that compete on colour and price.
fn shop() -> Arc<Shop> {
    let mut products = Catalogue::read(&data("products_sample2.json"))
        .expect("sample catalogue")
        .products()
        .to_vec();
    products.extend([
        shoe(
            "B0SHOE0001",
            "PMUYBHF Womens Fashion Flat Shoes Comfortable Running Shoes Sneakers",
            99.0,
            &["black", "purple", "red"],
        ),
        shoe(
            "B0SHOE0002",
            "Womens Canvas Sneakers Slip On",
            45.0,
            &["white", "navy | white"],
        ),
        shoe(
            "B0SHOE0003",
            "Womens Flat Running Shoes Leather Sneakers Red",
            180.0,
            &["red"],
        ),
    ]);
    Arc::new(Shop::new(Catalogue::new(products)))
}

/// (goal, instruction) of every episode over the shop.
fn episodes() -> Vec<(Goal, String)> {
    let goal = |asin: &str, attributes: &[&str], options: &[&str], price_upper: f64| Goal {
        asin: asin.to_string(),
        attributes: attributes.iter().map(|a| a.to_string()).collect(),
        options: options.iter().map(|o| o.to_string()).collect(),
        price_upper,
    };
    vec![
        (
            goal("B06Y3VLDFB", &["solid wood"], &[], 900.0),
            "i am looking for a console table made of solid wood, and price lower than 900.00 \
             dollars"
                .to_string(),
        ),
        (
            goal("B09DG92LJL", &["bottom shelf"], &[], 600.0),
            "i need a rustic entryway console table with drawers and a bottom shelf, and price \
             lower than 600.00 dollars"
                .to_string(),
        ),
        (
            goal("B0SHOE0001", &["rubber sole"], &["red", "8"], 110.0),
            "i want womens flat running shoes with a rubber sole in red, size 8, and price \
             lower than 110.00 dollars"
                .to_string(),
        ),
    ]
}

/// The goal's product's ASIN, from the privileged facts.
fn gold_asin(g: &dyn Guided) -> String {
    g.privileged()
        .facts
        .iter()
        .find(|f| f.subject == "matching product asin")
        .expect("a matching product asin fact")
        .detail
        .clone()
}

/// Plays the expert at `privileged` to the end; returns the actions, the reasons and the last
/// outcome's reward. Checks on the way that no reason names the goal's product's ASIN before an
/// observation showed it.
fn play(g: &mut dyn Guided, privileged: bool) -> (Vec<String>, f32) {
    let gold = gold_asin(g);
    let mut seen = g.task().to_string() + g.observation();
    let mut actions = Vec::new();
    let mut reward = 0.0;
    while let Some(advice) = g.advise(privileged) {
        assert_eq!(advice.privileged, privileged);
        if !seen.contains(&gold) {
            assert!(
                !advice.reason.to_uppercase().contains(&gold)
                    && !advice.action.to_uppercase().contains(&gold),
                "{gold} named before it was shown: {advice:?}"
            );
        }
        assert!(
            g.admissible().contains(&advice.action)
                || (advice.action.starts_with("search[") && g.admissible() == ["search[...]"]),
            "{} is not admissible in {:?}",
            advice.action,
            g.admissible()
        );
        let outcome = g.step(&advice.action);
        actions.push(advice.action);
        seen.push_str(g.observation());
        reward = outcome.reward;
        if outcome.done {
            break;
        }
    }
    (actions, reward)
}

#[test]
fn the_informed_expert_buys_the_goals_product_for_the_whole_reward() {
    let shop = shop();
    for (goal, instruction) in episodes() {
        let env = ShopEnv::new(shop.clone(), goal.clone(), instruction, TextMode::Rich, 15);
        let mut g = GuidedShop::new(env);
        let plan = g.plan().expect("a plan");
        let (actions, reward) = play(&mut g, true);
        assert_eq!(
            actions, plan,
            "{}: the plan is what the expert does",
            goal.asin
        );
        assert!(g.won() && reward == 1.0, "{}: reward {reward}", goal.asin);
        assert_eq!(g.plan(), Some(Vec::new()));
        assert!(actions[0].starts_with("search["));
        assert!(
            !actions[0].to_uppercase().contains(&goal.asin),
            "{} searched by ASIN",
            goal.asin
        );
        for option in &goal.options {
            assert!(
                actions.contains(&format!("click[{option}]")),
                "{}: chose {option}",
                goal.asin
            );
        }
    }
}

#[test]
fn the_informed_expert_recovers_from_anywhere() {
    let shop = shop();
    let (goal, instruction) = episodes().remove(2);
    let env = ShopEnv::new(shop, goal, instruction, TextMode::Simple, 15);
    let mut g = GuidedShop::new(env);
    // A wrong product with a wrong option, its description open.
    for action in [
        "search[canvas sneakers]",
        "click[b0shoe0002]",
        "click[white]",
        "click[description]",
    ] {
        g.step(action);
    }
    let (actions, reward) = play(&mut g, true);
    assert_eq!(reward, 1.0, "{actions:?}");
    assert!(g.won());
}

#[test]
fn the_privileged_state_is_the_goal_and_its_product() {
    let shop = shop();
    let (goal, instruction) = episodes().remove(2);
    let g = GuidedShop::new(ShopEnv::new(shop, goal, instruction, TextMode::Rich, 15));
    let fact = |subject: &str, detail: &str| Fact {
        subject: subject.to_string(),
        relation: "is".to_string(),
        detail: detail.to_string(),
    };
    let privileged = g.privileged();
    assert_eq!(
        privileged.facts,
        [
            fact("goal attribute", "rubber sole"),
            fact("goal option", "red"),
            fact("goal option", "8"),
            fact("price limit", "110.00 dollars"),
            fact(
                "matching product",
                "PMUYBHF Womens Fashion Flat Shoes Comfortable Running Shoes Sneakers"
            ),
            fact("matching product asin", "B0SHOE0001"),
        ]
    );
    assert_eq!(privileged.plan, g.plan());
    let vars = g.teacher_vars(&privileged);
    assert_eq!(vars.get_attr("page").unwrap().to_string(), "search");
    let last = vars
        .get_attr("facts")
        .unwrap()
        .get_item_by_index(5)
        .unwrap();
    assert_eq!(
        [0, 1].map(|i| last.get_item_by_index(i).unwrap().to_string()),
        ["matching product asin", "B0SHOE0001"]
    );
    assert_eq!(
        vars.get_attr("plan").unwrap().len(),
        privileged.plan.as_ref().map(Vec::len)
    );
}

#[test]
fn the_observing_expert_shops_from_the_instruction_alone() {
    let shop = shop();
    let mut rewards = Vec::new();
    for (goal, instruction) in episodes() {
        for mode in [TextMode::Rich, TextMode::Simple] {
            let env = ShopEnv::new(shop.clone(), goal.clone(), instruction.clone(), mode, 15);
            let mut g = GuidedShop::new(env);
            let (actions, reward) = play(&mut g, false);
            assert!(
                actions.last().is_some_and(|a| a == "click[buy now]") || g.steps_taken() == 15,
                "{}: {actions:?}",
                goal.asin
            );
            rewards.push(reward);
        }
    }
    // The shoes: the red option and size 8 named in the instruction, the cheaper canvas shoe
    // without red, and the red leather one over the price.
    let (goal, instruction) = episodes().remove(2);
    let mut g = GuidedShop::new(ShopEnv::new(shop, goal, instruction, TextMode::Rich, 15));
    let (actions, _) = play(&mut g, false);
    assert!(actions.contains(&"click[red]".to_string()), "{actions:?}");
    assert!(actions.contains(&"click[8]".to_string()), "{actions:?}");
    assert!(
        !actions.contains(&"click[buy now]".to_string()) || g.env().reward().is_some(),
        "bought"
    );
    assert!(rewards.iter().all(|r| (0.0..=1.0).contains(r)));
}

/// Shipped shop scenarios, when this checkout has them: the informed expert wins every one;
/// the observing one plays each to a purchase or the horizon, naming nothing unseen.
#[test]
fn the_experts_play_every_shipped_shop_scenario() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/shop");
    if !dir.exists() {
        return;
    }
    let scenarios = leap::scenario::load_all(&[dir]).expect("shipped shop scenarios load");
    assert!(!scenarios.is_empty());
    for s in &scenarios {
        let mut g = s.body.guided(s.horizon);
        let (actions, reward) = play(g.as_mut(), true);
        assert!(
            g.won() && reward == 1.0,
            "{}: reward {reward} after {actions:?}",
            s.id
        );
        let mut g = s.body.guided(s.horizon);
        let (actions, _) = play(g.as_mut(), false);
        assert!(
            actions.last().is_some_and(|a| a == "click[buy now]") || g.steps_taken() == s.horizon,
            "{}: {actions:?}",
            s.id
        );
    }
}
