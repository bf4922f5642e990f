//! Procedural flowers, read back by the attribute probe: content accuracy
//! per attribute (training and held-out classes), style transfer, sentence
//! interpolation, diversity, the style AUC, and what the joint embedding
//! reads of each attribute.

use super::statistics::{checkerboards, entropy, roc_auc};
use super::{draw, embed, in_batches, metric, number, Metric};
use crate::imageio;
use crate::probe::LoadedProbe;
use crate::train::noise;
use crate::training_set::{Rng, TrainingSet};
use crate::weights::Model;
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// The dataset's own vocabulary, from the one file the plugin uses too.
#[path = "../../plugins/procedural-flowers/src/vocabulary.rs"]
#[allow(dead_code)]
mod vocabulary;
use vocabulary::COUNT_WORDS;

/// The caption that states all four content attributes of a procedural
/// flower, in the dataset's own words.
pub fn full_caption(attributes: &BTreeMap<String, String>) -> Result<String> {
    let get = |k: &str| {
        attributes
            .get(k)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("sample has no '{k}' (not procedural-flowers?)"))
    };
    Ok(vocabulary::full_caption(
        &get("petal_count")?,
        &get("petal_shape")?,
        &get("petal_colour")?,
        &get("centre_colour")?,
    ))
}

/// Sentence forms people type that neither caption grammar of
/// procedural-flowers ever produces (a test checks that against both), each
/// with the words that mark it: a caption in one of them measures how a model
/// reads phrasings it never saw. {C} petal colour, {S} shape, {N} count, {X}
/// centre colour.
pub const HELD_OUT_PHRASINGS: [(&str, &[&str]); 6] = [
    (
        "so the flower is {C}, the petals look {S}, there's {N} and the centre is {X}",
        &["petals look", "so the flower"],
    ),
    (
        "{X}-centred flower having {N} {S} {C} petals",
        &["-centred", "having"],
    ),
    (
        "i'd love a {C} flower please: {N} petals, all {S}, {X} in the middle",
        &["i'd love", "please", "in the middle"],
    ),
    ("{C}. {S} petals. {N} total. {X} centre.", &["total"]),
    (
        "could i get {N} {C} petals shaped {S} around something {X}",
        &["could i get", "shaped", "something"],
    ),
    ("petals={C},{S},{N}; centre={X}", &["="]),
];

/// Six more sentence forms that neither grammar produces, written as a
/// cross-check and used for nothing else: no training option (the
/// distillation's perturbations, `--reworded`) was shaped by them, so a gap
/// that closes on [`HELD_OUT_PHRASINGS`] and not here was tuned to those six.
/// Same placeholders and markers.
pub const CROSS_CHECK_PHRASINGS: [(&str, &[&str]); 6] = [
    (
        "gimme a {C} flower with {S} petals ({N}) and a {X} centre",
        &["gimme"],
    ),
    ("flower -> {C}; petals -> {N}, {S}; centre -> {X}", &["->"]),
    (
        "i'm looking for a flower whose {N} petals are {S} and {C}, the centre being {X}",
        &["i'm looking for", "being"],
    ),
    ("{S} and {C}, {N} altogether, {X} inside", &["altogether"]),
    ("{C} flower!! {S} petals!! {N}!! {X} middle!!", &["!!"]),
    (
        "what about {N} {C} {S} petals on a {X} centre?",
        &["what about"],
    ),
];

/// The caption of `attributes` in held-out phrasing `k` (taken modulo the
/// number of phrasings).
pub fn phrased_caption(attributes: &BTreeMap<String, String>, k: usize) -> Result<String> {
    phrased_caption_in(&HELD_OUT_PHRASINGS, attributes, k)
}

