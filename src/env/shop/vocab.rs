//! The words the shop's generator builds products from: WebShop's categories and the
//! breadcrumbs of its product types, option vocabularies (colours and sizes as WebShop's
//! `normalize.py` knows them, real-looking size, length and flavour values), and a test of when
//! two phrases would count as the same under WebShop's fuzzy matching.

/// WebShop's size words (`engine/normalize.py`, `SIZE_SET`).
pub const SIZE_SET: &[&str] = &[
    "xx-large", "3x-large", "4x-large", "5x-large", "x-large", "x-small", "medium", "large",
    "small", "queen", "twin", "full", "king", "one size", "pack",
];

/// Product-type groups: the category, the breadcrumb above the type, and words of the type
/// that place it there. The first group with a word the type contains wins, so specific words
/// come before general ones ("toothpicks" before "tooth", "decorative mirrors" before
/// "mirrors").
const GROUPS: &[(&str, &str, &[&str])] = &[
    (
        "grocery",
        "Grocery & Gourmet Food › Party Supplies",
        &["toothpicks"],
    ),
    (
        "garden",
        "Home & Kitchen › Home Décor Products",
        &[
            "decorative",
            "wall art",
            "artificial plants",
            "candles",
            "throw blankets",
            "window coverings",
        ],
    ),
    (
        "beauty",
        "Beauty & Personal Care › Shave & Hair Removal",
        &["shave"],
    ),
    (
        "beauty",
        "Beauty & Personal Care › Fragrance",
        &["fragrance", "deodorant"],
    ),
    (
        "beauty",
        "Beauty & Personal Care › Hair Care",
        &["hair", "wig", "shampoo", "styling"],
    ),
    (
        "beauty",
        "Beauty & Personal Care › Makeup",
        &["makeup", "palettes"],
    ),
    (
        "beauty",
        "Beauty & Personal Care › Oral Care",
        &["dental", "tooth", "tongue", "orthodontic"],
    ),
    (
        "beauty",
        "Beauty & Personal Care › Skin Care",
        &["skin", "scrubs", "body care", "lip care", "cotton balls"],
    ),
    (
        "beauty",
        "Beauty & Personal Care › Foot, Hand & Nail Care",
        &["nail", "piercing"],
    ),
    (
        "beauty",
        "Beauty & Personal Care › Tools & Accessories",
        &["bath", "refillable", "mirrors", "bags & cases"],
    ),
    (
        "grocery",
        "Grocery & Gourmet Food › Snacks & Sweets",
        &[
            "snack",
            "puffed",
            "candy",
            "wasabi",
            "granola",
            "crackers",
            "dried",
            "applesauce",
        ],
    ),
    (
        "grocery",
        "Grocery & Gourmet Food › Meat & Seafood",
        &["meat"],
    ),
    (
        "grocery",
        "Grocery & Gourmet Food › Dairy, Cheese & Eggs",
        &["chees", "milk"],
    ),
    (
        "grocery",
        "Grocery & Gourmet Food › Beverages",
        &["beverages"],
    ),
    (
        "grocery",
        "Grocery & Gourmet Food › Food & Beverage Gifts",
        &["gifts"],
    ),
    (
        "grocery",
        "Grocery & Gourmet Food › Pantry Staples",
        &["pantry", "breakfast", "frozen", "deli", "meal kits"],
    ),
    (
        "electronics",
        "Electronics › Camera & Photo",
        &[
            "camera",
            "lenses",
            "flashes",
            "tripods",
            "underwater",
            "binoculars",
            "surveillance",
        ],
    ),
    (
        "electronics",
        "Electronics › Home Audio",
        &[
            "speaker",
            "soundbar",
            "receivers",
            "turntable",
            "cd players",
            "surround",
            "multiroom",
            "headphones",
        ],
    ),
    (
        "electronics",
        "Electronics › Television & Video",
        &[
            "projector",
            "television",
            "vcr",
            "blu-ray",
            "streaming",
            "video glasses",
            "mounts",
        ],
    ),
    (
        "electronics",
        "Electronics › Cell Phones & Accessories",
        &[
            "iphone",
            "screen protectors",
            "chargers",
            "signal boosters",
            "headsets",
            "car accessories",
            "wearable",
        ],
    ),
    (
        "electronics",
        "Electronics › Computers & Accessories",
        &[
            "mac",
            "printers",
            "power protection",
            "hdmi",
            "online game",
            "virtual reality",
        ],
    ),
    (
        "garden",
        "Tools & Home Improvement › Lighting & Ceiling Fans",
        &["lamps", "sconces", "pendants", "chandeliers"],
    ),
    (
        "garden",
        "Home & Kitchen › Furniture › Bedroom Furniture",
        &["mattress", "beds", "bedframes", "nightstands", "vanities"],
    ),
    (
        "garden",
        "Home & Kitchen › Furniture › Home Office Furniture",
        &[
            "home office",
            "desks",
            "file cabinets",
            "drafting",
            "armoires",
            "bookcases",
        ],
    ),
    (
        "garden",
        "Home & Kitchen › Furniture › Living Room Furniture",
        &[
            "living room",
            "sofa",
            "coffee tables",
            "ottomans",
            "tv stands",
            "console tables",
        ],
    ),
    (
        "garden",
        "Home & Kitchen › Furniture › Kitchen & Dining Room Furniture",
        &[
            "dining",
            "kitchen islands",
            "bar stools",
            "baker's racks",
            "china cabinets",
        ],
    ),
    (
        "garden",
        "Home & Kitchen › Furniture › Entryway Furniture",
        &["hall trees", "coat racks"],
    ),
    (
        "garden",
        "Home & Kitchen › Furniture",
        &["furniture", "cabinets", "bases"],
    ),
];

