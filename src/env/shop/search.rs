//! Search over the catalogue (BM25 as WebShop's Lucene index scores it).

use super::Catalogue;

/// The catalogue's search index.
#[derive(Debug)]
pub struct SearchIndex {
    // SKELETON: the index comes with its own commit.
    docs: Vec<String>,
}

impl SearchIndex {
    pub fn new(catalogue: &Catalogue) -> SearchIndex {
        SearchIndex {
            docs: catalogue
                .products()
                .iter()
                .map(|p| p.name.to_lowercase())
                .collect(),
        }
    }

    /// The positions of the best `k` products for `query`, best first.
    pub fn search(&self, query: &str, k: usize) -> Vec<usize> {
        let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
        let mut hits: Vec<(usize, usize)> = self
            .docs
            .iter()
            .enumerate()
            .map(|(i, d)| (words.iter().filter(|w| d.contains(w.as_str())).count(), i))
            .filter(|(n, _)| *n > 0)
            .collect();
        hits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        hits.into_iter().take(k).map(|(_, i)| i).collect()
    }
}
