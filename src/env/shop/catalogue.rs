//! The shop's catalogue and goals: products as WebShop's product files hold them, and the
//! shopping goal an episode is about.
//!
//! A catalogue file is a JSON array in WebShop's product format (`name`, `asin`, `category`,
//! `query`, `product_category`, `full_description`, `small_description`, `pricing`,
//! `customization_options`), with two optional fields of ours: `attributes` (WebShop keeps them
//! apart, keyed by ASIN) and `price` (what a purchase pays; WebShop draws it uniformly from a
//! price range at start-up, and a catalogue that omits it gets the range's low end). A real
//! WebShop product file therefore loads as it is.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One product, as the shop shows and rewards it.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// Ten characters, upper case, as the results page shows it ("B06Y3VLDFB").
    pub asin: String,
    /// The title.
    pub name: String,
    /// WebShop's coarse category ("beauty", "fashion", "garden", "grocery", "electronics").
    pub category: String,
    /// The search query the product was collected under ("console tables").
    pub query: String,
    /// The breadcrumb, segments separated by ` › `.
    pub product_category: String,
    pub description: String,
    /// The feature bullets, one per line on the features page.
    pub bullets: Vec<String>,
    /// One price, or the low and high ends of a range.
    pub pricing: Vec<f64>,
    /// What buying it costs (within `pricing`).
    pub price: f64,
    /// Option names (lowercase) with their values (lowercase, `/` written ` | `), in page order.
    pub options: Vec<(String, Vec<String>)>,
    /// Short attribute phrases ("tea tree", "natural ingredients") the reward matches goals on.
    pub attributes: Vec<String>,
}

impl Product {
    /// The price as the pages print it: `$877.8`, or `$12.0 to $15.99` for a range.
    pub fn price_tag(&self) -> String {
        match self.pricing.as_slice() {
            [lo, hi, ..] => format!("${} to ${}", py_float(*lo), py_float(*hi)),
            [one] => format!("${}", py_float(*one)),
            [] => "$100.0".to_string(),
        }
    }
}

/// A float as Python's `str` prints it for the prices WebShop shows: at least one decimal
/// (`877.8`, `100.0`), otherwise the shortest text that reads back the same.
pub fn py_float(x: f64) -> String {
    let s = format!("{x}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// What the shopper wants: WebShop's goal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    /// The product the goal was written from (LEAP's privileged "one product that satisfies
    /// all of them"); it must be in the catalogue.
    pub asin: String,
    /// The attributes the purchase should have ("wood frame").
    #[serde(default)]
    pub attributes: Vec<String>,
    /// The option values it should be bought with ("grey", "x-large").
    #[serde(default)]
    pub options: Vec<String>,
    /// The price limit in dollars; a purchase above it loses the price part of the reward.
    pub price_upper: f64,
}

/// The products a shop sells, by position and by ASIN.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    products: Vec<Product>,
    by_asin: HashMap<String, usize>,
}

/// Why a catalogue could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: String, message: String },
}

impl Catalogue {
    pub fn new(products: Vec<Product>) -> Catalogue {
        let by_asin = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.asin.clone(), i))
            .collect();
        Catalogue { products, by_asin }
    }

    pub fn products(&self) -> &[Product] {
        &self.products
    }

    pub fn len(&self) -> usize {
        self.products.len()
    }

    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    /// The position of the product with `asin` (any case).
    pub fn position(&self, asin: &str) -> Option<usize> {
        self.by_asin
            .get(asin)
            .or_else(|| self.by_asin.get(&asin.to_ascii_uppercase()))
            .copied()
    }

    pub fn get(&self, asin: &str) -> Option<&Product> {
        self.position(asin).map(|i| &self.products[i])
    }

    /// Reads a catalogue file (see the module's documentation); `name` is how errors name it.
    pub fn from_json(name: &str, text: &str) -> Result<Catalogue, CatalogueError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let raw: Vec<RawProduct> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            CatalogueError::Format {
                path: name.to_string(),
                message: format!("at {}: {}", e.path(), e.inner()),
            }
        })?;
        let mut products = Vec::with_capacity(raw.len());
        let mut seen = HashMap::new();
        for (i, r) in raw.into_iter().enumerate() {
            let p = r.product().map_err(|message| CatalogueError::Format {
                path: name.to_string(),
                message: format!("product [{i}]: {message}"),
            })?;
            if let Some(first) = seen.insert(p.asin.clone(), i) {
                return Err(CatalogueError::Format {
                    path: name.to_string(),
                    message: format!("product [{i}]: ASIN {} is also product [{first}]", p.asin),
                });
            }
            products.push(p);
        }
        Ok(Catalogue::new(products))
    }

    pub fn read(path: &Path) -> Result<Catalogue, CatalogueError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogueError::Io {
            path: name.clone(),
            source,
        })?;
        Catalogue::from_json(&name, &text)
    }

    /// The catalogue in the file format, products in order: what [`Catalogue::from_json`] reads
    /// back to the same catalogue.
    pub fn to_json(&self) -> String {
        let raw: Vec<RawProduct> = self.products.iter().map(RawProduct::from).collect();
        let mut out = serde_json::to_string_pretty(&raw).expect("products serialize");
        out.push('\n');
        out
    }
}