/// The breadcrumb root of a category, for a type no group names.
pub fn category_root(category: &str) -> &'static str {
    match category {
        "beauty" => "Beauty & Personal Care",
        "grocery" => "Grocery & Gourmet Food",
        "electronics" => "Electronics",
        "fashion" => "Clothing, Shoes & Jewelry",
        _ => "Home & Kitchen",
    }
}

const SHOE_WORDS: &[&str] = &[
    "shoes", "sneakers", "boots", "loafers", "sandals", "slippers", "pumps", "mules", "oxfords",
    "flats", "footwear",
];

/// Whether a type is worn on the feet (its sizes are shoe sizes).
pub fn is_shoes(query: &str) -> bool {
    SHOE_WORDS.iter().any(|w| query.contains(w))
}

/// The category and breadcrumb of a product type ("men's shorts" -> fashion, "Clothing, Shoes
/// & Jewelry › Men › Clothing › Shorts"), or `None` for a type no group knows.
pub fn classify(query: &str) -> Option<(&'static str, String)> {
    for (who, person) in [("men's ", "Men"), ("women's ", "Women")] {
        if let Some(rest) = query.strip_prefix(who)
            && !rest.contains("fragrance")
        {
            let kind = if is_shoes(rest) { "Shoes" } else { "Clothing" };
            return Some((
                "fashion",
                format!(
                    "{} › {person} › {kind} › {}",
                    category_root("fashion"),
                    title_case(rest)
                ),
            ));
        }
    }
    GROUPS
        .iter()
        .find(|(_, _, words)| words.iter().any(|w| starts_a_word(query, w)))
        .map(|(category, path, _)| (*category, format!("{path} › {}", title_case(query))))
}

/// Whether `key` starts at the beginning of a word of `text` ("hair" is in "hair masks", not in
/// "chairs").
fn starts_a_word(text: &str, key: &str) -> bool {
    text.match_indices(key)
        .any(|(i, _)| i == 0 || text[..i].ends_with(' '))
}

/// Each word with its first letter in upper case ("men's t-shirts & tanks" -> "Men's T-shirts &
/// Tanks").
pub fn title_case(text: &str) -> String {
    text.split(' ')
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(c) => c.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

/// The option names a product of this type offers, with the values it may draw from (in the
/// order a product page lists them).
pub fn option_vocabulary(category: &str, query: &str) -> Vec<(&'static str, Vec<String>)> {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let colours = owned(match category {
        "fashion" => &[
            "black",
            "white",
            "navy",
            "heather grey",
            "red",
            "olive green",
            "khaki",
            "burgundy",
            "royal blue",
            "pink",
            "beige",
            "charcoal",
            "light blue",
            "purple",
            "mustard yellow",
            "black | white",
        ],
        "garden" => &[
            "espresso",
            "walnut",
            "white",
            "black",
            "grey",
            "natural",
            "rustic brown",
            "cherry",
            "oak",
            "navy blue",
            "beige",
            "gold",
            "silver",
            "green",
        ],
        "electronics" => &[
            "black",
            "white",
            "silver",
            "space gray",
            "blue",
            "red",
            "rose gold",
            "green",
            "titanium",
        ],
        _ => &[
            "nude",
            "coral",
            "rose",
            "plum",
            "ivory",
            "natural beige",
            "pink",
            "black",
            "brown",
            "purple",
            "mint",
            "clear",
            "lavender",
            "gold",
        ],
    });
    let sizes: Vec<String> = if category == "fashion" && is_shoes(query) {
        let (lo, hi) = if query.starts_with("women") {
            (5, 11)
        } else {
            (7, 13)
        };
        (lo * 2..=hi * 2)
            .map(|h| {
                if h % 2 == 0 {
                    format!("{}", h / 2)
                } else {
                    format!("{}.5", h / 2)
                }
            })
            .collect()
    } else if category == "fashion" {
        owned(&[
            "x-small", "small", "medium", "large", "x-large", "xx-large", "3x-large", "4x-large",
        ])
    } else if ["mattress", "beds", "bedframes"]
        .iter()
        .any(|w| query.contains(w))
    {
        owned(&[
            "twin",
            "twin xl",
            "full",
            "queen",
            "king",
            "california king",
        ])
    } else if ["pillows", "blankets", "coverings", "wall art", "mirrors"]
        .iter()
        .any(|w| query.contains(w))
    {
        owned(&[
            "12 x 20 inch",
            "16 x 16 inch",
            "18 x 18 inch",
            "20 x 20 inch",
            "24 x 36 inch",
            "50 x 60 inch",
            "60 x 80 inch",
        ])
    } else if query.contains("cables") || query.contains("chargers") {
        owned(&[
            "1.5 feet", "3 feet", "6 feet", "10 feet", "15 feet", "25 feet",
        ])
    } else {
        owned(match category {
            "garden" => &[
                "24 inch",
                "31.5 inch",
                "39.4 inch",
                "47 inch",
                "55 inch",
                "63 inch",
                "70 inch",
            ],
            "electronics" => &["1 pack", "2 pack", "3 pack", "bundle", "pro", "standard"],
            "grocery" => &[
                "4 ounce (pack of 6)",
                "8.8 ounce (pack of 3)",
                "12 ounce (pack of 1)",
                "1.5 pound (pack of 1)",
                "24 count",
                "pack of 12",
            ],
            _ => &[
                "0.5 fl oz (pack of 1)",
                "1 fl oz (pack of 2)",
                "3.4 fl oz",
                "8 ounce",
                "16 ounce (pack of 2)",
                "100 count",
            ],
        })
    };
    match category {
        "grocery" => vec![
            (
                "flavor name",
                owned(&[
                    "original",
                    "sea salt",
                    "chocolate",
                    "vanilla",
                    "strawberry",
                    "barbecue",
                    "honey roasted",
                    "peanut butter",
                    "cinnamon",
                    "jalapeno",
                    "garlic & herb",
                    "maple",
                ]),
            ),
            ("size", sizes),
        ],
        "electronics" => vec![("color", colours), ("style", sizes)],
        _ => vec![("color", colours), ("size", sizes)],
    }
}