/// The caption of `attributes` in phrasing `k` of `forms` (taken modulo
/// their number).
pub fn phrased_caption_in(
    forms: &[(&str, &[&str])],
    attributes: &BTreeMap<String, String>,
    k: usize,
) -> Result<String> {
    let get = |key: &str| {
        attributes
            .get(key)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("sample has no '{key}' (not procedural-flowers?)"))
    };
    let count = get("petal_count")?;
    let count = match count.parse::<usize>().ok().and_then(|n| COUNT_WORDS.get(n)) {
        // Numerals as people mix them: words in some phrasings, digits in others.
        Some(word) if k.is_multiple_of(2) => word.to_string(),
        _ => count,
    };
    let (template, _) = forms[k % forms.len()];
    Ok(template
        .replace("{C}", &get("petal_colour")?)
        .replace("{S}", &get("petal_shape")?)
        .replace("{N}", &count)
        .replace("{X}", &get("centre_colour")?))
}

/// The caption of each sample of `set` in a held-out phrasing, sample `i`
/// in phrasing `i` (so the phrasings take turns over the set).
pub fn phrased_captions(set: &TrainingSet) -> Result<Vec<String>> {
    phrased_captions_in(&HELD_OUT_PHRASINGS, set)
}

/// [`phrased_captions`] in `forms`.
pub fn phrased_captions_in(forms: &[(&str, &[&str])], set: &TrainingSet) -> Result<Vec<String>> {
    set.attributes
        .iter()
        .enumerate()
        .map(|(i, a)| phrased_caption_in(forms, a, i))
        .collect()
}

/// The content attributes captions state: (attribute, short name).
pub const CONTENT: [(&str, &str); 4] = [
    ("petal_colour", "colour"),
    ("petal_shape", "shape"),
    ("petal_count", "count"),
    ("centre_colour", "centre"),
];

/// How often the probe reads one content attribute back.
pub struct ContentRate {
    pub attribute: &'static str,
    pub label: &'static str,
    /// (accuracy, captions) on training classes; None where there are none.
    pub train: Option<(f64, usize)>,
    /// The same on held-out classes.
    pub held_out: Option<(f64, usize)>,
}

/// The probe's reading of `images`, one per sample of `set` in order (drawn
/// for that sample's caption), against the sample's content attributes.
pub fn content_accuracy(
    images: &Tensor,
    set: &TrainingSet,
    probe: &LoadedProbe,
) -> Result<Vec<ContentRate>> {
    if images.size()[0] as usize != set.len() {
        bail!("{} pictures for {} captions", images.size()[0], set.len());
    }
    let mut out = Vec::new();
    for (attribute, label) in CONTENT {
        let read = probe.read(images, attribute)?;
        out.push(ContentRate {
            attribute,
            label,
            train: hit_rate(set, attribute, &read, &set.split(false)),
            held_out: hit_rate(set, attribute, &read, &set.split(true)),
        });
    }
    Ok(out)
}

/// One metric per attribute and split of `rates`, named
/// `{prefix}_{label}_{split}`, its note `note(captions, attribute)`.
fn content_metrics(
    rates: &[ContentRate],
    prefix: &str,
    note: impl Fn(usize, &str) -> String,
) -> Vec<Metric> {
    let mut metrics = Vec::new();
    for rate in rates {
        for (split, measured) in [("train", rate.train), ("held_out", rate.held_out)] {
            if let Some((value, count)) = measured {
                metrics.push(metric(
                    &format!("{prefix}_{}_{split}", rate.label),
                    value,
                    note(count, rate.attribute),
                ));
            }
        }
    }
    metrics
}

/// How often `read` (one value per sample of `set`) is `attribute` of the
/// samples `idx`, and how many they are; None for no samples.
fn hit_rate(
    set: &TrainingSet,
    attribute: &str,
    read: &[String],
    idx: &[usize],
) -> Option<(f64, usize)> {
    let hits = idx
        .iter()
        .filter(|&&i| set.attributes[i].get(attribute) == Some(&read[i]))
        .count();
    (!idx.is_empty()).then(|| (hits as f64 / idx.len() as f64, idx.len()))
}

