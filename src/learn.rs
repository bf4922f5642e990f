//! The learning-curve benchmark (evaluation.md, "Learning curve"): GAN-INT-CLS
//! trained from scratch on procedural flowers for a fixed number of steps,
//! and at fixed steps a line of what G has learned: the probe's reading of
//! petal colour, shape, count and centre on pictures drawn for full captions
//! (training classes / held-out classes), D's mean scores over the steps since
//! the last line, and the grid measures (checkerboard, periods 4, 8, 16)
//! beside the real renders'.
//!
//! Every training change is judged by this curve, from scratch. The same
//! inputs can be exported for `bench/pytorch_learn.py`, whose pictures
//! [`score_images`] reads with the same probe, so a gap between gantry and
//! PyTorch at equal inputs shows as a defect rather than being blamed on
//! compute.

use crate::eval::procedural::{
    caption_under, phrased_captions, phrased_captions_in, CROSS_CHECK_PHRASINGS,
    PICTURES_PER_CAPTION,
};
use crate::eval::{draw, embed, full_caption, grids, GRID_PERIODS};
use crate::model::{Layers, ModelConfig, Upsampling};
use crate::probe::LoadedProbe;
use crate::train::gan::{
    DBatches, GanConfig, GanTrainer, StepDraws, TextScalingKind, Variant, WrongImages,
};
use crate::train::text_encoder::Matching;
use crate::train::{embed_captions, noise, Trainer};
use crate::training_set::{Crop, Rng, TrainingSet};
use crate::weights::Model;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

pub use crate::eval::CONTENT;

/// What G is conditioned on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextInput {
    /// φ(t) of the text encoder as it comes (the paper).
    Raw,
    /// φ(t) standardised per dimension over the training captions.
    Standardised,
    /// The four content attributes as one-hot vectors, no text encoder: the
    /// reference for what clean conditioning can learn in the same steps.
    OneHot,
}

