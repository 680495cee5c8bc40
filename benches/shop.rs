//! Shop search and environment throughput, no model: index build time and per-query latency
//! (p50, p99) over the shipped catalogue and over a generated 100,000-product one, with queries
//! made from WebShop's own goal instructions; then steps per second for whole episodes (search,
//! open the first result, back to search, again) on the shipped catalogue.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use leap::env::Environment;
use leap::env::shop::{Catalogue, Goal, SearchIndex, Shop, ShopEnv, TextMode, generate};

/// What the environment asks for: WebShop's 50 results.
const TOP: usize = 50;
const SYNTHETIC: usize = 100_000;
const SEED: u64 = 7;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let queries = queries(&root.join("tests/data/webshop/items_ins_v2_1000.json"));
    let shipped = Catalogue::read(&root.join("assets/shop/catalogue.json"))
        .expect("the shipped catalogue reads");
    let shipped_name = "shipped (assets/shop/catalogue.json)".to_string();
    let synthetic = generate::synthetic_catalogue(SYNTHETIC, SEED);

    println!(
        "shop search, {} queries from WebShop's instructions, top {TOP}, 1 thread:",
        queries.len()
    );
    println!(
        "  {:<40} {:>8} {:>10} {:>9} {:>9} {:>9} {:>6}",
        "catalogue", "products", "build", "p50", "p99", "max", "hits"
    );
    measure(&shipped_name, &shipped, &queries);
    let p99 = measure(&format!("generated (seed {SEED})"), &synthetic, &queries);
    println!(
        "  target p99 < 2 ms at {SYNTHETIC} products: {}",
        if p99 < Duration::from_millis(2) {
            "met"
        } else {
            "NOT met"
        }
    );

    let rate = episodes(shipped, &queries);
    println!(
        "shop env, episodes of search / click the first result / back to search, 1 thread:\n  \
         step + observation: {rate:>12.0} steps/s"
    );
}

/// The instructions of WebShop's goals, lowercased, without their "find me" lead-in.
fn queries(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("the instructions read");
    let items: serde_json::Value = serde_json::from_str(&text).expect("the instructions parse");
    let mut queries: Vec<String> = items
        .as_object()
        .expect("an object keyed by ASIN")
        .values()
        .filter_map(|item| item.get("instruction")?.as_str())
        .map(|i| {
            let i = i.to_lowercase();
            i.strip_prefix("find me ").unwrap_or(&i).to_string()
        })
        .collect();
    queries.sort();
    queries
}

/// Builds the index, then runs every query until at least a second has passed (and at least
/// three rounds), timing each search; prints a row and returns the p99.
fn measure(name: &str, catalogue: &Catalogue, queries: &[String]) -> Duration {
    let start = Instant::now();
    let index = SearchIndex::new(catalogue);
    let build = start.elapsed();

    for q in queries {
        black_box(index.search(q, TOP));
    }
    let mut times = Vec::new();
    let mut hits = 0usize;
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < 3 || start.elapsed() < Duration::from_secs(1) {
        for q in queries {
            let t = Instant::now();
            let found = black_box(index.search(q, TOP));
            times.push(t.elapsed());
            hits += found.len();
        }
        rounds += 1;
    }
    times.sort();
    let at = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "  {:<40} {:>8} {:>10} {:>9} {:>9} {:>9} {:>6.1}",
        name,
        catalogue.len(),
        format!("{:.1?}", build),
        format!("{:.1?}", at(0.50)),
        format!("{:.1?}", at(0.99)),
        format!("{:.1?}", times[times.len() - 1]),
        hits as f64 / times.len() as f64,
    );
    at(0.99)
}

/// Steps per second over whole episodes: each query is searched, its first result opened, and
/// the shopper goes back to search, until the horizon ends the episode.
fn episodes(catalogue: Catalogue, queries: &[String]) -> f64 {
    let first = catalogue.products()[0].clone();
    let shop = Arc::new(Shop::new(catalogue));
    let goal = Goal {
        asin: first.asin.clone(),
        attributes: first.attributes.clone(),
        options: Vec::new(),
        price_upper: first.price * 2.0,
    };
    let mut env = ShopEnv::new(
        shop.clone(),
        goal,
        "i am looking for a console table, and price lower than 1000.00 dollars".to_string(),
        TextMode::Rich,
        15,
    );
    // Each query's moves, worked out once: the first result is what the results page lists.
    let moves: Vec<[String; 3]> = queries
        .iter()
        .map(|q| {
            let open = match shop.index.search(q, 1).first() {
                Some(&i) => shop.catalogue.products()[i].asin.to_lowercase(),
                None => "next >".to_string(),
            };
            [
                format!("search[{q}]"),
                format!("click[{open}]"),
                "click[back to search]".to_string(),
            ]
        })
        .collect();

    let mut steps = 0u64;
    let mut query = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        env.reset();
        'episode: loop {
            for action in &moves[query % moves.len()] {
                let outcome = env.step(action);
                black_box(env.observation());
                steps += 1;
                if outcome.done {
                    break 'episode;
                }
            }
            query += 1;
        }
        query += 1;
    }
    steps as f64 / start.elapsed().as_secs_f64()
}
