//! The shop's search: Lucene's English analysis as WebShop's index runs it, and BM25 scores
//! checked against computations by hand.

use std::path::Path;

use leap::env::shop::Catalogue;
use leap::env::shop::search::{self, SearchIndex, analyze};

/// A catalogue of products with only an ASIN and a title, read as a catalogue file is.
fn titled(products: &[(&str, &str)]) -> Catalogue {
    let raw: Vec<_> = products
        .iter()
        .map(|(asin, name)| serde_json::json!({"asin": asin, "name": name}))
        .collect();
    Catalogue::from_json("test", &serde_json::to_string(&raw).unwrap()).expect("products read")
}

fn sample() -> Catalogue {
    Catalogue::read(Path::new("tests/data/webshop/products_sample2.json")).expect("sample reads")
}

fn close(actual: f32, expected: f64) -> bool {
    (actual as f64 - expected).abs() < 1e-5
}

#[test]
fn stop_words_are_dropped() {
    assert!(analyze(&search::STOP_WORDS.join(" ")).is_empty());
    assert_eq!(
        analyze("a table for the hall and it is not wood"),
        ["tabl", "hall", "wood"]
    );
    // Only Lucene's 33 words: "i", "me" and "with"-like words outside the list stay.
    assert_eq!(analyze("find me"), ["find", "me"]);
}

#[test]
fn inflections_stem_to_the_same_terms() {
    assert_eq!(analyze("running shoes"), ["run", "shoe"]);
    assert_eq!(analyze("running shoes"), analyze("run shoe"));
    assert_eq!(analyze("Tables"), analyze("table"));
    assert_eq!(analyze("Reclaimed WOOD"), ["reclaim", "wood"]);
}

#[test]
fn possessives_lose_their_s() {
    assert_eq!(analyze("women's boots"), ["women", "boot"]);
    assert_eq!(analyze("WOMEN'S"), ["women"]);
    assert_eq!(analyze("women\u{2019}s"), ["women"]);
    // A contraction is one word, and not a possessive.
    assert_eq!(analyze("don't"), ["don't"]);
}

#[test]
fn words_break_at_unicode_word_boundaries() {
    // Hyphens split; decimal points and apostrophes inside a word do not; symbols go.
    assert_eq!(analyze("wi-fi 3.5 inch"), ["wi", "fi", "3.5", "inch"]);
    assert_eq!(analyze("$877.80 (x-large)"), ["877.80", "x", "larg"]);
}

#[test]
fn porter_stems_the_published_vocabulary() {
    let words = std::fs::read_to_string("tests/data/porter/voc.txt").expect("voc.txt");
    let stems = std::fs::read_to_string("tests/data/porter/output.txt").expect("output.txt");
    let pairs: Vec<(&str, &str)> = words.lines().zip(stems.lines()).collect();
    assert_eq!(pairs.len(), 23531);
    let wrong: Vec<String> = pairs
        .iter()
        .filter(|(w, s)| search::stem(w) != *s)
        .map(|(w, s)| format!("{w}: {} (expected {s})", search::stem(w)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} wrong: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(20)]
    );
}

#[test]
fn the_indexed_text_is_webshops_field() {
    let catalogue = sample();
    let p = &catalogue.products()[0];
    // Title, description, first bullet, options (none): joined by spaces, lowercased.
    let expected = format!("{} {} {} ", p.name, p.description, p.bullets[0]).to_lowercase();
    assert_eq!(search::indexed_text(p), expected);

    let with_options = Catalogue::from_json(
        "test",
        r#"[{"asin": "B000000001", "name": "Sofa", "customization_options": {
            "Color": [{"value": "Grey"}, {"value": "Dark Blue"}],
            "Size": [{"value": "large"}], "Material": null}}]"#,
    )
    .expect("the product reads");
    assert_eq!(
        search::indexed_text(&with_options.products()[0]),
        "sofa   color: grey, dark blue, and size: large"
    );
}

#[test]
fn console_tables_rank_by_bm25() {
    // Both sample products have all four query terms (solid, wood, consol, tabl), so each term
    // has n = 2 of N = 2 documents: idf = ln(1 + 0.5 / 2.5) = ln 1.2 = 0.1823216.
    // Lengths in terms: 34 (Vhomes) and 148 (HSJWOSA), avgdl = 91. 34 is stored exactly; 148
    // is stored as 144 (one byte: 24 + 15 << 3).
    //   Vhomes:  k1 (1 - b + b·34/91)  = 0.9 (0.6 + 0.149451) = 0.674505
    //            tf solid 1, wood 3, consol 1, tabl 2:
    //            1/1.674505 + 3/3.674505 + 1/1.674505 + 2/2.674505 = 2.758622
    //            score = 0.1823216 · 2.758622 = 0.502957
    //   HSJWOSA: k1 (1 - b + b·144/91) = 0.9 (0.6 + 0.632967) = 1.109670
    //            tf solid 2, wood 1, consol 2, tabl 4:
    //            2/3.109670 + 1/2.109670 + 2/3.109670 + 4/5.109670 = 2.543146
    //            score = 0.1823216 · 2.543146 = 0.463670
    // The shorter product with three "wood"s wins.
    let catalogue = sample();
    let index = SearchIndex::new(&catalogue);
    let hits = index.scored("solid wood console table", 50);
    assert_eq!(hits.len(), 2);
    assert_eq!(catalogue.products()[hits[0].0].asin, "B06Y3VLDFB");
    assert_eq!(catalogue.products()[hits[1].0].asin, "B09DG92LJL");
    assert!((hits[0].1 - 0.502957).abs() < 2e-6, "{hits:?}");
    assert!((hits[1].1 - 0.463670).abs() < 2e-6, "{hits:?}");
    assert_eq!(index.search("solid wood console table", 50), [0, 1]);
    assert_eq!(index.search("solid wood console table", 1), [0]);
}

