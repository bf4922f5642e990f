//! Training-ready data: every sample of a dataset decoded once into memory
//! (images as one u8 tensor), then batches cut from it with the paper's
//! augmentation (paper.md §4): images stored at 76x76, a random 64x64 crop
//! and a random horizontal flip, scaled to [-1, 1].
//!
//! Sets whose images are natively 64x64 (the procedural flowers) are kept at
//! 64: there the crop is the whole image and only the flip applies, so that
//! the position of the flower, a labelled style attribute, stays exact.

use crate::dataset::{Class, Dataset, Sample};
use crate::imageio::{Image, IMAGE_SIZE};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// Side at which photos are stored before cropping (Reed's 76).
pub const STORED_SIZE: u32 = 76;

/// A small, checkpointable random number generator (SplitMix64), so that
/// resumed training draws exactly the batches it would have drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rng(pub u64);

/// Where an image is cut from its stored (possibly larger) picture, and
/// whether it is mirrored left to right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crop {
    pub dx: i64,
    pub dy: i64,
    pub flip: bool,
}

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        // The same SplitMix64 as the plugins', with its state kept here in
        // the open so that checkpoints can save it.
        let mut stream = gantry_plugin_api::random::SplitMix64::new(self.0);
        let value = stream.next_u64();
        self.0 = stream.state();
        value
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// What to do with a sample that fails to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    Skip,
    Stop,
}

/// A dataset in memory.
pub struct TrainingSet {
    pub spec: String,
    /// [N, 3, S, S] u8, S = 64 or 76.
    pub images: Tensor,
    pub captions: Vec<Vec<String>>,
    pub classes: Vec<u32>,
    pub class_info: Vec<Class>,
    pub attributes: Vec<BTreeMap<String, String>>,
    pub names: Vec<String>,
    /// The loader's problems and the samples skipped here.
    pub problems: Vec<String>,
}

fn resized(image: &Image, side: u32) -> Result<Vec<u8>> {
    Ok(square(image, side)?.rgb)
}

/// Resizes to `side` x `side` (aspect not kept, as Reed's pipeline does).
pub fn square(image: &Image, side: u32) -> Result<Image> {
    if image.width == side && image.height == side {
        return Ok(image.clone());
    }
    let buffer = image::RgbImage::from_raw(image.width, image.height, image.rgb.clone())
        .ok_or_else(|| anyhow::anyhow!("bad image buffer"))?;
    let rgb = image::imageops::resize(&buffer, side, side, image::imageops::FilterType::Triangle)
        .into_raw();
    Ok(Image {
        width: side,
        height: side,
        rgb,
    })
}

