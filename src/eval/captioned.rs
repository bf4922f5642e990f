//! Any captioned set: R-precision of generated images against real ones,
//! zero-shot top-1 of the joint embedding, and (Oxford-102) colour accuracy.

use super::colour::{caption_colour, dominant_colour};
use super::{draw, embed, in_batches, metric, Metric};
use crate::imageio;
use crate::train::{noise, text_encoder::zero_shot_top1};
use crate::training_set::{Rng, TrainingSet};
use crate::weights::Model;
use anyhow::{bail, Result};
use tch::{Device, Tensor};

/// Top-1 of ranking each image's caption among it and 99 captions of other
/// classes by the joint embedding, F = θ(x)ᵀ φ(t).
fn r_precision(
    model: &Model,
    images: &Tensor,
    captions: &Tensor,
    distractors: &[Vec<usize>],
    pool: &Tensor,
) -> f64 {
    let v = in_batches(images, model.device, |x| {
        model.image_encoder.net.forward_t(x, false)
    });
    let mut hits = 0;
    for (i, d) in distractors.iter().enumerate() {
        let idx = Tensor::from_slice(&d.iter().map(|&k| k as i64).collect::<Vec<_>>());
        let candidates = Tensor::cat(
            &[
                captions.get(i as i64).unsqueeze(0),
                pool.index_select(0, &idx),
            ],
            0,
        );
        let scores = candidates.matmul(&v.get(i as i64));
        hits += (scores.argmax(0, false).int64_value(&[]) == 0) as usize;
    }
    hits as f64 / distractors.len() as f64
}

/// Metrics for any captioned set: R-precision (generated and real), the
/// zero-shot top-1 of the joint embedding, and colour accuracy where the
/// captions name colours.
pub fn captioned(
    model: &Model,
    set: &TrainingSet,
    queries: usize,
    seed: u64,
) -> Result<Vec<Metric>> {
    let mut rng = Rng(seed);
    let held = set.split(true);
    let (pool_idx, split_name) = if held.len() >= 100 {
        (held, "held-out classes")
    } else {
        ((0..set.len()).collect(), "all classes")
    };
    let mut picks = pool_idx.clone();
    rng.shuffle(&mut picks);
    picks.truncate(queries.min(picks.len()));
    if picks.is_empty() {
        bail!("no samples to evaluate");
    }
    let captions: Vec<String> = picks
        .iter()
        .map(|&i| set.captions[i][rng.below(set.captions[i].len())].clone())
        .collect();
    let text = embed(model, &captions)?.to_device(Device::Cpu);
    // Distractor captions: one random caption of each of many other-class samples.
    let pool_samples: Vec<usize> = (0..set.len()).collect();
    let pool_captions: Vec<String> = pool_samples
        .iter()
        .map(|&i| set.captions[i][0].clone())
        .collect();
    let pool = embed(model, &pool_captions)?.to_device(Device::Cpu);
    let distractors: Vec<Vec<usize>> = picks
        .iter()
        .map(|&i| {
            let mut d = Vec::with_capacity(99);
            while d.len() < 99 {
                let k = rng.below(set.len());
                if set.classes[k] != set.classes[i] {
                    d.push(k);
                }
            }
            d
        })
        .collect();
    let nz = model.card.architecture.generator.nz as usize;
    let z = noise(&mut rng, picks.len(), nz, model.device);
    let generated = draw(model, &z, &text);
    let real = set.image_batch(&picks, false, &mut Rng(0));
    let mut metrics = vec![
        metric(
            "r_precision_generated",
            r_precision(model, &generated, &text, &distractors, &pool),
            format!(
                "{} queries from {split_name}, 1 true caption among 100",
                picks.len()
            ),
        ),
        metric(
            "r_precision_real",
            r_precision(model, &real, &text, &distractors, &pool),
            "the same with real images: the ceiling",
        ),
    ];
    if set.class_count(true) >= 2 {
        metrics.push(metric(
            "zero_shot_top1",
            zero_shot_top1(model, set, true, 100)?,
            "joint embedding, held-out classes",
        ));
    }
    // Colour accuracy, for captions that name a petal colour.
    let named: Vec<(usize, &str)> = captions
        .iter()
        .enumerate()
        .filter_map(|(k, c)| caption_colour(c).map(|col| (k, col)))
        .collect();
    if named.len() >= 20 {
        let gen_images = imageio::images_from_tensor(&generated)?;
        let real_images = imageio::images_from_tensor(&real)?;
        let acc = |images: &[imageio::Image]| {
            named
                .iter()
                .filter(|(k, col)| dominant_colour(&images[*k]) == Some(*col))
                .count() as f64
                / named.len() as f64
        };
        metrics.push(metric(
            "colour_accuracy_generated",
            acc(&gen_images),
            format!("{} captions naming a colour", named.len()),
        ));
        metrics.push(metric(
            "colour_accuracy_real",
            acc(&real_images),
            "the same measure on real photos: the ceiling",
        ));
    }
    Ok(metrics)
}
