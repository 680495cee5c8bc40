//! The shop's generator: a catalogue and goals built from WebShop's real product data.
//!
//! Input (a WebShop data folder, `tests/data/webshop` in a clone): `items_ins_v2_1000.json`, the
//! attribute lists of WebShop's 1,000-product catalogue keyed by ASIN, 415 of them with an
//! instruction ("Find me easy carry, high quality refillable containers with rose gold") that
//! names the product type (WebShop's search query), and `products_sample2.json`, two full
//! products, which join the catalogue as they are (query lowercased, as WebShop's loader does).
//!
//! - **Types and categories.** An instruction's type is what is left once its attributes are
//!   taken off; `vocab::classify` gives its category and breadcrumb. The file lists products
//!   category by category, so a product without an instruction takes the category of the
//!   nearest one with one, and the type of that category whose products share most of its
//!   attributes (a random type of the category when none does).
//! - **Products.** One per ASIN: a made-up brand, a title of the type and attribute words, a
//!   description and one feature bullet per attribute, options drawn from the type's
//!   vocabulary (`vocab::option_vocabulary`), a price in the category's band (one in five a
//!   range).
//! - **Goals.** One per product with attributes (the two full products excepted), written the
//!   way WebShop's human goals are: the real instruction's wording when there is one, with up to
//!   two option values and `, and price lower than N dollars`, the limit drawn as WebShop's
//!   `get_human_goals` draws it (two of the four multiples of ten above the price, the larger).
//! - **Competition.** Each goal gets near misses: products of the same type sharing its title
//!   words that lack one goal option value, lack one goal attribute, or cost more than the
//!   limit. A goal with fewer than two is dropped.
//! - **Splits.** A goal is a test goal when its product's ASIN hashes into one fifth, whatever
//!   the seed, so no test goal's product is ever a train goal's.
//!
//! The seed fixes everything (catalogue and goals); `count` takes the first goals of a split in
//! the seed's order, so a smaller count gives a prefix of a larger one.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::normalize::normalize_color;
use super::scenario::{ShopTask, ShopWorld, Text, shipped_catalogue_text};
use super::vocab::{self, resembles, title_case};
use super::{Catalogue, Goal, Product};
use crate::scenario::Split;

/// Actions before a generated episode ends (LEAP's training rollouts).
pub const HORIZON: u32 = 15;
/// The seed of the shipped catalogue and scenarios.
pub const SHIPPED_SEED: u64 = 2025;
/// How many goals of each split are shipped.
pub const SHIPPED_COUNTS: [(Split, usize); 2] = [(Split::Train, 600), (Split::Test, 150)];
/// Where a clone keeps WebShop's data.
pub const DEFAULT_DATA: &str = "tests/data/webshop";

/// WebShop's price limits: multiples of ten up to 990.
const PRICE_RANGE: std::ops::RangeInclusive<u32> = 1..=99;
/// What WebShop's goals use when no limit applies.
const NO_LIMIT: f64 = 1_000_000.0;

/// A generated catalogue and its goals.
pub struct ShopSet {
    pub catalogue: Catalogue,
    pub train: Vec<ShopTask>,
    pub test: Vec<ShopTask>,
}

impl ShopSet {
    pub fn goals(&self, split: Split) -> &[ShopTask] {
        match split {
            Split::Train => &self.train,
            Split::Test => &self.test,
        }
    }
}

/// One entry of `items_ins_v2_1000.json`.
#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    attributes: Vec<String>,
    #[serde(default)]
    instruction: Option<String>,
    #[serde(default)]
    instruction_attributes: Vec<String>,
}

/// A real product before it is written out: where it sits and what it is.
struct Base {
    asin: String,
    category: &'static str,
    query: String,
    path: String,
    attributes: Vec<String>,
    /// The real instruction after "Find me ", and its attributes.
    instruction: Option<(String, Vec<String>)>,
}

fn invalid(path: &Path, message: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {message}", path.display()),
    )
}

