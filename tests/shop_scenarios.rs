//! Shop scenario files: the shipped catalogue and goals are exactly the generator's output, the
//! splits share no goal product, every goal has products competing with it, and a malformed
//! file gets its problems located.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use leap::env::shop::generate::{self, SHIPPED_COUNTS, SHIPPED_SEED};
use leap::env::shop::scenario::{self as shop_scenario, ShopWorld};
use leap::env::shop::{Goal, Product};
use leap::scenario::{self, Split};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn data() -> PathBuf {
    root().join(generate::DEFAULT_DATA)
}

fn shipped(split: Split) -> Vec<scenario::Scenario> {
    scenario::load_all(&[root().join("scenarios/shop").join(split.as_str())])
        .unwrap_or_else(|p| panic!("{p}"))
}

/// The files of a folder, by name, with their text.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| {
                    let path = e.unwrap().path();
                    let name = path.file_name().unwrap().to_string_lossy().into_owned();
                    (name, std::fs::read_to_string(&path).unwrap())
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Rewrites the shipped files from the generator (`LEAP_BLESS=1`): the scenarios name no
/// catalogue, as they play on the shipped one.
fn bless() {
    let set = generate::shop(&data(), SHIPPED_SEED).unwrap();
    std::fs::write(
        root().join("assets/shop/catalogue.json"),
        set.catalogue.to_json(),
    )
    .unwrap();
    for (split, count) in SHIPPED_COUNTS {
        let dir = root().join("scenarios/shop").join(split.as_str());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let world = ShopWorld::default();
        for g in generate::scenarios(&set, &world, count, SHIPPED_SEED, split).unwrap() {
            std::fs::write(dir.join(format!("{}.yaml", g.id)), g.yaml).unwrap();
        }
    }
}

#[test]
fn shipped_files_are_exactly_what_the_generator_makes() {
    let set = generate::shop(&data(), SHIPPED_SEED).unwrap();
    let catalogue = std::fs::read_to_string(root().join("assets/shop/catalogue.json")).unwrap();
    let mut stale = catalogue != set.catalogue.to_json();
    let tmp = tempfile::tempdir().unwrap();
    for (split, count) in SHIPPED_COUNTS {
        let out = tmp.path().join(split.as_str());
        generate::write_shop(&data(), &out, count, SHIPPED_SEED, split).unwrap();
        let on_disk = files(&root().join("scenarios/shop").join(split.as_str()));
        let made = files(&out);
        if on_disk != made {
            stale = true;
            let names = |f: &[(String, String)]| -> BTreeSet<String> {
                f.iter().map(|(n, _)| n.clone()).collect()
            };
            eprintln!(
                "scenarios/shop/{}: {} files on disk, {} generated, {} differ by name",
                split.as_str(),
                on_disk.len(),
                made.len(),
                names(&on_disk).symmetric_difference(&names(&made)).count()
            );
        }
    }
    if stale {
        if std::env::var_os("LEAP_BLESS").is_some() {
            bless();
        }
        panic!(
            "the shipped shop files differ from the generator's output: run `LEAP_BLESS=1 cargo test --test shop_scenarios shipped`, then rebuild (the binary embeds the catalogue)"
        );
    }
    assert!(
        catalogue.len() < 5_000_000,
        "the catalogue has grown to {} bytes",
        catalogue.len()
    );
}