/// Every render must carry every attribute the probe reads (a replacement
/// plugin of the same name might not): checked once, so that the
/// measurements can index them.
pub(crate) fn require_probed_attributes(set: &TrainingSet) -> Result<()> {
    for (i, attributes) in set.attributes.iter().enumerate() {
        if let Some(missing) = crate::probe::PROBED
            .iter()
            .find(|a| !attributes.contains_key(**a))
        {
            bail!(
                "render {i} ({}) has no '{missing}' attribute: the procedural metrics need the procedural-flowers plugin's attributes",
                set.names[i]
            );
        }
    }
    Ok(())
}

/// Metrics on procedural flowers, read back with the probe. `set` holds
/// real renders not used in training.
pub fn procedural(
    model: &Model,
    probe: &LoadedProbe,
    set: &TrainingSet,
    seed: u64,
) -> Result<Vec<Metric>> {
    let n = set.len();
    if n < 64 {
        bail!("need at least 64 evaluation renders (got {n})");
    }
    require_probed_attributes(set)?;
    let nz = model.card.architecture.generator.nz as usize;
    let mut rng = Rng(seed);
    let probe_note = |attr: &str| {
        probe
            .card
            .accuracy
            .get(attr)
            .map_or("probe accuracy unknown".to_string(), |a| {
                format!("probe {:.1}% on real renders", a * 100.0)
            })
    };
    let mut metrics = Vec::new();

    // Content: one image per full caption; the probe reads every attribute.
    let captions: Vec<String> = set
        .attributes
        .iter()
        .map(full_caption)
        .collect::<Result<_>>()?;
    let text = embed(model, &captions)?;
    let z = noise(&mut rng, n, nz, model.device);
    let generated = draw(model, &z, &text);
    let rates = content_accuracy(&generated, set, probe)?;
    metrics.extend(content_metrics(&rates, "content", |count, attribute| {
        format!("{count} captions; {}", probe_note(attribute))
    }));

    // The same renders and z, captions in sentence forms no training grammar
    // has: how much of the above survives phrasings the model never saw; and
    // in the cross-check's forms, a guard against tuning to those six.
    let phrased_images = draw(model, &z, &embed(model, &phrased_captions(set)?)?);
    let rates = content_accuracy(&phrased_images, set, probe)?;
    metrics.extend(content_metrics(
        &rates,
        "phrasing_content",
        |count, attribute| {
            format!(
                "{count} captions in {} unseen sentence forms; {}",
                HELD_OUT_PHRASINGS.len(),
                probe_note(attribute)
            )
        },
    ));
    let checked = phrased_captions_in(&CROSS_CHECK_PHRASINGS, set)?;
    let rates = content_accuracy(&draw(model, &z, &embed(model, &checked)?), set, probe)?;
    metrics.extend(content_metrics(
        &rates,
        "crosscheck_content",
        |count, attribute| {
            format!(
                "{count} captions in {} more unseen sentence forms; {}",
                CROSS_CHECK_PHRASINGS.len(),
                probe_note(attribute)
            )
        },
    ));

    // Colour and shape per unseen form (training classes): which forms the
    // model draws worst (sample i is in form i, taken modulo the forms).
    let train = set.split(false);
    for (attribute, label) in &CONTENT[..2] {
        let read = probe.read(&phrased_images, attribute)?;
        for (k, (form, _)) in HELD_OUT_PHRASINGS.iter().enumerate() {
            let idx: Vec<usize> = train
                .iter()
                .copied()
                .filter(|i| i % HELD_OUT_PHRASINGS.len() == k)
                .collect();
            if let Some((value, count)) = hit_rate(set, attribute, &read, &idx) {
                metrics.push(metric(
                    &format!("phrasing_form{}_{label}_train", k + 1),
                    value,
                    format!("{count} captions as \"{form}\""),
                ));
            }
        }
    }

    metrics.extend(embedding_reads(model, set, 300)?);
    metrics.extend(embedding_reads_with(
        model,
        set,
        300,
        "phrasing_embedding_reads",
        &phrased_caption,
    )?);

    // Style transfer: x̂ = G(S(x), φ(t)) with t of another petal colour.
    let real = set.image_batch(&(0..n).collect::<Vec<_>>(), false, &mut Rng(0));
    metrics.extend(checkerboards(&generated, &real)?);
    let style = in_batches(&real, model.device, |x| {
        model.style_encoder.net.forward_t(x, false)
    });
    let targets: Vec<usize> = (0..n)
        .map(|i| {
            (1..n)
                .map(|k| (i + k * 7919) % n)
                .find(|&j| set.attributes[j]["petal_colour"] != set.attributes[i]["petal_colour"])
                .unwrap_or((i + 1) % n)
        })
        .collect();
    let target_text = text.index_select(
        0,
        &Tensor::from_slice(&targets.iter().map(|&j| j as i64).collect::<Vec<_>>())
            .to_device(text.device()),
    );
    let transferred = draw(model, &style, &target_text);
    let (kept, kept_bg, kept_pos) =
        style_kept(&read_style(probe, &transferred)?, &true_style(set, n));
    let colour = probe.read(&transferred, "petal_colour")?;
    let followed = (0..n)
        .filter(|&i| colour[i] == set.attributes[targets[i]]["petal_colour"])
        .count() as f64
        / n as f64;
    metrics.push(metric(
        "style_kept_background",
        kept_bg,
        probe_note("background"),
    ));
    metrics.push(metric(
        "style_kept_position",
        kept_pos,
        probe_note("position"),
    ));
    metrics.push(metric(
        "style_kept",
        kept,
        "background and position both kept",
    ));
    metrics.push(metric(
        "style_content_followed",
        followed,
        probe_note("petal_colour"),
    ));

    // Sentence interpolation: z fixed, 8 steps from one caption to another.
    let pairs = 100.min(n);
    let steps = 8i64;
    let mut zs = Vec::new();
    let mut texts = Vec::new();
    for (a, &b) in targets.iter().enumerate().take(pairs) {
        let z1 = noise(&mut rng, 1, nz, model.device).expand([steps, -1], false);
        let w = Tensor::linspace(0.0, 1.0, steps, (Kind::Float, text.device())).unsqueeze(1);
        texts.push(
            text.get(a as i64).unsqueeze(0) * (1.0 - &w) + text.get(b as i64).unsqueeze(0) * &w,
        );
        zs.push(z1);
    }
    let rows = draw(model, &Tensor::cat(&zs, 0), &Tensor::cat(&texts, 0));
    let [colour, bg] = probe.read_each(&rows, ["petal_colour", "background"])?;
    let s = steps as usize;
    let mut endpoints = 0;
    let mut steady = 0;
    for (p, &target) in targets.iter().enumerate().take(pairs) {
        let row = p * s;
        endpoints += (colour[row] == set.attributes[p]["petal_colour"]) as usize;
        endpoints += (colour[row + s - 1] == set.attributes[target]["petal_colour"]) as usize;
        steady += bg[row..row + s].iter().all(|b| *b == bg[row]) as usize;
    }
    metrics.push(metric(
        "interp_endpoints",
        endpoints as f64 / (2 * pairs) as f64,
        format!("{pairs} rows of {steps}"),
    ));
    metrics.push(metric(
        "interp_background_steady",
        steady as f64 / pairs as f64,
        "background bin the same along the row",
    ));

    let captions = 16.min(n);
    let [background, position] = diversity(
        set,
        probe,
        ["background", "position"],
        captions,
        under_fresh_z(model, &text, &mut rng),
    )?;
    metrics.push(metric(
        "diversity",
        background,
        "background entropy over 64 z / the data's (1.0 = as varied)",
    ));
    metrics.push(metric(
        "diversity_position",
        position,
        "position entropy over the same 64 z / the data's (1.0 = as varied)",
    ));

    // Style AUC: cosine of S(x1), S(x2) for same vs different (background, position).
    let style_n = style.shallow_clone() / style.norm_scalaropt_dim(2.0, [1], true).clamp_min(1e-8);
    let cos = style_n.matmul(&style_n.transpose(0, 1));
    let cos = Vec::<f32>::try_from(cos.view([-1]))?;
    let (mut same, mut different) = (Vec::new(), Vec::new());
    for i in 0..n {
        for j in (i + 1)..n {
            let s = set.attributes[i]["background"] == set.attributes[j]["background"]
                && set.attributes[i]["position"] == set.attributes[j]["position"];
            let c = cos[i * n + j] as f64;
            if s {
                same.push(c);
            } else if rng.below(20) == 0 {
                different.push(c);
            }
        }
    }
    metrics.push(metric(
        "style_auc",
        roc_auc(&same, &different),
        format!(
            "{} same-style pairs, {} different",
            same.len(),
            different.len()
        ),
    ));

    // Where style is lost. Same z, new caption: does G itself keep the
    // background and position (the most any style encoder can get)? And S on
    // G's own samples, x̂ = G(S(G(z, t)), t'): does S invert G where it was
    // trained? Both compare with what the probe reads on G(z, t).
    let source = read_style(probe, &generated)?;
    let kept_of = |images: &Tensor| -> Result<(f64, f64, f64)> {
        Ok(style_kept(&read_style(probe, images)?, &source))
    };
    let parts = |(_, bg, pos): (f64, f64, f64)| {
        format!(
            "background {:.1}%, position {:.1}%",
            bg * 100.0,
            pos * 100.0
        )
    };
    let same_z = kept_of(&draw(model, &z, &target_text))?;
    metrics.push(metric(
        "style_kept_same_z",
        same_z.0,
        format!(
            "G(z, t') keeps G(z, t)'s style, the ceiling for any style encoder: {}",
            parts(same_z)
        ),
    ));
    let inverted = in_batches(&generated, model.device, |x| {
        model.style_encoder.net.forward_t(x, false)
    });
    let generated_kept = kept_of(&draw(model, &inverted, &target_text))?;
    metrics.push(metric(
        "style_kept_generated",
        generated_kept.0,
        format!(
            "G(S(G(z, t)), t') keeps it, S on G's own samples: {}",
            parts(generated_kept)
        ),
    ));

    // What D checks: its score of real renders of training classes, with
    // their caption and with one attribute of it changed.
    let train = set.split(false);
    for r in d_rejects(model, set, &train, seed)? {
        metrics.push(number(
            &format!("d_rejects_{}", r.label),
            r.drop(),
            format!(
                "D(real, caption) {:.3} - D(real, caption with another {}) {:.3}, {} renders",
                r.right,
                r.label,
                r.changed,
                train.len().min(REJECTS_RENDERS)
            ),
        ));
    }
    Ok(metrics)
}

