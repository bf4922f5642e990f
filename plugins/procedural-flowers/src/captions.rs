//! Ten captions per flower from a grammar: varied word order, synonyms,
//! and attributes left out, so the text encoder has to read, not match
//! templates. Captions describe content only, never the style.
//!
//! Two grammars: `classic` (20 templates, what the shipped models were
//! trained on; kept so that they stay reproducible) and `rich` (the default):
//! clauses in any order, relative clauses, lists and fragments, fillers
//! ("here is", "look at", "picture of", requests), numerals as digits and
//! words, "x5" and "five of them", light typos and varied punctuation, so
//! that the text encoder learns the language people type, not 20 sentences.

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

pub use crate::vocabulary::COUNT_WORDS;

/// {C} petal colour, {S} petal shape, {N} petal count, {X} centre colour.
const TEMPLATES: [&str; 20] = [
    crate::vocabulary::FULL_TEMPLATE,
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

/// Which caption grammar a dataset uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grammar {
    /// The 20 templates the shipped models were trained on.
    Classic,
    /// The open grammar below.
    Rich,
}

impl Grammar {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "classic" => Ok(Self::Classic),
            "rich" => Ok(Self::Rich),
            _ => Err(format!("unknown grammar '{s}' (classic, rich)")),
        }
    }
}

/// `n` captions of flower `f` in `grammar` (distinct where the grammar allows).
pub fn captions_in(grammar: Grammar, f: &Flower, n: usize, rng: &mut SplitMix64) -> Vec<String> {
    match grammar {
        Grammar::Classic => captions(f, n, rng),
        Grammar::Rich => {
            let mut out: Vec<String> = Vec::with_capacity(n);
            let mut tries = 0;
            while out.len() < n {
                let c = rich_caption(f, rng);
                tries += 1;
                if !out.contains(&c) || tries > 50 * n {
                    out.push(c);
                }
            }
            out
        }
    }
}

/// `n` captions (n <= 20) of the classic grammar, each from a different template.
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

/// More words per attribute for the rich grammar (the classic ones first).
const RICH_COLOUR_WORDS: [&[&str]; 8] = [
    &["red", "scarlet", "crimson", "ruby", "bright red"],
    &["orange", "tangerine", "bright orange"],
    &["yellow", "golden", "lemon", "bright yellow"],
    &["white", "snow-white", "pure white", "milky white"],
    &["pink", "rosy", "bright pink", "hot pink"],
    &["purple", "violet", "deep purple"],
    &["blue", "azure", "deep blue", "bright blue"],
    &["turquoise", "teal", "cyan", "aqua"],
];

const RICH_SHAPE_WORDS: [&[&str]; 3] = [
    &["round", "rounded", "broad", "oval", "wide", "roundish"],
    &[
        "pointed",
        "pointy",
        "sharp",
        "spiky",
        "tapered",
        "star-like",
    ],
    &[
        "thin",
        "narrow",
        "slender",
        "skinny",
        "needle-like",
        "long thin",
    ],
];

const RICH_CENTRE_WORDS: [&[&str]; 4] = [
    &["yellow", "golden", "bright yellow"],
    &["brown", "chocolate", "chocolate brown"],
    &["black", "dark", "jet black"],
    &["white", "pale", "creamy white"],
];

const CENTRE_NOUNS: [&str; 6] = ["center", "centre", "middle", "eye", "heart", "core"];

/// The words of one caption.
#[derive(Clone)]
struct Words {
    colour: String,
    shape: String,
    count: String,
    digits: String,
    centre: String,
    centre_noun: String,
    /// Which attributes this caption states.
    says_colour: bool,
    says_shape: bool,
    says_count: bool,
    says_centre: bool,
}

fn one_of<T: Clone>(rng: &mut SplitMix64, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize].clone()
}

fn chance(rng: &mut SplitMix64, percent: u64) -> bool {
    rng.below(100) < percent
}