#[test]
fn a_query_without_a_known_term_finds_nothing() {
    let index = SearchIndex::new(&sample());
    assert!(index.search("zeppelin quasar", 50).is_empty());
    assert!(index.search("the and of", 50).is_empty());
    assert!(index.search("", 50).is_empty());
    // One known term is enough.
    assert_eq!(index.search("zeppelin drawers", 50), [1]);
}

#[test]
fn scores_match_a_hand_computation() {
    // Terms: [red, appl] (2), [green, appl, pie] (3), [red, red, wine] (3): N = 3, avgdl = 8/3.
    // Length parts k1 (1 - b + b·dl/avgdl): dl 2 → 0.9 (0.6 + 0.3) = 0.81; dl 3 → 0.945.
    let catalogue = titled(&[
        ("B000000001", "Red Apple"),
        ("B000000002", "Green apple pie"),
        ("B000000003", "red, red wine"),
    ]);
    let index = SearchIndex::new(&catalogue);
    let idf_2 = 1.6f64.ln(); // n = 2: ln(1 + 1.5 / 2.5)
    let idf_1 = (8.0f64 / 3.0).ln(); // n = 1: ln(1 + 2.5 / 1.5)

    let hits = index.scored("red apples", 10);
    let expected = [
        (0, idf_2 / 1.81 + idf_2 / 1.81), // 0.519342
        (2, idf_2 * 2.0 / 2.945),         // 0.319188
        (1, idf_2 / 1.945),               // 0.241647
    ];
    assert_eq!(hits.len(), 3, "{hits:?}");
    for ((doc, score), (want_doc, want)) in hits.iter().zip(expected) {
        assert_eq!(*doc, want_doc, "{hits:?}");
        assert!(close(*score, want), "doc {doc}: {score} != {want}");
    }

    let wine = index.scored("wine", 10);
    assert_eq!(wine.len(), 1);
    assert!(close(wine[0].1, idf_1 / 1.945), "{wine:?}");

    // A word the query repeats counts as often as it is repeated (Anserini's boost).
    let twice = index.scored("wine wines", 10);
    assert!(close(twice[0].1, 2.0 * idf_1 / 1.945), "{twice:?}");
}

#[test]
fn equal_scores_rank_by_asin() {
    let catalogue = titled(&[
        ("B000000009", "oak desk"),
        ("B000000001", "oak desk"),
        ("B000000005", "pine desk"),
    ]);
    let index = SearchIndex::new(&catalogue);
    assert_eq!(index.search("oak", 10), [1, 0]);
    assert_eq!(index.search("desk", 10), [1, 2, 0]);
}

#[test]
fn lengths_are_stored_in_one_lossy_byte() {
    // Above 24 terms a length keeps four significant bits: 47 terms share the byte of 46, so
    // the two documents score the same and rank by ASIN; 48 has a byte of its own and ranks
    // below.
    let filler = |n: usize| {
        (0..n)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let catalogue = titled(&[
        ("B000000003", &format!("lamp {}", filler(46))),
        ("B000000002", &format!("lamp {}", filler(45))),
        ("B000000001", &format!("lamp {}", filler(47))),
    ]);
    let index = SearchIndex::new(&catalogue);
    let hits = index.scored("lamp", 10);
    assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [1, 0, 2]);
    assert_eq!(hits[0].1, hits[1].1);
    assert!(hits[1].1 > hits[2].1);
}

#[test]
fn the_top_k_are_the_best_k_of_all_hits() {
    // Many documents, scores spread by length: taking 5 gives the first 5 of the full ranking.
    let products: Vec<(String, String)> = (0..200)
        .map(|i| {
            let asin = format!("B{:09}", (i * 7919) % 1000);
            (asin, format!("chair {}", "x ".repeat(i % 37)))
        })
        .collect();
    let products: Vec<(&str, &str)> = products
        .iter()
        .map(|(a, n)| (a.as_str(), n.as_str()))
        .collect();
    let catalogue = titled(&products);
    let index = SearchIndex::new(&catalogue);
    let all = index.scored("chair", 1000);
    assert_eq!(all.len(), 200);
    assert!(all.windows(2).all(|w| w[0].1 >= w[1].1));
    assert_eq!(index.scored("chair", 5), all[..5]);
}