impl TextInput {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "raw" => Self::Raw,
            "standardised" | "standardized" => Self::Standardised,
            "one-hot" => Self::OneHot,
            _ => bail!("unknown conditioning '{s}' (raw, standardised, one-hot)"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Standardised => "standardised",
            Self::OneHot => "one-hot",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LearnConfig {
    /// G and D sizes (the text side comes from the text encoder).
    pub preset: String,
    pub text: TextInput,
    pub steps: u64,
    /// A line every this many steps (and at the last step).
    pub every: u64,
    pub batch: usize,
    pub lr: f64,
    pub variant: Variant,
    pub wrong: WrongImages,
    /// How D's batches hold the kinds of pairs ([`GanConfig::d_batches`]).
    #[serde(default)]
    pub d_batches: DBatches,
    pub fresh_noise_for_g: bool,
    pub seed: u64,
    /// Weight of the text-matching term in G's loss (0: the paper; see
    /// [`GanConfig::match_loss`]).
    #[serde(default)]
    pub match_loss: f64,
    /// The matching term's negatives ([`GanConfig::match_negatives`]).
    #[serde(default)]
    pub match_negatives: Matching,
    /// Weight of G's mode-seeking term ([`GanConfig::mode_seeking`]).
    #[serde(default)]
    pub mode_seeking: f64,
    /// How G doubles its maps (the paper's transposed convolutions, or
    /// resize-convolutions at the last doubling or at every one).
    #[serde(default)]
    pub upsampling: Upsampling,
    /// D reads the batch's spread (see [`crate::model::discriminator`]).
    #[serde(default)]
    pub minibatch_std: bool,
    /// How D normalises its joint layer ([`crate::model::JointNorm`]).
    #[serde(default)]
    pub d_joint_norm: crate::model::JointNorm,
    /// Caption embeddings averaged per image as its text
    /// ([`GanConfig::captions_averaged`]).
    #[serde(default = "paper_captions_averaged")]
    pub captions_averaged: usize,
    /// Noise on G's text ([`GanConfig::text_noise`]).
    #[serde(default)]
    pub text_noise: f64,
    /// Its directions ([`GanConfig::text_noise_along`]).
    #[serde(default)]
    pub text_noise_along: crate::train::gan::NoiseAlong,
    /// Decay of G's moving average ([`GanConfig::g_ema`]): every line then
    /// also reads the average's pictures ([`Point::average`]).
    #[serde(default)]
    pub g_ema: f64,
    /// Share of G's texts read reworded ([`GanConfig::reworded`]).
    #[serde(default)]
    pub reworded: f64,
    /// Weight of G's phrasing-consistency term
    /// ([`GanConfig::phrasing_consistency`]).
    #[serde(default)]
    pub phrasing_consistency: f64,
}

fn paper_captions_averaged() -> usize {
    crate::train::gan::PAPER_CAPTIONS_AVERAGED as usize
}

impl LearnConfig {
    /// Refuses what cannot run, before any data is made: a bad matching
    /// weight, or the matching term without a text encoder.
    pub fn validate(&self) -> Result<()> {
        crate::train::gan::check_match_loss(self.match_loss)?;
        crate::train::gan::check_mode_seeking(self.mode_seeking, self.fresh_noise_for_g)?;
        crate::train::gan::check_text_noise(self.text_noise)?;
        crate::train::gan::check_reworded(self.reworded)?;
        crate::train::gan::check_phrasing_consistency(self.phrasing_consistency)?;
        if let Some(option) = self.rewording_option() {
            if self.text == TextInput::OneHot {
                bail!("{option} reads captions through a text encoder: it does not go with one-hot conditioning");
            }
        }
        if self.match_loss > 0.0 && self.text == TextInput::OneHot {
            bail!("--match-loss needs a text encoder's joint embedding: it does not go with one-hot conditioning");
        }
        Ok(())
    }

    /// The curve's name in tables: the `program` that trained it and what
    /// sets it apart from the default curve.
    pub fn label(&self, program: &str) -> String {
        let mut label = format!("{program} {} {}", self.preset, self.text.name());
        if !self.fresh_noise_for_g {
            label += " reuse-fakes";
        }
        if self.wrong != WrongImages::Class {
            label += &format!(" wrong {}", self.wrong.name());
        }
        if self.d_batches != DBatches::Separate {
            label += &format!(" d-batches {}", self.d_batches.name());
        }
        if self.match_loss > 0.0 {
            label += &format!(" match {}", self.match_loss);
            if self.match_negatives != Matching::Class {
                label += &format!(" against {}", self.match_negatives.name());
            }
        }
        if self.mode_seeking > 0.0 {
            label += &format!(" mode-seeking {}", self.mode_seeking);
        }
        if self.captions_averaged != paper_captions_averaged() && self.text != TextInput::OneHot {
            label += &format!(" averaging {}", self.captions_averaged);
        }
        if self.text_noise > 0.0 {
            label += &format!(" text-noise {}", self.text_noise);
            if self.text_noise_along != crate::train::gan::NoiseAlong::Dimensions {
                label += &format!(" along {}", self.text_noise_along.name());
            }
        }
        if self.reworded > 0.0 {
            label += &format!(" reworded {}", self.reworded);
        }
        if self.phrasing_consistency > 0.0 {
            label += &format!(" phrasing-consistency {}", self.phrasing_consistency);
        }
        for word in self.layers().words() {
            label += &format!(" {word}");
        }
        if self.g_ema > 0.0 {
            label += &format!(" g-ema {}", self.g_ema);
        }
        if self.seed != 0 {
            label += &format!(" seed {}", self.seed);
        }
        label
    }

    /// G's and D's layers.
    pub fn layers(&self) -> Layers {
        Layers {
            upsampling: self.upsampling,
            minibatch_std: self.minibatch_std,
            d_joint_norm: self.d_joint_norm,
        }
    }

    /// Refuses an export PyTorch could not follow: its matching term reads
    /// the exported embeddings, which are rescaled when standardised, while
    /// gantry's reads φ(t) as the joint embedding has it.
    pub fn validate_export(&self) -> Result<()> {
        if self.match_loss > 0.0 && self.text == TextInput::Standardised {
            bail!("--match-loss with --export needs raw conditioning: the exported embeddings are standardised, and the matching term reads φ(t) unscaled");
        }
        if let Some(option) = self.rewording_option() {
            bail!("{option} with --export: bench/pytorch_learn.py has no reworded captions to read (run the curve without --export)");
        }
        Ok(())
    }

    /// The option that has the run read its captions reworded
    /// ([`GanConfig::reads_rewordings`]), if one does.
    pub fn rewording_option(&self) -> Option<&'static str> {
        if self.reworded > 0.0 {
            Some("--reworded")
        } else if self.phrasing_consistency > 0.0 {
            Some("--phrasing-consistency")
        } else {
            None
        }
    }

    fn gan(&self, dataset: &str) -> GanConfig {
        GanConfig {
            batch: self.batch,
            steps: Some(self.steps),
            lr: self.lr,
            seed: self.seed,
            wrong: self.wrong,
            d_batches: self.d_batches,
            text_scaling: match self.text {
                TextInput::Standardised => TextScalingKind::Standardised,
                TextInput::Raw | TextInput::OneHot => TextScalingKind::Raw,
            },
            fresh_noise_for_g: self.fresh_noise_for_g,
            match_loss: self.match_loss,
            match_negatives: self.match_negatives,
            mode_seeking: self.mode_seeking,
            captions_averaged: self.captions_averaged,
            text_noise: self.text_noise,
            text_noise_along: self.text_noise_along,
            g_ema: self.g_ema,
            reworded: self.reworded,
            phrasing_consistency: self.phrasing_consistency,
            ..GanConfig::paper(self.variant, dataset)
        }
    }
}

/// One line of the curve.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Point {
    pub step: u64,
    /// (short name, training classes, held-out classes), fractions.
    pub content: Vec<(String, f64, f64)>,
    /// The same read off pictures of the same renders under the same z, their
    /// captions in sentence forms no training grammar has
    /// ([`crate::eval::procedural::HELD_OUT_PHRASINGS`]): how much of the
    /// content survives the way people phrase things. Empty for one-hot
    /// conditioning and another program's curve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phrased: Vec<(String, f64, f64)>,
    /// The same in the cross-check's sentence forms
    /// ([`crate::eval::procedural::CROSS_CHECK_PHRASINGS`]), which no training
    /// option was shaped by: a guard against tuning to the six above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crosscheck: Vec<(String, f64, f64)>,
    /// The content read off G's moving average's pictures of the same
    /// captions under the same z (with `--g-ema`), and of the phrased ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub average: Vec<(String, f64, f64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub average_phrased: Vec<(String, f64, f64)>,
    pub d_real: f64,
    pub d_wrong: Option<f64>,
    pub d_fake: f64,
    /// G's text-matching loss (with `--match-loss`), its mean over the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub g_match: Option<f64>,
    pub checkerboard: f64,
    pub checkerboard_real: f64,
    /// The coarser grids (periods 4, 8 and 16: [`COARSER_GRIDS`]) of G's
    /// pictures and of the real renders.
    #[serde(default)]
    pub grids: Vec<f64>,
    #[serde(default)]
    pub grids_real: Vec<f64>,
    /// How varied G's pictures of one caption are under 64 z, per style
    /// attribute ([`DIVERSE`]): the entropy of what the probe reads over them
    /// as a fraction of the data's (1.0 = as varied, 0 = collapsed). Empty
    /// where only one picture per caption was drawn (another program's
    /// curve).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diversity: Vec<(String, f64)>,
    /// What D checks against the text, per content attribute: how far its
    /// score of real renders falls when their caption states another value
    /// of that attribute ([`crate::eval::d_rejects`]; near 0, D's verdict does
    /// not ask G for it). Empty for another program's curve and one-hot
    /// conditioning.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub d_rejects: Vec<(String, f64)>,
    /// Seconds of training so far (measurement excluded).
    pub seconds: f64,
}

