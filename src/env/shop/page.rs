//! Where a shopping episode stands (WebShop's user session) and what each page shows: the
//! visible text nodes of `web_agent_site/templates/*.html`, in their order, and the clickables
//! the text environment offers on them.

use super::reward::Reward;
use super::text::{self, Node};
use super::{Catalogue, Product, py_float};

/// How many hits a search keeps (WebShop's `SEARCH_RETURN_N`).
pub const HITS: usize = 50;
/// Hits on one results page (`PRODUCT_WINDOW`).
pub const PER_PAGE: usize = 10;

pub const BACK_TO_SEARCH: &str = "Back to Search";
pub const NEXT_PAGE: &str = "Next >";
pub const PREV_PAGE: &str = "< Prev";
pub const BUY_NOW: &str = "Buy Now";
pub const SEARCH: &str = "Search";

/// The pages of the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Page {
    #[default]
    Search,
    Results,
    Item,
    Description,
    Features,
    Reviews,
    Done,
}

impl Page {
    /// The page's name as the teacher's template reads it ("results").
    pub fn name(self) -> &'static str {
        match self {
            Page::Search => "search",
            Page::Results => "results",
            Page::Item => "item",
            Page::Description => "description",
            Page::Features => "features",
            Page::Reviews => "reviews",
            Page::Done => "done",
        }
    }

    /// The item's sub-page behind a button of the item page ("description").
    pub fn sub_page(button: &str) -> Option<Page> {
        SUB_PAGES
            .iter()
            .find(|(label, _)| label.eq_ignore_ascii_case(button))
            .map(|&(_, page)| page)
    }

    pub fn is_sub_page(self) -> bool {
        SUB_PAGES.iter().any(|&(_, p)| p == self)
    }
}

const SUB_PAGES: [(&str, Page); 3] = [
    ("Description", Page::Description),
    ("Features", Page::Features),
    ("Reviews", Page::Reviews),
];

/// Where an episode stands: WebShop's user session.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub page: Page,
    /// The last search as typed, lowercased; `None` until the first search and after `Back to
    /// Search`.
    pub keywords: Option<String>,
    /// The catalogue positions the last search found, best first (at most [`HITS`]).
    pub hits: Vec<usize>,
    /// The results page shown or last shown, from 1.
    pub page_no: usize,
    /// The product open on the item page and its sub-pages.
    pub product: Option<usize>,
    /// The chosen value of each option name, in the order the names were first chosen (the
    /// order WebShop's session dict keeps).
    pub options: Vec<(String, String)>,
    /// Products opened since the search page, marked as clicked on the results.
    pub visited: Vec<usize>,
    /// The purchase's reward, once bought.
    pub reward: Option<Reward>,
}

impl State {
    /// The hits on the results page shown.
    pub fn shown(&self) -> &[usize] {
        let start = (self.page_no.max(1) - 1) * PER_PAGE;
        let end = (start + PER_PAGE).min(self.hits.len());
        self.hits.get(start..end).unwrap_or(&[])
    }

    /// The chosen option values, in the order their names were first chosen.
    pub fn chosen(&self) -> Vec<String> {
        self.options.iter().map(|(_, v)| v.clone()).collect()
    }

    /// Sets option `name` to `value` (one value per name).
    pub fn choose(&mut self, name: &str, value: &str) {
        match self.options.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.options.push((name.to_string(), value.to_string())),
        }
    }

    /// The item page's URL as WebShop builds it, from the product on: `convert_html_to_text`
    /// marks an option value as clicked when this text holds it in double quotes.
    fn item_url(&self, product: &Product) -> String {
        format!(
            "{}/{}/{}/{}",
            product.asin,
            self.keywords.as_deref().unwrap_or("").replace(' ', "+"),
            self.page_no,
            text::json_object(self.options.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        )
    }
}

/// The done page's fields, as `done_page.html` takes them. Each optional field is the text the
/// template prints for it, and `None` prints as Python's `None`. The live environment passes
/// what WebShop's simulated server passes (the purchased ASIN, the chosen options and the
/// reward) and leaves every other field `None`, as on the real page.
#[derive(Debug, Clone, Default)]
pub struct DonePage {
    pub asin: String,
    pub options: Vec<(String, String)>,
    pub reward: f64,
    pub mturk_code: Option<String>,
    pub purchased_attrs: Option<String>,
    pub category: Option<String>,
    pub query: Option<String>,
    pub product_category: Option<String>,
    /// The target's fields; with `None` the template prints the labels alone and `None` for
    /// the whole goal.
    pub goal: Option<DoneGoal>,
    pub reward_info: Option<String>,
}

/// The goal's fields on the done page, each as the template prints it.
#[derive(Debug, Clone, Default)]
pub struct DoneGoal {
    pub asin: String,
    pub goal_options: String,
    pub attributes: String,
    pub price_upper: String,
    pub instruction_text: String,
    pub category: String,
    pub product_category: String,
    pub query: String,
    /// The whole goal as `pprint` prints it.
    pub pprint: String,
}

fn none_or(field: &Option<String>) -> String {
    field.clone().unwrap_or_else(|| "None".to_string())
}

