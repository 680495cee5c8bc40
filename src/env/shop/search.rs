//! Search over the catalogue, ranked as WebShop's Lucene index ranks it.
//!
//! WebShop indexes one field per product (`search_engine/convert_product_file_format.py`): the
//! title, the description, the first bullet point and the options, joined by spaces and
//! lowercased. Pyserini analyses it with Lucene's English analysis ([`analyze`]) and scores a
//! query, a bag of its analysed words, with BM25 (k1 = 0.9, b = 0.4; see `bm25`). Equal scores
//! are ordered by ASIN: Anserini's searcher sorts by score, then by the collection's document id.
//!
//! The index is inverted: per term, its postings (document, and the query-independent part of
//! the term's score there, computed once at build time). A query walks only its terms'
//! postings, adds into one accumulator per thread, and keeps the best `k`.

mod analysis;
mod bm25;
mod porter;

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

pub use analysis::{STOP_WORDS, analyze};

use super::{Catalogue, Product};

/// The catalogue's search index.
pub struct SearchIndex {
    /// Term → its id: the index of its postings in `offsets`.
    terms: FxHashMap<Box<str>, u32>,
    /// Term `t`'s postings are `docs[offsets[t]..offsets[t + 1]]`, in document order, with
    /// their `tf_parts` beside them.
    offsets: Vec<u32>,
    docs: Vec<u32>,
    tf_parts: Vec<f32>,
    /// Documents with at least one term (Lucene's `docCount`, BM25's N).
    doc_count: u64,
    /// Each document's place in ASIN order: equal scores rank by it.
    asin_rank: Vec<u32>,
}

/// The text WebShop indexes for a product: title, description, first bullet point and options
/// (`name: v1, v2, and name: v1`), joined by spaces and lowercased.
pub fn indexed_text(product: &Product) -> String {
    let options = product
        .options
        .iter()
        .map(|(name, values)| format!("{name}: {}", values.join(", ")))
        .collect::<Vec<_>>()
        .join(", and ");
    let first_bullet = product.bullets.first().map_or("", String::as_str);
    [
        product.name.as_str(),
        &product.description,
        first_bullet,
        &options,
    ]
    .join(" ")
    .to_lowercase()
}

/// The original Porter stem of one lowercase word, as Lucene's `PorterStemFilter` gives it.
pub fn stem(word: &str) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    porter::stem(&mut chars);
    chars.into_iter().collect()
}

impl SearchIndex {
    pub fn new(catalogue: &Catalogue) -> SearchIndex {
        let products = catalogue.products();
        let mut terms: FxHashMap<Box<str>, u32> = FxHashMap::default();
        // Per term: (document, term frequency), in document order.
        let mut postings: Vec<Vec<(u32, u32)>> = Vec::new();
        let mut norms = Vec::with_capacity(products.len());
        let mut total_terms = 0u64;
        let mut doc_count = 0u64;
        let mut analyzer = analysis::Analyzer::default();
        let mut in_doc: FxHashMap<u32, u32> = FxHashMap::default();
        for (doc, product) in products.iter().enumerate() {
            in_doc.clear();
            let mut length = 0u32;
            analyzer.each(&indexed_text(product), |term| {
                let next = terms.len() as u32;
                let id = *terms.entry(term.into()).or_insert_with(|| {
                    postings.push(Vec::new());
                    next
                });
                *in_doc.entry(id).or_default() += 1;
                length += 1;
            });
            for (&id, &tf) in &in_doc {
                postings[id as usize].push((doc as u32, tf));
            }
            norms.push(bm25::encode_length(length));
            total_terms += length as u64;
            doc_count += (length > 0) as u64;
        }

        let avgdl = bm25::average_length(total_terms, doc_count);
        let size: usize = postings.iter().map(Vec::len).sum();
        let mut offsets = Vec::with_capacity(postings.len() + 1);
        let mut docs = Vec::with_capacity(size);
        let mut tf_parts = Vec::with_capacity(size);
        offsets.push(0);
        for list in postings {
            for (doc, tf) in list {
                docs.push(doc);
                tf_parts.push(bm25::tf_part(tf, norms[doc as usize], avgdl));
            }
            offsets.push(docs.len() as u32);
        }

        let mut by_asin: Vec<u32> = (0..products.len() as u32).collect();
        by_asin.sort_by(|&a, &b| products[a as usize].asin.cmp(&products[b as usize].asin));
        let mut asin_rank = vec![0; products.len()];
        for (rank, &doc) in by_asin.iter().enumerate() {
            asin_rank[doc as usize] = rank as u32;
        }

        SearchIndex {
            terms,
            offsets,
            docs,
            tf_parts,
            doc_count,
            asin_rank,
        }
    }