/// D's scores over a line's window: real, wrong (a matching-aware D), fake,
/// and G's matching loss (with `--match-loss`).
type Scores = (f64, Option<f64>, f64, Option<f64>);

impl Point {
    /// A line's point from D's `scores`, the probe's `content` reading, the
    /// `grids` of G's pictures beside the `real` renders' and their
    /// `diversity` (where measured).
    fn new(
        step: u64,
        content: Vec<(String, f64, f64)>,
        (d_real, d_wrong, d_fake, g_match): Scores,
        (grids, real): (Grids, &Grids),
        diversity: Vec<(String, f64)>,
        seconds: f64,
    ) -> Self {
        Self {
            step,
            content,
            phrased: Vec::new(),
            crosscheck: Vec::new(),
            average: Vec::new(),
            average_phrased: Vec::new(),
            d_real,
            d_wrong,
            d_fake,
            g_match,
            checkerboard: grids.checkerboard,
            checkerboard_real: real.checkerboard,
            grids: grids.coarser,
            grids_real: real.coarser.clone(),
            diversity,
            d_rejects: Vec::new(),
            seconds,
        }
    }

    pub fn line(&self) -> String {
        let mut s = format!("learn step={}", self.step);
        for (name, train, held) in &self.content {
            s += &format!(" {name}={:.1}/{:.1}", train * 100.0, held * 100.0);
        }
        for (name, train, held) in &self.phrased {
            s += &format!(" phrased_{name}={:.1}/{:.1}", train * 100.0, held * 100.0);
        }
        for (name, train, held) in &self.crosscheck {
            s += &format!(
                " crosscheck_{name}={:.1}/{:.1}",
                train * 100.0,
                held * 100.0
            );
        }
        for (name, train, held) in &self.average {
            s += &format!(" average_{name}={:.1}/{:.1}", train * 100.0, held * 100.0);
        }
        for (name, train, held) in &self.average_phrased {
            s += &format!(
                " average_phrased_{name}={:.1}/{:.1}",
                train * 100.0,
                held * 100.0
            );
        }
        s += &format!(" d_real={:.3}", self.d_real);
        if let Some(w) = self.d_wrong {
            s += &format!(" d_wrong={w:.3}");
        }
        s += &format!(" d_fake={:.3}", self.d_fake);
        if let Some(m) = self.g_match {
            s += &format!(" match={m:.3}");
        }
        s += &format!(
            " checker={:.2} checker_real={:.2}",
            self.checkerboard, self.checkerboard_real
        );
        for ((period, drawn), real) in COARSER_GRIDS.iter().zip(&self.grids).zip(&self.grids_real) {
            s += &format!(" grid{period}={drawn:.2} grid{period}_real={real:.2}");
        }
        for (attribute, fraction) in &self.diversity {
            s += &format!(" diverse_{attribute}={fraction:.2}");
        }
        for (attribute, drop) in &self.d_rejects {
            s += &format!(" d_rejects_{attribute}={drop:.2}");
        }
        s += &format!(" s={:.0}", self.seconds);
        s
    }
}

/// The data and instruments a curve needs.
pub struct Inputs<'a> {
    /// Procedural renders to train on.
    pub train: &'a TrainingSet,
    /// Other renders: their full captions are what G draws at each line.
    pub eval: &'a TrainingSet,
    pub probe: &'a LoadedProbe,
    /// The model whose text encoder gives φ(t) (not used for one-hot).
    pub text_model: Option<&'a Model>,
}

/// Content attributes as one 0/1 vector per sample, in the probe's label
/// order: [N, sum of label counts].
pub fn one_hot_attributes(set: &TrainingSet, probe: &LoadedProbe) -> Result<Tensor> {
    let mut rows = Vec::with_capacity(set.len());
    let mut width = 0;
    for attributes in &set.attributes {
        let mut row = Vec::new();
        for (attribute, _) in CONTENT {
            let head = probe
                .card
                .heads
                .iter()
                .find(|h| h.attribute == attribute)
                .with_context(|| format!("the probe has no '{attribute}' head"))?;
            let value = attributes.get(attribute).with_context(|| {
                format!("a sample has no '{attribute}' (not procedural-flowers?)")
            })?;
            let mut slot = vec![0f32; head.labels.len()];
            let at = head
                .labels
                .iter()
                .position(|l| l == value)
                .with_context(|| format!("'{value}' is not a {attribute} the probe knows"))?;
            slot[at] = 1.0;
            row.extend(slot);
        }
        width = row.len();
        rows.extend(row);
    }
    Ok(Tensor::from_slice(&rows).view([set.len() as i64, width as i64]))
}

