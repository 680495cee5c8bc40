//! The shop environment: WebShop's text interface (Yao et al., 2022) as LEAP ran it, over a
//! catalogue leap builds itself. Pages, actions and the `text_rich` observation follow WebShop's
//! simulated server; search is BM25 as its Lucene index scores; the reward is its `goal.py`.

pub mod catalogue;
pub mod expert;
pub mod fuzz;
pub mod generate;
pub mod guided;
pub mod kind;
pub mod leak;
pub mod normalize;
pub mod nouns;
pub mod page;
pub mod prompt;
pub mod reward;
pub mod scenario;
pub mod search;
pub mod text;
pub mod vocab;

use std::sync::Arc;

pub use catalogue::{Catalogue, Goal, Product, py_float};
pub use guided::GuidedShop;
pub use page::{Page, State};
pub use search::SearchIndex;

use crate::env::{Environment, Outcome};
use page::{Clickable, HITS};
use reward::Reward;
use text::Node;

/// A catalogue with its search index: built once, shared by every episode over it.
#[derive(Debug)]
pub struct Shop {
    pub catalogue: Catalogue,
    pub index: SearchIndex,
}

impl Shop {
    pub fn new(catalogue: Catalogue) -> Shop {
        let index = SearchIndex::new(&catalogue);
        Shop { catalogue, index }
    }
}

/// How pages become text: WebShop's `text_rich` (one node a line, buttons marked; what LEAP
/// used) or `text` (nodes joined by ` [SEP] `).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextMode {
    #[default]
    Rich,
    Simple,
}

/// One shopping episode: WebShop's text environment (`web_agent_text_env.py`) with its
/// simulated server, over a shared [`Shop`].
#[derive(Clone)]
pub struct ShopEnv {
    shop: Arc<Shop>,
    goal: Arc<Goal>,
    /// The goal's product's position (the reward's target).
    target: usize,
    instruction: String,
    mode: TextMode,
    horizon: u32,
    steps: u32,
    state: State,
    /// The current page's text nodes, from which the observation and the clickables come.
    nodes: Vec<Node>,
    observation: String,
    /// The reward of the last step, when it was the purchase.
    info: Option<Reward>,
}

impl ShopEnv {
    /// An episode on the search page. `instruction` is the text the shopper reads.
    ///
    /// # Panics
    /// When the goal's product is not in the catalogue (a scenario is checked for that when it
    /// is read).
    pub fn new(
        shop: Arc<Shop>,
        goal: Goal,
        instruction: String,
        mode: TextMode,
        horizon: u32,
    ) -> ShopEnv {
        let target = shop
            .catalogue
            .position(&goal.asin)
            .unwrap_or_else(|| panic!("the goal's product {} is not in the catalogue", goal.asin));
        let mut env = ShopEnv {
            shop,
            goal: Arc::new(goal),
            target,
            instruction,
            mode,
            horizon,
            steps: 0,
            state: State::default(),
            nodes: Vec::new(),
            observation: String::new(),
            info: None,
        };
        env.reset();
        env
    }

    pub fn shop(&self) -> &Arc<Shop> {
        &self.shop
    }

    pub fn goal(&self) -> &Goal {
        &self.goal
    }

    /// The goal's product.
    pub fn target(&self) -> &Product {
        &self.shop.catalogue.products()[self.target]
    }

    pub fn horizon(&self) -> u32 {
        self.horizon
    }

    pub fn mode(&self) -> TextMode {
        self.mode
    }

    /// Where the episode stands.
    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn page(&self) -> Page {
        self.state.page
    }

    /// The reward of the purchase, once bought.
    pub fn reward(&self) -> Option<&Reward> {
        self.state.reward.as_ref()
    }

    /// The purchase earned the whole reward.
    pub fn won(&self) -> bool {
        self.reward().is_some_and(|r| r.total >= 1.0 - 1e-9)
    }

    /// The episode is over: bought, or the horizon reached.
    pub fn is_done(&self) -> bool {
        self.state.page == Page::Done || self.steps >= self.horizon
    }