/// What D checks against the text, per content attribute: how far D's score
/// of a real render falls when its full caption states another value of
/// that attribute (a random other value present in `set`, the rest kept).
/// Each batch D reads holds both kinds of pair, half and half: a D in
/// training mode normalises a batch by its own statistics, and one batch all
/// of changed captions is read by what the batch looks like as a whole (a
/// D trained on batches of one kind of pair each, as the paper's, then
/// "rejects" colour 0.90 where, pair by pair, it rejects 0.02).
pub struct Rejects {
    /// The attribute's short name (colour, shape, count, centre).
    pub label: &'static str,
    /// Mean D(x, t) over the renders.
    pub right: f64,
    /// Mean D(x, t′), t′ the caption with this attribute changed (each in a
    /// batch whose other half holds the renders' own captions).
    pub changed: f64,
}

impl Rejects {
    /// D(x, t) − D(x, t′): near 0, D does not check the attribute, and G's
    /// loss through D does not ask for it.
    pub fn drop(&self) -> f64 {
        self.right - self.changed
    }
}

/// Renders D's check reads (the first of `indices`), in chunks of the batch
/// D trains on: D runs in training mode (batch statistics, as every score
/// it was trained on), so what a chunk holds matters as it does in training.
const REJECTS_RENDERS: usize = 512;
const REJECTS_CHUNK: usize = 64;