/// A run made ready: fresh G and D, the training captions' embeddings
/// [N, K, E], the evaluation captions' [M, E] and a fixed z per evaluation
/// caption, all as G and D will read them.
pub struct Prepared<'a> {
    pub trainer: GanTrainer<'a>,
    pub eval_text: Tensor,
    /// The evaluation captions in held-out sentence forms, [M, E] (none
    /// for one-hot conditioning).
    pub phrased_text: Option<Tensor>,
    /// The same in the cross-check's sentence forms.
    pub crosscheck_text: Option<Tensor>,
    pub eval_z: Tensor,
    /// The z of each line's diversity reading ([`diverse_z`]).
    pub diverse_z: Tensor,
}

pub fn prepare<'a>(
    config: &LearnConfig,
    inputs: &Inputs<'a>,
    device: Device,
) -> Result<Prepared<'a>> {
    if config.every == 0 || config.steps == 0 {
        bail!("--steps and --every must be at least 1");
    }
    let mut model_config = ModelConfig::preset(&config.preset)?.with_layers(config.layers());
    let (embeddings, eval_text, phrased_text, crosscheck_text) =
        match (config.text, inputs.text_model) {
            (TextInput::OneHot, _) => {
                let train = one_hot_attributes(inputs.train, inputs.probe)?;
                let eval = one_hot_attributes(inputs.eval, inputs.probe)?;
                (
                    train.unsqueeze(1).to_device(device),
                    eval.to_device(device),
                    None,
                    None,
                )
            }
            (_, None) => bail!("{} conditioning needs a text encoder", config.text.name()),
            (_, Some(text_model)) => {
                let train = embed_captions(
                    &text_model.text_encoder.net,
                    inputs.train,
                    10,
                    device,
                    &mut |_, _| {},
                )?;
                let captions: Vec<String> = inputs
                    .eval
                    .attributes
                    .iter()
                    .map(full_caption)
                    .collect::<Result<_>>()?;
                let eval = embed(text_model, &captions)?.to_device(device);
                let phrased = embed(text_model, &phrased_captions(inputs.eval)?)?.to_device(device);
                let checked = phrased_captions_in(&CROSS_CHECK_PHRASINGS, inputs.eval)?;
                let checked = embed(text_model, &checked)?.to_device(device);
                model_config.text_encoder = text_model.card.architecture.text_encoder.clone();
                model_config.image_encoder = text_model.card.architecture.image_encoder.clone();
                (train, eval, Some(phrased), Some(checked))
            }
        };
    let e = *embeddings.size().last().unwrap_or(&0);
    model_config.text_encoder.embedding_dim = e;
    model_config.image_encoder.embedding_dim = e;
    model_config.generator.embedding_dim = e;
    model_config.discriminator.embedding_dim = e;
    config.validate()?;
    let mut model = Model::new("learning-curve", &model_config, device, config.seed as i64)?;
    if let Some(text_model) = inputs.text_model {
        // The joint embedding as trained: θ judges G's pictures for the
        // matching loss.
        model.text_encoder.vs.copy(&text_model.text_encoder.vs)?;
        model.image_encoder.vs.copy(&text_model.image_encoder.vs)?;
    }
    let nz = model_config.generator.nz as usize;
    let eval_z = noise(
        &mut Rng(config.seed ^ 0xC0FF_EE00_D15E_A5E5),
        inputs.eval.len(),
        nz,
        device,
    );
    let gan = config.gan(&inputs.train.spec);
    let trainer = GanTrainer::new(model, gan, inputs.train, embeddings)?;
    let diverse_z = diverse_z(config.seed, nz, device);
    Ok(Prepared {
        trainer,
        eval_text,
        phrased_text,
        crosscheck_text,
        eval_z,
        diverse_z,
    })
}

/// The probe's content accuracies of pictures drawn for `eval`'s full
/// captions, one per caption in order: (short name, training classes,
/// held-out classes).
pub fn content_accuracy(
    images: &Tensor,
    eval: &TrainingSet,
    probe: &LoadedProbe,
) -> Result<Vec<(String, f64, f64)>> {
    Ok(crate::eval::content_accuracy(images, eval, probe)?
        .into_iter()
        .map(|r| {
            let value = |m: Option<(f64, usize)>| m.map_or(0.0, |(v, _)| v);
            (r.label.to_string(), value(r.train), value(r.held_out))
        })
        .collect())
}

/// The periods of the coarser grids a line reads beside the checkerboard.
pub const COARSER_GRIDS: [usize; 3] = [GRID_PERIODS[1], GRID_PERIODS[2], GRID_PERIODS[3]];

/// The style attributes whose variety under z a line reads: G collapsing to
/// one picture per caption shows as their entropy falling.
pub const DIVERSE: [&str; 2] = ["background", "position"];

/// How many of the evaluation captions (the first) a line's diversity reads.
pub const DIVERSE_CAPTIONS: usize = 16;

/// The z a line's diversity draws with, the same at every line so lines
/// compare: [`DIVERSE_CAPTIONS`] · [`PICTURES_PER_CAPTION`] rows, caption
/// c's pictures from rows c · 64 on.
pub fn diverse_z(seed: u64, nz: usize, device: Device) -> Tensor {
    let mut rng = Rng(seed ^ 0xD1FE_4511_7E00_0001);
    let per_caption: Vec<Tensor> = (0..DIVERSE_CAPTIONS)
        .map(|_| noise(&mut rng, PICTURES_PER_CAPTION, nz, device))
        .collect();
    Tensor::cat(&per_caption, 0)
}