fn words(f: &Flower, rng: &mut SplitMix64) -> Words {
    let mut w = Words {
        colour: pick(rng, RICH_COLOUR_WORDS[f.colour]).to_string(),
        shape: pick(rng, RICH_SHAPE_WORDS[f.shape]).to_string(),
        count: if chance(rng, 30) {
            f.petals.to_string()
        } else {
            COUNT_WORDS[f.petals as usize].to_string()
        },
        digits: f.petals.to_string(),
        centre: pick(rng, RICH_CENTRE_WORDS[f.centre]).to_string(),
        centre_noun: pick(rng, &CENTRE_NOUNS).to_string(),
        says_colour: chance(rng, 88),
        says_shape: chance(rng, 72),
        says_count: chance(rng, 62),
        says_centre: chance(rng, 66),
    };
    if !(w.says_colour || w.says_shape || w.says_count || w.says_centre) {
        w.says_colour = true;
    }
    w
}

/// "five round red petals": the stated adjectives in a usual order (now and
/// then colour before shape), then the noun.
fn petal_phrase(w: &Words, rng: &mut SplitMix64) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if w.says_count {
        parts.push(&w.count);
    }
    let (a, b) = (
        w.says_shape.then_some(w.shape.as_str()),
        w.says_colour.then_some(w.colour.as_str()),
    );
    if chance(rng, 20) {
        parts.extend(b);
        parts.extend(a);
    } else {
        parts.extend(a);
        parts.extend(b);
    }
    parts.push("petals");
    parts.join(" ")
}

/// "a yellow center" (empty when the centre is not stated).
fn centre_phrase(w: &Words) -> String {
    if w.says_centre {
        format!("a {} {}", w.centre, w.centre_noun)
    } else {
        String::new()
    }
}

/// The centre in more shapes than "a yellow center": the colour after the
/// noun ("a center that is yellow"), as a compound ("a yellow-colored
/// center") or with no article ("yellow at the heart"), so that the colour
/// and the noun that says it is the centre's need not stand side by side.
fn varied_centre_phrase(w: &Words, rng: &mut SplitMix64) -> String {
    if !w.says_centre {
        return String::new();
    }
    let (x, noun) = (&w.centre, &w.centre_noun);
    let a = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    match rng.below(8) {
        0 => format!("{a} {noun} that is {x}"),
        1 => format!("{a} {noun} of {x}"),
        2 => format!("a {x}-colored {noun}"),
        3 => format!("{x} at the {noun}"),
        4 => format!("{x} at its {noun}"),
        _ => centre_phrase(w),
    }
}

/// ", with a yellow center" / " and a yellow middle" / "" ...
fn centre_tail(w: &Words, rng: &mut SplitMix64) -> String {
    if !w.says_centre {
        return String::new();
    }
    let joins = [
        " and ",
        " with ",
        ", with ",
        " around ",
        " surrounding ",
        ", and ",
    ];
    let join = pick(rng, &joins);
    format!("{join}{}", varied_centre_phrase(w, rng))
}

/// "round and red" / "red" / "" : what the petals are.
fn petal_predicate(w: &Words, rng: &mut SplitMix64) -> String {
    match (w.says_shape, w.says_colour) {
        (true, true) if chance(rng, 50) => format!("{} and {}", w.shape, w.colour),
        (true, true) => format!("{} and {}", w.colour, w.shape),
        (true, false) => w.shape.clone(),
        (false, true) => w.colour.clone(),
        (false, false) => String::new(),
    }
}

const OPENINGS: [&str; 16] = [
    "a flower with",
    "this flower has",
    "the flower has",
    "a bloom with",
    "this is a flower with",
    "here is a flower with",
    "an image of a flower with",
    "a picture of a flower with",
    "look at this flower with",
    "a photo of a flower with",
    "i see a flower with",
    "there is a flower with",
    "draw a flower with",
    "show me a flower with",
    "can you make a flower with",
    "i want a flower with",
];