/// [`Rejects`] for each content attribute, over real renders `indices` of
/// `set` (at most 512). D's batch-norm running statistics move (unused: D
/// always scores in training mode); nothing else changes.
pub fn d_rejects(
    model: &Model,
    set: &TrainingSet,
    indices: &[usize],
    seed: u64,
) -> Result<Vec<Rejects>> {
    let indices = &indices[..indices.len().min(REJECTS_RENDERS)];
    if indices.is_empty() {
        bail!("no renders to read D's checks on");
    }
    require_probed_attributes(set)?;
    let mut rng = Rng(seed);
    let device = model.device;
    let captions = |changed: Option<&str>, rng: &mut Rng| -> Result<Vec<String>> {
        // The values the changed attribute takes over the set, once.
        let values = match changed {
            Some(attribute) => set.attribute_values(attribute)?,
            None => Vec::new(),
        };
        indices
            .iter()
            .map(|&i| {
                let mut attributes = set.attributes[i].clone();
                if let Some(attribute) = changed {
                    let own = &attributes[attribute];
                    let others: Vec<&&String> = values.iter().filter(|v| **v != own).collect();
                    if others.is_empty() {
                        bail!("every render has the same {attribute}: nothing to change it to");
                    }
                    let other = (*others[rng.below(others.len())]).clone();
                    attributes.insert(attribute.to_string(), other);
                }
                full_caption(&attributes)
            })
            .collect()
    };
    let images = set.image_batch(indices, false, &mut rng).to_device(device);
    let d = &model.discriminator.net;
    // D's scores of the renders, each chunk of REJECTS_CHUNK in one batch.
    let scores = |text: &Tensor| -> Tensor {
        let chunks: Vec<Tensor> = (0..indices.len())
            .step_by(REJECTS_CHUNK)
            .map(|start| {
                let len = REJECTS_CHUNK.min(indices.len() - start) as i64;
                let x = images.narrow(0, start as i64, len);
                let t = text.narrow(0, start as i64, len);
                tch::no_grad(|| d.forward_t(&x, &t, true).sigmoid())
            })
            .collect();
        Tensor::cat(&chunks, 0).to_kind(Kind::Double)
    };
    // Even places hold one kind of caption and odd places the other, then
    // the other way round: each render is read with both, each time in a
    // batch half of each kind.
    let even = Tensor::arange(indices.len() as i64, (Kind::Int64, device))
        .remainder(2)
        .eq(0);
    let even_rows = even.unsqueeze(1);
    let right = embed(model, &captions(None, &mut rng)?)?;
    CONTENT
        .iter()
        .map(|&(attribute, label)| {
            let changed = embed(model, &captions(Some(attribute), &mut rng)?)?;
            let first = scores(&right.where_self(&even_rows, &changed));
            let second = scores(&changed.where_self(&even_rows, &right));
            let own = first.where_self(&even, &second);
            let other = second.where_self(&even, &first);
            Ok(Rejects {
                label,
                right: own.mean(Kind::Double).double_value(&[]),
                changed: other.mean(Kind::Double).double_value(&[]),
            })
        })
        .collect()
}