/// [`DIVERSE`]'s fractions for the pictures `pictures_of(c)` of `eval`'s
/// first captions, each under its row block of [`diverse_z`].
pub fn diversity(
    eval: &TrainingSet,
    probe: &LoadedProbe,
    pictures_of: impl FnMut(usize) -> Tensor,
) -> Result<Vec<(String, f64)>> {
    let captions = DIVERSE_CAPTIONS.min(eval.len());
    let fractions = crate::eval::diversity(eval, probe, DIVERSE, captions, pictures_of)?;
    Ok(DIVERSE
        .iter()
        .zip(fractions)
        .map(|(a, f)| (a.to_string(), f))
        .collect())
}

/// G's pictures of evaluation caption `c` (row `c` of `text`) under its
/// block of `z` ([`diverse_z`]).
fn g_pictures<'a>(
    model: &'a Model,
    text: &'a Tensor,
    z: &'a Tensor,
) -> impl FnMut(usize) -> Tensor + 'a {
    let per = PICTURES_PER_CAPTION as i64;
    move |c| caption_under(model, text, c, &z.narrow(0, c as i64 * per, per))
}

/// The grid measures of one line's pictures: the checkerboard (period 2)
/// and the coarser grids ([`COARSER_GRIDS`]).
#[derive(Clone, Debug)]
pub struct Grids {
    pub checkerboard: f64,
    pub coarser: Vec<f64>,
}

impl Grids {
    pub fn of(images: &Tensor) -> Result<Self> {
        let mut all = grids(images, &GRID_PERIODS)?;
        let checkerboard = all.remove(0);
        Ok(Self {
            checkerboard,
            coarser: all,
        })
    }
}

/// The real renders' grid measures, the baseline beside G's.
pub fn real_grids(eval: &TrainingSet) -> Result<Grids> {
    let all: Vec<usize> = (0..eval.len()).collect();
    Grids::of(&eval.image_batch(&all, false, &mut Rng(0)))
}

/// Mean D scores (and G's matching loss, where there is one) over a window
/// of steps, summed where they were computed.
#[derive(Default)]
struct Window {
    sums: Option<Tensor>,
    steps: u64,
    has_wrong: bool,
    has_matching: bool,
}

impl Window {
    fn add(&mut self, losses: &crate::train::StepLosses) {
        let get = |n: &str| losses.tensor(n).map(|t| t.shallow_clone());
        let (Some(real), Some(fake)) = (get("d_real"), get("d_fake")) else {
            return;
        };
        self.has_wrong = losses.tensor("d_wrong").is_some();
        self.has_matching = losses.tensor("g_match").is_some();
        let wrong = get("d_wrong").unwrap_or_else(|| real.zeros_like());
        let matching = get("g_match").unwrap_or_else(|| real.zeros_like());
        let row = Tensor::cat(&[real, wrong, fake, matching], 0);
        self.sums = Some(match self.sums.take() {
            Some(s) => s + row,
            None => row,
        });
        self.steps += 1;
    }

    /// (real, wrong, fake, matching) means, and a fresh window.
    fn take(&mut self) -> Result<Scores> {
        let sums = match self.sums.take() {
            Some(s) => Vec::<f64>::try_from(s.to_kind(Kind::Double).to_device(Device::Cpu))?,
            None => vec![f64::NAN; 4],
        };
        let n = self.steps.max(1) as f64;
        self.steps = 0;
        Ok((
            sums[0] / n,
            self.has_wrong.then(|| sums[1] / n),
            sums[2] / n,
            self.has_matching.then(|| sums[3] / n),
        ))
    }
}

