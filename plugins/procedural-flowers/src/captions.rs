//! Ten captions per flower from a small grammar: varied word order, synonyms,
//! and attributes left out, so the text encoder has to read, not match
//! templates. Captions describe content only, never the style.

use crate::render::{Flower, SplitMix64};
use crate::{CENTRES, COLOURS, SHAPES};

/// Words for each petal colour (index as in `COLOURS`).
pub const COLOUR_WORDS: [&[&str]; 8] = [
    &["red", "scarlet", "crimson"],
    &["orange", "tangerine"],
    &["yellow", "golden"],
    &["white", "snow-white"],
    &["pink", "rosy"],
    &["purple", "violet"],
    &["blue", "azure"],
    &["turquoise", "teal", "cyan"],
];

pub const SHAPE_WORDS: [&[&str]; 3] = [
    &["round", "rounded", "broad"],
    &["pointed", "pointy", "sharp"],
    &["thin", "narrow", "slender"],
];

pub const CENTRE_WORDS: [&[&str]; 4] = [
    &["yellow", "golden"],
    &["brown", "chocolate"],
    &["black", "dark"],
    &["white", "pale"],
];

pub const COUNT_WORDS: [&str; 9] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
];

/// {C} petal colour, {S} petal shape, {N} petal count, {X} centre colour.
const TEMPLATES: [&str; 20] = [
    "this flower has {N} {S} {C} petals and a {X} center",
    "a flower with {C} petals",
    "{N} {C} petals surround a {X} center",
    "the petals are {S} and {C}",
    "a {C} flower with {S} petals",
    "this flower is {C} in color, with petals that are {S}",
    "the center of this flower is {X} and its petals are {C}",
    "a {C} bloom with {N} petals",
    "this {C} flower has {S} petals",
    "a flower with {N} {S} petals and a {X} middle",
    "its {N} petals are {C} and {S}",
    "a {X} center sits among {C} petals",
    "this flower has {S} petals that are {C} and a {X} center",
    "{C} petals, {S} in shape, around a {X} center",
    "a picture of a {C} flower",
    "the flower shown has {N} petals",
    "a flower whose petals are {C}, with a {X} center",
    "there are {N} {S} petals on this flower",
    "a {S}-petaled flower in {C} with a {X} eye",
    "this flower has a {X} center and {N} petals",
];

fn pick<'a>(rng: &mut SplitMix64, words: &[&'a str]) -> &'a str {
    words[rng.below(words.len() as u64) as usize]
}

/// `n` captions (n <= 20), each from a different template.
pub fn captions(f: &Flower, n: usize, rng: &mut SplitMix64) -> Vec<String> {
    let mut order: Vec<usize> = (0..TEMPLATES.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    order
        .into_iter()
        .take(n)
        .map(|t| {
            let mut s = TEMPLATES[t].to_string();
            s = s.replace("{C}", pick(rng, COLOUR_WORDS[f.colour]));
            s = s.replace("{S}", pick(rng, SHAPE_WORDS[f.shape]));
            s = s.replace("{X}", pick(rng, CENTRE_WORDS[f.centre]));
            let count = if rng.below(5) == 0 {
                f.petals.to_string()
            } else {
                COUNT_WORDS[f.petals as usize].to_string()
            };
            s = s.replace("{N}", &count);
            if rng.below(2) == 0 {
                s.push('.');
            }
            s
        })
        .collect()
}

/// Which values of each attribute a caption names (for tests and for
/// building evaluation captions): (colour, shape, count, centre).
pub fn vocabulary_check(caption: &str) -> Vec<(&'static str, String)> {
    let words: Vec<String> = caption
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .flat_map(|w| {
            // "sharp-petaled" names a shape; "snow-white" is one colour word.
            if w.ends_with("-petaled") {
                vec![w.trim_end_matches("-petaled").to_string()]
            } else {
                vec![w.to_string()]
            }
        })
        .collect();
    let mut named = Vec::new();
    for w in &words {
        for (i, syn) in COLOUR_WORDS.iter().enumerate() {
            if syn.contains(&w.as_str()) {
                named.push(("colour", COLOURS[i].to_string()));
            }
        }
        for (i, syn) in SHAPE_WORDS.iter().enumerate() {
            if syn.contains(&w.as_str()) {
                named.push(("shape", SHAPES[i].to_string()));
            }
        }
        for (i, syn) in CENTRE_WORDS.iter().enumerate() {
            if syn.contains(&w.as_str()) {
                named.push(("centre", CENTRES[i].to_string()));
            }
        }
        if let Some(n) = COUNT_WORDS.iter().position(|c| c == w) {
            named.push(("count", n.to_string()));
        } else if let Ok(n) = w.parse::<u32>() {
            named.push(("count", n.to_string()));
        }
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{flower, sample, BACKGROUNDS};

    #[test]
    fn every_caption_agrees_with_the_attributes() {
        for i in 0..500 {
            let f = flower(3, i);
            let s = sample(3, i);
            assert_eq!(s.captions.len(), 10);
            let distinct: std::collections::HashSet<_> = s.captions.iter().collect();
            assert_eq!(distinct.len(), 10, "{:?}", s.captions);
            for c in &s.captions {
                for (what, value) in vocabulary_check(c) {
                    let ok = match what {
                        // A colour word may name the petals or the centre
                        // ("yellow" and "white" are both).
                        "colour" => value == COLOURS[f.colour] || value == CENTRES[f.centre],
                        "centre" => value == CENTRES[f.centre] || value == COLOURS[f.colour],
                        "shape" => value == SHAPES[f.shape],
                        "count" => value == f.petals.to_string(),
                        _ => unreachable!(),
                    };
                    assert!(
                        ok,
                        "caption {c:?} names {what} {value} but the flower is {f:?}"
                    );
                }
                // Style is never mentioned.
                for bg in BACKGROUNDS {
                    assert!(!c.contains(bg), "{c}");
                }
            }
            // Across ten captions the petal colour is named at least once.
            assert!(s.captions.iter().any(|c| vocabulary_check(c)
                .iter()
                .any(|(w, v)| *w == "colour" && v == COLOURS[f.colour])));
        }
    }
}
