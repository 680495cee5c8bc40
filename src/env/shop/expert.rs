//! The shop's expert, at two privileges.
//!
//! Informed by the privileged state (the goal and its product), it searches with the words a
//! shopper would use for that product, pages on to it, opens it, chooses the goal's options and
//! buys: that is the plan. Limited to what the pages have shown, it reads the instruction like
//! a shopper: searches with the instruction's own words (shorter each time nothing fits), opens
//! the result whose title matches them best under the price limit, chooses the option values
//! the instruction names, and buys. Its reasons state the principle and name a product only
//! once a page has shown it.

use super::page::{BACK_TO_SEARCH, BUY_NOW, HITS, NEXT_PAGE, PER_PAGE, PREV_PAGE};
use super::{Page, Product, ShopEnv};
use crate::env::{Advice, Environment, Fact, Privileged};

/// More steps than any purchase takes; a plan that needs more is no plan.
const MAX_PLAN: usize = 60;

fn click(name: &str) -> String {
    format!("click[{}]", name.to_lowercase())
}

fn advice(action: String, reason: impl Into<String>, privileged: bool) -> Option<Advice> {
    Some(Advice {
        action,
        reason: reason.into(),
        privileged,
    })
}

/// Words as a shopper types them: lower case, letters and digits, with the `-`, `.` and `'`
/// inside words like `x-large`, `6.5` and `men's`.
pub fn words(text: &str) -> Vec<String> {
    let inner = |c: char| matches!(c, '-' | '.' | '\'');
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || inner(c)))
        .map(|w| w.trim_matches(inner))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The instruction's usual phrasing, which says nothing about the product (beside the search's
/// own stop words, Lucene's English ones).
const PHRASING: &[&str] = &[
    "i",
    "im",
    "i'm",
    "me",
    "my",
    "am",
    "want",
    "need",
    "looking",
    "like",
    "would",
    "please",
    "some",
    "something",
    "pick",
    "get",
    "find",
    "buy",
    "also",
    "which",
    "should",
    "has",
    "have",
    "its",
    "one",
    "can",
    "you",
];

/// The words of `text` that say something about the product.
pub fn content_words(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .filter(|w| {
            super::search::STOP_WORDS
                .binary_search(&w.as_str())
                .is_err()
                && !PHRASING.contains(&w.as_str())
        })
        .collect()
}

/// A word with a plural `s` dropped, so that "tables" meets "table".
fn stem(word: &str) -> &str {
    match word.strip_suffix('s') {
        Some(s) if s.len() > 2 && !s.ends_with('s') => s,
        _ => word,
    }
}

/// Whether the word sequence `phrase` occurs in `text`.
fn has_phrase(text: &[String], phrase: &[String]) -> bool {
    !phrase.is_empty() && text.windows(phrase.len()).any(|w| w == phrase)
}

// ---------------------------------------------------------------------------------------------
// Privilege 1: the goal and its product known.

/// The product option (name, value) to choose for the goal's option value `wanted`: the same
/// value, else one that contains it or is contained in it, else none.
pub fn option_for<'p>(product: &'p Product, wanted: &str) -> Option<(&'p str, &'p str)> {
    let wanted = wanted.trim().to_lowercase();
    let all = || {
        product
            .options
            .iter()
            .flat_map(|(n, vs)| vs.iter().map(move |v| (n.as_str(), v.as_str())))
    };
    all().find(|(_, v)| *v == wanted).or_else(|| {
        all()
            .filter(|(_, v)| v.contains(wanted.as_str()) || wanted.contains(v))
            .max_by_key(|(_, v)| v.len())
    })
}

/// Searches a shopper would type for the goal's product, most natural first: the kind of
/// product with the goal's attributes, then the title's content words, then the whole title.
fn candidate_queries(env: &ShopEnv) -> Vec<String> {
    let target = env.target();
    let mut kind = words(&target.query);
    for attribute in &env.goal().attributes {
        for w in words(attribute) {
            if !kind.contains(&w) {
                kind.push(w);
            }
        }
    }
    let title_words: Vec<String> = content_words(&target.name).into_iter().take(12).collect();
    let mut out: Vec<String> = Vec::new();
    for query in [
        kind.join(" "),
        title_words.join(" "),
        words(&target.name).join(" "),
    ] {
        if !query.is_empty() && !out.contains(&query) {
            out.push(query);
        }
    }
    out
}

/// The search that brings the goal's product up soonest: the first candidate that shows it on
/// the first results page, else the one that ranks it best; `None` when none finds it.
pub fn query(env: &ShopEnv) -> Option<String> {
    let index = &env.shop().index;
    let mut best: Option<(usize, String)> = None;
    for q in candidate_queries(env) {
        let Some(rank) = index.search(&q, HITS).iter().position(|&p| p == env.target) else {
            continue;
        };
        if rank < PER_PAGE {
            return Some(q);
        }
        if best.as_ref().is_none_or(|(r, _)| rank < *r) {
            best = Some((rank, q));
        }
    }
    best.map(|(_, q)| q)
}