#[test]
fn shipped_sets_load_and_are_large_enough() {
    let all =
        scenario::load_all(&[root().join("scenarios/shop")]).unwrap_or_else(|p| panic!("{p}"));
    let train = shipped(Split::Train);
    let test = shipped(Split::Test);
    assert_eq!(all.len(), train.len() + test.len());
    assert!(train.len() >= 500, "train has {}", train.len());
    assert!(test.len() >= 100, "test has {}", test.len());
    for (set, split) in [(&train, Split::Train), (&test, Split::Test)] {
        let mut categories = BTreeSet::new();
        for s in set.iter() {
            assert_eq!(
                s.split,
                split,
                "{} sits in the {} folder",
                s.id,
                split.as_str()
            );
            assert_eq!(s.kind().as_str(), "shop");
            assert_eq!(s.horizon, 15);
            let body = shop_scenario::body(s).unwrap();
            assert_eq!(s.body.task_type(), body.gold().category);
            // WebShop's limit: a multiple of ten written into the instruction, or none at all.
            let limit = body.task.goal.price_upper;
            let clause = format!(", and price lower than {limit:.2} dollars");
            if limit == 1_000_000.0 {
                assert!(!s.task.contains("price lower than"), "{}: {}", s.id, s.task);
            } else {
                assert!(s.task.ends_with(&clause), "{}: {}", s.id, s.task);
                assert_eq!(limit % 10.0, 0.0, "{}", s.id);
                assert!(body.gold().price < limit, "{}", s.id);
            }
            categories.insert(s.body.task_type().to_string());
        }
        assert_eq!(
            categories,
            ["beauty", "electronics", "fashion", "garden", "grocery"]
                .map(String::from)
                .into(),
            "{} covers every WebShop category",
            split.as_str()
        );
    }
}

#[test]
fn no_test_goal_product_is_a_train_goal_product() {
    let products = |split| -> HashSet<String> {
        shipped(split)
            .iter()
            .map(|s| shop_scenario::body(s).unwrap().task.goal.asin.clone())
            .collect()
    };
    let train = products(Split::Train);
    let test = products(Split::Test);
    assert!(test.len() >= 100, "{} test products", test.len());
    let shared: Vec<&String> = train.intersection(&test).collect();
    assert!(shared.is_empty(), "in both splits: {shared:?}");
}

/// Whether `p` carries attribute `a` as the reward's substring test sees it: in its attribute
/// list, title, bullets or description.
fn has_attribute(p: &Product, a: &str) -> bool {
    p.attributes.iter().any(|x| x == a)
        || [p.name.as_str(), p.description.as_str()]
            .into_iter()
            .chain(p.bullets.iter().map(String::as_str))
            .any(|t| t.to_lowercase().contains(a))
}

/// A product of the goal's type that falls short on exactly one of: one option value, one
/// attribute, the price.
fn competes(p: &Product, goal: &Goal, gold: &Product) -> bool {
    if p.asin == gold.asin || p.query != gold.query {
        return false;
    }
    let values: HashSet<&String> = p.options.iter().flat_map(|(_, v)| v).collect();
    let lacking_options = goal.options.iter().filter(|o| !values.contains(o)).count();
    let lacking_attributes = goal
        .attributes
        .iter()
        .filter(|a| !has_attribute(p, a))
        .count();
    let over = p.price > goal.price_upper;
    lacking_options + lacking_attributes + usize::from(over) == 1
}

#[test]
fn every_goal_has_near_misses_in_the_catalogue() {
    let mut kinds = [0usize; 3];
    for split in [Split::Train, Split::Test] {
        for s in shipped(split) {
            let body = shop_scenario::body(&s).unwrap();
            let (goal, gold) = (&body.task.goal, body.gold());
            let rivals: Vec<&Product> = body
                .shop()
                .catalogue
                .products()
                .iter()
                .filter(|p| competes(p, goal, gold))
                .collect();
            assert!(
                rivals.len() >= 2,
                "{}: {} near misses for {}",
                s.id,
                rivals.len(),
                gold.asin
            );
            for p in rivals {
                let i = if p.price > goal.price_upper {
                    2
                } else if goal.attributes.iter().all(|a| has_attribute(p, a)) {
                    0
                } else {
                    1
                };
                kinds[i] += 1;
            }
        }
    }
    // All three ways of missing occur, each many times.
    assert!(
        kinds.iter().all(|&n| n >= 100),
        "option, attribute, price: {kinds:?}"
    );
}