/// One product as the file holds it (WebShop's field names).
#[derive(Debug, Serialize, Deserialize)]
struct RawProduct {
    asin: String,
    name: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    product_category: String,
    #[serde(default)]
    full_description: String,
    #[serde(default)]
    small_description: Bullets,
    /// `"$877.80"`, or two prices for a range (`"$12.00 - $15.99"`): every `$` starts one.
    #[serde(default)]
    pricing: String,
    /// WebShop writes `""` for none.
    #[serde(default)]
    customization_options: Options,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    attributes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    price: Option<f64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(untagged)]
enum Bullets {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(untagged)]
enum Options {
    #[default]
    None,
    Empty(String),
    Named(indexmap_like::Ordered),
}

#[derive(Debug, Serialize, Deserialize)]
struct OptionValue {
    value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<String>,
}

/// A JSON object read in file order (serde_json's map sorts its keys).
mod indexmap_like {
    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::OptionValue;

    #[derive(Debug, Default)]
    pub struct Ordered(pub Vec<(String, Option<Vec<OptionValue>>)>);

    impl Serialize for Ordered {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in &self.0 {
                map.serialize_entry(k, v)?;
            }
            map.end()
        }
    }

    impl<'de> Deserialize<'de> for Ordered {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Ordered;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object of option names to lists of {value}")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered, A::Error> {
                    let mut out = Vec::new();
                    while let Some(entry) = m.next_entry()? {
                        out.push(entry);
                    }
                    Ok(Ordered(out))
                }
            }
            d.deserialize_map(V)
        }
    }
}

/// WebShop's reading of a pricing string: every `$` starts a price, digits and dots kept.
fn read_pricing(text: &str) -> Result<Vec<f64>, String> {
    text.split('$')
        .skip(1)
        .take(2)
        .map(|p| {
            let digits: String = p.chars().filter(|c| c.is_ascii_digit() || *c == '.').collect();
            digits
                .parse::<f64>()
                .map_err(|_| format!("pricing {text:?} has no number after a `$`"))
        })
        .collect()
}

impl RawProduct {
    fn product(self) -> Result<Product, String> {
        if self.asin.is_empty() || self.asin.len() > 10 {
            return Err(format!("asin {:?} is not an ASIN of 1 to 10 characters", self.asin));
        }
        let pricing = read_pricing(&self.pricing)?;
        let price = match (self.price, pricing.as_slice()) {
            (Some(p), [lo, hi, ..]) if p < *lo || p > *hi => {
                return Err(format!("price {p} is outside its pricing {:?}", self.pricing));
            }
            (Some(p), _) => p,
            (None, [first, ..]) => *first,
            (None, []) => 100.0,
        };
        let options = match self.customization_options {
            Options::Named(named) => named
                .0
                .into_iter()
                .filter_map(|(name, values)| {
                    let values = values?
                        .into_iter()
                        .map(|v| v.value.trim().replace('/', " | ").to_lowercase())
                        .collect();
                    Some((name.to_lowercase(), values))
                })
                .collect(),
            Options::None | Options::Empty(_) => Vec::new(),
        };
        Ok(Product {
            asin: self.asin,
            name: self.name,
            category: self.category,
            query: self.query,
            product_category: self.product_category,
            description: self.full_description,
            bullets: match self.small_description {
                Bullets::None => Vec::new(),
                Bullets::One(s) => vec![s],
                Bullets::Many(v) => v,
            },
            pricing,
            price,
            options,
            attributes: self.attributes,
        })
    }
}

impl From<&Product> for RawProduct {
    fn from(p: &Product) -> RawProduct {
        let pricing = p
            .pricing
            .iter()
            .map(|x| format!("${x:.2}"))
            .collect::<Vec<_>>()
            .join(" - ");
        RawProduct {
            asin: p.asin.clone(),
            name: p.name.clone(),
            category: p.category.clone(),
            query: p.query.clone(),
            product_category: p.product_category.clone(),
            full_description: p.description.clone(),
            small_description: Bullets::Many(p.bullets.clone()),
            pricing,
            customization_options: if p.options.is_empty() {
                Options::Empty(String::new())
            } else {
                Options::Named(indexmap_like::Ordered(
                    p.options
                        .iter()
                        .map(|(name, values)| {
                            let values = values
                                .iter()
                                .map(|v| OptionValue {
                                    value: v.clone(),
                                    image: None,
                                })
                                .collect();
                            (name.clone(), Some(values))
                        })
                        .collect(),
                ))
            },
            attributes: p.attributes.clone(),
            price: (p.pricing.len() > 1 || p.pricing.first() != Some(&p.price)).then_some(p.price),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_print_as_python_floats() {
        assert_eq!(py_float(877.8), "877.8");
        assert_eq!(py_float(100.0), "100.0");
        assert_eq!(py_float(557.72), "557.72");
    }

    #[test]
    fn a_catalogue_round_trips_through_its_file_format() {
        let p = Product {
            asin: "B000000001".into(),
            name: "Grey Linen Sofa".into(),
            category: "garden".into(),
            query: "sofas and couches".into(),
            product_category: "Home & Kitchen › Furniture".into(),
            description: "A sofa.".into(),
            bullets: vec!["Linen ".into()],
            pricing: vec![12.0, 15.99],
            price: 13.5,
            options: vec![("color".into(), vec!["grey".into(), "navy | white".into()])],
            attributes: vec!["wood frame".into()],
        };
        let c = Catalogue::new(vec![p.clone()]);
        let back = Catalogue::from_json("x.json", &c.to_json()).unwrap();
        assert_eq!(back.products(), &[p]);
        assert_eq!(back.products()[0].price_tag(), "$12.0 to $15.99");
    }
}
