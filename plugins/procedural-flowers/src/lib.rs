//! `procedural-flowers`: a dataset drawn by code, so every image comes with
//! its exact attributes (evaluation.md's ground truth).
//!
//! Content, which captions describe: petal colour, petal shape, petal count,
//! centre colour. Style, which captions never mention: background, position,
//! rotation, scale. Class = petal colour x petal shape; five classes are held
//! out for zero-shot tests, chosen so that every colour and every shape still
//! occurs in training.
//!
//! Options: `count` (images, default 12000), `seed` (default 0), `grammar`
//! (`rich`, the default, or `classic`: the 20 templates the shipped models
//! were trained on).

pub mod captions;
pub mod render;
pub mod vocabulary;

pub use vocabulary::{BACKGROUNDS, CENTRES, COLOURS, MAX_PETALS, MIN_PETALS, SHAPES};

use gantry_plugin_api::{declare_dataset_loader, ClassInfo, DatasetLoader, Options, Sample};
use render::{Flower, SplitMix64};

/// Position bins: a 3 x 3 grid over the image, row-major.
pub const POSITIONS: u32 = 9;
pub const IMAGE_SIZE: u32 = 64;
pub const CAPTIONS_PER_IMAGE: usize = 10;

/// (colour, shape) classes held out of training for the zero-shot test.
pub const HELD_OUT: [(usize, usize); 5] = [(0, 2), (2, 1), (6, 0), (4, 1), (7, 2)];

pub fn class_of(colour: usize, shape: usize) -> u32 {
    (colour * SHAPES.len() + shape) as u32
}

pub fn class_count() -> usize {
    COLOURS.len() * SHAPES.len()
}

pub fn class_infos() -> Vec<ClassInfo> {
    (0..class_count())
        .map(|c| {
            let (colour, shape) = (c / SHAPES.len(), c % SHAPES.len());
            ClassInfo {
                name: format!("{} {}", COLOURS[colour], SHAPES[shape]),
                held_out: HELD_OUT.contains(&(colour, shape)),
            }
        })
        .collect()
}