/// The goal's options to choose on its product, as (name, value), one per name.
fn goal_choices(env: &ShopEnv) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for wanted in &env.goal().options {
        if let Some((name, value)) = option_for(env.target(), wanted)
            && !out.iter().any(|(n, _)| *n == name)
        {
            out.push((name, value));
        }
    }
    out
}

/// The informed expert's next command from the current state.
pub fn advise_informed(env: &ShopEnv) -> Option<Advice> {
    let state = env.state();
    let target = env.target;
    let on_target = state.product == Some(target);
    match state.page {
        Page::Done => None,
        Page::Search => advice(
            format!("search[{}]", query(env)?),
            "Search with the kind of product the instruction asks for and its main features, \
             as a shopper would type them.",
            true,
        ),
        Page::Results => {
            let rank = state.hits.iter().position(|&p| p == target);
            match rank {
                Some(_) if state.shown().contains(&target) => {
                    let asin = &env.target().asin;
                    advice(
                        click(asin),
                        format!(
                            "Result {asin} fits everything the instruction asks for, so open it."
                        ),
                        true,
                    )
                }
                Some(rank) if rank / PER_PAGE + 1 > state.page_no => advice(
                    click(NEXT_PAGE),
                    "The product that fits the instruction is further down the results, so go \
                     to the next page.",
                    true,
                ),
                Some(_) => advice(
                    click(PREV_PAGE),
                    "The product that fits the instruction is on an earlier results page, so go \
                     back a page.",
                    true,
                ),
                None => advice(
                    click(BACK_TO_SEARCH),
                    "No result here fits the instruction, so search again with other words.",
                    true,
                ),
            }
        }
        Page::Item if on_target => {
            let missing = goal_choices(env)
                .into_iter()
                .find(|(name, value)| !state.options.iter().any(|(n, v)| n == name && v == value));
            match missing {
                Some((_, value)) => {
                    let wanted = env
                        .goal()
                        .options
                        .iter()
                        .find(|o| option_for(env.target(), o).is_some_and(|(_, v)| v == value))
                        .map_or(value, String::as_str);
                    advice(
                        click(value),
                        format!("The instruction asks for {wanted}, so choose the {value} option."),
                        true,
                    )
                }
                None => advice(
                    click(BUY_NOW),
                    "This product fits the instruction and every option it asks for is chosen, \
                     so buy it.",
                    true,
                ),
            }
        }
        Page::Description | Page::Features | Page::Reviews if on_target => advice(
            click(PREV_PAGE),
            "The product fits the instruction; go back to its page to choose the options and \
             buy it.",
            true,
        ),
        Page::Item if state.hits.contains(&target) => advice(
            click(PREV_PAGE),
            "This product does not fit the instruction, so go back to the results.",
            true,
        ),
        _ => advice(
            click(BACK_TO_SEARCH),
            "This product does not fit the instruction, so start a new search.",
            true,
        ),
    }
}

/// The informed expert's commands from the current state to the purchase (none once bought
/// with the whole reward); `None` when no search finds the goal's product.
pub fn plan(env: &ShopEnv) -> Option<Vec<String>> {
    if env.page() == Page::Done {
        return env.won().then(Vec::new);
    }
    let mut sim = env.clone();
    sim.horizon = u32::MAX;
    let mut plan = Vec::new();
    while plan.len() < MAX_PLAN {
        let next = advise_informed(&sim)?;
        sim.step(&next.action);
        plan.push(next.action);
        if sim.page() == Page::Done {
            return Some(plan);
        }
    }
    None
}

/// LEAP's privileged state: the goal's attributes, options and price limit, and the product
/// that satisfies them.
pub fn privileged(env: &ShopEnv) -> Privileged {
    let fact = |subject: &str, detail: String| Fact {
        subject: subject.to_string(),
        relation: "is".to_string(),
        detail,
    };
    let goal = env.goal();
    let mut facts: Vec<Fact> = goal
        .attributes
        .iter()
        .map(|a| fact("goal attribute", a.clone()))
        .collect();
    facts.extend(goal.options.iter().map(|o| fact("goal option", o.clone())));
    facts.push(fact(
        "price limit",
        format!("{:.2} dollars", goal.price_upper),
    ));
    facts.push(fact("matching product", env.target().name.clone()));
    facts.push(fact("matching product asin", env.target().asin.clone()));
    Privileged {
        facts,
        plan: plan(env),
    }
}

// ---------------------------------------------------------------------------------------------
// Privilege 0: the instruction and the pages only.