/// Trains `prepared` to its last step, calling `on_point` at every line
/// with the line, the pictures it read (the evaluation captions with
/// their fixed z, [N, 3, 64, 64] in [-1, 1] as saved) and the first
/// caption's pictures under the diversity reading's 64 z.
/// With a [`Tape`], every step's draws and losses are written to it.
pub fn run(
    config: &LearnConfig,
    inputs: &Inputs,
    prepared: &mut Prepared,
    mut tape: Option<&mut Tape>,
    on_point: &mut dyn FnMut(&Point, &Tensor, &Tensor) -> Result<()>,
) -> Result<Vec<Point>> {
    crate::host::allocator::keep_freed_memory();
    let real = real_grids(inputs.eval)?;
    let mut window = Window::default();
    let mut points = Vec::new();
    let mut trained = 0.0;
    while prepared.trainer.step_index() < config.steps {
        let started = Instant::now();
        let draws = prepared.trainer.draw_step();
        if let Some(tape) = tape.as_deref_mut() {
            tape.record(&draws)?;
        }
        let losses = prepared.trainer.step_with(&draws)?;
        if let Some(tape) = tape.as_deref_mut() {
            tape.losses(prepared.trainer.step_index(), &losses)?;
        }
        window.add(&losses);
        let step = prepared.trainer.step_index();
        let at_line = step.is_multiple_of(config.every) || step == config.steps;
        // Reading D's scores back waits for the device, so it counts as training.
        let scores = at_line.then(|| window.take()).transpose()?;
        trained += started.elapsed().as_secs_f64();
        if let Some(scores) = scores {
            let (d_real, _, d_fake, _) = scores;
            if !(d_real.is_finite() && d_fake.is_finite()) {
                bail!("D's scores became non-finite by step {step}: training diverged");
            }
            let images = as_saved(&draw(
                &prepared.trainer.model,
                &prepared.eval_z,
                &prepared.eval_text,
            ));
            let mut g_pictures = g_pictures(
                &prepared.trainer.model,
                &prepared.eval_text,
                &prepared.diverse_z,
            );
            let mut first = Tensor::new();
            let mut point = Point::new(
                step,
                content_accuracy(&images, inputs.eval, inputs.probe)?,
                scores,
                (Grids::of(&images)?, &real),
                diversity(inputs.eval, inputs.probe, |c| {
                    let pictures = g_pictures(c);
                    if c == 0 {
                        first = as_saved(&pictures);
                    }
                    pictures
                })?,
                trained,
            );
            if let Some(phrased) = &prepared.phrased_text {
                let pictures = as_saved(&draw(&prepared.trainer.model, &prepared.eval_z, phrased));
                point.phrased = content_accuracy(&pictures, inputs.eval, inputs.probe)?;
            }
            if let Some(checked) = &prepared.crosscheck_text {
                let pictures = as_saved(&draw(&prepared.trainer.model, &prepared.eval_z, checked));
                point.crosscheck = content_accuracy(&pictures, inputs.eval, inputs.probe)?;
            }
            prepared.trainer.settle_average();
            if let Some(average) = &prepared.trainer.average {
                let model = &prepared.trainer.model;
                let (pictures, phrased) = average.drawing_with(|| {
                    let pictures = as_saved(&draw(model, &prepared.eval_z, &prepared.eval_text));
                    let phrased = prepared
                        .phrased_text
                        .as_ref()
                        .map(|t| as_saved(&draw(model, &prepared.eval_z, t)));
                    (pictures, phrased)
                });
                point.average = content_accuracy(&pictures, inputs.eval, inputs.probe)?;
                if let Some(phrased) = phrased {
                    point.average_phrased = content_accuracy(&phrased, inputs.eval, inputs.probe)?;
                }
            }
            if config.text != TextInput::OneHot {
                point.d_rejects = crate::eval::d_rejects(
                    &prepared.trainer.model,
                    inputs.eval,
                    &inputs.eval.split(false),
                    config.seed,
                )?
                .iter()
                .map(|r| (r.label.to_string(), r.drop()))
                .collect();
            }
            on_point(&point, &images, &first)?;
            points.push(point);
        }
    }
    Ok(points)
}

/// What `bench/pytorch_learn.py` reads besides the arrays.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportMeta {
    pub learn: LearnConfig,
    pub train_images: usize,
    pub captions_per_image: usize,
    pub embedding_dim: i64,
    pub eval_images: usize,
    pub nz: i64,
    pub nt: i64,
    pub ngf: i64,
    pub ndf: i64,
    pub steps_per_epoch: u64,
    pub lr_halve_every_epochs: u64,
    pub captions_averaged: usize,
    pub interpolation_beta: f64,
    /// The evaluation renders, to make them again when scoring.
    pub eval_dataset: String,
    pub eval_seed: u64,
    /// With the matching term: the base width of the image encoder θ, whose
    /// weights are `image_encoder.safetensors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_encoder_width: Option<i64>,
    /// The diversity reading: G draws the first `diverse_captions`
    /// evaluation captions under `pictures_per_caption` z each
    /// (`diverse_z.f32`) into `div-STEP.u8`. Absent in older exports.
    #[serde(default)]
    pub diverse_captions: usize,
    #[serde(default)]
    pub pictures_per_caption: usize,
}

fn write_f32(path: &Path, t: &Tensor) -> Result<()> {
    let v = Vec::<f32>::try_from(
        t.to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
            .reshape([-1]),
    )?;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    crate::weights::write_atomic(path, &bytes)
}

fn write_u8(path: &Path, t: &Tensor) -> Result<()> {
    let v = Vec::<u8>::try_from(t.to_device(Device::Cpu).contiguous().reshape([-1]))?;
    crate::weights::write_atomic(path, &v)
}

/// Each image's content attributes as numbers ([N, 4] u32, each the value's
/// rank among its attribute's values), for PyTorch to draw siblings from.
fn write_content(path: &Path, set: &TrainingSet) -> Result<()> {
    let mut bytes = Vec::with_capacity(set.len() * 16);
    // Every image has every content attribute once these are gathered.
    let ranks = crate::eval::CONTENT
        .iter()
        .map(|(a, _)| set.attribute_values(a))
        .collect::<Result<Vec<_>>>()?;
    for attributes in &set.attributes {
        for ((a, _), values) in crate::eval::CONTENT.iter().zip(&ranks) {
            let rank = values
                .binary_search(&&attributes[*a])
                .expect("every value ranked");
            bytes.extend_from_slice(&(rank as u32).to_le_bytes());
        }
    }
    crate::weights::write_atomic(path, &bytes)
}

