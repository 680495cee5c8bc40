//! Shop scenarios: the instruction the shopper reads, WebShop's goal record behind it, and the
//! catalogue they shop in, read and checked against that catalogue.
//!
//! A catalogue is read and indexed once per process and shared by every scenario and episode
//! over it (by path; the shipped one is built into the binary, so a run's scenario snapshot
//! replays anywhere). A scenario that names its own catalogue file replays only where that file
//! is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::catalogue::CatalogueError;
use super::{Catalogue, Goal, GuidedShop, Product, Shop, ShopEnv, TextMode};
use crate::env::{Environment, Guided, Kind, Preview, World};
use crate::scenario::{Report, YamlPath, suggest};

/// How the shipped catalogue is named in messages and previews.
pub const SHIPPED_CATALOGUE: &str = "assets/shop/catalogue.json";
const SHIPPED_TEXT: &str = include_str!("../../../assets/shop/catalogue.json");

/// What the shopper is asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShopTask {
    /// The instruction the shopper reads ("i need a grey sofa with a wood frame, and price
    /// lower than 490.00 dollars").
    pub text: String,
    /// The goal the purchase is rewarded against; its product must be in the catalogue, offer
    /// every option value named, and cost no more than the price limit.
    pub goal: Goal,
}

/// The shop the episode runs in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShopWorld {
    /// A catalogue file in WebShop's product format, relative to the scenario file; by default
    /// the shipped `assets/shop/catalogue.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalogue: Option<String>,
    /// How pages are written: `rich` (one line per text node, buttons marked: what LEAP used)
    /// or `simple` (WebShop's `text`, nodes joined by ` [SEP] `).
    #[serde(default)]
    pub text: Text,
}

/// The observation format, as scenario files name it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Text {
    #[default]
    Rich,
    Simple,
}

impl From<Text> for TextMode {
    fn from(t: Text) -> TextMode {
        match t {
            Text::Rich => TextMode::Rich,
            Text::Simple => TextMode::Simple,
        }
    }
}

/// What the teacher may see beyond the goal record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShopPrivileged {
    /// Free-form facts for the teacher.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A checked shop scenario, ready to play.
#[derive(Debug, Clone)]
pub struct ShopScenario {
    pub task: ShopTask,
    pub world: ShopWorld,
    pub privileged: ShopPrivileged,
    shop: Arc<Shop>,
    /// How the catalogue is named: its path as the scenario wrote it, or the shipped one's.
    catalogue: String,
    /// The goal's product, by position in the catalogue.
    gold: usize,
}

/// The shipped catalogue, read and indexed on first use.
pub fn shipped_shop() -> Arc<Shop> {
    static SHIPPED: OnceLock<Arc<Shop>> = OnceLock::new();
    SHIPPED
        .get_or_init(|| {
            let catalogue = Catalogue::from_json(SHIPPED_CATALOGUE, SHIPPED_TEXT)
                .expect("the shipped catalogue reads (tests/shop_scenarios.rs)");
            Arc::new(Shop::new(catalogue))
        })
        .clone()
}

/// The shipped catalogue's file text, as built into the binary.
pub fn shipped_catalogue_text() -> &'static str {
    SHIPPED_TEXT
}

/// The catalogue at `path`, read and indexed once per process.
pub fn shop_at(path: &Path) -> Result<Arc<Shop>, CatalogueError> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Shop>>>> = OnceLock::new();
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(shop) = cache.get(&key) {
        return Ok(shop.clone());
    }
    let shop = Arc::new(Shop::new(Catalogue::read(path)?));
    cache.insert(key, shop.clone());
    Ok(shop)
}

/// Whether buying `product` with every goal option value it offers earns the full reward on all
/// but the price: what "a product that matches the goal" means here.
pub fn matches_but_price(product: &Product, goal: &Goal, gold: &Product) -> bool {
    let chosen: Vec<String> = goal
        .options
        .iter()
        .filter(|o| product.options.iter().any(|(_, values)| values.contains(o)))
        .cloned()
        .collect();
    // A price of 0 passes any limit, so only the other parts of the reward are left to fail.
    let r = super::reward::reward(product, 0.0, &chosen, goal, gold);
    r.total >= 1.0 - 1e-9
}