fn read_items(path: &Path) -> io::Result<Vec<(String, Item)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    // JSON is YAML, and serde_yaml's mapping keeps the file's order (serde_json's sorts keys):
    // the order says which category a product without an instruction belongs to.
    let map: serde_yaml::Mapping = serde_yaml::from_str(&text).map_err(|e| invalid(path, e))?;
    map.into_iter()
        .map(|(k, v)| {
            let asin = k
                .as_str()
                .ok_or_else(|| invalid(path, "a key is not an ASIN"))?
                .to_string();
            let item: Item = serde_yaml::from_value(v).map_err(|e| invalid(path, e))?;
            Ok((asin, item))
        })
        .collect()
}

/// Whether `text` is nothing but `with`/`for` clauses of `attributes` (" with a, b for c").
fn is_clause_tail(text: &str, attributes: &[String]) -> bool {
    if text.is_empty() {
        return true;
    }
    let Some(list) = text
        .strip_prefix(" with ")
        .or_else(|| text.strip_prefix(" for "))
    else {
        return false;
    };
    is_attribute_list(list, attributes)
}

fn is_attribute_list(text: &str, attributes: &[String]) -> bool {
    attributes.iter().any(|a| {
        text.strip_prefix(a.as_str()).is_some_and(|rest| {
            rest.strip_prefix(", ")
                .is_some_and(|more| is_attribute_list(more, attributes))
                || is_clause_tail(rest, attributes)
        })
    })
}

/// The product type an instruction names: "Find me easy carry, high quality refillable
/// containers with rose gold" -> "refillable containers".
fn instruction_type(instruction: &str, attributes: &[String]) -> Option<String> {
    let mut rest = instruction.strip_prefix("Find me ")?.trim_end_matches('.');
    let mut by_length: Vec<&String> = attributes.iter().collect();
    by_length.sort_by_key(|a| std::cmp::Reverse(a.len()));
    'leading: loop {
        for a in &by_length {
            if let Some(after) = rest.strip_prefix(a.as_str())
                && let Some(after) = after.strip_prefix(", ").or_else(|| after.strip_prefix(' '))
            {
                rest = after;
                continue 'leading;
            }
        }
        break;
    }
    let cut = rest
        .match_indices(" with ")
        .chain(rest.match_indices(" for "))
        .map(|(i, _)| i)
        .filter(|&i| is_clause_tail(&rest[i..], attributes))
        .min()
        .unwrap_or(rest.len());
    let kind = rest[..cut].trim().to_lowercase();
    (!kind.is_empty()).then_some(kind)
}

/// The real products in file order, each with its category, type and breadcrumb.
fn bases(items: Vec<(String, Item)>, rng: &mut ChaCha8Rng) -> Vec<Base> {
    let mut out: Vec<Base> = Vec::with_capacity(items.len());
    let mut anchored: Vec<Option<&'static str>> = Vec::with_capacity(items.len());
    for (asin, item) in items {
        let instruction = item.instruction.as_deref().and_then(|text| {
            let kind = instruction_type(text, &item.instruction_attributes)?;
            let (category, path) = vocab::classify(&kind)?;
            let body = text["Find me ".len()..]
                .trim_end_matches('.')
                .to_lowercase();
            Some((kind, category, path, body))
        });
        anchored.push(instruction.as_ref().map(|(_, c, _, _)| *c));
        let (query, category, path, instruction) = match instruction {
            Some((kind, category, path, body)) => (
                kind,
                category,
                path,
                Some((body, item.instruction_attributes)),
            ),
            None => (String::new(), "", String::new(), None),
        };
        out.push(Base {
            asin,
            category,
            query,
            path,
            attributes: item.attributes,
            instruction,
        });
    }
    // The category of the nearest product with an instruction (the earlier one on a tie).
    let anchors: Vec<(usize, &'static str)> = anchored
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|c| (i, c)))
        .collect();
    for (i, base) in out.iter_mut().enumerate() {
        if base.category.is_empty() {
            base.category = anchors
                .iter()
                .min_by_key(|(j, _)| j.abs_diff(i))
                .map_or("garden", |(_, c)| c);
        }
    }
    // The types instructions name, in first-seen order, with how often each attribute occurs
    // among their products.
    let mut types: Vec<TypeInfo> = Vec::new();
    for base in out.iter().filter(|b| b.instruction.is_some()) {
        let at = match types.iter().position(|t| t.query == base.query) {
            Some(at) => at,
            None => {
                types.push(TypeInfo {
                    category: base.category,
                    query: base.query.clone(),
                    path: base.path.clone(),
                    counts: HashMap::new(),
                });
                types.len() - 1
            }
        };
        for a in &base.attributes {
            *types[at].counts.entry(a.clone()).or_default() += 1;
        }
    }
    for base in out.iter_mut().filter(|b| b.query.is_empty()) {
        let best = types.iter().fold(None, |best, t| {
            let score = t.score(&base.attributes);
            match best {
                Some((s, _)) if s >= score => best,
                _ => Some((score, t)),
            }
        });
        let chosen = match best {
            Some((s, t)) if s > 0 => Some(t),
            _ => {
                let same: Vec<&TypeInfo> = types
                    .iter()
                    .filter(|t| t.category == base.category)
                    .collect();
                same.choose(rng).copied()
            }
        };
        match chosen {
            Some(t) => {
                base.category = t.category;
                base.query = t.query.clone();
                base.path = t.path.clone();
            }
            None => {
                base.query = "products".to_string();
                base.path = vocab::category_root(base.category).to_string();
            }
        }
    }
    out
}