/// One caption of the rich grammar.
pub fn rich_caption(f: &Flower, rng: &mut SplitMix64) -> String {
    let w = words(f, rng);
    let petals = petal_phrase(&w, rng);
    let form = rng.below(16);
    let mut s = match form {
        // "a flower with five round red petals and a yellow center"
        0..=2 => format!("{} {petals}{}", pick(rng, &OPENINGS), centre_tail(&w, rng)),
        // "a red flower with five round petals, with a yellow middle"
        3 if w.says_colour => {
            let rest = Words {
                says_colour: false,
                ..w.clone()
            };
            let petals = if rest.says_count || rest.says_shape {
                format!(" with {}", petal_phrase(&rest, rng))
            } else {
                String::new()
            };
            format!("a {} flower{petals}{}", w.colour, centre_tail(&w, rng))
        }
        // "the petals are round and red, and the center is yellow"
        4 | 3 => {
            let subject = pick(
                rng,
                &[
                    "the petals are",
                    "its petals are",
                    "the petals of this flower are",
                    "petals are",
                    "all the petals are",
                ],
            );
            let mut parts = Vec::new();
            let pred = petal_predicate(&w, rng);
            if !pred.is_empty() {
                parts.push(format!("{subject} {pred}"));
            }
            if w.says_count && parts.is_empty() {
                parts.push(format!("there are {} petals", w.count));
            } else if w.says_count {
                parts.push(one_of(
                    rng,
                    &[
                        format!("there are {} of them", w.count),
                        format!("{} of them", w.count),
                        format!("{} petals in all", w.count),
                    ],
                ));
            }
            if w.says_centre {
                parts.push(format!("the {} is {}", w.centre_noun, w.centre));
            }
            join_clauses(&parts, rng)
        }
        // fragments: "five round red petals, yellow center"
        5 => {
            let mut parts = vec![petals.clone()];
            if w.says_centre {
                parts.push(format!("{} {}", w.centre, w.centre_noun));
            }
            parts.join(pick(rng, &[", ", "; ", " - ", " + "]))
        }
        // terse list: "round red petals x5, yellow centre"
        6 => {
            let mut bare = w.clone();
            bare.says_count = false;
            let mut s = petal_phrase(&bare, rng);
            if w.says_count {
                s += &one_of(
                    rng,
                    &[
                        format!(" x{}", w.digits),
                        format!(" ({})", w.count),
                        format!(", {} of them", w.count),
                    ],
                );
            }
            if w.says_centre {
                s += &format!(", {} {}", w.centre, w.centre_noun);
            }
            s
        }
        // "a five-petaled red flower with a black eye"
        7 => {
            let count = if w.says_count {
                format!("{}-petaled ", w.count)
            } else {
                String::new()
            };
            let shape = if w.says_shape {
                format!(" with {} petals", w.shape)
            } else {
                String::new()
            };
            let colour = if w.says_colour {
                format!("{} ", w.colour)
            } else {
                String::new()
            };
            format!("a {count}{colour}flower{shape}{}", centre_tail(&w, rng))
        }
        // relative clause: "a flower whose five petals are round and red, around a yellow core"
        8 => {
            let count = if w.says_count {
                format!("{} ", w.count)
            } else {
                String::new()
            };
            let pred = petal_predicate(&w, rng);
            if pred.is_empty() {
                format!("a flower whose {count}petals surround {}", or_centre(&w))
            } else {
                format!(
                    "a flower whose {count}petals are {pred}{}",
                    centre_tail(&w, rng)
                )
            }
        }
        // centre first: "a yellow center with five round red petals around it"
        9 if w.says_centre => {
            let tail = pick(rng, &[" around it", " surrounding it", "", " all around"]);
            format!("{} with {petals}{tail}", centre_phrase(&w))
        }
        // key-value notes: "petals: round, red, 5; center: yellow"
        10 => {
            let mut petal_bits = Vec::new();
            if w.says_shape {
                petal_bits.push(w.shape.clone());
            }
            if w.says_colour {
                petal_bits.push(w.colour.clone());
            }
            if w.says_count {
                petal_bits.push(w.count.clone());
            }
            let mut parts = Vec::new();
            if !petal_bits.is_empty() {
                parts.push(format!("petals: {}", petal_bits.join(", ")));
            }
            if w.says_centre {
                parts.push(format!("{}: {}", w.centre_noun, w.centre));
            }
            parts.join(pick(rng, &["; ", ", ", " / "]))
        }
        // "this flower is red in color, with petals that are round, and a yellow center"
        11 => {
            let mut parts = Vec::new();
            if w.says_colour {
                parts.push(format!("this flower is {} in color", w.colour));
            } else {
                parts.push("this is a flower".to_string());
            }
            if w.says_shape || w.says_count {
                let count = if w.says_count {
                    format!("{} ", w.count)
                } else {
                    String::new()
                };
                let shape = if w.says_shape {
                    format!(" that are {}", w.shape)
                } else {
                    String::new()
                };
                parts.push(format!("with {count}petals{shape}"));
            }
            if w.says_centre {
                parts.push(format!("and {}", varied_centre_phrase(&w, rng)));
            }
            parts.join(", ")
        }
        // "there's a flower here, its petals are round and red, five of them, with a yellow middle"
        12 => {
            let mut parts = vec![pick(
                rng,
                &[
                    "there's a flower here",
                    "here's a flower",
                    "i drew a flower",
                    "a flower",
                ],
            )
            .to_string()];
            let pred = petal_predicate(&w, rng);
            if !pred.is_empty() {
                parts.push(format!("its petals are {pred}"));
            }
            if w.says_count {
                parts.push(format!("{} of them", w.count));
            }
            if w.says_centre {
                parts.push(format!("with {}", varied_centre_phrase(&w, rng)));
            }
            parts.join(", ")
        }
        // the centre as a compound before the noun: "a yellow-eyed red
        // flower with five round petals", "a dark-hearted bloom"
        14 if w.says_centre => {
            let compound = pick(rng, &["eyed", "hearted", "cored"]);
            let colour = if w.says_colour {
                format!("{} ", w.colour)
            } else {
                String::new()
            };
            let bare = Words {
                says_colour: false,
                ..w.clone()
            };
            let petals = if bare.says_count || bare.says_shape {
                format!(" with {}", petal_phrase(&bare, rng))
            } else {
                String::new()
            };
            let noun = pick(rng, &["flower", "bloom"]);
            format!("a {}-{compound} {colour}{noun}{petals}", w.centre)
        }
        // the centre's colour last, after its noun: "five round red petals,
        // and the heart of the flower is yellow"
        15 if w.says_centre => {
            let subject = pick(
                rng,
                &[
                    "the {} of the flower is",
                    "its {} is",
                    "the {} is colored",
                    "the {} looks",
                ],
            )
            .replace("{}", &w.centre_noun);
            format!(
                "{petals}{}{subject} {}",
                pick(rng, &[", and ", "; ", ", "]),
                w.centre
            )
        }
        // "{N} {S} {C} petals surround a {X} center" and the like
        _ => {
            let verb = pick(rng, &["surround", "circle", "ring", "around"]);
            if w.says_centre {
                format!("{petals} {verb} {}", centre_phrase(&w))
            } else {
                format!(
                    "{} {petals}",
                    pick(rng, &["a flower with", "a bloom of", "just"])
                )
            }
        }
    };
    if chance(rng, 7) {
        s = typo(&s, rng);
    }
    if chance(rng, 15) {
        let mut c = s.chars();
        if let Some(first) = c.next() {
            s = first.to_uppercase().collect::<String>() + c.as_str();
        }
    }
    s + pick(rng, &["", "", ".", ".", "!", " ."])
}