impl ShopScenario {
    pub(crate) fn read(
        report: &mut Report,
        path: &YamlPath,
        task: serde_yaml::Value,
        world: serde_yaml::Value,
        privileged: serde_yaml::Value,
    ) -> Option<ShopScenario> {
        let task_path = path.key("task");
        let world_path = path.key("world");
        let task: Option<ShopTask> = report.parse(&task_path, task);
        let world: Option<ShopWorld> = match world {
            serde_yaml::Value::Null => Some(ShopWorld::default()),
            v => report.parse(&world_path, v),
        };
        let privileged: Option<ShopPrivileged> = match privileged {
            serde_yaml::Value::Null => Some(ShopPrivileged::default()),
            v => report.parse(&path.key("privileged"), v),
        };
        let (task, world, privileged) = (task?, world?, privileged?);

        let (shop, catalogue) = match &world.catalogue {
            None => (shipped_shop(), SHIPPED_CATALOGUE.to_string()),
            Some(name) => {
                let file = report.origin(path).file;
                let full = file.parent().unwrap_or(Path::new("")).join(name);
                match shop_at(&full) {
                    Ok(shop) => (shop, name.clone()),
                    Err(err) => {
                        let message = match err {
                            CatalogueError::Io { source, .. } => format!(
                                "cannot read the catalogue `{name}` ({}): {source}, expected a product file relative to the scenario file",
                                full.display()
                            ),
                            CatalogueError::Format { message, .. } => format!(
                                "the catalogue `{name}` is not a product file in WebShop's format: {message}"
                            ),
                        };
                        report.at(&world_path.key("catalogue"), message);
                        return None;
                    }
                }
            }
        };

        let goal_path = task_path.key("goal");
        let goal = &task.goal;
        if task.text.trim().is_empty() {
            report.at(
                &task_path.key("text"),
                "the instruction is empty, expected the text the shopper reads",
            );
        }
        let Some(gold) = shop.catalogue.position(&goal.asin) else {
            let asins = shop.catalogue.products().iter().map(|p| p.asin.as_str());
            let hint = suggest(&goal.asin, asins);
            report.at(
                &goal_path.key("asin"),
                format!(
                    "unknown product `{}`{hint}, expected the ASIN of a product in {catalogue} ({} products)",
                    goal.asin,
                    shop.catalogue.len()
                ),
            );
            return None;
        };
        let product = &shop.catalogue.products()[gold];
        let mut options_ok = true;
        for (i, option) in goal.options.iter().enumerate() {
            if product.options.iter().any(|(_, v)| v.contains(option)) {
                continue;
            }
            options_ok = false;
            let offered = if product.options.is_empty() {
                "it has no options, so expected no `options`".to_string()
            } else {
                let lists: Vec<String> = product
                    .options
                    .iter()
                    .map(|(name, values)| format!("{name}: {}", values.join(", ")))
                    .collect();
                format!("expected one of its values ({})", lists.join("; "))
            };
            report.at(
                &goal_path.key("options").index(i),
                format!(
                    "product {} has no option value `{option}`, {offered}",
                    product.asin
                ),
            );
        }
        if options_ok && !affordable(&shop.catalogue, goal, product) {
            let cheapest = shop
                .catalogue
                .products()
                .iter()
                .filter(|p| matches_but_price(p, goal, product))
                .min_by(|a, b| a.price.total_cmp(&b.price));
            let detail = match cheapest {
                Some(p) => format!("the cheapest, {}, costs {:.2}", p.asin, p.price),
                None => "none does, not even the goal's own product".to_string(),
            };
            report.at(
                &goal_path.key("price_upper"),
                format!(
                    "price limit {:.2} is below every product that matches the goal ({detail}), expected a limit some matching product meets",
                    goal.price_upper
                ),
            );
            return None;
        }
        if !options_ok || task.text.trim().is_empty() {
            return None;
        }
        Some(ShopScenario {
            task,
            world,
            privileged,
            shop,
            catalogue,
            gold,
        })
    }

    /// The shop this scenario runs in.
    pub fn shop(&self) -> &Arc<Shop> {
        &self.shop
    }

    /// The goal's product.
    pub fn gold(&self) -> &Product {
        &self.shop.catalogue.products()[self.gold]
    }

    /// A fresh episode of this scenario.
    pub fn env(&self, horizon: u32) -> ShopEnv {
        ShopEnv::new(
            self.shop.clone(),
            self.task.goal.clone(),
            self.task.text.clone(),
            self.world.text.into(),
            horizon,
        )
    }
}

/// Whether some product the shopper could buy meets the whole goal, price included: the goal's
/// own product first (the usual answer), then the rest.
fn affordable(catalogue: &Catalogue, goal: &Goal, gold: &Product) -> bool {
    let meets = |p: &Product| p.price <= goal.price_upper && matches_but_price(p, goal, gold);
    meets(gold) || catalogue.products().iter().any(meets)
}

fn listed(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

impl World for ShopScenario {
    fn kind(&self) -> Kind {
        crate::env::kind("shop").expect("registered")
    }

    fn env(&self, horizon: u32) -> Box<dyn Environment> {
        Box::new(ShopScenario::env(self, horizon))
    }

    fn guided(&self, horizon: u32) -> Box<dyn Guided> {
        Box::new(GuidedShop::new(ShopScenario::env(self, horizon)))
    }

    fn hint(&self) -> String {
        let goal = &self.task.goal;
        format!(
            "Hidden goal: attributes {}; options {}; price lower than {:.2} dollars; a product that satisfies all of them: {}.",
            listed(&goal.attributes),
            listed(&goal.options),
            goal.price_upper,
            self.gold().name
        )
    }

    fn task_type(&self) -> &str {
        &self.gold().category
    }

    fn notes(&self) -> Vec<String> {
        self.privileged.notes.clone()
    }

    fn preview(&self) -> Preview {
        let goal = &self.task.goal;
        let gold = self.gold();
        let mut notes = vec![
            format!("goal product: {} {}", gold.asin, gold.name),
            format!("attributes: {}", listed(&goal.attributes)),
            format!("options: {}", listed(&goal.options)),
            format!("price lower than: {:.2} dollars", goal.price_upper),
        ];
        notes.extend(self.privileged.notes.iter().cloned());
        Preview {
            title: "Shop".to_string(),
            lines: vec![
                format!(
                    "  catalogue: {} ({} products)",
                    self.catalogue,
                    self.shop.catalogue.len()
                ),
                format!("  instruction: {}", self.task.text),
            ],
            notes,
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The shop body of a loaded scenario, if it is one.
pub fn body(s: &crate::scenario::Scenario) -> Option<&ShopScenario> {
    s.body.as_any().downcast_ref()
}