/// A product type an instruction names, and the attributes of its products.
struct TypeInfo {
    category: &'static str,
    query: String,
    path: String,
    counts: HashMap<String, usize>,
}

/// A word without its plural `s`, for comparing attribute words with type words.
fn stem(word: &str) -> &str {
    word.strip_suffix('s').unwrap_or(word)
}

impl TypeInfo {
    /// How well `attributes` fit this type: how often its products have them, and twice each
    /// attribute word that is the type's last word, its noun ("hdmi cable" for "hdmi cables",
    /// not "artificial flavors" for "artificial plants").
    fn score(&self, attributes: &[String]) -> usize {
        let noun = self.query.rsplit(' ').next().map(stem).unwrap_or_default();
        attributes
            .iter()
            .map(|a| {
                let shared = a.split(' ').filter(|w| stem(w) == noun).count();
                self.counts.get(a).copied().unwrap_or(0) + 2 * shared
            })
            .sum()
    }
}

const SYLLABLES: &[&str] = &[
    "ka", "lu", "mo", "ra", "vi", "ne", "so", "ta", "ri", "zen", "bel", "cor", "dan", "fi", "gra",
    "hel", "jo", "lin", "mar", "nov", "pra", "qui", "sel", "tor", "ul", "ver", "wyn", "xa", "yor",
    "zel", "ami", "oro", "ela", "ion",
];

/// A made-up brand: "Norali", sometimes in capitals as many shop brands are ("HSJWOSA").
fn brand(rng: &mut ChaCha8Rng) -> String {
    let n = rng.random_range(2..=3);
    let word: String = (0..n)
        .map(|_| *SYLLABLES.choose(rng).expect("syllables"))
        .collect();
    if rng.random_bool(0.15) {
        word.to_uppercase()
    } else {
        title_case(&word)
    }
}

const BASE36: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A fresh ASIN ("B0" and eight letters or digits) not in `taken`.
fn fresh_asin(rng: &mut ChaCha8Rng, taken: &mut HashSet<String>) -> String {
    loop {
        let tail: String = (0..8)
            .map(|_| BASE36[rng.random_range(0..BASE36.len())] as char)
            .collect();
        let asin = format!("B0{tail}");
        if taken.insert(asin.clone()) {
            return asin;
        }
    }
}

/// Cents, as WebShop's prices end (`$24.99`, `$18.0`).
fn round_price(x: f64, rng: &mut ChaCha8Rng) -> f64 {
    let ending = *[99u64, 95, 49, 0, 89].choose(rng).expect("endings");
    let whole = x.floor().max(1.0) as u64;
    (whole * 100 + ending) as f64 / 100.0
}

/// A price in the band of the product's category (furniture, lamps and home decor apart),
/// spread evenly on a log scale.
fn draw_price(category: &str, path: &str, rng: &mut ChaCha8Rng) -> f64 {
    let (lo, hi): (f64, f64) = match category {
        "beauty" => (5.0, 60.0),
        "grocery" => (4.0, 45.0),
        "electronics" => (12.0, 400.0),
        "fashion" => (9.0, 80.0),
        _ if path.contains("Furniture") => (60.0, 900.0),
        _ if path.contains("Lighting") => (25.0, 400.0),
        _ => (9.0, 120.0),
    };
    round_price(rng.random_range(lo.ln()..hi.ln()).exp(), rng)
}

