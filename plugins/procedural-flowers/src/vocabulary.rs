//! The procedural-flowers vocabulary: the attribute values, the words for
//! petal counts, and the one caption that states every content attribute.
//! This file is the one place they are written: the plugin uses it as a
//! module, and gantry's evaluation compiles the same file (`#[path]`), so
//! the two cannot drift apart.

pub const COLOURS: [&str; 8] = [
    "red",
    "orange",
    "yellow",
    "white",
    "pink",
    "purple",
    "blue",
    "turquoise",
];
pub const SHAPES: [&str; 3] = ["round", "pointed", "thin"];
pub const CENTRES: [&str; 4] = ["yellow", "brown", "black", "white"];
pub const BACKGROUNDS: [&str; 6] = ["forest", "meadow", "sky", "stone", "soil", "night"];
pub const MIN_PETALS: u32 = 3;
pub const MAX_PETALS: u32 = 8;

pub const COUNT_WORDS: [&str; 9] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
];

/// The caption that states all four content attributes ({N} petal count,
/// {S} shape, {C} colour, {X} centre colour): the first classic template.
pub const FULL_TEMPLATE: &str = "this flower has {N} {S} {C} petals and a {X} center";

/// [`FULL_TEMPLATE`] filled in; a count with no word is written as given.
pub fn full_caption(count: &str, shape: &str, colour: &str, centre: &str) -> String {
    let count = count
        .parse::<usize>()
        .ok()
        .and_then(|n| COUNT_WORDS.get(n))
        .map_or(count, |w| w);
    FULL_TEMPLATE
        .replace("{N}", count)
        .replace("{S}", shape)
        .replace("{C}", colour)
        .replace("{X}", centre)
}