/// Writes a prepared run's inputs for `bench/pytorch_learn.py`: the training
/// renders (u8, [N, 3, 64, 64]), their classes and training split, the
/// caption embeddings as G and D read them (conditioning applied: PyTorch
/// feeds them in raw), the evaluation captions' embeddings and z, and
/// `meta.json`.
pub fn export(
    dir: &Path,
    config: &LearnConfig,
    inputs: &Inputs,
    prepared: &Prepared,
    eval_seed: u64,
) -> Result<()> {
    config.validate_export()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let trainer = &prepared.trainer;
    let model = &trainer.model;
    let scaling = crate::model::TextScaling::new(
        &model.card.architecture.conditioning,
        trainer.embeddings().device(),
    );
    let arch = &model.card.architecture;
    let train = inputs.train;
    if train.images.size()[2] != 64 {
        bail!("the learning curve exports 64x64 renders only");
    }
    write_u8(&dir.join("images.u8"), &train.images)?;
    let classes: Vec<u8> = train.classes.iter().flat_map(|c| c.to_le_bytes()).collect();
    crate::weights::write_atomic(&dir.join("classes.u32"), &classes)?;
    let split: Vec<u8> = train
        .split(false)
        .iter()
        .flat_map(|&i| (i as u32).to_le_bytes())
        .collect();
    crate::weights::write_atomic(&dir.join("train_index.u32"), &split)?;
    if config.wrong == WrongImages::Sibling {
        write_content(&dir.join("content.u32"), train)?;
    }
    if config.text_noise > 0.0
        && config.text_noise_along == crate::train::gan::NoiseAlong::Statements
    {
        // [N, K]: captions of a picture with the same number state the same.
        let groups = crate::train::gan::caption_groups(train)?;
        let groups = Vec::<i64>::try_from(groups.reshape([-1]))?;
        let bytes: Vec<u8> = groups
            .iter()
            .flat_map(|&g| (g as u32).to_le_bytes())
            .collect();
        crate::weights::write_atomic(&dir.join("caption_groups.u32"), &bytes)?;
    }
    write_f32(
        &dir.join("embeddings.f32"),
        &scaling.apply(trainer.embeddings()),
    )?;
    write_f32(
        &dir.join("eval_text.f32"),
        &scaling.apply(&prepared.eval_text),
    )?;
    write_f32(&dir.join("eval_z.f32"), &prepared.eval_z)?;
    write_f32(&dir.join("diverse_z.f32"), &prepared.diverse_z)?;
    let gan = &trainer.config;
    let meta = ExportMeta {
        learn: config.clone(),
        train_images: train.len(),
        captions_per_image: trainer.embeddings().size()[1] as usize,
        embedding_dim: arch.generator.embedding_dim,
        eval_images: inputs.eval.len(),
        nz: arch.generator.nz,
        nt: arch.generator.nt,
        ngf: arch.generator.ngf,
        ndf: arch.discriminator.ndf,
        steps_per_epoch: (train.split(false).len() / gan.batch).max(1) as u64,
        lr_halve_every_epochs: gan.lr_halve_every_epochs,
        captions_averaged: gan.captions_averaged,
        interpolation_beta: gan.interpolation_beta,
        eval_dataset: inputs.eval.spec.clone(),
        eval_seed,
        image_encoder_width: (config.match_loss > 0.0).then_some(arch.image_encoder.width),
        diverse_captions: DIVERSE_CAPTIONS.min(inputs.eval.len()),
        pictures_per_caption: PICTURES_PER_CAPTION,
    };
    if config.match_loss > 0.0 {
        crate::weights::save_var_store(
            &model.image_encoder.vs,
            &dir.join("image_encoder.safetensors"),
            false,
        )?;
    }
    crate::weights::write_atomic(
        &dir.join("meta.json"),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )
}

/// What `bench/pytorch_learn.py` writes at each line: D's means over the
/// window and the seconds trained; the pictures are `gen-STEP.u8`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForeignPoint {
    pub step: u64,
    pub d_real: f64,
    #[serde(default)]
    pub d_wrong: Option<f64>,
    pub d_fake: f64,
    pub seconds: f64,
}

/// Pictures as a saved file holds them (8 bits a channel), back in [-1, 1]:
/// gantry's lines and PyTorch's (which come through `gen-STEP.u8`) are
/// measured on the same pixels.
pub fn as_saved(images: &Tensor) -> Tensor {
    from_u8(
        &((images.clamp(-1.0, 1.0) + 1.0) * 127.5)
            .round()
            .to_kind(Kind::Uint8),
    )
}

fn from_u8(pixels: &Tensor) -> Tensor {
    pixels.to_kind(Kind::Float) / 127.5 - 1.0
}

/// `count` pictures of 3x64x64 as u8 RGB, back in [-1, 1].
fn read_pictures(path: &Path, count: usize) -> Result<Tensor> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let expected = count * 3 * 64 * 64;
    if bytes.len() != expected {
        bail!(
            "{}: {} bytes, expected {expected} ({count} pictures of 3x64x64)",
            path.display(),
            bytes.len(),
        );
    }
    Ok(from_u8(&Tensor::from_slice(&bytes).view([
        count as i64,
        3,
        64,
        64,
    ])))
}

/// Reads the pictures another program drew at one line (u8 RGB,
/// [M, 3, 64, 64] in `gen-STEP.u8`; with `diverse_captions`, also each of
/// those captions under [`PICTURES_PER_CAPTION`] z in `div-STEP.u8`) and
/// scores them as [`run`] scores gantry's.
pub fn score_images(
    dir: &Path,
    foreign: &ForeignPoint,
    eval: &TrainingSet,
    probe: &LoadedProbe,
    real: &Grids,
    diverse_captions: usize,
) -> Result<Point> {
    let images = read_pictures(&dir.join(format!("gen-{:06}.u8", foreign.step)), eval.len())?;
    let diverse = dir.join(format!("div-{:06}.u8", foreign.step));
    let diversity = if diverse_captions > 0 && diverse.exists() {
        if diverse_captions != DIVERSE_CAPTIONS.min(eval.len()) {
            bail!(
                "{}: {diverse_captions} captions drawn for diversity, this gantry reads {}",
                dir.display(),
                DIVERSE_CAPTIONS.min(eval.len())
            );
        }
        let pictures = read_pictures(&diverse, diverse_captions * PICTURES_PER_CAPTION)?;
        let per = PICTURES_PER_CAPTION as i64;
        self::diversity(eval, probe, |c| pictures.narrow(0, c as i64 * per, per))?
    } else {
        Vec::new()
    };
    Ok(Point::new(
        foreign.step,
        content_accuracy(&images, eval, probe)?,
        (foreign.d_real, foreign.d_wrong, foreign.d_fake, None),
        (Grids::of(&images)?, real),
        diversity,
        foreign.seconds,
    ))
}