/// What the shopper has done so far in the episode (their own history, not the goal).
#[derive(Debug, Clone, Default)]
pub struct Memory {
    /// Searches made.
    pub searches: usize,
    /// Products opened, by catalogue position: not opened again.
    pub opened: Vec<usize>,
}

impl Memory {
    /// Takes in one step, from the page before it to the state after it.
    pub fn observe(&mut self, before: Page, env: &ShopEnv) {
        if before == Page::Search && env.page() == Page::Results {
            self.searches += 1;
        }
        if let Some(p) = env.state().product
            && !self.opened.contains(&p)
        {
            self.opened.push(p);
        }
    }
}

/// What the instruction asks for, read as a shopper reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Searches to try, longest first: the request, its content words, then fewer of them.
    pub queries: Vec<String>,
    /// The words a title should have.
    pub wanted: Vec<String>,
    /// All the instruction's words, where option values are looked for.
    pub words: Vec<String>,
    /// The price limit, when the instruction gives one.
    pub price_limit: Option<f64>,
}

const LEAD_INS: &[&str] = &[
    "i am looking for",
    "i'm looking for",
    "im looking for",
    "i am searching for",
    "i'm searching for",
    "looking for",
    "i would like to buy",
    "i would like to get",
    "i would like",
    "i'd like to buy",
    "i'd like",
    "i want to buy",
    "i want to get",
    "i want to find",
    "i need to buy",
    "i need to find",
    "i want",
    "i need",
    "find me",
    "get me",
    "buy me",
    "show me",
    "search for",
    "please find",
];

const PRICE_CLAUSES: &[&str] = &[
    "price lower than",
    "price less than",
    "price under",
    "priced lower than",
    "priced under",
    "lower than",
    "less than",
    "under $",
];

impl Request {
    pub fn read(instruction: &str) -> Request {
        let text = instruction.trim().to_lowercase();
        let mut price_limit = None;
        let mut request = text.as_str();
        if let Some((at, clause)) = PRICE_CLAUSES
            .iter()
            .filter_map(|c| text.find(c).map(|at| (at, *c)))
            .min_by_key(|&(at, _)| at)
        {
            price_limit = text[at + clause.len()..]
                .trim_start_matches([' ', '$'])
                .split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .next()
                .and_then(|n| n.trim_end_matches('.').parse::<f64>().ok());
            request = text[..at].trim_end();
            for tail in [", and", " and", ",", " with a", " with", " at a", " at"] {
                request = request.strip_suffix(tail).unwrap_or(request).trim_end();
            }
        }
        let mut request = request.trim();
        for lead in LEAD_INS {
            if let Some(rest) = request.strip_prefix(lead) {
                request = rest.trim_start();
                break;
            }
        }
        for article in ["a ", "an ", "some ", "the "] {
            request = request.strip_prefix(article).unwrap_or(request);
        }
        let wanted = content_words(request);
        let mut queries: Vec<String> = Vec::new();
        let whole = words(request).join(" ");
        for q in [
            whole,
            wanted.join(" "),
            wanted.iter().take(4).cloned().collect::<Vec<_>>().join(" "),
            wanted.iter().take(2).cloned().collect::<Vec<_>>().join(" "),
        ] {
            if !q.is_empty() && !queries.contains(&q) {
                queries.push(q);
            }
        }
        Request {
            queries,
            wanted,
            words: words(&text),
            price_limit,
        }
    }

    /// The share of the wanted words that `title` has.
    pub fn title_match(&self, title: &str) -> f64 {
        if self.wanted.is_empty() {
            return 0.0;
        }
        let title: Vec<String> = words(title);
        let found = self
            .wanted
            .iter()
            .filter(|w| title.iter().any(|t| stem(t) == stem(w)))
            .count();
        found as f64 / self.wanted.len() as f64
    }

    fn affordable(&self, product: &Product) -> bool {
        let shown = product.pricing.first().copied().unwrap_or(product.price);
        self.price_limit.is_none_or(|limit| shown <= limit)
    }

    /// The value of an option group that the instruction names (the longest, for "x-large"
    /// over "large").
    fn named_value<'v>(&self, values: &'v [String]) -> Option<&'v str> {
        values
            .iter()
            .filter(|v| has_phrase(&self.words, &words(v)))
            .max_by_key(|v| v.len())
            .map(String::as_str)
    }
}

fn price_words(request: &Request) -> String {
    match request.price_limit {
        Some(limit) => format!("under {limit} dollars"),
        None => "affordable".to_string(),
    }
}