/// How an instruction asks for an option value of this option name ("in grey color").
pub fn option_phrase(name: &str, value: &str, variant: usize) -> String {
    match (name, variant % 2) {
        ("color", 0) => format!("in {value} color"),
        ("color", _) => format!("in the color {value}"),
        ("size", 0) => format!("in size {value}"),
        ("size", _) => format!("in {value} size"),
        ("flavor name", _) => format!("in {value} flavor"),
        (_, _) => format!("in the {value} {name}"),
    }
}

/// The words of a phrase as WebShop's fuzzy matcher sees them: lowercase letters and digits,
/// everything else a separator.
fn tokens(text: &str) -> Vec<String> {
    let mut words: Vec<String> = text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    words.sort();
    words.dedup();
    words
}

/// Whether two phrases might count as the same under WebShop's token-set ratio (> 85): they
/// share a word, or their sorted words are spelled alike. Conservative: it says yes to some
/// pairs the real matcher would tell apart, never no to a pair it would match, so a product
/// built to lack a phrase really lacks it.
pub fn resembles(a: &str, b: &str) -> bool {
    let (ta, tb) = (tokens(a), tokens(b));
    if ta.iter().any(|w| tb.contains(w)) {
        return true;
    }
    strsim::normalized_levenshtein(&ta.join(" "), &tb.join(" ")) >= 0.7
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_get_categories_and_breadcrumbs() {
        let (c, path) = classify("men's loafers & slip-ons").unwrap();
        assert_eq!(c, "fashion");
        assert_eq!(
            path,
            "Clothing, Shoes & Jewelry › Men › Shoes › Loafers & Slip-ons"
        );
        assert_eq!(classify("men's fragrance").unwrap().0, "beauty");
        assert_eq!(classify("toothpicks").unwrap().0, "grocery");
        assert_eq!(classify("toothpaste").unwrap().0, "beauty");
        assert_eq!(classify("decorative mirrors").unwrap().0, "garden");
        assert_eq!(classify("mirrors").unwrap().0, "beauty");
        assert_eq!(classify("sofa tables").unwrap().0, "garden");
        assert_eq!(classify("home office chairs").unwrap().0, "garden");
        assert_eq!(classify("products"), None);
    }

    #[test]
    fn clothing_and_bed_sizes_are_webshops_size_words() {
        for query in ["men's shorts", "women's dresses", "mattresses", "beds"] {
            let category = classify(query).unwrap().0;
            let vocabulary = option_vocabulary(category, query);
            let (_, sizes) = vocabulary.iter().find(|(n, _)| *n == "size").unwrap();
            for size in sizes {
                assert!(
                    SIZE_SET
                        .iter()
                        .any(|w| size.split(' ').any(|part| part == *w)),
                    "{query}: {size}"
                );
            }
        }
        let shoes = option_vocabulary("fashion", "women's pumps");
        assert!(shoes[1].1.contains(&"8.5".to_string()));
    }

    #[test]
    fn resemblance_is_conservative() {
        // token_set_ratio is 100 when one word set holds the other.
        assert!(resembles("large", "x-large"));
        assert!(resembles("8", "8.5"));
        assert!(resembles("tea tree", "tea tree oil"));
        assert!(resembles("easy clean", "easy to clean"));
        assert!(!resembles("grey", "navy"));
        assert!(!resembles("natural ingredients", "tea tree"));
    }
}