const SENTENCES: &[&str] = &[
    "made to last through years of regular use",
    "checked by hand before it ships",
    "a thoughtful gift for family and friends",
    "simple to set up out of the box",
    "backed by a one-year warranty",
    "designed with care in small batches",
    "fits right into your routine",
    "sized and finished as pictured",
];

/// Everything a product's text is written from.
struct Draft<'a> {
    asin: String,
    brand: String,
    category: &'a str,
    query: &'a str,
    path: &'a str,
    attributes: Vec<String>,
    options: Vec<(String, Vec<String>)>,
    pricing: Vec<f64>,
    price: f64,
}

impl Draft<'_> {
    /// The product, its title, description and bullets written from the draft's words.
    fn write(self, rng: &mut ChaCha8Rng) -> Product {
        let kind = title_case(self.query);
        let mut words: Vec<&String> = self.attributes.iter().collect();
        words.shuffle(rng);
        let lead = words.first().map(|a| title_case(a));
        let rest: Vec<String> = words
            .iter()
            .skip(1)
            .take(2)
            .map(|a| title_case(a))
            .collect();
        let mut name = match &lead {
            Some(lead) => format!("{} {lead} {kind}", self.brand),
            None => format!("{} {kind}", self.brand),
        };
        if !rest.is_empty() {
            let joint = if rng.random_bool(0.5) { "with" } else { "for" };
            name.push_str(&format!(" {joint} {}", rest.join(", ")));
        }
        let described = match self.attributes.as_slice() {
            [] => String::new(),
            [one] => format!(" with {one}"),
            [many @ .., last] => format!(" with {} and {last}", many.join(", ")),
        };
        let description = format!(
            "The {} {}{described}. {}.",
            self.brand,
            self.query,
            capitalize(SENTENCES.choose(rng).expect("sentences"))
        );
        let mut bullets: Vec<String> = self
            .attributes
            .iter()
            .map(|a| {
                format!(
                    "{}: {} ",
                    a.to_uppercase(),
                    SENTENCES.choose(rng).expect("sentences")
                )
            })
            .collect();
        bullets.push(format!("What you get: one {} {} ", self.brand, self.query));
        Product {
            asin: self.asin,
            name,
            category: self.category.to_string(),
            query: self.query.to_string(),
            product_category: self.path.to_string(),
            description,
            bullets,
            pricing: self.pricing,
            price: self.price,
            options: self.options,
            attributes: self.attributes,
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A run of 3 to 6 values from an option vocabulary: a contiguous stretch for sizes (as shops
/// sell them), any few for the rest.
fn draw_values(name: &str, values: &[String], rng: &mut ChaCha8Rng) -> Vec<String> {
    let n = rng.random_range(3..=6).min(values.len());
    if matches!(name, "size" | "style") {
        let start = rng.random_range(0..=values.len() - n);
        values[start..start + n].to_vec()
    } else {
        let mut picked: Vec<usize> = rand::seq::index::sample(rng, values.len(), n).into_vec();
        picked.sort_unstable();
        picked.into_iter().map(|i| values[i].clone()).collect()
    }
}

/// The options of a new product of this type: every option name of its vocabulary, or (one
/// time in four) only the first.
fn draw_options(category: &str, query: &str, rng: &mut ChaCha8Rng) -> Vec<(String, Vec<String>)> {
    let vocabulary = vocab::option_vocabulary(category, query);
    let keep = if rng.random_bool(0.25) {
        1
    } else {
        vocabulary.len()
    };
    vocabulary
        .into_iter()
        .take(keep)
        .map(|(name, values)| (name.to_string(), draw_values(name, &values, rng)))
        .collect()
}

/// A single price, or one time in five a range with the price paid inside it.
fn draw_pricing(category: &str, path: &str, rng: &mut ChaCha8Rng) -> (Vec<f64>, f64) {
    let price = draw_price(category, path, rng);
    if rng.random_bool(0.2) {
        let hi = round_price(price * rng.random_range(1.2..1.8), rng).max(price + 1.0);
        let paid = round_price(rng.random_range(price..hi), rng).clamp(price, hi);
        (vec![price, hi], paid)
    } else {
        (vec![price], price)
    }
}

/// WebShop's price limit for a product of this price: two of the four multiples of ten above
/// it, the larger; no limit when fewer than two are left.
fn price_limit(price: f64, rng: &mut ChaCha8Rng) -> f64 {
    let above: Vec<f64> = PRICE_RANGE
        .map(|i| 10.0 * f64::from(i))
        .filter(|p| *p > price)
        .take(4)
        .collect();
    if above.len() < 2 {
        return NO_LIMIT;
    }
    let picked = rand::seq::index::sample(rng, above.len(), 2).into_vec();
    picked.into_iter().map(|i| above[i]).fold(0.0, f64::max)
}

/// Whether `product`'s own attributes or text carry `attribute` as WebShop's reward looks for
/// it (a resembling attribute, or the phrase inside the title, bullets or description).
fn carries(product: &Product, attribute: &str) -> bool {
    product.attributes.iter().any(|a| resembles(a, attribute))
        || product.name.to_lowercase().contains(attribute)
        || product.description.to_lowercase().contains(attribute)
        || product
            .bullets
            .iter()
            .any(|b| b.to_lowercase().contains(attribute))
}

fn offers(product: &Product, value: &str) -> bool {
    product
        .options
        .iter()
        .any(|(_, values)| values.iter().any(|v| v == value))
}

/// How a product competes with a goal's own product: it is of the same type and falls short on
/// exactly one of an option value, an attribute and the price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Miss {
    Option,
    Attribute,
    Price,
}

/// The one way `product` falls short of `goal` (whose product is `gold`), if it is a near miss.
fn near_miss(product: &Product, goal: &Goal, gold: &Product) -> Option<Miss> {
    if product.asin == gold.asin || product.query != gold.query {
        return None;
    }
    let options_missing = goal.options.iter().filter(|o| !offers(product, o)).count();
    let attributes_missing = goal
        .attributes
        .iter()
        .filter(|a| !carries(product, a))
        .count();
    let cheap = product.price <= goal.price_upper;
    match (options_missing, attributes_missing, cheap) {
        (1, 0, true) => Some(Miss::Option),
        (0, 1, true) => Some(Miss::Attribute),
        (0, 0, false) => Some(Miss::Price),
        _ => None,
    }
}

/// The generator's random state, and the ASINs already taken.
struct Builder {
    rng: ChaCha8Rng,
    taken: HashSet<String>,
}

impl Builder {
    /// The catalogue product of a real ASIN.
    fn real(&mut self, base: &Base) -> Product {
        let rng = &mut self.rng;
        let (pricing, price) = draw_pricing(base.category, &base.path, rng);
        let mut options = draw_options(base.category, &base.query, rng);
        if options.is_empty() {
            options = draw_options(base.category, &base.query, rng);
        }
        Draft {
            asin: base.asin.clone(),
            brand: brand(rng),
            category: base.category,
            query: &base.query,
            path: &base.path,
            attributes: base.attributes.clone(),
            options,
            pricing,
            price,
        }
        .write(rng)
    }

    /// A product of the gold's type under another brand, with these attributes, options and
    /// price.
    fn sibling(
        &mut self,
        gold: &Product,
        attributes: Vec<String>,
        options: Vec<(String, Vec<String>)>,
        price: f64,
    ) -> Product {
        let asin = fresh_asin(&mut self.rng, &mut self.taken);
        let brand = brand(&mut self.rng);
        Draft {
            asin,
            brand,
            category: &gold.category,
            query: &gold.query,
            path: &gold.product_category,
            attributes,
            options,
            pricing: vec![price],
            price,
        }
        .write(&mut self.rng)
    }

    /// A price at most the limit, near the gold's.
    fn price_within(&mut self, gold: &Product, limit: f64) -> f64 {
        let lo = gold.price * 0.8;
        let hi = (gold.price * 1.15).min(limit - 0.01).max(lo + 0.01);
        round_price(self.rng.random_range(lo..hi), &mut self.rng).min(limit)
    }

    /// Near misses of a goal: one over the limit, one without a goal option value, one without
    /// a goal attribute, each checked with [`near_miss`].
    fn near_misses(&mut self, gold: &Product, goal: &Goal) -> Vec<Product> {
        let mut out = Vec::new();
        if goal.price_upper < NO_LIMIT {
            let over = goal.price_upper * self.rng.random_range(1.05..1.5);
            let price = round_price(over, &mut self.rng).max(goal.price_upper + 1.0);
            out.push(self.sibling(gold, gold.attributes.clone(), gold.options.clone(), price));
        }
        for wanted in &goal.options {
            let Some(at) = gold.options.iter().position(|(_, v)| v.contains(wanted)) else {
                continue;
            };
            let name = &gold.options[at].0;
            let vocabulary = vocab::option_vocabulary(&gold.category, &gold.query);
            let Some((_, values)) = vocabulary.iter().find(|(n, _)| n == name) else {
                continue;
            };
            let others: Vec<String> = values
                .iter()
                .filter(|v| {
                    !resembles(v, wanted)
                        && !resembles(normalize_color(v), normalize_color(wanted))
                        && !goal.options.contains(v)
                })
                .cloned()
                .collect();
            if others.len() < 2 {
                continue;
            }
            let mut options = gold.options.clone();
            options[at].1 = draw_values(name, &others, &mut self.rng);
            let price = self.price_within(gold, goal.price_upper);
            out.push(self.sibling(gold, gold.attributes.clone(), options, price));
            break;
        }
        for dropped in &goal.attributes {
            if goal
                .attributes
                .iter()
                .any(|a| a != dropped && resembles(a, dropped))
            {
                continue;
            }
            let kept: Vec<String> = gold
                .attributes
                .iter()
                .filter(|a| !resembles(a, dropped))
                .cloned()
                .collect();
            let price = self.price_within(gold, goal.price_upper);
            let sibling = self.sibling(gold, kept, gold.options.clone(), price);
            if near_miss(&sibling, goal, gold) == Some(Miss::Attribute) {
                out.push(sibling);
                break;
            }
        }
        out.retain(|p| near_miss(p, goal, gold).is_some());
        out
    }

    /// The goal of a real product, with its instruction.
    fn goal(&mut self, base: &Base, gold: &Product) -> Option<ShopTask> {
        let rng = &mut self.rng;
        let attributes: Vec<String> = match &base.instruction {
            Some((_, attributes)) if !attributes.is_empty() => attributes.clone(),
            _ => {
                if gold.attributes.is_empty() {
                    return None;
                }
                let n = rng.random_range(1..=gold.attributes.len().min(3));
                let mut picked = rand::seq::index::sample(rng, gold.attributes.len(), n).into_vec();
                picked.sort_unstable();
                picked
                    .into_iter()
                    .map(|i| gold.attributes[i].clone())
                    .collect()
            }
        };
        let wanted = match rng.random_range(0..10) {
            0..=1 => 0,
            2..=6 => 1,
            _ => 2,
        };
        let mut names: Vec<usize> = (0..gold.options.len()).collect();
        names.shuffle(rng);
        names.truncate(wanted);
        names.sort_unstable();
        let options: Vec<(String, String)> = names
            .into_iter()
            .map(|i| {
                let (name, values) = &gold.options[i];
                let value = values.choose(rng).expect("options have values");
                (name.clone(), value.clone())
            })
            .collect();
        let price_upper = price_limit(gold.price, rng);
        let text = instruction(base, gold, &attributes, &options, price_upper, rng);
        Some(ShopTask {
            text,
            goal: Goal {
                asin: gold.asin.clone(),
                attributes,
                options: options.into_iter().map(|(_, v)| v).collect(),
                price_upper,
            },
        })
    }
}

const OPENERS: &[&str] = &[
    "i am looking for",
    "i'm looking for",
    "i need",
    "i want",
    "i would like",
    "looking for",
    "find me",
    "i want to buy",
    "i am searching for",
    "get me",
];

/// The instruction a shopper reads, in the style of WebShop's human goals.
fn instruction(
    base: &Base,
    gold: &Product,
    attributes: &[String],
    options: &[(String, String)],
    price_upper: f64,
    rng: &mut ChaCha8Rng,
) -> String {
    let opener = OPENERS.choose(rng).expect("openers");
    let body = match &base.instruction {
        Some((body, _)) => body.clone(),
        None => match attributes
            .iter()
            .filter(|a| !gold.query.contains(a.as_str()))
            .cloned()
            .collect::<Vec<String>>()
            .as_slice()
        {
            [one] if rng.random_bool(0.5) => format!("{one} {}", gold.query),
            [one] => format!("{} with {one}", gold.query),
            [many @ .., last] => format!("{} with {} and {last}", gold.query, many.join(", ")),
            [] => gold.query.clone(),
        },
    };
    let mut text = format!("{opener} {body}");
    let variant = rng.random_range(0..2);
    let phrases: Vec<String> = options
        .iter()
        .map(|(name, value)| vocab::option_phrase(name, value, variant))
        .collect();
    if !phrases.is_empty() {
        text.push(' ');
        text.push_str(&phrases.join(" and "));
    }
    if price_upper < NO_LIMIT {
        text.push_str(&format!(", and price lower than {price_upper:.2} dollars"));
    }
    text
}

/// Which split a goal product's goals belong to: one ASIN in five is test, whatever the seed.
pub fn side(asin: &str) -> Split {
    if Sha256::digest(asin.as_bytes())[0] % 5 == 0 {
        Split::Test
    } else {
        Split::Train
    }
}

/// The catalogue and goals made from the WebShop data in `data` with `seed`.
pub fn shop(data: &Path, seed: u64) -> io::Result<ShopSet> {
    let items = read_items(&data.join("items_ins_v2_1000.json"))?;
    let sample_path = data.join("products_sample2.json");
    let sample = Catalogue::read(&sample_path).map_err(|e| invalid(&sample_path, e))?;
    let mut builder = Builder {
        rng: ChaCha8Rng::seed_from_u64(seed),
        taken: items.iter().map(|(asin, _)| asin.clone()).collect(),
    };
    let attributes: HashMap<String, Vec<String>> = items
        .iter()
        .map(|(asin, item)| (asin.clone(), item.attributes.clone()))
        .collect();
    let bases = bases(items, &mut builder.rng);

    let mut products: Vec<Product> = sample
        .products()
        .iter()
        .map(|p| Product {
            query: p.query.to_lowercase().trim().to_string(),
            attributes: attributes.get(&p.asin).cloned().unwrap_or_default(),
            ..p.clone()
        })
        .collect();
    let full: HashSet<String> = products.iter().map(|p| p.asin.clone()).collect();
    let mut train = Vec::new();
    let mut test = Vec::new();
    for base in bases.iter().filter(|b| !full.contains(&b.asin)) {
        let gold = builder.real(base);
        if let Some(task) = builder.goal(base, &gold) {
            let misses = builder.near_misses(&gold, &task.goal);
            if misses.len() >= 2 {
                products.extend(misses);
                match side(&gold.asin) {
                    Split::Train => train.push(task),
                    Split::Test => test.push(task),
                }
            }
        }
        products.push(gold);
    }
    products.shuffle(&mut builder.rng);
    train.shuffle(&mut builder.rng);
    test.shuffle(&mut builder.rng);
    Ok(ShopSet {
        catalogue: Catalogue::new(products),
        train,
        test,
    })
}

#[derive(Serialize)]
struct Doc<'a> {
    id: &'a str,
    kind: &'static str,
    split: Split,
    task: &'a ShopTask,
    horizon: u32,
    world: &'a ShopWorld,
}

/// One generated scenario as YAML text.
pub struct Generated {
    pub id: String,
    pub yaml: String,
}

/// The first `count` goals of `split` as scenario files over the catalogue `world` names.
pub fn scenarios(
    set: &ShopSet,
    world: &ShopWorld,
    count: usize,
    seed: u64,
    split: Split,
) -> io::Result<Vec<Generated>> {
    let goals = set.goals(split);
    if count > goals.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the shop's data make {} {} goals with seed {seed}; asked for {count}",
                goals.len(),
                split.as_str()
            ),
        ));
    }
    Ok(goals[..count]
        .iter()
        .enumerate()
        .map(|(i, task)| {
            let category = set
                .catalogue
                .get(&task.goal.asin)
                .map_or("shop", |p| p.category.as_str());
            let id = format!("shop-{}-{category}-{i:04}", split.as_str());
            let doc = Doc {
                id: &id,
                kind: "shop",
                split,
                task,
                horizon: HORIZON,
                world,
            };
            let yaml = format!(
                "# Generated: leap scenarios generate shop --seed {seed} --split {} (goal {i}).\n{}",
                split.as_str(),
                serde_yaml::to_string(&doc).expect("a scenario serializes")
            );
            Generated { id, yaml }
        })
        .collect())
}

fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Writes the first `count` goals of `split` made from `data` with `seed` into `dir`, one
/// scenario file each. Scenarios over the shipped catalogue name none; otherwise the catalogue
/// is written beside them as `catalogue.json`. Returns the scenario files' paths.
pub fn write_shop(
    data: &Path,
    dir: &Path,
    count: usize,
    seed: u64,
    split: Split,
) -> io::Result<Vec<PathBuf>> {
    let set = shop(data, seed)?;
    let json = set.catalogue.to_json();
    let shipped = json == shipped_catalogue_text();
    let world = ShopWorld {
        catalogue: (!shipped).then(|| "catalogue.json".to_string()),
        text: Text::Rich,
    };
    let generated = scenarios(&set, &world, count, seed, split)?;
    std::fs::create_dir_all(dir)?;
    if !shipped {
        write_atomic(&dir.join("catalogue.json"), &json)?;
    }
    let mut written = Vec::with_capacity(count);
    for g in generated {
        let path = dir.join(format!("{}.yaml", g.id));
        write_atomic(&path, &g.yaml)?;
        written.push(path);
    }
    Ok(written)
}

/// A catalogue of `size` products drawn as the shipped catalogue's are, the same for the same
/// seed (the search benchmark's 100,000-product catalogue): each takes the type, category and
/// attributes of a shipped product and draws its brand, title, options and price anew.
pub fn synthetic_catalogue(size: usize, seed: u64) -> Catalogue {
    let shipped = super::scenario::shipped_shop();
    let templates = shipped.catalogue.products();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let offset = rng.random_range(0..36u64.pow(7));
    let products = (0..size)
        .map(|i| {
            let t = templates.choose(&mut rng).expect("a shipped catalogue");
            let mut n = offset + i as u64;
            let mut tail = [b'0'; 8];
            for c in tail.iter_mut().rev() {
                *c = BASE36[(n % 36) as usize];
                n /= 36;
            }
            let (pricing, price) = draw_pricing(&t.category, &t.product_category, &mut rng);
            let mut attributes = t.attributes.clone();
            attributes.shuffle(&mut rng);
            Draft {
                asin: format!("B0{}", String::from_utf8_lossy(&tail)),
                brand: brand(&mut rng),
                category: &t.category,
                query: &t.query,
                path: &t.product_category,
                attributes,
                options: draw_options(&t.category, &t.query, &mut rng),
                pricing,
                price,
            }
            .write(&mut rng)
        })
        .collect();
    Catalogue::new(products)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_instruction_names_its_type_between_its_attributes() {
        let a = attrs(&["easy carry", "high quality", "rose gold"]);
        assert_eq!(
            instruction_type(
                "Find me easy carry, high quality refillable containers with rose gold",
                &a
            )
            .as_deref(),
            Some("refillable containers")
        );
        let a = attrs(&[
            "high quality",
            "easy carry",
            "stainless steel",
            "hair removal",
            "sensitive skin",
        ]);
        assert_eq!(
            instruction_type(
                "Find me high quality, easy carry shave & hair removal with stainless steel for hair removal, sensitive skin",
                &a
            )
            .as_deref(),
            Some("shave & hair removal")
        );
        let a = attrs(&["non slip", "dry skin"]);
        assert_eq!(
            instruction_type("Find me non slip foot, hand & nail care for dry skin", &a).as_deref(),
            Some("foot, hand & nail care")
        );
    }

    #[test]
    fn price_limits_are_webshops() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..50 {
            let limit = price_limit(23.5, &mut rng);
            assert!([40.0, 50.0, 60.0].contains(&limit), "{limit}");
        }
        assert_eq!(price_limit(985.0, &mut rng), NO_LIMIT);
    }

    #[test]
    fn synthetic_catalogues_are_seeded_and_sized() {
        let a = synthetic_catalogue(300, 4);
        assert_eq!(a.len(), 300);
        assert_eq!(a.products(), synthetic_catalogue(300, 4).products());
        assert_ne!(a.products(), synthetic_catalogue(300, 5).products());
    }
}