/// (background, position) of an image.
type Style = (String, String);

/// How many pictures of one caption [`diversity`] reads.
pub const PICTURES_PER_CAPTION: usize = 64;

/// How varied the pictures of one caption are: for each of `captions`
/// captions, the pictures `pictures_of(c)` draws of it
/// ([`PICTURES_PER_CAPTION`] of them, each under its own z), and the entropy
/// of what the probe reads of each of `attributes` over them as a fraction of
/// its entropy over `set` (1.0 = as varied as the data, 0 = one value
/// whatever z is). The mean fraction per attribute, in order.
pub fn diversity<const A: usize>(
    set: &TrainingSet,
    probe: &LoadedProbe,
    attributes: [&str; A],
    captions: usize,
    mut pictures_of: impl FnMut(usize) -> Tensor,
) -> Result<[f64; A]> {
    if captions == 0 {
        bail!("no captions to measure diversity on");
    }
    let data = attributes.map(|attribute| {
        let mut counts = BTreeMap::new();
        for a in &set.attributes {
            *counts
                .entry(a.get(attribute).cloned().unwrap_or_default())
                .or_insert(0) += 1;
        }
        entropy(&counts)
    });
    let mut sums = [0.0; A];
    for c in 0..captions {
        let read = probe.read_each(&pictures_of(c), attributes)?;
        for ((sum, values), data) in sums.iter_mut().zip(read).zip(&data) {
            let mut counts = BTreeMap::new();
            for value in values {
                *counts.entry(value).or_insert(0) += 1;
            }
            *sum += entropy(&counts) / data;
        }
    }
    Ok(sums.map(|s| s / captions as f64))
}