impl TrainingSet {
    /// Reads up to `limit` samples of `dataset`; `progress(done, total)` is
    /// called as it goes.
    pub fn load(
        dataset: &mut Dataset,
        limit: Option<usize>,
        on_error: OnError,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        if !dataset.has_images {
            bail!(
                "{}: has captions but no images; training needs both",
                dataset.spec
            );
        }
        let total = limit.map_or(dataset.len, |l| l.min(dataset.len));
        let mut side = None;
        let mut pixels = Vec::new();
        let mut set = Self {
            spec: dataset.spec.to_string(),
            images: Tensor::new(),
            captions: Vec::with_capacity(total),
            classes: Vec::with_capacity(total),
            class_info: dataset.classes.clone(),
            attributes: Vec::with_capacity(total),
            names: Vec::with_capacity(total),
            problems: dataset.problems.clone(),
        };
        for index in 0..total {
            let sample: Sample = match dataset.get(index) {
                Ok(s) => s,
                Err(e) if on_error == OnError::Skip => {
                    set.problems.push(format!("{e:#}"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(image) = sample.image else {
                set.problems.push(format!("{}: no image", sample.name));
                continue;
            };
            let s =
                *side.get_or_insert(if image.width == IMAGE_SIZE && image.height == IMAGE_SIZE {
                    IMAGE_SIZE
                } else {
                    STORED_SIZE
                });
            pixels.extend(resized(&image, s)?);
            set.captions.push(sample.captions);
            set.classes.push(sample.class);
            set.attributes.push(sample.attributes);
            set.names.push(sample.name);
            progress(index + 1, total);
        }
        let n = set.classes.len();
        if n == 0 {
            bail!("{}: no usable samples", dataset.spec);
        }
        let s = side.unwrap_or(IMAGE_SIZE) as i64;
        set.images = Tensor::from_slice(&pixels)
            .view([n as i64, s, s, 3])
            .permute([0, 3, 1, 2])
            .contiguous();
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Indices of the samples in training classes (`held_out` false) or in
    /// the held-out classes (`held_out` true).
    pub fn split(&self, held_out: bool) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| {
                self.class_info
                    .get(self.classes[i] as usize)
                    .is_some_and(|c| c.held_out)
                    == held_out
            })
            .collect()
    }

    /// Number of distinct classes among the samples of a split.
    pub fn class_count(&self, held_out: bool) -> usize {
        self.split(held_out)
            .iter()
            .map(|&i| self.classes[i])
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    }

    /// The values attribute `attribute` takes over the set, distinct and
    /// sorted; refused where an image lacks it.
    pub fn attribute_values(&self, attribute: &str) -> anyhow::Result<Vec<&String>> {
        let values: std::collections::BTreeSet<&String> = self
            .attributes
            .iter()
            .enumerate()
            .map(|(i, a)| {
                a.get(attribute)
                    .ok_or_else(|| anyhow::anyhow!("{} has no {attribute}", self.names[i]))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(values.into_iter().collect())
    }

    /// Keeps the images on `device` (a GPU run then builds its batches there).
    pub fn move_images_to(&mut self, device: Device) {
        self.images = self.images.to_device(device);
    }

    /// Images `indices` as [B, 3, 64, 64] f32 in [-1, 1], on the device the
    /// images are kept on: a random crop and horizontal flip when `augment`
    /// (offsets and flip drawn per image from `rng`), else the centre crop.
    /// The crops are two gathers over the whole batch, not an op per image.
    pub fn image_batch(&self, indices: &[usize], augment: bool, rng: &mut Rng) -> Tensor {
        let crops = if augment {
            self.random_crops(indices.len(), rng)
        } else {
            vec![self.centre_crop(); indices.len()]
        };
        self.cropped(indices, &crops)
    }

    /// The centre crop of a stored image.
    pub fn centre_crop(&self) -> Crop {
        let offset = (self.images.size()[2] - IMAGE_SIZE as i64) / 2;
        Crop {
            dx: offset,
            dy: offset,
            flip: false,
        }
    }

    /// `n` random crops and flips, drawn from `rng` as [`Self::image_batch`]
    /// draws them.
    pub fn random_crops(&self, n: usize, rng: &mut Rng) -> Vec<Crop> {
        let span = (self.images.size()[2] - IMAGE_SIZE as i64 + 1) as usize;
        (0..n)
            .map(|_| Crop {
                dx: rng.below(span) as i64,
                dy: rng.below(span) as i64,
                flip: rng.below(2) == 1,
            })
            .collect()
    }

    /// Images `indices` cut as `crops` say (one crop per image).
    pub fn cropped(&self, indices: &[usize], crops: &[Crop]) -> Tensor {
        assert_eq!(indices.len(), crops.len(), "one crop per image");
        let side = self.images.size()[2];
        let out = IMAGE_SIZE as i64;
        let b = indices.len() as i64;
        let (mut rows, mut cols) = (Vec::new(), Vec::new());
        for &Crop { dx, dy, flip } in crops {
            rows.extend((0..out).map(|k| dy + k));
            cols.extend((0..out).map(|k| if flip { dx + out - 1 - k } else { dx + k }));
        }
        let device = self.images.device();
        let index = |v: &[i64]| Tensor::from_slice(v).to_device(device);
        let picked: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let images = self.images.index_select(0, &index(&picked));
        let rows = index(&rows)
            .view([b, 1, out, 1])
            .expand([b, 3, out, side], false);
        let cols = index(&cols)
            .view([b, 1, 1, out])
            .expand([b, 3, out, out], false);
        let crops = images.gather(2, &rows, false).gather(3, &cols, false);
        crops.to_kind(Kind::Float) / 127.5 - 1.0
    }
}