/// Lockstep: the fresh G and D (`init_generator.safetensors`,
/// `init_discriminator.safetensors`) and, for every step, what it drew
/// (`tape.bin`) and what it scored (`steps.gantry.jsonl`), so that
/// `bench/pytorch_learn.py` takes the same steps from the same start and the
/// two runs can be compared step by step, not only curve by curve.
///
/// `tape.bin` holds, per step and little-endian: the batch's image indices
/// (u32 × B), their flips (u8 × B), the averaged captions' indices (u8 × B·k),
/// G's z (f32 × (B + interpolations)·nz), with fresh noise D's fakes' z
/// (f32 × B·nz), for a matching-aware D the wrong images' indices
/// (u32 × B) and flips (u8 × B), and with text noise its unit draws
/// (f32 × (B + interpolations)·E).
pub struct Tape {
    draws: std::io::BufWriter<std::fs::File>,
    steps: std::io::BufWriter<std::fs::File>,
}

impl Tape {
    pub fn create(dir: &Path, prepared: &Prepared) -> Result<Self> {
        let trainer = &prepared.trainer;
        if trainer.config.instance_noise > 0.0 {
            bail!("lockstep does not record instance noise");
        }
        let model = &trainer.model;
        crate::weights::save_var_store(
            &model.generator.vs,
            &dir.join("init_generator.safetensors"),
            false,
        )?;
        crate::weights::save_var_store(
            &model.discriminator.vs,
            &dir.join("init_discriminator.safetensors"),
            false,
        )?;
        let create = |name: &str| {
            let path = dir.join(name);
            std::fs::File::create(&path)
                .map(std::io::BufWriter::new)
                .with_context(|| format!("creating {}", path.display()))
        };
        Ok(Self {
            draws: create("tape.bin")?,
            steps: create("steps.gantry.jsonl")?,
        })
    }

    fn record(&mut self, draws: &StepDraws) -> Result<()> {
        use std::io::Write;
        let mut bytes = Vec::new();
        let flips = |bytes: &mut Vec<u8>, crops: &[Crop]| -> Result<()> {
            for c in crops {
                if c.dx != 0 || c.dy != 0 {
                    bail!("lockstep records flips only: the renders must be 64x64");
                }
                bytes.push(c.flip as u8);
            }
            Ok(())
        };
        let indices = |bytes: &mut Vec<u8>, idx: &[usize]| {
            bytes.extend(idx.iter().flat_map(|&i| (i as u32).to_le_bytes()))
        };
        indices(&mut bytes, &draws.batch);
        flips(&mut bytes, &draws.crops)?;
        bytes.extend(draws.picks.iter().flatten().map(|&c| c as u8));
        let floats = |bytes: &mut Vec<u8>, t: &Tensor| -> Result<()> {
            let values = Vec::<f32>::try_from(t.to_device(Device::Cpu).reshape([-1]))?;
            bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            Ok(())
        };
        for z in std::iter::once(&draws.z).chain(&draws.z_for_d) {
            floats(&mut bytes, z)?;
        }
        if let Some((idx, crops)) = &draws.wrong {
            indices(&mut bytes, idx);
            flips(&mut bytes, crops)?;
        }
        if let Some(noise) = &draws.text_noise {
            floats(&mut bytes, noise)?;
        }
        self.draws.write_all(&bytes).context("writing tape.bin")
    }

    fn losses(&mut self, step: u64, losses: &crate::train::StepLosses) -> Result<()> {
        use std::io::Write;
        let mut values = losses.read()?;
        values.remove("lr");
        let mut line = serde_json::to_value(values)?;
        line["step"] = step.into();
        writeln!(self.steps, "{line}").context("writing steps.gantry.jsonl")
    }

    /// Flushes both files.
    pub fn finish(mut self) -> Result<()> {
        use std::io::Write;
        self.draws.flush().context("writing tape.bin")?;
        self.steps.flush().context("writing steps.gantry.jsonl")
    }
}

/// Step by step, how far two runs taken on the same tape drifted apart:
/// (step, largest relative difference of D's and G's losses at that step).
pub fn lockstep_drift(ours: &Path, theirs: &Path) -> Result<Vec<(u64, f64)>> {
    #[derive(Deserialize)]
    struct StepLine {
        step: u64,
        d_loss: f64,
        g_loss: f64,
    }
    let read = |path: &Path| -> Result<BTreeMap<u64, (f64, f64)>> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(parse_jsonl::<StepLine>(&text, path, "step")?
            .into_iter()
            .map(|l| (l.step, (l.d_loss, l.g_loss)))
            .collect())
    };
    let (a, b) = (read(ours)?, read(theirs)?);
    let relative = |x: f64, y: f64| (x - y).abs() / x.abs().max(y.abs()).max(1e-12);
    Ok(a.iter()
        .filter_map(|(step, &(d1, g1))| {
            let &(d2, g2) = b.get(step)?;
            Some((*step, relative(d1, d2).max(relative(g1, g2))))
        })
        .collect())
}

/// The records of a JSON-lines file's text (blank lines skipped); an error
/// names the file, the line and what a line should have been.
pub fn parse_jsonl<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
    what: &str,
) -> Result<Vec<T>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a {what}", path.display(), n + 1))
        })
        .collect()
}