#[test]
fn the_generator_is_deterministic_for_a_seed() {
    let a = generate::shop(&data(), 7).unwrap();
    let b = generate::shop(&data(), 7).unwrap();
    let c = generate::shop(&data(), 8).unwrap();
    assert_eq!(a.catalogue.products(), b.catalogue.products());
    assert_eq!(a.train, b.train);
    assert_ne!(a.train, c.train);
    // The split is the ASIN's, whatever the seed.
    let products = |set: &generate::ShopSet, split| -> HashSet<String> {
        set.goals(split)
            .iter()
            .map(|t| t.goal.asin.clone())
            .collect()
    };
    assert!(products(&a, Split::Train).is_disjoint(&products(&c, Split::Test)));
}

#[test]
fn the_cli_generates_loadable_scenarios_with_their_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    assert_cmd::Command::cargo_bin("leap")
        .unwrap()
        .args([
            "scenarios",
            "generate",
            "shop",
            "--count",
            "6",
            "--seed",
            "3",
            "--split",
            "test",
        ])
        .arg("--data")
        .arg(data())
        .arg("--out")
        .arg(dir.path())
        .assert()
        .success();
    let loaded = scenario::load_all(&[dir.path().to_path_buf()]).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(loaded.len(), 6);
    for s in &loaded {
        let body = shop_scenario::body(s).unwrap();
        assert_eq!(body.world.catalogue.as_deref(), Some("catalogue.json"));
        assert_eq!(s.split, Split::Test);
    }
    assert!(dir.path().join("catalogue.json").exists());
}

#[test]
fn a_synthetic_catalogue_reaches_the_benchmarks_size() {
    let c = generate::synthetic_catalogue(100_000, 1);
    assert_eq!(c.len(), 100_000);
    let asins: HashSet<&str> = c.products().iter().map(|p| p.asin.as_str()).collect();
    assert_eq!(asins.len(), 100_000, "ASINs are unique");
    assert!(
        c.products()
            .iter()
            .all(|p| !p.options.is_empty() && !p.query.is_empty())
    );
}

// Bad input: every problem is located in the file, with what was expected.

/// A three-product catalogue: two sofas and a lamp.
const TINY: &str = r#"[
  {"asin": "B000000001", "name": "Grey Linen Sofa with Wood Frame", "category": "garden",
   "query": "sofas and couches", "product_category": "Home & Kitchen › Furniture › Sofas",
   "full_description": "A sofa.", "small_description": ["Wood frame"], "pricing": "$300.00",
   "customization_options": {"Color": [{"value": "Grey"}, {"value": "Navy"}]},
   "attributes": ["wood frame"]},
  {"asin": "B000000002", "name": "Navy Linen Sofa", "category": "garden",
   "query": "sofas and couches", "product_category": "Home & Kitchen › Furniture › Sofas",
   "full_description": "Another sofa.", "small_description": ["Metal legs"], "pricing": "$250.00",
   "customization_options": {"Color": [{"value": "Navy"}]}, "attributes": ["metal legs"]},
  {"asin": "B000000003", "name": "Brass Floor Lamp", "category": "garden",
   "query": "floor lamps", "product_category": "Home & Kitchen › Lighting",
   "full_description": "A lamp.", "small_description": [], "pricing": "$40.00",
   "customization_options": "", "attributes": ["brass finish"]}
]"#;

const GOOD: &str = "\
id: sofa
kind: shop
split: train
task:
  text: i need a grey sofa with a wood frame, and price lower than 320.00 dollars
  goal:
    asin: B000000001
    attributes: [wood frame]
    options: [grey]
    price_upper: 320.0
horizon: 15
world:
  catalogue: tiny.json
";

/// Loads `text` as `s.yaml` in a folder holding `tiny.json`; the problems as printed, with the
/// folder written `DIR`.
fn problems(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.json"), TINY).unwrap();
    let file = dir.path().join("s.yaml");
    let prefix = dir.path().display().to_string();
    scenario::parse_text(&file, text)
        .problems
        .iter()
        .map(|p| p.to_string().replace(&prefix, "DIR"))
        .collect()
}

