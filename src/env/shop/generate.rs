//! The shop's generator: a catalogue and goals built from WebShop's real product attributes.

use super::{Catalogue, Product};

/// A catalogue of `size` products drawn as the shipped catalogue's are, the same for the same
/// seed (the search benchmark's 100,000-product catalogue).
// SKELETON: the generator comes with its own commit.
pub fn synthetic_catalogue(size: usize, seed: u64) -> Catalogue {
    Catalogue::new(
        (0..size)
            .map(|i| Product {
                asin: format!("B{:09}", i as u64 ^ seed),
                name: format!("product {i}"),
                category: String::new(),
                query: String::new(),
                product_category: String::new(),
                description: String::new(),
                bullets: Vec::new(),
                pricing: vec![10.0],
                price: 10.0,
                options: Vec::new(),
                attributes: Vec::new(),
            })
            .collect(),
    )
}