/// The observing expert's next command: it reads the instruction, the page on screen (what
/// `env`'s state shows there) and its own history, never the goal or its product.
pub fn advise_observed(env: &ShopEnv, memory: &Memory) -> Option<Advice> {
    let request = Request::read(env.task());
    let state = env.state();
    let products = env.shop().catalogue.products();
    let out_of_queries = memory.searches >= request.queries.len();
    match state.page {
        Page::Done => None,
        Page::Search => {
            let q = request
                .queries
                .get(memory.searches.min(request.queries.len().saturating_sub(1)))?;
            let reason = if memory.searches == 0 {
                "Search with the words of the instruction, leaving out the politeness and the \
                 price."
            } else {
                "The last search found nothing that fits, so search again with fewer words."
            };
            advice(format!("search[{q}]"), reason, false)
        }
        Page::Results => {
            let fits = |p: &usize| !memory.opened.contains(p) && request.affordable(&products[*p]);
            let best = |candidates: &mut dyn Iterator<Item = usize>| {
                candidates
                    .map(|p| (request.title_match(&products[p].name), p))
                    .fold(None, |best: Option<(f64, usize)>, (s, p)| match best {
                        Some((b, _)) if b >= s => best,
                        _ => Some((s, p)),
                    })
            };
            let shown = state.shown();
            if let Some((score, p)) = best(&mut shown.iter().copied().filter(fits))
                && score > 0.0
            {
                let asin = &products[p].asin;
                return advice(
                    click(asin),
                    format!(
                        "Result {asin} has the most of the instruction's words in its title and \
                         its price is {}, so open it.",
                        price_words(&request)
                    ),
                    false,
                );
            }
            if state.page_no * PER_PAGE < state.hits.len() {
                return advice(
                    click(NEXT_PAGE),
                    "Nothing on this page fits the instruction, so look at the next page.",
                    false,
                );
            }
            if !out_of_queries {
                return advice(
                    click(BACK_TO_SEARCH),
                    "Nothing in these results fits the instruction, so search again with fewer \
                     words.",
                    false,
                );
            }
            // Every search tried: the closest result on screen will have to do.
            let (_, p) = best(&mut shown.iter().copied())?;
            let asin = &products[p].asin;
            advice(
                click(asin),
                format!(
                    "No search found a closer match, and result {asin} has the most of the \
                     instruction's words in its title, so open it."
                ),
                false,
            )
        }
        Page::Item => {
            let product = &products[state.product?];
            if !request.affordable(product) && !out_of_queries {
                return advice(
                    click(PREV_PAGE),
                    format!(
                        "This product costs more than the instruction allows ({}), so go back \
                         to the results.",
                        price_words(&request)
                    ),
                    false,
                );
            }
            for (name, values) in &product.options {
                if let Some(value) = request.named_value(values)
                    && !state.options.iter().any(|(n, v)| n == name && v == value)
                {
                    return advice(
                        click(value),
                        format!("The instruction asks for {value}, so choose the {value} option."),
                        false,
                    );
                }
            }
            advice(
                click(BUY_NOW),
                "This product's title matches the instruction and the options it names are \
                 chosen, so buy it.",
                false,
            )
        }
        Page::Description | Page::Features | Page::Reviews => advice(
            click(PREV_PAGE),
            "Go back to the product's page to choose its options and buy it.",
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instruction_is_read_without_its_lead_in_and_price_clause() {
        let r = Request::read(
            "i am looking for a console table made of solid wood, and price lower than 900.00 \
             dollars",
        );
        assert_eq!(r.price_limit, Some(900.0));
        assert_eq!(
            r.queries,
            [
                "console table made of solid wood",
                "console table made solid wood",
                "console table made solid",
                "console table"
            ]
        );
        assert_eq!(r.wanted, ["console", "table", "made", "solid", "wood"]);
        assert!((r.title_match("Reclaimed Wood Console Tables") - 0.6).abs() < 1e-9);

        let r = Request::read("i want a grey sofa in x-large");
        assert_eq!(r.price_limit, None);
        assert_eq!(r.queries[0], "grey sofa in x-large");
        let sizes = ["large".to_string(), "x-large".to_string()];
        assert_eq!(r.named_value(&sizes), Some("x-large"));
        assert_eq!(r.named_value(&["navy".to_string()]), None);
    }

    #[test]
    fn a_goal_option_picks_the_products_value() {
        let product = Product {
            asin: "B000000001".into(),
            name: "Sofa".into(),
            category: String::new(),
            query: String::new(),
            product_category: String::new(),
            description: String::new(),
            bullets: Vec::new(),
            pricing: vec![10.0],
            price: 10.0,
            options: vec![
                ("color".into(), vec!["light grey".into(), "grey".into()]),
                ("size".into(), vec!["x-large".into()]),
            ],
            attributes: Vec::new(),
        };
        assert_eq!(option_for(&product, "Grey"), Some(("color", "grey")));
        assert_eq!(option_for(&product, "large"), Some(("size", "x-large")));
        assert_eq!(option_for(&product, "blue"), None);
    }
}