    /// What `click[...]` takes on this page, lowercased, in page order (`search` included on
    /// the search page, as WebShop lists it, though clicking it does nothing).
    pub fn clickables(&self) -> Vec<String> {
        page::clickables(&self.nodes)
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    fn render(&mut self) {
        self.nodes = page::nodes(&self.shop.catalogue, &self.instruction, &self.state);
        self.observation = text::render(&self.nodes, self.mode);
    }

    /// Applies `action` to the session; false when it does nothing.
    fn apply(&mut self, action: &str) -> bool {
        match parse_action(action) {
            Some(("search", keywords)) if self.state.page == Page::Search => {
                self.search(keywords.to_lowercase());
                true
            }
            Some(("click", name)) => {
                let name = name.to_lowercase();
                if name == page::SEARCH.to_lowercase() {
                    return false;
                }
                let clickables = page::clickables(&self.nodes);
                match clickables.into_iter().find(|(n, _)| *n == name) {
                    Some((_, clickable)) => {
                        self.click(clickable);
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }

    fn search(&mut self, keywords: String) {
        self.state.hits = self.shop.index.search(&keywords, HITS);
        self.state.keywords = Some(keywords);
        self.results(1);
    }

    /// A results page of the last search: WebShop's `search_results`, which also forgets the
    /// open product and its options.
    fn results(&mut self, page_no: usize) {
        self.state.page = Page::Results;
        self.state.page_no = page_no;
        self.state.product = None;
        self.state.options.clear();
    }

    /// WebShop's `SimServer.receive` for a click: the buttons first by name, then the item page
    /// for a product or an option.
    fn click(&mut self, clickable: Clickable) {
        let page = self.state.page;
        match clickable {
            Clickable::Button(page::BUY_NOW) => self.buy(),
            Clickable::Button(page::BACK_TO_SEARCH) => self.state = State::default(),
            Clickable::Button(page::NEXT_PAGE) if page == Page::Results => {
                self.results(self.state.page_no + 1)
            }
            Clickable::Button(page::PREV_PAGE) if page == Page::Results => {
                self.results(self.state.page_no - 1)
            }
            Clickable::Button(page::PREV_PAGE) if page.is_sub_page() => {
                self.state.page = Page::Item
            }
            Clickable::Button(page::PREV_PAGE) if page == Page::Item => {
                self.results(self.state.page_no)
            }
            Clickable::Button(label) => {
                self.state.page = Page::sub_page(label).unwrap_or(Page::Item);
            }
            Clickable::Product(position) => {
                self.state.product = Some(position);
                if !self.state.visited.contains(&position) {
                    self.state.visited.push(position);
                }
                self.state.page = Page::Item;
            }
            Clickable::OptionValue { name, value } => {
                self.state.choose(&name, &value);
                self.state.page = Page::Item;
            }
        }
    }

    fn buy(&mut self) {
        let Some(position) = self.state.product else {
            return;
        };
        let products = self.shop.catalogue.products();
        let purchased = &products[position];
        let reward = reward::reward(
            purchased,
            purchased.price,
            &self.state.chosen(),
            &self.goal,
            &products[self.target],
        );
        self.info = Some(reward.clone());
        self.state.reward = Some(reward);
        self.state.page = Page::Done;
    }
}

/// WebShop's `parse_action`: the regular expression `(.+)\[(.+)\]` matched at the start, so the
/// name runs to the last `[` that still leaves an argument before a later `]`, and the argument
/// to the last `]`. Python's `.` stops at a newline, so only the first line counts.
pub fn parse_action(action: &str) -> Option<(&str, &str)> {
    let line = action.split('\n').next().unwrap_or("");
    let close = line.rfind(']')?;
    let inner = line.as_bytes().get(1..close.checked_sub(1)?)?;
    let open = 1 + inner.iter().rposition(|&b| b == b'[')?;
    Some((&line[..open], &line[open + 1..close]))
}

impl Environment for ShopEnv {
    fn task(&self) -> &str {
        &self.instruction
    }

    /// The session: the page, the search and its results page, the product open, the options
    /// chosen and the products visited (the reward is set only by the purchase, which ends the
    /// episode).
    fn fingerprint(&self) -> Option<u64> {
        let s = &self.state;
        Some(crate::env::fingerprint_of(&(
            s.page,
            &s.keywords,
            &s.hits,
            s.page_no,
            s.product,
            &s.options,
            &s.visited,
        )))
    }

    fn observation(&self) -> &str {
        &self.observation
    }

    /// Anything that is not a search on the search page or a click on one of the page's
    /// clickables does nothing and earns nothing; the observation stays as it was, as in
    /// WebShop. (WebShop's text environment would also run a search from any page; LEAP's
    /// admissible actions only offer it on the search page, and so does this one.)
    fn step(&mut self, action: &str) -> Outcome {
        if self.is_done() {
            return Outcome {
                reward: 0.0,
                done: true,
                won: false,
            };
        }
        self.steps += 1;
        self.info = None;
        if self.apply(action) {
            self.render();
        }
        let reward = self.info.as_ref().map_or(0.0, |r| r.total);
        Outcome {
            reward: reward as f32,
            done: self.is_done(),
            won: self.info.is_some() && self.won(),
        }
    }

    fn admissible(&self) -> Vec<String> {
        let mut commands: Vec<String> = match self.state.page {
            Page::Search => vec!["search[...]".to_string()],
            Page::Done => Vec::new(),
            _ => self
                .clickables()
                .into_iter()
                .map(|c| format!("click[{c}]"))
                .collect(),
        };
        commands.sort_unstable();
        commands.dedup();
        commands
    }

    fn steps_taken(&self) -> u32 {
        self.steps
    }

    fn reset(&mut self) {
        self.steps = 0;
        self.state = State::default();
        self.info = None;
        self.render();
    }

    fn info(&self) -> Option<serde_json::Value> {
        self.info
            .as_ref()
            .map(|r| serde_json::to_value(r).expect("a reward serializes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 25 sofas (three results pages) alike but for their number, with colour and size options.
    fn shop() -> Arc<Shop> {
        let products = (0..25)
            .map(|i| Product {
                asin: format!("B{i:09}"),
                name: format!("Linen Sofa Model {i}"),
                category: "garden".into(),
                query: "sofas".into(),
                product_category: "Home › Sofas".into(),
                description: format!("Sofa number {i}."),
                bullets: vec!["Linen".into()],
                pricing: vec![100.0 + f64::from(i)],
                price: 100.0 + f64::from(i),
                options: vec![
                    ("color".into(), vec!["grey".into(), "navy".into()]),
                    ("size".into(), vec!["small".into(), "large".into()]),
                ],
                attributes: Vec::new(),
            })
            .collect();
        Arc::new(Shop::new(Catalogue::new(products)))
    }

    fn env(horizon: u32) -> ShopEnv {
        let goal = Goal {
            asin: "B000000000".into(),
            attributes: Vec::new(),
            options: vec!["grey".into()],
            price_upper: 200.0,
        };
        ShopEnv::new(shop(), goal, "a grey sofa".into(), TextMode::Rich, horizon)
    }

    /// `click[...]` on the first result shown.
    fn first_result(env: &ShopEnv) -> String {
        let position = env.state().shown()[0];
        format!(
            "click[{}]",
            env.shop().catalogue.products()[position]
                .asin
                .to_lowercase()
        )
    }

    /// Steps `action` and checks that it did something.
    fn ok(env: &mut ShopEnv, action: &str) {
        let before = env.observation().to_string();
        let page = env.page();
        env.step(action);
        assert!(
            env.observation() != before || env.page() != page,
            "{action} did nothing"
        );
    }

    #[test]
    fn actions_parse_as_webshops_regular_expression_reads_them() {
        assert_eq!(parse_action("click[buy now]"), Some(("click", "buy now")));
        assert_eq!(parse_action("search[a [b] c]"), Some(("search[a ", "b] c")));
        assert_eq!(parse_action("click[x] and more"), Some(("click", "x")));
        assert_eq!(parse_action("click[x]\nclick[y]"), Some(("click", "x")));
        assert_eq!(parse_action("click[]"), None);
        assert_eq!(parse_action("[x]"), None);
        assert_eq!(parse_action("look"), None);
    }

    #[test]
    fn results_page_on_and_back_with_next_and_prev() {
        let mut env = env(30);
        ok(&mut env, "search[sofa]");
        assert_eq!(env.state().hits.len(), 25);
        assert!(env.observation().contains("Page 1 (Total results: 25)"));
        assert!(!env.admissible().contains(&"click[< prev]".to_string()));
        ok(&mut env, "click[next >]");
        assert_eq!(env.state().page_no, 2);
        assert_eq!(env.state().shown().len(), 10);
        assert!(
            env.observation()
                .contains("[button] < Prev [button_]\n[button] Next > [button_]")
        );
        ok(&mut env, "click[next >]");
        assert_eq!(env.state().shown().len(), 5);
        // WebShop offers Next even past the last hit: an empty page.
        ok(&mut env, "click[next >]");
        assert!(env.state().shown().is_empty());
        assert!(env.observation().ends_with("[button] Next > [button_]\n"));
        ok(&mut env, "click[< prev]");
        assert_eq!(env.state().page_no, 3);
    }

    #[test]
    fn prev_goes_from_a_sub_page_to_the_item_and_from_the_item_to_its_results_page() {
        let mut env = env(30);
        ok(&mut env, "search[sofa]");
        ok(&mut env, "click[next >]");
        let asin = env.shop().catalogue.products()[env.state().shown()[0]]
            .asin
            .clone();
        ok(&mut env, &format!("click[{}]", asin.to_lowercase()));
        assert_eq!(env.page(), Page::Item);
        ok(&mut env, "click[reviews]");
        assert_eq!(env.page(), Page::Reviews);
        assert!(env.observation().ends_with("[button] < Prev [button_]\n"));
        ok(&mut env, "click[< prev]");
        assert_eq!(env.page(), Page::Item);
        ok(&mut env, "click[< prev]");
        assert_eq!((env.page(), env.state().page_no), (Page::Results, 2));
        // The product opened is marked on its results page.
        assert!(
            env.observation()
                .contains(&format!("\n[clicked button] {asin} [clicked button_]\n"))
        );
    }

    #[test]
    fn options_are_chosen_one_per_name_and_marked_as_webshop_marks_them() {
        let mut env = env(30);
        ok(&mut env, "search[sofa]");
        let first = first_result(&env);
        ok(&mut env, &first);
        ok(&mut env, "click[navy]");
        ok(&mut env, "click[large]");
        ok(&mut env, "click[grey]");
        assert_eq!(env.state().chosen(), ["grey", "large"]);
        let obs = env.observation();
        assert!(
            obs.starts_with("You have clicked large.\nYou have clicked grey.\nInstruction:\n"),
            "{obs}"
        );
        assert!(
            obs.contains("  [clicked button] grey [clicked button_]\n  [button] navy [button_]")
        );
        // A sub-page keeps the options; the results page forgets them.
        ok(&mut env, "click[description]");
        ok(&mut env, "click[< prev]");
        assert_eq!(env.state().chosen(), ["grey", "large"]);
        assert!(env.observation().starts_with("You have clicked large."));
        ok(&mut env, "click[< prev]");
        assert!(env.state().options.is_empty());
        let first = first_result(&env);
        ok(&mut env, &first);
        assert!(!env.observation().contains("You have clicked"));
    }

    #[test]
    fn back_to_search_forgets_the_search_the_options_and_the_products_opened() {
        let mut env = env(30);
        let start = env.observation().to_string();
        ok(&mut env, "search[sofa]");
        let first = first_result(&env);
        ok(&mut env, &first);
        ok(&mut env, "click[grey]");
        ok(&mut env, "click[back to search]");
        assert_eq!(env.observation(), start);
        assert_eq!(env.admissible(), ["search[...]"]);
        assert!(env.state().options.is_empty() && env.state().visited.is_empty());
        assert_eq!(env.state().keywords, None);
        ok(&mut env, "search[sofa]");
        assert!(!env.observation().contains("[clicked button]"));
    }

    #[test]
    fn anything_else_does_nothing_and_earns_nothing() {
        let mut env = env(30);
        let search_page = env.observation().to_string();
        for action in ["click[search]", "click[next >]", "look", "search[]", "buy"] {
            let outcome = env.step(action);
            assert_eq!(env.observation(), search_page, "{action}");
            assert_eq!((outcome.reward, outcome.done), (0.0, false), "{action}");
        }
        env.step("search[sofa]");
        let results = env.observation().to_string();
        for action in [
            "search[grey sofa]",
            "click[buy now]",
            "click[< prev]",
            "click[grey]",
        ] {
            env.step(action);
            assert_eq!(env.observation(), results, "{action}");
        }
        // Clicks are read in any case; searches are lowercased.
        env.step(&first_result(&env).to_uppercase().replace("CLICK", "click"));
        assert_eq!(env.page(), Page::Item);
        assert_eq!(env.steps_taken(), 11);
        assert_eq!(env.info(), None);
    }

    #[test]
    fn buying_ends_the_episode_with_the_reward_and_its_breakdown() {
        let mut env = env(30);
        env.step("search[sofa]");
        env.step(&first_result(&env));
        env.step("click[grey]");
        assert_eq!(env.info(), None);
        let outcome = env.step("click[buy now]");
        assert!(outcome.done);
        let reward = env.reward().expect("bought").clone();
        assert_eq!(outcome.reward, reward.total as f32);
        assert_eq!(outcome.won, reward.total >= 1.0 - 1e-9);
        assert_eq!(env.info(), Some(serde_json::to_value(&reward).unwrap()));
        assert!(env.admissible().is_empty());
        assert!(
            env.observation()
                .contains("\noptions\n{\"color\": \"grey\"}\n")
        );
        let after = env.step("click[back to search]");
        assert_eq!((after.done, after.reward), (true, 0.0));
        assert_eq!(env.steps_taken(), 4);
        env.reset();
        assert_eq!(
            (env.page(), env.steps_taken(), env.info()),
            (Page::Search, 0, None)
        );
    }

    #[test]
    fn the_horizon_ends_the_episode() {
        let mut env = env(3);
        assert!(!env.step("search[sofa]").done);
        assert!(!env.step("look").done);
        let last = env.step("click[next >]");
        assert!(last.done && !last.won);
        assert_eq!(env.state().page_no, 2);
        assert!(env.step("click[next >]").done);
        assert_eq!((env.steps_taken(), env.state().page_no), (3, 2));
    }

    #[test]
    fn simple_text_joins_the_nodes() {
        let mut env = env(30);
        env.mode = TextMode::Simple;
        env.reset();
        assert_eq!(
            env.observation(),
            "WebShop [SEP] Instruction: [SEP] a grey sofa [SEP] Search"
        );
    }
}