#[test]
fn a_good_shop_scenario_plays_on_its_own_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.json"), TINY).unwrap();
    let loaded = scenario::parse_text(&dir.path().join("s.yaml"), GOOD);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let s = &loaded.scenarios[0];
    assert_eq!(
        s.task,
        "i need a grey sofa with a wood frame, and price lower than 320.00 dollars"
    );
    assert_eq!(s.body.task_type(), "garden");
    assert_eq!(
        s.body.hint(),
        "Hidden goal: attributes wood frame; options grey; price lower than 320.00 dollars; a product that satisfies all of them: Grey Linen Sofa with Wood Frame."
    );
    let preview = s.body.preview();
    assert_eq!(preview.title, "Shop");
    assert_eq!(preview.lines[0], "  catalogue: tiny.json (3 products)");
    assert_eq!(
        preview.notes[0],
        "goal product: B000000001 Grey Linen Sofa with Wood Frame"
    );
    let env = s.body.env(s.horizon);
    assert_eq!(env.task(), s.task);
}

#[test]
fn an_unknown_product_is_located_with_a_suggestion() {
    let p = problems(&GOOD.replace("asin: B000000001", "asin: B000000011"));
    assert_eq!(
        p,
        vec![
            "DIR/s.yaml:7:11: unknown product `B000000011` (did you mean `B000000001`?), expected the ASIN of a product in tiny.json (3 products)"
        ]
    );
}

#[test]
fn an_option_value_the_product_lacks_is_located_with_its_values() {
    let p = problems(&GOOD.replace("options: [grey]", "options: [grey, red]"));
    assert_eq!(
        p,
        vec![
            "DIR/s.yaml:9:21: product B000000001 has no option value `red`, expected one of its values (color: grey, navy)"
        ]
    );
    let lamp = GOOD
        .replace("asin: B000000001", "asin: B000000003")
        .replace("attributes: [wood frame]", "attributes: [brass finish]");
    let p = problems(&lamp);
    assert_eq!(
        p,
        vec![
            "DIR/s.yaml:9:15: product B000000003 has no option value `grey`, it has no options, so expected no `options`"
        ]
    );
}

#[test]
fn a_price_limit_below_every_matching_product_is_located() {
    let p = problems(&GOOD.replace("price_upper: 320.0", "price_upper: 260.0"));
    assert_eq!(
        p,
        vec![
            "DIR/s.yaml:10:18: price limit 260.00 is below every product that matches the goal (the cheapest, B000000001, costs 300.00), expected a limit some matching product meets"
        ]
    );
}

#[test]
fn unknown_fields_are_located() {
    let p = problems(&GOOD.replace(
        "  catalogue: tiny.json",
        "  catalogue: tiny.json\n  colour: red",
    ));
    assert_eq!(
        p,
        vec!["DIR/s.yaml:14:3: unknown field `colour`, expected `catalogue` or `text`"]
    );
    let p = problems(&GOOD.replace(
        "    price_upper: 320.0",
        "    price_upper: 320.0\n    brand: acme",
    ));
    assert_eq!(
        p,
        vec![
            "DIR/s.yaml:11:5: unknown field `brand`, expected one of `asin`, `attributes`, `options`, `price_upper`"
        ]
    );
}

#[test]
fn a_missing_catalogue_file_is_located() {
    let p = problems(&GOOD.replace("catalogue: tiny.json", "catalogue: none.json"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(
            "DIR/s.yaml:13:14: cannot read the catalogue `none.json` (DIR/none.json): No such file or directory"
        ),
        "{p:?}"
    );
    assert!(
        p[0].ends_with("expected a product file relative to the scenario file"),
        "{p:?}"
    );
}

#[test]
fn a_catalogue_that_is_not_a_product_file_is_located() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.json"), r#"[{"name": "no asin"}]"#).unwrap();
    let file = dir.path().join("s.yaml");
    let text = GOOD.replace("catalogue: tiny.json", "catalogue: bad.json");
    let p: Vec<String> = scenario::parse_text(&file, &text)
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(&format!(
            "{}:13:14: the catalogue `bad.json` is not a product file in WebShop's format: at [0]: missing field `asin`",
            file.display()
        )),
        "{p:?}"
    );
}
