//! Any captioned set: R-precision of generated images against real ones,
//! zero-shot top-1 of the joint embedding, (Oxford-102) colour accuracy, and
//! realism with a class probe of the set's photos.

use super::colour::{caption_colour, dominant_colour};
use super::statistics::{checkerboards, frechet_distance};
use super::{draw, embed, in_batches, metric, number, Metric};
use crate::imageio;
use crate::probe::{class_probe_held_out, LoadedProbe};
use crate::train::{noise, text_encoder::zero_shot_top1};
use crate::training_set::{Rng, TrainingSet};
use crate::weights::Model;
use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

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

/// Realism, measured with a class probe of the set's photos (evaluation.md;
/// no Inception weights here). On the photos the probe was not trained on
/// (every fifth of each class), one picture is drawn per photo for one of its
/// captions (Oxford-102's name the class), and the probe classifies both:
///
/// - the classification accuracy score, top-1 and top-5, of the generated
///   pictures against the photos' classes, beside the photos' own (the
///   ceiling), on the GAN's training classes and on the held-out ones;
/// - the Fréchet distance in the probe's penultimate features between the
///   pictures drawn for every other training-class photo and the remaining
///   half's photos, beside the same distance between the two halves of real
///   photos (what equal sets of this size score).
pub fn realism(
    model: &Model,
    set: &TrainingSet,
    probe: &LoadedProbe,
    seed: u64,
) -> Result<Vec<Metric>> {
    if !probe.reads_classes_of(set) {
        bail!("the class probe does not read the classes of {}", set.spec);
    }
    let probe_held = class_probe_held_out(set);
    let mut rng = Rng(seed);
    let nz = model.card.architecture.generator.nz as usize;
    let mut metrics = Vec::new();
    for (held_out_classes, split) in [(false, "train"), (true, "held_out")] {
        let photos: Vec<usize> = (0..set.len())
            .filter(|&i| {
                probe_held[i]
                    && set.class_info[set.classes[i] as usize].held_out == held_out_classes
            })
            .collect();
        if photos.len() < 20 {
            continue;
        }
        let captions: Vec<String> = photos
            .iter()
            .map(|&i| set.captions[i][rng.below(set.captions[i].len())].clone())
            .collect();
        let z = noise(&mut rng, photos.len(), nz, model.device);
        // Read as a PNG holds them, like the photos.
        let generated = ((draw(model, &z, &embed(model, &captions)?) + 1.0) * 127.5)
            .round()
            .clamp(0.0, 255.0)
            / 127.5
            - 1.0;
        let real = set.image_batch(&photos, false, &mut Rng(0));
        let truth = Tensor::from_slice(
            &photos
                .iter()
                .map(|&i| set.classes[i] as i64)
                .collect::<Vec<_>>(),
        );
        let hits = |images: &Tensor| -> Result<(f64, f64)> {
            let (mut top1, mut top5) = (0, 0);
            for (chunk, truth) in images.split(256, 0).iter().zip(truth.split(256, 0)) {
                let (one, five) = probe.class_hits(chunk, &truth)?;
                top1 += one;
                top5 += five;
            }
            let n = photos.len() as f64;
            Ok((top1 as f64 / n, top5 as f64 / n))
        };
        let (g1, g5) = hits(&generated)?;
        let (r1, r5) = hits(&real)?;
        let classes = if held_out_classes {
            "held-out classes"
        } else {
            "training classes"
        };
        for (name, value, k, what) in [
            ("generated_top1", g1, 1, "pictures for captions"),
            ("generated_top5", g5, 5, "pictures for captions"),
            ("real_top1", r1, 1, "photos"),
            ("real_top5", r5, 5, "photos"),
        ] {
            metrics.push(metric(
                &format!("realism_{name}_{split}"),
                value,
                format!("{} {what} of {classes}, class probe top-{k}", photos.len()),
            ));
        }
        if !held_out_classes {
            metrics.extend(checkerboards(&generated, &real)?);
            // Photos come class by class: the halves alternate, so both
            // hold every class in the same proportions.
            let half = (photos.len() / 2) as i64;
            let features = |images: &Tensor, first: i64| {
                let picked =
                    Tensor::arange_start_step(first, 2 * half, 2, (Kind::Int64, Device::Cpu));
                in_batches(&images.index_select(0, &picked), Device::Cpu, |x| {
                    probe.features(x)
                })
            };
            let real_b = features(&real, 1);
            metrics.push(number(
                "realism_frechet_generated",
                frechet_distance(&features(&generated, 0), &real_b)?,
                format!("class probe features, {half} pictures vs {half} other photos"),
            ));
            metrics.push(number(
                "realism_frechet_real",
                frechet_distance(&features(&real, 0), &real_b)?,
                format!("the same between {half} photos and {half} other photos: the floor"),
            ));
        }
    }
    if metrics.is_empty() {
        bail!("too few photos for realism: fewer than 20 in either split");
    }
    Ok(metrics)
}