/// G's pictures of caption `c` (row `c` of `text`, φ of the captions) under
/// [`PICTURES_PER_CAPTION`] fresh z from `rng`: what [`diversity`] reads of G.
pub fn under_fresh_z<'a>(
    model: &'a Model,
    text: &'a Tensor,
    rng: &'a mut Rng,
) -> impl FnMut(usize) -> Tensor + 'a {
    let nz = model.card.architecture.generator.nz as usize;
    move |c| {
        caption_under(
            model,
            text,
            c,
            &noise(rng, PICTURES_PER_CAPTION, nz, model.device),
        )
    }
}

/// G's pictures of caption `c` (row `c` of `text`) under each row of `z`.
pub fn caption_under(model: &Model, text: &Tensor, c: usize, z: &Tensor) -> Tensor {
    let t = text
        .get(c as i64)
        .unsqueeze(0)
        .expand([z.size()[0], -1], false);
    draw(model, z, &t)
}

/// What the probe reads as each image's style.
fn read_style(probe: &LoadedProbe, images: &Tensor) -> Result<Vec<Style>> {
    let [bg, pos] = probe.read_each(images, ["background", "position"])?;
    Ok(bg.into_iter().zip(pos).collect())
}

/// The first `n` samples' (background, position).
fn true_style(set: &TrainingSet, n: usize) -> Vec<Style> {
    set.attributes[..n]
        .iter()
        .map(|a| (a["background"].clone(), a["position"].clone()))
        .collect()
}

/// How often `read` keeps `source`'s style: (both, background, position).
fn style_kept(read: &[Style], source: &[Style]) -> (f64, f64, f64) {
    let (mut both, mut bg, mut pos) = (0, 0, 0);
    for (a, b) in read.iter().zip(source) {
        both += (a == b) as usize;
        bg += (a.0 == b.0) as usize;
        pos += (a.1 == b.1) as usize;
    }
    let frac = |k: usize| k as f64 / source.len().max(1) as f64;
    (frac(both), frac(bg), frac(pos))
}

/// What the joint embedding itself knows, before any GAN: for each of up to
/// `n` real renders and each content attribute, the full caption is written
/// once per value of that attribute (the rest kept true), and the image picks
/// the one with the highest F(v, t) = θ(v)ᵀ φ(t). A GAN can only follow what
/// φ(t) carries, so this bounds its content accuracy.
pub fn embedding_reads(model: &Model, set: &TrainingSet, n: usize) -> Result<Vec<Metric>> {
    embedding_reads_with(model, set, n, "embedding_reads", &|a, _| full_caption(a))
}

/// Writes the caption of (attributes, image index).
pub type CaptionOf = dyn Fn(&BTreeMap<String, String>, usize) -> Result<String>;