/// The attributes of image `index` of the set made with `seed`: content
/// and style, drawn independently, each uniformly.
pub fn flower(seed: u64, index: u64) -> Flower {
    let mut rng = SplitMix64::new(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    rng.next_u64();
    let class = rng.below(class_count() as u64) as usize;
    let position = rng.below(POSITIONS as u64) as u32;
    let jitter_x = rng.uniform(-2.0, 2.0);
    let jitter_y = rng.uniform(-2.0, 2.0);
    Flower {
        colour: class / SHAPES.len(),
        shape: class % SHAPES.len(),
        petals: MIN_PETALS + rng.below((MAX_PETALS - MIN_PETALS + 1) as u64) as u32,
        centre: rng.below(CENTRES.len() as u64) as usize,
        background: rng.below(BACKGROUNDS.len() as u64) as usize,
        position,
        x: 20.0 + 12.0 * (position % 3) as f32 + jitter_x,
        y: 20.0 + 12.0 * (position / 3) as f32 + jitter_y,
        rotation: rng.uniform(0.0, std::f32::consts::TAU),
        radius: rng.uniform(12.0, 18.0),
        texture_seed: rng.next_u64(),
    }
}

/// The full sample with classic captions.
pub fn sample(seed: u64, index: u64) -> Sample {
    sample_in(captions::Grammar::Classic, seed, index)
}

/// The full sample: pixels, 10 captions in `grammar`, class and ground truth.
pub fn sample_in(grammar: captions::Grammar, seed: u64, index: u64) -> Sample {
    let f = flower(seed, index);
    let mut rng = SplitMix64::new(f.texture_seed ^ 0x5EED_CA97);
    let captions = captions::captions_in(grammar, &f, CAPTIONS_PER_IMAGE, &mut rng);
    // What each caption states, in caption order (see `captions::stated`).
    let stated: Vec<String> = captions.iter().map(|c| captions::stated(c, &f)).collect();
    Sample {
        width: IMAGE_SIZE,
        height: IMAGE_SIZE,
        pixels: render::render(&f, IMAGE_SIZE),
        captions,
        class: class_of(f.colour, f.shape),
        attributes: vec![
            ("petal_colour".into(), COLOURS[f.colour].into()),
            ("petal_shape".into(), SHAPES[f.shape].into()),
            ("petal_count".into(), f.petals.to_string()),
            ("centre_colour".into(), CENTRES[f.centre].into()),
            ("background".into(), BACKGROUNDS[f.background].into()),
            ("position".into(), f.position.to_string()),
            ("rotation".into(), format!("{:.4}", f.rotation)),
            ("scale".into(), format!("{:.3}", f.radius)),
            ("caption_states".into(), stated.join(",")),
        ],
        name: format!("flower_{index:06}"),
    }
}

pub struct ProceduralFlowers {
    count: usize,
    seed: u64,
    grammar: captions::Grammar,
    classes: Vec<ClassInfo>,
}

impl DatasetLoader for ProceduralFlowers {
    fn open(_path: &str, options: &Options) -> Result<Self, String> {
        options.check_known(&["count", "seed", "grammar"])?;
        let count = options.parsed("count", 12_000usize)?;
        if count == 0 || count > 10_000_000 {
            return Err(format!(
                "count must be between 1 and 10000000 (got {count})"
            ));
        }
        Ok(Self {
            count,
            seed: options.parsed("seed", 0u64)?,
            grammar: captions::Grammar::parse(options.get("grammar").unwrap_or("rich"))?,
            classes: class_infos(),
        })
    }

    fn len(&self) -> usize {
        self.count
    }

    fn classes(&self) -> &[ClassInfo] {
        &self.classes
    }

    fn has_images(&self) -> bool {
        true
    }

    fn get(&mut self, index: usize) -> Result<Sample, String> {
        Ok(sample_in(self.grammar, self.seed, index as u64))
    }

    fn class_of(&self, index: usize) -> u32 {
        let f = flower(self.seed, index as u64);
        class_of(f.colour, f.shape)
    }

    fn caption_count(&self, _index: usize) -> usize {
        CAPTIONS_PER_IMAGE
    }

    fn problems(&self) -> &[String] {
        &[]
    }
}

declare_dataset_loader!(
    ProceduralFlowers,
    name = "procedural-flowers",
    description = "flowers drawn by code with exact attributes (the default dataset)"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_images_other_seed_other_images() {
        assert_eq!(sample(1, 42).pixels, sample(1, 42).pixels);
        assert_eq!(sample(1, 42).captions, sample(1, 42).captions);
        assert_ne!(sample(1, 42).pixels, sample(2, 42).pixels);
        assert_ne!(sample(1, 42).pixels, sample(1, 43).pixels);
    }

    #[test]
    fn held_out_classes_leave_every_colour_and_shape_in_training() {
        let classes = class_infos();
        assert_eq!(
            classes.iter().filter(|c| c.held_out).count(),
            HELD_OUT.len()
        );
        for colour in COLOURS {
            assert!(classes
                .iter()
                .any(|c| !c.held_out && c.name.starts_with(&format!("{colour} "))));
        }
        for shape in SHAPES {
            assert!(classes
                .iter()
                .any(|c| !c.held_out && c.name.ends_with(&format!(" {shape}"))));
        }
    }

    #[test]
    fn attributes_cover_their_ranges() {
        let flowers: Vec<_> = (0..2000).map(|i| flower(0, i)).collect();
        for c in 0..COLOURS.len() {
            assert!(flowers.iter().any(|f| f.colour == c));
        }
        for n in MIN_PETALS..=MAX_PETALS {
            assert!(flowers.iter().any(|f| f.petals == n));
        }
        for b in 0..BACKGROUNDS.len() {
            assert!(flowers.iter().any(|f| f.background == b));
        }
        for p in 0..POSITIONS {
            assert!(flowers.iter().any(|f| f.position == p));
        }
        // The flower stays inside the frame.
        assert!(flowers
            .iter()
            .all(|f| f.x - f.radius >= -1.0 && f.x + f.radius <= 65.0));
    }

    #[test]
    fn each_sample_says_what_each_of_its_captions_states() {
        let mut pairs = 0;
        let mut kinds = std::collections::BTreeSet::new();
        for i in 0..300 {
            let s = sample_in(captions::Grammar::Rich, 4, i);
            let states = &s
                .attributes
                .iter()
                .find(|(k, _)| k == "caption_states")
                .unwrap()
                .1;
            let states: Vec<&str> = states.split(',').collect();
            assert_eq!(states.len(), s.captions.len(), "one entry per caption");
            for (caption, letters) in s.captions.iter().zip(&states) {
                assert!(letters.chars().all(|c| "csnx".contains(c)), "{letters}");
                // A caption that names the count states it, and one that
                // states no count names none.
                let names_count = captions::vocabulary_check(caption)
                    .iter()
                    .any(|(w, _)| *w == "count");
                assert_eq!(
                    names_count,
                    letters.contains('n'),
                    "{caption:?} -> {letters}"
                );
                kinds.insert(letters.to_string());
            }
            let mut sorted = states.clone();
            sorted.sort();
            pairs += sorted.windows(2).filter(|w| w[0] == w[1]).count();
        }
        // The full caption states everything.
        let f = flower(4, 0);
        let full = vocabulary::full_caption(
            &f.petals.to_string(),
            SHAPES[f.shape],
            COLOURS[f.colour],
            CENTRES[f.centre],
        );
        assert_eq!(captions::stated(&full, &f), "csnx");
        // Flowers have several captions that state the same things, in
        // many combinations.
        assert!(pairs > 300, "{pairs}");
        assert!(kinds.len() >= 8, "{kinds:?}");
    }

    #[test]
    fn the_flower_is_drawn_in_its_colour_where_it_says() {
        for i in 0..50 {
            let f = flower(9, i);
            let s = sample(9, i);
            // The pixel halfway along the first petal's axis is the petal colour's hue family.
            let (ax, ay) = (f.rotation.cos(), f.rotation.sin());
            let along = 0.12 * f.radius + (f.radius - 0.12 * f.radius) / 2.0;
            let (x, y) = ((f.x + ax * along) as usize, (f.y + ay * along) as usize);
            let p = &s.pixels[(y * 64 + x) * 3..][..3];
            let centre = &s.pixels[((f.y as usize) * 64 + f.x as usize) * 3..][..3];
            assert_ne!(p, centre, "petal and centre pixels should differ for {f:?}");
        }
    }
}
