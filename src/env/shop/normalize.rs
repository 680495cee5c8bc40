//! WebShop's colour normalisation (`web_agent_site/engine/normalize.py`): an option value that
//! contains a colour word stands for that colour alone, so "z2-pink" matches a goal's "pink".

/// The colour words, in WebShop's order: the first one a value contains wins ("dark grey" is
/// "dark", "light blue" is "blue", since "blue" comes before "light").
pub const COLORS: &[&str] = &[
    "alabaster",
    "apricot",
    "aqua",
    "ash",
    "asphalt",
    "azure",
    "banana",
    "beige",
    "black",
    "blue",
    "blush",
    "bordeaux",
    "bronze",
    "brown",
    "burgundy",
    "camel",
    "camo",
    "caramel",
    "champagne",
    "charcoal",
    "cheetah",
    "chestnut",
    "chocolate",
    "christmas",
    "coffee",
    "cognac",
    "copper",
    "coral",
    "cranberry",
    "cream",
    "crystal",
    "dark",
    "denim",
    "eggplant",
    "elephant",
    "espresso",
    "fuchsia",
    "gold",
    "granite",
    "grape",
    "graphite",
    "grass",
    "gray",
    "green",
    "grey",
    "heather",
    "indigo",
    "ivory",
    "ivy",
    "khaki",
    "lavender",
    "lemon",
    "leopard",
    "light",
    "lilac",
    "lime",
    "magenta",
    "maroon",
    "mauve",
    "merlot",
    "midnight",
    "mint",
    "mocha",
    "multicolor",
    "mushroom",
    "mustard",
    "natural",
    "navy",
    "nude",
    "olive",
    "orange",
    "peach",
    "pewter",
    "pink",
    "plum",
    "purple",
    "rainbow",
    "red",
    "rose",
    "royal",
    "rust",
    "sand",
    "sapphire",
    "seashell",
    "silver",
    "skull",
    "slate",
    "steel",
    "stone",
    "stonewash",
    "sunflower",
    "tan",
    "taupe",
    "teal",
    "tiger",
    "turquoise",
    "violet",
    "walnut",
    "wheat",
    "white",
    "wine",
    "yellow",
];

/// The first colour word `value` contains (as a substring, as WebShop looks: "tangerine" is
/// "tan"), or `value` itself.
pub fn normalize_color(value: &str) -> &str {
    COLORS
        .iter()
        .copied()
        .find(|c| value.contains(c))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_stands_for_the_first_colour_it_contains() {
        let cases = [
            ("z2-pink", "pink"),
            ("light blue", "blue"),
            ("dark grey", "dark"),
            ("tangerine", "tan"),
            ("x-large", "x-large"),
            ("rl56 | 60 silver mist", "silver"),
            ("3t280", "3t280"),
        ];
        for (value, colour) in cases {
            assert_eq!(normalize_color(value), colour, "{value:?}");
        }
    }
}