impl DonePage {
    pub fn nodes(&self) -> Vec<Node> {
        let t = |s: &str| Node::Text(s.to_string());
        let mut nodes = vec![
            t("Thank you for shopping with us!"),
            t("Your code: "),
            Node::Text(none_or(&self.mturk_code)),
            t(" (Paste it in your MTurk interface.)"),
            t("Purchased"),
            t("asin"),
            Node::Text(self.asin.clone()),
            t("options"),
            Node::Text(text::tojson(&self.options)),
            t("attrs"),
            Node::Text(none_or(&self.purchased_attrs)),
            t("category"),
            Node::Text(none_or(&self.category)),
            t("query"),
            Node::Text(none_or(&self.query)),
            t("product category"),
            Node::Text(none_or(&self.product_category)),
            t("Target"),
        ];
        let goal = self.goal.clone().unwrap_or_default();
        for (label, value) in [
            ("asin", goal.asin),
            ("options", goal.goal_options),
            ("attrs", goal.attributes),
            ("price upper", goal.price_upper),
            // sic: the template's spelling.
            ("instuction text", goal.instruction_text),
            ("category", goal.category),
            ("product category", goal.product_category),
            ("query", goal.query),
        ] {
            nodes.push(t(label));
            nodes.push(Node::Text(value));
        }
        nodes.push(t("Goal "));
        nodes.push(Node::Text(match &self.goal {
            Some(g) => g.pprint.clone(),
            None => "None".to_string(),
        }));
        nodes.extend([
            t("Reward"),
            t("Your score (min 0.0, max 1.0)"),
            Node::Text(py_float(self.reward)),
            t("Reward Details "),
            Node::Text(none_or(&self.reward_info)),
        ]);
        nodes
    }
}

/// The visible text nodes of the page `state` is on.
pub fn nodes(catalogue: &Catalogue, instruction: &str, state: &State) -> Vec<Node> {
    let heading = |nodes: &mut Vec<Node>| {
        nodes.push(Node::Text("Instruction:".to_string()));
        nodes.push(Node::Text(instruction.to_string()));
        nodes.push(Node::Button(BACK_TO_SEARCH));
    };
    let product = state.product.map(|p| &catalogue.products()[p]);
    let mut nodes = Vec::new();
    match (state.page, product) {
        (Page::Search, _) => {
            nodes.push(Node::Text("WebShop".to_string()));
            nodes.push(Node::Text("Instruction: ".to_string()));
            nodes.push(Node::Text(instruction.to_string()));
            nodes.push(Node::Button(SEARCH));
        }
        (Page::Results, _) => {
            heading(&mut nodes);
            nodes.push(Node::Text(format!(
                "Page {} (Total results: {})",
                state.page_no,
                state.hits.len()
            )));
            if state.page_no > 1 {
                nodes.push(Node::Button(PREV_PAGE));
            }
            nodes.push(Node::Button(NEXT_PAGE));
            for &position in state.shown() {
                let p = &catalogue.products()[position];
                nodes.push(Node::Product {
                    position,
                    asin: p.asin.clone(),
                    visited: state.visited.contains(&position),
                });
                nodes.push(Node::Text(p.name.clone()));
                nodes.push(Node::Text(p.price_tag()));
            }
        }
        (Page::Item, Some(p)) => {
            heading(&mut nodes);
            nodes.push(Node::Button(PREV_PAGE));
            let url = state.item_url(p);
            for (name, values) in &p.options {
                nodes.push(Node::Text(name.clone()));
                for value in values {
                    nodes.push(Node::OptionValue {
                        name: name.clone(),
                        value: value.clone(),
                        clicked: url.contains(&format!("\"{value}\"")),
                    });
                }
            }
            nodes.push(Node::Text(p.name.clone()));
            nodes.push(Node::Text(format!("Price: {}", p.price_tag())));
            nodes.push(Node::Text("Rating: N.A.".to_string()));
            for (label, _) in SUB_PAGES {
                nodes.push(Node::Button(label));
            }
            nodes.push(Node::Button(BUY_NOW));
        }
        (Page::Description | Page::Features | Page::Reviews, Some(p)) => {
            heading(&mut nodes);
            nodes.push(Node::Button(PREV_PAGE));
            match state.page {
                Page::Description => nodes.push(Node::Text(p.description.clone())),
                // The template writes a space before each bullet.
                Page::Features => {
                    nodes.extend(p.bullets.iter().map(|b| Node::Text(format!(" {b}"))))
                }
                // The catalogue keeps no reviews: the page lists none, as WebShop's does.
                _ => {}
            }
        }
        (Page::Done, Some(p)) => {
            let done = DonePage {
                asin: p.asin.clone(),
                options: state.options.clone(),
                reward: state.reward.as_ref().map_or(0.0, |r| r.total),
                ..DonePage::default()
            };
            nodes = done.nodes();
        }
        (Page::Item | Page::Description | Page::Features | Page::Reviews | Page::Done, None) => {
            unreachable!("a product page without a product")
        }
    }
    nodes
}

/// What clicking a clickable does, apart from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clickable {
    Button(&'static str),
    Product(usize),
    OptionValue { name: String, value: String },
}

/// The page's clickables by the name `click[...]` takes: buttons and ASINs lowercased, option
/// values as they are. As in WebShop's dict, an option value that repeats a button's name
/// stands for the option.
pub fn clickables(nodes: &[Node]) -> Vec<(String, Clickable)> {
    let mut out: Vec<(String, Clickable)> = Vec::new();
    let mut put = |name: String, c: Clickable| match out.iter_mut().find(|(n, _)| *n == name) {
        Some(slot) => slot.1 = c,
        None => out.push((name, c)),
    };
    for node in nodes {
        match node {
            Node::Button(label) => put(label.to_lowercase(), Clickable::Button(label)),
            Node::Product { position, asin, .. } => {
                put(asin.to_lowercase(), Clickable::Product(*position))
            }
            Node::Text(_) | Node::OptionValue { .. } => {}
        }
    }
    for node in nodes {
        if let Node::OptionValue { name, value, .. } = node {
            put(
                value.clone(),
                Clickable::OptionValue {
                    name: name.clone(),
                    value: value.clone(),
                },
            );
        }
    }
    out
}