/// [`embedding_reads`] with captions written by `caption(attributes, image
/// index)`, the metrics named `{prefix}_{attribute}`.
pub fn embedding_reads_with(
    model: &Model,
    set: &TrainingSet,
    n: usize,
    prefix: &str,
    caption: &CaptionOf,
) -> Result<Vec<Metric>> {
    let n = n.min(set.len());
    let idx: Vec<usize> = (0..n).collect();
    let images = set.image_batch(&idx, false, &mut Rng(0));
    let v = in_batches(&images, model.device, |x| {
        model.image_encoder.net.forward_t(x, false)
    });
    let mut metrics = Vec::new();
    for (attribute, label) in CONTENT {
        let values: std::collections::BTreeSet<&String> = set
            .attributes
            .iter()
            .filter_map(|a| a.get(attribute))
            .collect();
        let values: Vec<&String> = values.into_iter().collect();
        if values.len() < 2 {
            continue;
        }
        let mut captions = Vec::with_capacity(n * values.len());
        for i in 0..n {
            for value in &values {
                let mut a = set.attributes[i].clone();
                a.insert(attribute.to_string(), (*value).clone());
                captions.push(caption(&a, i)?);
            }
        }
        let k = values.len() as i64;
        let t = embed(model, &captions)?
            .to_device(Device::Cpu)
            .view([n as i64, k, -1]);
        // [n, k]: each image against its k variants.
        let scores = t.matmul(&v.unsqueeze(2)).squeeze_dim(2);
        let picked = Vec::<i64>::try_from(scores.argmax(1, false))?;
        let hits = (0..n)
            .filter(|&i| values[picked[i] as usize] == &set.attributes[i][attribute])
            .count();
        metrics.push(metric(
            &format!("{prefix}_{label}"),
            hits as f64 / n as f64,
            format!(
                "{n} real images, {k} captions each (chance {:.0}%)",
                100.0 / k as f64
            ),
        ));
    }
    Ok(metrics)
}

/// Style transfer measured per style encoder on the first `count` renders:
/// style kept (background and position) and content followed, so that a
/// plugin encoder can be put next to the learned S on the same images.
pub fn style_encoders(
    runtime: &crate::runtime::Runtime,
    probe: &LoadedProbe,
    set: &TrainingSet,
    encoders: &[crate::runtime::StyleEncoderChoice],
    count: usize,
) -> Result<Vec<Metric>> {
    require_probed_attributes(set)?;
    let n = count.min(set.len());
    let real = imageio::images_from_tensor(&set.image_batch(
        &(0..n).collect::<Vec<_>>(),
        false,
        &mut Rng(0),
    ))?;
    let captions: Vec<String> = set
        .attributes
        .iter()
        .map(full_caption)
        .collect::<Result<_>>()?;
    let targets: Vec<usize> = (0..n)
        .map(|i| {
            (1..set.len())
                .map(|k| (i + k * 7919) % set.len())
                .find(|&j| set.attributes[j]["petal_colour"] != set.attributes[i]["petal_colour"])
                .unwrap_or((i + 1) % set.len())
        })
        .collect();
    let mut metrics = Vec::new();
    for encoder in encoders {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let g = runtime.style_transfer_with(&real[i], &captions[targets[i]], encoder)?;
            out.extend(g.images);
        }
        let images = imageio::tensor_from_images(&out)?;
        let (kept, bg_kept, _) = style_kept(&read_style(probe, &images)?, &true_style(set, n));
        let colour = probe.read(&images, "petal_colour")?;
        let followed = (0..n)
            .filter(|&i| colour[i] == set.attributes[targets[i]]["petal_colour"])
            .count();
        let name = encoder.name();
        metrics.push(metric(
            &format!("style_kept[{name}]"),
            kept,
            format!("{n} renders, background and position"),
        ));
        metrics.push(metric(
            &format!("style_kept_background[{name}]"),
            bg_kept,
            format!("{n} renders"),
        ));
        metrics.push(metric(
            &format!("style_content_followed[{name}]"),
            followed as f64 / n as f64,
            format!("{n} renders"),
        ));
    }
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_caption_states_every_attribute() {
        let a: BTreeMap<String, String> = [
            ("petal_count", "5"),
            ("petal_shape", "round"),
            ("petal_colour", "red"),
            ("centre_colour", "black"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            full_caption(&a).unwrap(),
            "this flower has five round red petals and a black center"
        );
    }
}