fn or_centre(w: &Words) -> String {
    if w.says_centre {
        centre_phrase(w)
    } else {
        "the middle".to_string()
    }
}

fn join_clauses(parts: &[String], rng: &mut SplitMix64) -> String {
    match parts.len() {
        0 => "a flower".to_string(),
        1 => parts[0].clone(),
        n => {
            let last = pick(rng, &[", and ", " and ", ", "]);
            format!("{}{last}{}", parts[..n - 1].join(", "), parts[n - 1])
        }
    }
}

/// One slip of the keyboard in a word of four letters or more: two letters
/// swapped, one dropped or one doubled.
fn typo(s: &str, rng: &mut SplitMix64) -> String {
    let words: Vec<&str> = s.split(' ').collect();
    let long: Vec<usize> = (0..words.len())
        .filter(|&i| words[i].len() >= 4 && words[i].chars().all(|c| c.is_ascii_alphabetic()))
        .collect();
    if long.is_empty() {
        return s.to_string();
    }
    let at = long[rng.below(long.len() as u64) as usize];
    let mut chars: Vec<char> = words[at].chars().collect();
    let i = 1 + rng.below(chars.len() as u64 - 2) as usize;
    match rng.below(3) {
        0 => chars.swap(i, i + 1),
        1 => {
            chars.remove(i);
        }
        _ => chars.insert(i, chars[i]),
    }
    let changed: String = chars.into_iter().collect();
    // A slip that makes another word of the vocabulary ("there" -> "three")
    // would state something false.
    if !vocabulary_check(&changed).is_empty() {
        return s.to_string();
    }
    let mut out: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    out[at] = changed;
    out.join(" ")
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
        for (i, syn) in RICH_COLOUR_WORDS.iter().enumerate() {
            if syn.contains(&w.as_str()) || COLOUR_WORDS[i].contains(&w.as_str()) {
                named.push(("colour", COLOURS[i].to_string()));
            }
        }
        for (i, syn) in RICH_SHAPE_WORDS.iter().enumerate() {
            if syn.contains(&w.as_str()) || SHAPE_WORDS[i].contains(&w.as_str()) {
                named.push(("shape", SHAPES[i].to_string()));
            }
        }
        for (i, syn) in RICH_CENTRE_WORDS.iter().enumerate() {
            if syn.contains(&w.as_str()) || CENTRE_WORDS[i].contains(&w.as_str()) {
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

/// Which of `f`'s content attributes `caption` states, as letters in a
/// fixed order: c (petal colour), s (shape), n (count), x (centre); empty
/// for a caption that states none. A colour word counts for the petals
/// where it is their colour and for the centre where it is the centre's
/// ("white" may be both). Two captions of one flower with the same letters
/// say the same things in other words: what the GAN's text noise along
/// statements (`--text-noise-along statements`) learns its spread from.
pub fn stated(caption: &str, f: &Flower) -> String {
    let named = vocabulary_check(caption);
    let says = |what: &str, value: &str| named.iter().any(|(w, v)| *w == what && v == value);
    let colour = COLOURS[f.colour];
    let centre = CENTRES[f.centre];
    let mut letters = String::new();
    if says("colour", colour) || says("centre", colour) {
        letters.push('c');
    }
    if says("shape", SHAPES[f.shape]) {
        letters.push('s');
    }
    if says("count", &f.petals.to_string()) {
        letters.push('n');
    }
    if says("centre", centre) || says("colour", centre) {
        letters.push('x');
    }
    letters
}

/// Panics unless every attribute value `caption` names is `f`'s (a colour
/// word may name the petals or the centre: "yellow" and "white" are both).
#[cfg(test)]
fn assert_states_only_the_truth(caption: &str, f: &Flower) {
    for (what, value) in vocabulary_check(caption) {
        let ok = match what {
            "colour" => value == COLOURS[f.colour] || value == CENTRES[f.centre],
            "centre" => value == CENTRES[f.centre] || value == COLOURS[f.colour],
            "shape" => value == SHAPES[f.shape],
            "count" => value == f.petals.to_string(),
            _ => unreachable!(),
        };
        assert!(
            ok,
            "caption {caption:?} names {what} {value} but the flower is {f:?}"
        );
    }
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
                assert_states_only_the_truth(c, &f);
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

#[cfg(test)]
mod grammar_tests {
    use super::*;
    use crate::{flower, sample, sample_in, BACKGROUNDS};

    #[test]
    fn the_classic_grammar_reproduces_the_captions_the_shipped_models_learned() {
        // Pinned from the grammar the shipped models were trained on.
        assert_eq!(
            sample(0, 0).captions,
            [
                "the petals are sharp and white.",
                "this flower has sharp petals that are snow-white and a yellow center",
                "a snow-white bloom with four petals.",
                "the center of this flower is golden and its petals are snow-white.",
                "this snow-white flower has pointy petals",
                "this flower is white in color, with petals that are pointy.",
                "this flower has four sharp snow-white petals and a yellow center",
                "a flower with four sharp petals and a golden middle.",
                "a picture of a white flower.",
                "a flower with white petals",
            ]
        );
        assert_eq!(
            sample(0, 1).captions[2],
            "white petals, thin in shape, around a chocolate center"
        );
        for i in 0..50 {
            assert_eq!(
                sample(7, i).captions,
                sample_in(Grammar::Classic, 7, i).captions
            );
        }
    }

    #[test]
    fn rich_captions_agree_with_the_flower_and_vary() {
        let mut skeletons = std::collections::HashSet::new();
        let (mut total, mut with_count, mut with_digits) = (0, 0, 0);
        for i in 0..2000 {
            let f = flower(5, i);
            let s = sample_in(Grammar::Rich, 5, i);
            assert_eq!(s.captions.len(), 10);
            let distinct: std::collections::HashSet<_> = s.captions.iter().collect();
            assert_eq!(distinct.len(), 10, "{:?}", s.captions);
            for c in &s.captions {
                total += 1;
                assert!(!c.trim().is_empty());
                assert_states_only_the_truth(c, &f);
                with_count += vocabulary_check(c).iter().any(|(w, _)| *w == "count") as usize;
                with_digits += c.chars().any(|ch| ch.is_ascii_digit()) as usize;
                for bg in BACKGROUNDS {
                    assert!(!c.to_lowercase().contains(bg), "{c}");
                }
                // The sentence form: every attribute word replaced by a slot.
                let skeleton: String = c
                    .to_lowercase()
                    .split(' ')
                    .map(|w| {
                        if vocabulary_check(w).is_empty() {
                            w
                        } else {
                            "_"
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                skeletons.insert(skeleton);
            }
        }
        // Far more than the classic grammar's 20 forms; counts in words and digits.
        assert!(skeletons.len() > 2000, "{} sentence forms", skeletons.len());
        assert!(
            with_count * 3 > total,
            "{with_count} of {total} state the count"
        );
        assert!(
            with_digits * 10 > total,
            "{with_digits} of {total} use digits"
        );
    }

    /// The centre's colour is not always the word before "center": people
    /// write "yellow at the heart", "a center that is yellow", "a
    /// yellow-eyed flower", and a text encoder that only ever saw "a yellow
    /// center" reads those as the petals' colour.
    #[test]
    fn rich_captions_say_the_centre_in_several_shapes() {
        let (mut stated, mut apart, mut compound) = (0, 0, 0);
        for i in 0..2000 {
            let f = flower(9, i);
            let x = CENTRES[f.centre];
            for c in sample_in(Grammar::Rich, 9, i).captions {
                let c = c.to_lowercase();
                let words: Vec<&str> = c.split([' ', ',', ';', '.', '!', ':']).collect();
                let Some(at) = words.iter().position(|w| {
                    CENTRE_NOUNS.contains(w) || w.ends_with("-eyed") || w.ends_with("-hearted")
                }) else {
                    continue;
                };
                if !c.contains(x) && !RICH_CENTRE_WORDS[f.centre].iter().any(|w| c.contains(w)) {
                    continue;
                }
                stated += 1;
                compound += words[at].contains('-') as usize;
                let before = at.checked_sub(1).map(|b| words[b]);
                let adjacent = before.is_some_and(|b| {
                    RICH_CENTRE_WORDS[f.centre]
                        .iter()
                        .any(|w| w.split(' ').next_back() == Some(b))
                });
                apart += (!adjacent) as usize;
            }
        }
        assert!(stated > 5000, "{stated} captions state the centre");
        assert!(
            apart * 3 > stated,
            "{apart} of {stated} say it apart from its noun"
        );
        assert!(
            compound * 50 > stated,
            "{compound} of {stated} as a compound"
        );
    }

    #[test]
    fn unknown_grammars_are_refused() {
        assert!(Grammar::parse("fancy")
            .unwrap_err()
            .contains("classic, rich"));
    }
}