    /// The positions of the best `k` products for `query`, best first.
    pub fn search(&self, query: &str, k: usize) -> Vec<usize> {
        self.scored(query, k)
            .into_iter()
            .map(|(doc, _)| doc)
            .collect()
    }

    /// The best `k` products for `query` with their scores, best first. A query with no indexed
    /// term finds nothing.
    pub fn scored(&self, query: &str, k: usize) -> Vec<(usize, f32)> {
        // The query's known terms with their weights (idf, times how often the query names it).
        let mut counts: Vec<(u32, u32)> = Vec::new();
        analysis::Analyzer::default().each(query, |term| {
            if let Some(&id) = self.terms.get(term) {
                match counts.iter_mut().find(|(t, _)| *t == id) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((id, 1)),
                }
            }
        });
        if counts.is_empty() || k == 0 {
            return Vec::new();
        }

        SCRATCH.with_borrow_mut(|scratch| {
            scratch.sums.resize(self.asin_rank.len(), 0.0);
            for &(id, boost) in &counts {
                let range =
                    self.offsets[id as usize] as usize..self.offsets[id as usize + 1] as usize;
                let weight = boost as f32 * bm25::idf(range.len() as u64, self.doc_count);
                for (&doc, &part) in self.docs[range.clone()].iter().zip(&self.tf_parts[range]) {
                    let sum = &mut scratch.sums[doc as usize];
                    if *sum == 0.0 {
                        scratch.touched.push(doc);
                    }
                    // Lucene adds the clauses' single-precision scores in double precision.
                    *sum += (weight * part) as f64;
                }
            }
            // The best k so far in a heap whose top is the worst of them: most documents lose
            // to it at the first comparison.
            let mut best: BinaryHeap<Hit> = BinaryHeap::with_capacity(k + 1);
            for doc in scratch.touched.drain(..) {
                let hit = Hit {
                    score: std::mem::take(&mut scratch.sums[doc as usize]) as f32,
                    rank: self.asin_rank[doc as usize],
                    doc,
                };
                if best.len() < k {
                    best.push(hit);
                } else if let Some(mut worst) = best.peek_mut()
                    && hit < *worst
                {
                    *worst = hit;
                }
            }
            best.into_sorted_vec()
                .into_iter()
                .map(|h| (h.doc as usize, h.score))
                .collect()
        })
    }
}

/// A document found, ordered best first: higher score, then earlier ASIN.
#[derive(Debug, Clone, Copy)]
struct Hit {
    score: f32,
    rank: u32,
    doc: u32,
}

impl Ord for Hit {
    fn cmp(&self, other: &Hit) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.rank.cmp(&other.rank))
    }
}

impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Hit) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Hit {
    fn eq(&self, other: &Hit) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Hit {}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("documents", &self.asin_rank.len())
            .field("terms", &self.terms.len())
            .field("postings", &self.docs.len())
            .finish()
    }
}

/// A query's running sums, one per document, kept per thread so that episodes searching in
/// parallel share nothing; the documents touched are zeroed again after each query.
#[derive(Default)]
struct Scratch {
    sums: Vec<f64>,
    touched: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}
