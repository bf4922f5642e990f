//! GAN-INT-CLS (paper.md §4) and the ablations that drop its parts.
//!
//! Per step, with a batch of B real images x, their text t (the mean of 4 of
//! their caption embeddings) and images of other classes x_wrong:
//! - D loss = BCE(D(x, t), 1) + ½ BCE(D(x_wrong, t), 0) + ½ BCE(D(G(z, t), t), 0)
//!   (GAN-CLS; without the wrong term: BCE(D(x, t), 1) + BCE(D(G(z, t), t), 0)).
//! - G loss = BCE(D(G(z, t'), t'), 1) over t' = the B real embeddings plus B/2
//!   interpolations β t_i + (1 − β) t_{i+B/2}, β = ½, each with fresh z
//!   (GAN-INT). D never sees the interpolations.
//!
//! Adam lr 2e-4, β1 0.5, lr halved every 100 epochs.
//!
//! Optionally (not in the paper) D's target for real pairs is below 1
//! (one-sided label smoothing, `real_label`; G's target stays 1), and every
//! image D sees gets Gaussian noise (`instance_noise`).
//!
//! The wrong images are of other classes, as in the paper; with
//! [`WrongImages::Image`] they are any other training image instead, for data
//! whose captions state more than the class (on procedural flowers the centre
//! colour and petal count: with wrong images of other classes alone, D never
//! has to check them against the text), and with [`WrongImages::Sibling`]
//! images that differ in one content attribute alone.

use super::checkpoint::Position;
use super::optim::Optimizer;
use super::siblings::Siblings;
use super::text_encoder::{off_diagonal, Matching};
use super::{bce, checkpoint, noise, Run, RunLength, StepLosses, Trainer};
use crate::model::conditioning::{Conditioning, TextScaling, CONDITIONING_NAMES};
use crate::training_set::{Crop, Rng, TrainingSet};
use crate::weights::{Model, Schedule};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    Gan,
    GanCls,
    GanInt,
    GanIntCls,
}

impl Variant {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "gan" => Self::Gan,
            "gan-cls" => Self::GanCls,
            "gan-int" => Self::GanInt,
            "gan-int-cls" => Self::GanIntCls,
            _ => bail!("unknown variant '{s}' (gan, gan-cls, gan-int, gan-int-cls)"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Gan => "gan",
            Self::GanCls => "gan-cls",
            Self::GanInt => "gan-int",
            Self::GanIntCls => "gan-int-cls",
        }
    }

    /// Matching-aware discriminator: the (wrong image, right text) term.
    pub fn cls(self) -> bool {
        matches!(self, Self::GanCls | Self::GanIntCls)
    }

    /// Manifold interpolation: the extra B/2 interpolated embeddings for G.
    pub fn int(self) -> bool {
        matches!(self, Self::GanInt | Self::GanIntCls)
    }
}

/// Where D's wrong images (the matching-aware term) come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WrongImages {
    /// Images of other classes (the paper).
    #[default]
    Class,
    /// Any other training image: D then checks everything captions state,
    /// where a class fixes only part of it.
    Image,
    /// For half the batch a sibling of each image: one whose content
    /// attributes all agree with it but one (data with attributes, e.g.
    /// procedural flowers); for the other half any other image. Other
    /// images differ in the petal colour seven times in eight, so a D that
    /// reads the colour alone rejects nearly all of them; a sibling differs
    /// in the colour, the shape, the count or the centre alone. (With
    /// siblings only, D learned to tell none of them from the right image
    /// in 400 steps and G's colour fell behind: the easy half keeps D
    /// reading the text from the start.)
    Sibling,
}

impl WrongImages {
    pub const NAMES: [&'static str; 3] = ["class", "image", "sibling"];

    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "class" => Self::Class,
            "image" => Self::Image,
            "sibling" => Self::Sibling,
            _ => bail!("unknown wrong images '{s}' (class, image, sibling)"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Class => "class",
            Self::Image => "image",
            Self::Sibling => "sibling",
        }
    }
}

/// Which directions [`GanConfig::text_noise`] moves G's text along.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseAlong {
    /// Each dimension on its own, by its spread over the training captions.
    #[default]
    Dimensions,
    /// The directions in which one picture's captions differ from each
    /// other, as far as they do: Gaussian noise with their covariance about
    /// the picture's mean, pooled over the training pictures. A phrasing the
    /// text encoder never saw moves φ(t) along such directions (issue 15's
    /// diagnosis), while what tells pictures apart is left as it is.
    Phrasings,
    /// As `Phrasings`, but only between captions of a picture that state the
    /// same attributes (the dataset says which: `caption_states`): a caption
    /// that leaves the count out differs from one that states it along the
    /// count, and noise along that teaches G to ignore the count.
    Statements,
}

impl NoiseAlong {
    pub const NAMES: [&'static str; 3] = ["dimensions", "phrasings", "statements"];

    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "dimensions" => Self::Dimensions,
            "phrasings" => Self::Phrasings,
            "statements" => Self::Statements,
            _ => bail!("unknown text-noise directions '{s}' (dimensions, phrasings, statements)"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Dimensions => "dimensions",
            Self::Phrasings => "phrasings",
            Self::Statements => "statements",
        }
    }
}

/// How D's batch norm sees the kinds of pairs it judges: (real, right),
/// (wrong, right) and (fake, right).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DBatches {
    /// Each kind in a batch of its own, as Reed's code does. D in training
    /// mode normalises each batch by its own statistics, so it can tell a
    /// batch of mismatched pairs from a batch of matching ones by what the
    /// whole batch looks like rather than by checking each pair: the shipped
    /// procedural D's score of real renders falls by 0.97 when every caption
    /// of the batch names another colour, by 0.09 when half of them do.
    #[default]
    Separate,
    /// The three kinds in one batch, for D's update and for G's update
    /// through D (G's pictures beside the same real and wrong pairs): every
    /// pair is normalised by the same statistics, so D can only score it
    /// by checking the pair itself.
    Joint,
    /// The real and the wrong pairs in one batch, G's pictures in one of
    /// their own (in D's update and in G's): D must check real pairs one
    /// by one, and still sees G's pictures together, as the batch that
    /// tells it when they are all alike.
    RealWrong,
}

impl DBatches {
    pub const NAMES: [&'static str; 3] = ["separate", "joint", "real-wrong"];

    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "separate" => Self::Separate,
            "joint" => Self::Joint,
            "real-wrong" => Self::RealWrong,
            _ => bail!("unknown D batches '{s}' (separate, joint, real-wrong)"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Separate => "separate",
            Self::Joint => "joint",
            Self::RealWrong => "real-wrong",
        }
    }
}

/// Everything that defines a GAN run (saved in its checkpoint; a resume
/// must match it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GanConfig {
    pub variant: Variant,
    pub dataset: String,
    pub batch: usize,
    pub epochs: u64,
    /// Total steps, overriding epochs (for short runs and tests).
    pub steps: Option<u64>,
    pub lr: f64,
    pub beta1: f64,
    pub lr_halve_every_epochs: u64,
    /// Caption embeddings averaged per image.
    pub captions_averaged: usize,
    /// β of the interpolation.
    pub interpolation_beta: f64,
    pub seed: u64,
    /// Where the wrong images of the CLS term come from: other classes (the
    /// paper), any other image, or siblings.
    #[serde(default)]
    pub wrong: WrongImages,
    /// D's target for (real image, right text): 1 in the paper; below 1 is
    /// one-sided label smoothing (Salimans et al. 2016), which keeps D from
    /// growing certain of real images and so keeps G's gradient informative.
    #[serde(default = "paper_real_label")]
    pub real_label: f64,
    /// Standard deviation of Gaussian noise added to every image D sees
    /// (instance noise, Sønderby et al. 2017); 0 in the paper. It hides the
    /// fine texture by which D can tell fakes apart, so D must judge the
    /// coarse content the captions state.
    #[serde(default)]
    pub instance_noise: f64,
    /// How φ(t) is scaled before G and D read it: raw (the paper) or
    /// standardised per dimension over the training captions (statistics
    /// computed at the start of the run and kept in the model card).
    #[serde(default)]
    pub text_scaling: TextScalingKind,
    /// G's update draws its own z, as `main_cls_int.lua` does, instead of
    /// reusing the fakes of D's update.
    #[serde(default)]
    pub fresh_noise_for_g: bool,
    /// Weight of a text-matching term in G's loss (0 in the paper): the
    /// joint embedding's image encoder θ, frozen, reads G's pictures for the
    /// batch's texts, and the structured hinge loss the text encoder was
    /// trained with asks each picture to match its own text better than the
    /// other texts of the batch (of other classes) by a margin. D's score
    /// tells G "real and matching or not"; this term tells it which way the
    /// text differs, as AttnGAN's DAMSM loss does (Xu et al. 2018).
    #[serde(default)]
    pub match_loss: f64,
    /// Which of the batch's other texts the matching term ranks each
    /// picture's own text above: those of other classes (as the paper's
    /// loss, [`Matching::Class`]), or every other picture's
    /// ([`Matching::Image`], as a text encoder trained with `--match image`
    /// was: where a class fixes only some of what a caption states, as
    /// procedural flowers' colour and shape, the texts of the same class are
    /// the only ones that differ in the rest alone).
    #[serde(default)]
    pub match_negatives: Matching,
    /// Whether D sees the real, wrong and fake pairs in batches of their
    /// own (the paper's code) or in one ([`DBatches`]).
    #[serde(default)]
    pub d_batches: DBatches,
    /// Weight of a mode-seeking term in G's loss (0 in the paper; Mao et
    /// al. 2019, MSGAN): with fresh noise G draws each of the batch's texts
    /// twice, under its own z and under D's z', and the term w / (r +
    /// 1e-5), r = mean |G(t, z) - G(t, z')| / mean |z - z'|, asks the two
    /// pictures to differ as the draws do (D's picture held fixed). A D
    /// that checks each pair against its text no longer keeps G using z
    /// through its batch statistics ([`DBatches`]); this term does so
    /// directly.
    #[serde(default)]
    pub mode_seeking: f64,
    /// Standard deviation of Gaussian noise added to the text G draws from
    /// in training, in units of each dimension's spread over the training
    /// captions (0 in the paper; a fixed-variance cousin of StackGAN's
    /// conditioning augmentation). D judges G's pictures against the clean
    /// text, so G learns to draw a caption's content from any embedding
    /// near it: a phrasing the text encoder never saw lands near, not on,
    /// the embeddings of the phrasings it did.
    #[serde(default)]
    pub text_noise: f64,
    /// The directions the text noise takes ([`NoiseAlong`]).
    #[serde(default)]
    pub text_noise_along: NoiseAlong,
    /// Decay of an exponential moving average of G's weights kept beside
    /// the trained ones (0: none, the paper). The model a run writes draws
    /// with the average; training itself is unchanged ([`GeneratorAverage`]).
    #[serde(default)]
    pub g_ema: f64,
    /// Share of G's texts read from the same captions reworded as people
    /// type them ([`super::distil::reword`]: words left out, chat put in,
    /// clauses reordered, terse lists; every stated attribute kept), each
    /// training caption reworded once at the start of the run and embedded
    /// with the frozen text encoder (0: none, the paper). D judges G's
    /// pictures against the captions as written, so G learns to draw what a
    /// caption states however it is put: a phrasing the text encoder never
    /// saw moves φ(t) as rewording does, along directions that carry
    /// content, where noise cannot stand in for it.
    #[serde(default)]
    pub reworded: f64,
    /// Weight of a phrasing-consistency term in G's loss (0: none, the
    /// paper): G draws its batch's texts again under the same z from the
    /// other reading of each caption (reworded where it read it as written,
    /// as written where reworded; [`Self::reworded`]'s rewordings), both in
    /// one batch so that its batch norm treats them as when drawing, and the
    /// term is the mean absolute difference between the two pictures. Where
    /// rewording lets D and the matching term ask G only for a picture of the
    /// content, this asks for the same picture: what a caption states, not
    /// how it is put, is what G draws.
    #[serde(default)]
    pub phrasing_consistency: f64,
}

/// D's scores (logits) of each (images, texts) pair of batches: each
/// batch in its own forward pass, or all in one whose scores are split
/// back ([`DBatches`]; the caller leaves G's pictures out where they go in
/// a batch of their own).
fn judge(
    d: &crate::model::discriminator::Discriminator,
    pairs: &[(&Tensor, &Tensor)],
    batches: DBatches,
) -> Vec<Tensor> {
    match batches {
        // A lone batch needs no joining.
        _ if pairs.len() == 1 => vec![d.forward_t(pairs[0].0, pairs[0].1, true)],
        DBatches::Separate => pairs
            .iter()
            .map(|(images, texts)| d.forward_t(images, texts, true))
            .collect(),
        DBatches::Joint | DBatches::RealWrong => {
            let images: Vec<&Tensor> = pairs.iter().map(|p| p.0).collect();
            let texts: Vec<&Tensor> = pairs.iter().map(|p| p.1).collect();
            let sizes: Vec<i64> = pairs.iter().map(|p| p.0.size()[0]).collect();
            d.forward_t(&Tensor::cat(&images, 0), &Tensor::cat(&texts, 0), true)
                .split_with_sizes(&sizes, 0)
        }
    }
}

/// Updates over which a fresh optimizer on trained weights ramps up to the
/// scheduled learning rate ([`GanTrainer::warmup`]): 1/(1 − β2), the memory
/// of Adam's second moments.
pub const FRESH_ADAM_WARMUP: u64 = 1000;

/// Caption embeddings averaged per image as its text (the paper's code: 4).
pub const PAPER_CAPTIONS_AVERAGED: u64 = 4;

/// The kinds of [`Conditioning`] a run can ask for; the statistics of
/// `Standardised` come from the run's own training captions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextScalingKind {
    #[default]
    Raw,
    Standardised,
}

impl TextScalingKind {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "raw" => Self::Raw,
            "standardised" | "standardized" => Self::Standardised,
            _ => bail!("unknown text conditioning '{s}' ({CONDITIONING_NAMES})"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Standardised => "standardised",
        }
    }
}

fn paper_real_label() -> f64 {
    1.0
}

impl GanConfig {
    /// paper.md §4.
    pub fn paper(variant: Variant, dataset: &str) -> Self {
        Self {
            variant,
            dataset: dataset.to_string(),
            batch: 64,
            epochs: 600,
            steps: None,
            lr: 2e-4,
            beta1: 0.5,
            lr_halve_every_epochs: 100,
            captions_averaged: PAPER_CAPTIONS_AVERAGED as usize,
            interpolation_beta: 0.5,
            seed: 0,
            wrong: WrongImages::Class,
            real_label: paper_real_label(),
            instance_noise: 0.0,
            text_scaling: TextScalingKind::Raw,
            fresh_noise_for_g: false,
            match_loss: 0.0,
            match_negatives: Matching::Class,
            d_batches: DBatches::Separate,
            mode_seeking: 0.0,
            text_noise: 0.0,
            text_noise_along: NoiseAlong::Dimensions,
            g_ema: 0.0,
            reworded: 0.0,
            phrasing_consistency: 0.0,
        }
    }

    /// Whether the run reads its training captions reworded: G reads some
    /// ([`Self::reworded`]) or draws both readings
    /// ([`Self::phrasing_consistency`]).
    pub fn reads_rewordings(&self) -> bool {
        self.reworded > 0.0 || self.phrasing_consistency > 0.0
    }
}

/// An exponential moving average of G's weights (Karras et al. 2018;
/// Yazıcı et al. 2019): after every step each weight moves `1 − decay` of
/// the way to G's. The trained G is what the step updates; the average is a
/// smoother G to draw with (a GAN's G swings from step to step with D), and
/// is what a run's model folder holds. Its batch-norm statistics are its own
/// ([`GeneratorAverage::settle`]): averaged weights do not give the maps that
/// G's running statistics were taken of.
pub struct GeneratorAverage {
    /// Named as G's own variables, so that one copies into the other.
    pub vs: nn::VarStore,
    /// (average, G's variable, a batch-norm statistic?) in the order of G's
    /// names.
    pairs: Vec<(Tensor, Tensor, bool)>,
    pub decay: f64,
}

/// Batches of G's pictures in training mode that give the average its
/// batch-norm statistics (momentum 0.1: what came before weighs 0.9^50).
pub const SETTLING_PASSES: usize = 50;

impl GeneratorAverage {
    /// Starts the average at G's present weights.
    pub fn new(model: &Model, decay: f64) -> Result<Self> {
        check_g_ema(decay)?;
        let mut vs = nn::VarStore::new(model.device);
        let _ = crate::model::generator::Generator::new(
            &(vs.root() / "generator"),
            &model.card.architecture.generator,
            &model.card.architecture.conditioning,
        );
        vs.freeze();
        let average = vs.variables();
        let mut names: Vec<(String, Tensor)> = model.generator.vs.variables().into_iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let pairs = names
            .into_iter()
            .map(|(name, g)| {
                let a = average
                    .get(&name)
                    .ok_or_else(|| anyhow::anyhow!("the average has no '{name}'"))?;
                Ok((a.shallow_clone(), g, name.contains("running_")))
            })
            .collect::<Result<_>>()?;
        let average = Self { vs, pairs, decay };
        average.start_at_g();
        Ok(average)
    }

    /// Sets the average to G's present weights.
    fn start_at_g(&self) {
        tch::no_grad(|| {
            for (average, g, _) in &self.pairs {
                average.shallow_clone().copy_(g);
            }
        });
    }

    /// One step of the average towards G's weights.
    pub fn update(&mut self) {
        let towards = 1.0 - self.decay;
        tch::no_grad(|| {
            for (average, g, statistic) in &mut self.pairs {
                if !*statistic {
                    let _ = average.lerp_(&*g, towards);
                }
            }
        });
    }

    /// Gives the average batch-norm statistics of its own weights (standing
    /// statistics, as BigGAN draws with): G, holding the average's weights,
    /// runs `draw` in training mode [`SETTLING_PASSES`] times, and the
    /// average keeps the running statistics they leave; G's own come back.
    pub fn settle(&self, mut draw: impl FnMut()) {
        self.drawing_with(|| {
            tch::no_grad(|| {
                for _ in 0..SETTLING_PASSES {
                    draw();
                }
                for (average, g, statistic) in &self.pairs {
                    if *statistic {
                        average.shallow_clone().copy_(g);
                    }
                }
            })
        });
    }

    /// Runs `f` with G holding the average's weights, and puts G's own back.
    pub fn drawing_with<R>(&self, f: impl FnOnce() -> R) -> R {
        let kept: Vec<Tensor> = tch::no_grad(|| {
            self.pairs
                .iter()
                .map(|(average, g, _)| {
                    let own = g.copy();
                    g.shallow_clone().copy_(average);
                    own
                })
                .collect()
        });
        let out = f();
        tch::no_grad(|| {
            for ((_, g, _), own) in self.pairs.iter().zip(&kept) {
                g.shallow_clone().copy_(own);
            }
        });
        out
    }
}

/// What one step fed the networks, for tests and sanity checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepTrace {
    /// Images G drew this step.
    pub generator_batch: usize,
    /// Of those, how many had interpolated text.
    pub interpolated: usize,
    /// (image kind, text kind, batch) of each discriminator call in D's update.
    pub discriminator_inputs: Vec<(&'static str, &'static str, usize)>,
    /// The text kinds D scored in G's update.
    pub generator_scored: Vec<(&'static str, usize)>,
}

/// The random choices of one GAN step (see [`GanTrainer::draw_step`]).
pub struct StepDraws {
    /// The real images' indices in the training set.
    pub batch: Vec<usize>,
    /// Their crops and flips.
    pub crops: Vec<Crop>,
    /// Which of each image's captions are averaged into its text.
    pub picks: Vec<Vec<usize>>,
    /// G's z: one per real text, then one per interpolation.
    pub z: Tensor,
    /// D's fakes' own z, with fresh noise for G's update.
    pub z_for_d: Option<Tensor>,
    /// The wrong images and their crops (matching-aware D).
    pub wrong: Option<(Vec<usize>, Vec<Crop>)>,
    /// With [`GanConfig::text_noise`], unit Gaussian noise for the text of
    /// each of G's pictures (as `z`'s rows).
    pub text_noise: Option<Tensor>,
    /// With [`GanConfig::reworded`], which of the B texts G reads reworded.
    pub reworded: Option<Vec<bool>>,
}

pub struct GanTrainer<'a> {
    pub model: Model,
    pub config: GanConfig,
    data: &'a TrainingSet,
    /// [N, K, E] caption embeddings.
    embeddings: Tensor,
    /// The unit of [`GanConfig::text_noise`] (only with text noise), by
    /// which unit Gaussian noise is multiplied: each dimension's spread over
    /// the training captions, [1, E], or the square root of the covariance
    /// of a picture's captions about their mean, [E, E] ([`NoiseAlong`]).
    text_spread: Option<Tensor>,
    /// [N, K, E] embeddings of the same captions reworded
    /// ([`GanConfig::reworded`]), only where G reads any or draws both
    /// readings ([`GanConfig::phrasing_consistency`]).
    reworded: Option<Tensor>,
    train: Vec<usize>,
    order: Vec<usize>,
    cursor: usize,
    opt_g: Optimizer,
    opt_d: Optimizer,
    position: Position,
    pub last_trace: Option<StepTrace>,
    /// Fixed (caption, embedding) pairs and seeds for the per-epoch grids.
    sample_captions: Vec<(String, Tensor)>,
    /// Where each step's time goes, when `bench train --phases` asks.
    pub phases: PhaseClock,
    /// The training images' siblings, for [`WrongImages::Sibling`].
    siblings: Option<Siblings>,
    /// G's moving average ([`GanConfig::g_ema`]).
    pub average: Option<GeneratorAverage>,
}

/// Wall time between marks in a step, the device synchronised at each mark
/// so that a GPU's queued work counts where it was issued, summed over the
/// steps taken while enabled (`bench train --phases`). Synchronising takes
/// away overlap between phases, so the total runs a little over the step's
/// own time. Disabled, a mark costs nothing.
#[derive(Debug, Default)]
pub struct PhaseClock {
    device: Option<Device>,
    last: Option<std::time::Instant>,
    /// (phase, seconds) in the order phases first appeared.
    pub totals: Vec<(&'static str, f64)>,
}

impl PhaseClock {
    /// Starts timing on `device` (forgetting earlier totals).
    pub fn enable(&mut self, device: Device) {
        *self = Self {
            device: Some(device),
            ..Self::default()
        };
    }

    fn sync(&self) -> Option<std::time::Instant> {
        let device = self.device?;
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
        Some(std::time::Instant::now())
    }

    /// The start of a step.
    fn start(&mut self) {
        self.last = self.sync();
    }

    /// The end of `phase`, which began at the previous mark.
    fn mark(&mut self, phase: &'static str) {
        let (Some(now), Some(last)) = (self.sync(), self.last) else {
            return;
        };
        let seconds = (now - last).as_secs_f64();
        match self.totals.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, total)) => *total += seconds,
            None => self.totals.push((phase, seconds)),
        }
        self.last = Some(now);
    }
}

impl<'a> GanTrainer<'a> {
    /// A fresh run: G and D as the model has them (freshly initialised by the
    /// caller), the text encoder frozen.
    pub fn new(
        mut model: Model,
        config: GanConfig,
        data: &'a TrainingSet,
        embeddings: Tensor,
    ) -> Result<Self> {
        if config.batch < 2 || !config.batch.is_multiple_of(2) {
            bail!(
                "the batch must be even and at least 2 (got {})",
                config.batch
            );
        }
        let train = data.split(false);
        if train.len() < config.batch {
            bail!(
                "{} training images, fewer than one batch of {}",
                train.len(),
                config.batch
            );
        }
        if !(config.real_label > 0.5 && config.real_label <= 1.0) {
            bail!(
                "the real label must be above 0.5 and at most 1 (got {})",
                config.real_label
            );
        }
        if !(config.instance_noise >= 0.0 && config.instance_noise <= 1.0) {
            bail!(
                "the instance noise must be between 0 and 1 (got {})",
                config.instance_noise
            );
        }
        if config.variant.cls() && config.wrong == WrongImages::Class {
            let first = data.classes[train[0]];
            if train.iter().all(|&i| data.classes[i] == first) {
                bail!(
                    "{} needs at least two training classes for its wrong images",
                    config.variant.name()
                );
            }
        }
        let siblings = (config.variant.cls() && config.wrong == WrongImages::Sibling)
            .then(|| Siblings::new(data, &train, "--wrong sibling"))
            .transpose()?;
        check_match_loss(config.match_loss)?;
        check_mode_seeking(config.mode_seeking, config.fresh_noise_for_g)?;
        check_text_noise(config.text_noise)?;
        check_reworded(config.reworded)?;
        check_phrasing_consistency(config.phrasing_consistency)?;
        if config.match_loss > 0.0 {
            // θ reads G's pictures as a fixed judge; it is not trained here.
            model.image_encoder.vs.freeze();
        }
        match config.text_scaling {
            TextScalingKind::Raw => {
                if !model.card.architecture.conditioning.is_raw() {
                    bail!("this model standardises its text: continue it with standardised text conditioning (--conditioning standardised)");
                }
            }
            // A model that has its statistics already (a continuation)
            // keeps them: its G learned on that scale.
            TextScalingKind::Standardised if model.card.architecture.conditioning.is_raw() => {
                let stats = Conditioning::standardised_from(&super::rows(&embeddings, &train))?;
                model.set_conditioning(stats)?;
            }
            TextScalingKind::Standardised => {}
        }
        let opt_g = Optimizer::adam(&model.generator.vs, config.lr, config.beta1);
        let opt_d = Optimizer::adam(&model.discriminator.vs, config.lr, config.beta1);
        let sample_captions = sample_captions(data, &embeddings);
        let text_spread = (config.text_noise > 0.0)
            .then(|| {
                let groups = match config.text_noise_along {
                    NoiseAlong::Statements => Some(caption_groups(data)?),
                    _ => None,
                };
                text_spread(
                    &embeddings,
                    &train,
                    config.text_noise_along,
                    &model.card.architecture.conditioning,
                    groups.as_ref(),
                )
            })
            .transpose()?;
        let average = (config.g_ema > 0.0)
            .then(|| GeneratorAverage::new(&model, config.g_ema))
            .transpose()?;
        let reworded = config
            .reads_rewordings()
            .then(|| reworded_embeddings(&model, data, embeddings.size()[1] as usize, config.seed))
            .transpose()?;
        Ok(Self {
            average,
            reworded,
            model,
            data,
            embeddings,
            text_spread,
            order: train.clone(),
            cursor: usize::MAX,
            train,
            opt_g,
            opt_d,
            position: Position::start(config.seed ^ 0x6A09_E667_F3BC_C908),
            last_trace: None,
            phases: PhaseClock::default(),
            sample_captions,
            siblings,
            config,
        })
    }

    /// Where this run stands on its schedule (written into the model card).
    pub fn schedule(&self) -> Schedule {
        Schedule {
            step: self.position.step,
            steps_per_epoch: self.steps_per_epoch(),
            epochs: self.config.epochs,
            lr: self.config.lr,
            lr_halve_every_epochs: self.config.lr_halve_every_epochs,
        }
    }

    /// Takes up the schedule of the model this run starts from (its step,
    /// so the learning rate and the epoch count go on from there, as one
    /// uninterrupted run's would). The schedule must be this run's.
    pub fn continue_schedule(&mut self, schedule: &Schedule) -> Result<()> {
        if self.position.step != 0 {
            bail!("a schedule can only be taken up before the first step");
        }
        let mine = self.schedule();
        if (schedule.lr - mine.lr).abs() > 1e-12 * mine.lr.abs().max(1.0)
            || schedule.lr_halve_every_epochs != mine.lr_halve_every_epochs
        {
            bail!(
                "the model was trained on lr {} halved every {} epochs, this run asks for lr {} halved every {}: pass the same, or start the schedule again",
                schedule.lr,
                schedule.lr_halve_every_epochs,
                mine.lr,
                mine.lr_halve_every_epochs
            );
        }
        if schedule.steps_per_epoch != mine.steps_per_epoch {
            bail!(
                "the model's epochs were {} steps and this run's are {}: the schedule continues only on the same data and batch size",
                schedule.steps_per_epoch,
                mine.steps_per_epoch
            );
        }
        self.position.step = schedule.step;
        self.replay_order();
        Ok(())
    }

    /// The learning rate of the step about to be taken: the schedule's,
    /// times the warm-up of a fresh optimizer ([`Self::warmup`]).
    pub fn learning_rate(&self) -> f64 {
        let epoch = self.position.step / self.steps_per_epoch();
        let halvings = epoch / self.config.lr_halve_every_epochs.max(1);
        self.config.lr * 0.5f64.powi(halvings.min(60) as i32) * self.warmup()
    }

    /// 1, except where the optimizers are younger than the weights (a run
    /// that took up a trained model's schedule with fresh Adam): then the
    /// learning rate ramps up linearly over [`FRESH_ADAM_WARMUP`] updates.
    /// Fresh Adam's first updates are a full learning rate for every
    /// weight, in the sign of one batch's gradient (its second moments have
    /// seen one gradient, not their spread); on trained weights that is a
    /// jolt, measured on Oxford-102 as a checkerboard rising from 1.72x to
    /// 4.08x real within 15 steps. The count is the optimizers' own, kept
    /// in the checkpoint, so a resumed run warms up exactly as a straight one.
    pub fn warmup(&self) -> f64 {
        let updates = self.opt_g.steps.max(0) as u64;
        if updates >= self.position.step {
            return 1.0;
        }
        ((updates + 1) as f64 / FRESH_ADAM_WARMUP as f64).min(1.0)
    }

    /// The caption embeddings [N, K, E] the run draws its text from.
    pub fn embeddings(&self) -> &Tensor {
        &self.embeddings
    }

    /// On resume, the order of the current epoch must be the one it had.
    /// Each epoch's order is drawn from the RNG saved at the epoch start, so
    /// checkpoints record the RNG of the epoch start plus the position.
    /// The epoch's order is a function of the RNG state at its start; the
    /// cursor is recomputed from the step (at an epoch's start, the next
    /// batch draws the order afresh).
    fn replay_order(&mut self) {
        self.cursor = usize::MAX;
        let within = (self.position.step % self.steps_per_epoch()) as usize;
        if within > 0 {
            self.order = self.train.clone();
            let mut epoch_rng =
                Rng(self.epoch_rng_seed(self.position.step / self.steps_per_epoch()));
            epoch_rng.shuffle(&mut self.order);
            self.cursor = within * self.config.batch;
        }
    }

    fn epoch_rng_seed(&self, epoch: u64) -> u64 {
        self.config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ epoch.wrapping_mul(0xBF58_476D_1CE4_E5B9)
            ^ 0x1234_5678
    }

    fn next_batch(&mut self) -> Vec<usize> {
        let b = self.config.batch;
        if self.cursor == usize::MAX || self.cursor + b > self.order.len() {
            self.order = self.train.clone();
            let epoch = self.position.step / self.steps_per_epoch();
            let mut epoch_rng = Rng(self.epoch_rng_seed(epoch));
            epoch_rng.shuffle(&mut self.order);
            self.cursor = 0;
        }
        let batch = self.order[self.cursor..self.cursor + b].to_vec();
        self.cursor += b;
        batch
    }

    /// For each image, another training image: of a different class, any
    /// other one, or at the even places of the batch a sibling (any other
    /// one at the odd places, and where an image has no sibling).
    pub fn wrong_images(&mut self, batch: &[usize]) -> Vec<usize> {
        let by_class = self.config.wrong == WrongImages::Class;
        batch
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                if let Some(siblings) = self.siblings.as_ref().filter(|_| k % 2 == 0) {
                    if let Some(j) = siblings.pick(i, &[], &mut self.position.rng) {
                        return j;
                    }
                }
                loop {
                    let j = self.train[self.position.rng.below(self.train.len())];
                    let differs = if by_class {
                        self.data.classes[j] != self.data.classes[i]
                    } else {
                        j != i
                    };
                    if differs {
                        break j;
                    }
                }
            })
            .collect()
    }

    /// One GAN step; returns the losses and records what it fed where.
    pub fn gan_step(&mut self) -> Result<StepLosses> {
        let draws = self.draw_step();
        self.step_with(&draws)
    }

    /// Every choice the next step makes from the run's RNG (its batch, crops,
    /// captions, z and wrong images), in the order the step has always drawn
    /// them. [`Self::step_with`] takes the step on them; the learning-curve
    /// benchmark records them so that PyTorch can take the same steps.
    pub fn draw_step(&mut self) -> StepDraws {
        let b = self.config.batch;
        let half = b / 2;
        let nz = self.model.card.architecture.generator.nz as usize;
        let device = self.model.device;
        let batch = self.next_batch();
        let crops = self.data.random_crops(b, &mut self.position.rng);
        let picks = super::caption_picks(
            self.embeddings.size()[1] as usize,
            b,
            self.config.captions_averaged,
            &mut self.position.rng,
        );
        let interpolated = if self.config.variant.int() { half } else { 0 };
        let z = noise(&mut self.position.rng, b + interpolated, nz, device);
        let z_for_d = self
            .config
            .fresh_noise_for_g
            .then(|| noise(&mut self.position.rng, b, nz, device));
        let wrong = self.config.variant.cls().then(|| {
            let idx = self.wrong_images(&batch);
            let crops = self.data.random_crops(b, &mut self.position.rng);
            (idx, crops)
        });
        let text_noise = (self.config.text_noise > 0.0).then(|| {
            let dim = self.embeddings.size()[2] as usize;
            noise(&mut self.position.rng, b + interpolated, dim, device)
        });
        let share = self.config.reworded;
        let reworded = (share > 0.0).then(|| {
            (0..b)
                .map(|_| self.position.rng.uniform() < share)
                .collect()
        });
        StepDraws {
            batch,
            crops,
            picks,
            z,
            z_for_d,
            wrong,
            text_noise,
            reworded,
        }
    }

    /// One GAN step on `draws` (from [`Self::draw_step`]).
    pub fn step_with(&mut self, draws: &StepDraws) -> Result<StepLosses> {
        let device = self.model.device;
        let b = self.config.batch;
        let half = b / 2;
        let variant = self.config.variant;
        let lr = self.learning_rate();
        self.opt_g.lr = lr;
        self.opt_d.lr = lr;
        self.phases.start();

        let real = self
            .data
            .cropped(&draws.batch, &draws.crops)
            .to_device(device);
        let text = super::mean_of_picks(&self.embeddings, &draws.batch, &draws.picks);
        // What G reads of each text: the captions as written or (a share of
        // them, with rewording) the same captions reworded.
        let reworded = self
            .reworded
            .as_ref()
            .map(|r| super::mean_of_picks(r, &draws.batch, &draws.picks));
        let which = draws.reworded.as_ref().map(|which| {
            let which: Vec<f32> = which.iter().map(|&r| f32::from(u8::from(r))).collect();
            Tensor::from_slice(&which).to_device(device).unsqueeze(1)
        });
        let read = match (&reworded, &which) {
            (Some(reworded), Some(which)) => Some(&text + (reworded - &text) * which),
            _ => None,
        };

        // G's batch: the B real embeddings, plus B/2 interpolations for GAN-INT.
        let interpolated = if variant.int() { half } else { 0 };
        let with_interpolations = |t: &Tensor| {
            if interpolated == 0 {
                return t.shallow_clone();
            }
            let beta = self.config.interpolation_beta;
            let mixed = t.narrow(0, 0, half as i64) * beta
                + t.narrow(0, half as i64, half as i64) * (1.0 - beta);
            Tensor::cat(&[t, &mixed], 0)
        };
        let g_text = with_interpolations(&text);
        let g_read = read.map_or_else(|| g_text.shallow_clone(), |r| with_interpolations(&r));
        // What G draws from: its texts as read, or (text noise) texts near
        // them; D always judges against the texts as written.
        let text_shift = match (&draws.text_noise, &self.text_spread) {
            (Some(eps), Some(spread)) => Some(
                match self.config.text_noise_along {
                    NoiseAlong::Dimensions => eps * spread,
                    NoiseAlong::Phrasings | NoiseAlong::Statements => eps.matmul(spread),
                } * self.config.text_noise,
            ),
            _ => None,
        };
        let shifted = |t: Tensor| match &text_shift {
            Some(shift) => t + shift,
            None => t,
        };
        let g_input = shifted(g_read);
        // The phrasing-consistency term's texts: each read the other way.
        let twin_input = (self.config.phrasing_consistency > 0.0).then(|| {
            let reworded = reworded.as_ref().expect("checked: the rewordings are read");
            let other = match &which {
                Some(which) => reworded + (&text - reworded) * which,
                None => reworded.shallow_clone(),
            };
            shifted(with_interpolations(&other))
        });
        let z = &draws.z;
        let z_for_d = &draws.z_for_d;
        // Images of other classes, for the matching-aware (CLS) term.
        let wrong = draws
            .wrong
            .as_ref()
            .map(|(idx, crops)| self.data.cropped(idx, crops).to_device(device));
        // Instance noise for each image D will see: real, wrong, fake (D's
        // update), fake (G's update).
        let sigma = self.config.instance_noise;
        let mut jitter = |images: &Tensor| {
            if sigma > 0.0 {
                let size = images.size();
                let n = noise(
                    &mut self.position.rng,
                    size[0] as usize,
                    (size[1] * size[2] * size[3]) as usize,
                    device,
                );
                images + n.view(size.as_slice()) * sigma
            } else {
                images.shallow_clone()
            }
        };
        let real = jitter(&real);
        let wrong = wrong.map(|w| jitter(&w));
        self.phases.mark("batch");
        let g = &self.model.generator.net;
        let d = &self.model.discriminator.net;
        // G's pictures; with the phrasing-consistency term also of each text
        // read the other way, in the same batch (the same batch statistics,
        // as when G draws).
        let (fake, twin) = match &twin_input {
            Some(twin_input) => {
                let n = g_input.size()[0];
                let both = g.forward_t(
                    &Tensor::cat(&[z, z], 0),
                    &Tensor::cat(&[&g_input, twin_input], 0),
                    true,
                );
                (both.narrow(0, 0, n), Some(both.narrow(0, n, n)))
            }
            None => (g.forward_t(z, &g_input, true), None),
        };
        // D's fakes: the first B of G's own batch, or (fresh noise) B more
        // drawn with their own z and no graph.
        let drawn_for_d = match z_for_d {
            Some(z_d) => tch::no_grad(|| g.forward_t(z_d, &g_input.narrow(0, 0, b as i64), true)),
            None => fake.narrow(0, 0, b as i64).detach(),
        };
        let fake_for_d = jitter(&drawn_for_d);
        let fake_for_g = jitter(&fake);
        self.phases.mark("G forward");

        // D's update: (real, right), [(wrong, right)], (fake, right) on the
        // first B fakes only: D never sees the interpolations.
        let mean_prob = |t: &Tensor| t.sigmoid().mean(tch::Kind::Float);
        let mut losses = StepLosses::default();
        let mut pairs = vec![(&real, &text)];
        let mut d_inputs = vec![("real", "right", b)];
        if let Some(wrong) = &wrong {
            pairs.push((wrong, &text));
            d_inputs.push(("wrong", "right", b));
        }
        // Where D sees all kinds together, G's pictures are judged beside
        // the same real (and wrong) pairs in G's update too.
        let fake_pair = (&fake_for_d, &text);
        d_inputs.push(("fake", "right", b));
        let (scores, context) = match self.config.d_batches {
            DBatches::Joint => {
                let context = pairs.clone();
                pairs.push(fake_pair);
                (judge(d, &pairs, DBatches::Joint), context)
            }
            // G's pictures in a batch of their own.
            batches => {
                let mut scores = judge(d, &pairs, batches);
                scores.extend(judge(d, &[fake_pair], batches));
                (scores, vec![])
            }
        };
        let (score_real, score_fake) = (&scores[0], &scores[scores.len() - 1]);
        losses.term("d_real", &mean_prob(score_real));
        let mut d_loss = bce(score_real, self.config.real_label);
        let fake_weight = if wrong.is_some() {
            losses.term("d_wrong", &mean_prob(&scores[1]));
            d_loss += bce(&scores[1], 0.0) * 0.5;
            0.5
        } else {
            1.0
        };
        losses.term("d_fake", &mean_prob(score_fake));
        let d_loss = d_loss + bce(score_fake, 0.0) * fake_weight;
        self.phases.mark("D forward (real, wrong, fake)");
        self.opt_d.zero_grad();
        d_loss.backward();
        self.phases.mark("D backward");
        self.opt_d.step();
        self.phases.mark("D Adam");

        // G's update through a frozen D, over all G images and their texts.
        self.model.discriminator.vs.freeze();
        let mut judged = context;
        judged.push((&fake_for_g, &g_text));
        let score_g = judge(
            &self.model.discriminator.net,
            &judged,
            self.config.d_batches,
        )
        .pop()
        .expect("G's pictures are judged");
        let mut g_loss = bce(&score_g, 1.0);
        self.phases.mark("D forward (G's images)");
        if self.config.match_loss > 0.0 {
            let pictures = fake.narrow(0, 0, b as i64);
            let v = self.model.image_encoder.net.forward_t(&pictures, false);
            let compat = v.matmul(&text.transpose(0, 1));
            let negatives = match self.config.match_negatives {
                Matching::Class => {
                    let classes: Vec<u32> =
                        draws.batch.iter().map(|&i| self.data.classes[i]).collect();
                    other_classes(&classes, device)
                }
                Matching::Image => off_diagonal(b as i64, device),
            };
            let matching = super::text_encoder::symmetric_hinge_where(&compat, &negatives);
            losses.term("g_match", &matching);
            g_loss += matching * self.config.match_loss;
            self.phases.mark("θ forward (G's images)");
        }
        if self.config.mode_seeking > 0.0 {
            let z_d = z_for_d.as_ref().expect("checked: fresh noise");
            let apart = (fake.narrow(0, 0, b as i64) - &drawn_for_d)
                .abs()
                .mean(tch::Kind::Float);
            let drawn_apart = (z.narrow(0, 0, b as i64) - z_d)
                .abs()
                .mean(tch::Kind::Float);
            let term = ((apart / drawn_apart) + 1e-5).reciprocal();
            losses.term("g_mode_seeking", &term);
            g_loss += term * self.config.mode_seeking;
        }
        if let Some(twin) = &twin {
            let term = (&fake - twin).abs().mean(tch::Kind::Float);
            losses.term("g_phrasing", &term);
            g_loss += term * self.config.phrasing_consistency;
        }
        self.opt_g.zero_grad();
        g_loss.backward();
        self.phases.mark("G backward (through D)");
        self.opt_g.step();
        self.model.discriminator.vs.unfreeze();
        if let Some(average) = &mut self.average {
            average.update();
        }
        self.phases.mark("G Adam");

        let mut generator_scored = vec![("right", b)];
        if interpolated > 0 {
            generator_scored.push(("interpolated", interpolated));
        }
        self.last_trace = Some(StepTrace {
            generator_batch: fake.size()[0] as usize,
            interpolated,
            discriminator_inputs: d_inputs,
            generator_scored,
        });
        self.position.step += 1;

        losses.term("d_loss", &d_loss);
        losses.term("g_loss", &g_loss);
        losses.value("lr", lr);
        Ok(losses)
    }

    /// Settles G's average ([`GeneratorAverage::settle`]) on batches of
    /// training texts and z of its own RNG (seeded by the run and the step,
    /// so training draws what it would have); nothing without an average.
    pub fn settle_average(&self) {
        let Some(average) = &self.average else {
            return;
        };
        let mut rng = Rng(self.config.seed ^ 0x57A2_D1E6 ^ self.position.step);
        let b = self.config.batch;
        let nz = self.model.card.architecture.generator.nz as usize;
        let per_image = self.embeddings.size()[1] as usize;
        average.settle(|| {
            let batch: Vec<usize> = (0..b)
                .map(|_| self.train[rng.below(self.train.len())])
                .collect();
            let picks = super::caption_picks(per_image, b, self.config.captions_averaged, &mut rng);
            let text = super::mean_of_picks(&self.embeddings, &batch, &picks);
            let z = noise(&mut rng, b, nz, self.model.device);
            let _ = self.model.generator.net.forward_t(&z, &text, true);
        });
    }

    /// A grid: the fixed captions (rows) by 4 fixed seeds.
    pub fn sample_grid(&self, path: &Path) -> Result<()> {
        let device = self.model.device;
        let nz = self.model.card.architecture.generator.nz as usize;
        let seeds = 4;
        let mut cells = Vec::new();
        for (caption, embedding) in &self.sample_captions {
            let mut rng = Rng(7);
            let z = noise(&mut rng, seeds, nz, device);
            let text = embedding
                .to_device(device)
                .unsqueeze(0)
                .expand([seeds as i64, -1], false);
            let images = tch::no_grad(|| self.model.generator.net.forward_t(&z, &text, false));
            for image in crate::imageio::images_from_tensor(&images)? {
                cells.push((image, caption.clone()));
            }
        }
        let sheet = crate::sheet::contact_sheet(&cells, seeds, 2, 3);
        crate::imageio::write_png(path, &sheet, &[])
    }
}

/// The matching term's negatives named on the command line (`class`,
/// `image`); `image` without the term is refused rather than ignored.
pub fn match_negatives(name: &str, match_loss: f64) -> Result<Matching> {
    let negatives = Matching::parse(name)?;
    if negatives != Matching::Class && match_loss == 0.0 {
        bail!("--match-negatives {name} chooses the matching term's negatives: it needs --match-loss W (above 0)");
    }
    Ok(negatives)
}

/// Refuses a weight of the matching term that is negative or not a number
/// (the command line asks this before reading any data).
pub fn check_match_loss(weight: f64) -> Result<()> {
    if !(weight >= 0.0 && weight.is_finite()) {
        bail!("--match-loss must be 0 or more (got {weight}): it weighs the matching loss in G's loss");
    }
    Ok(())
}

/// The unit of the text noise ([`GanTrainer`]'s `text_spread`) from the
/// caption embeddings [N, K, E] of the training images `train` (the
/// held-out classes' captions are not the run's to learn from). The
/// phrasings' covariance is taken in the space G reads (`conditioning`
/// applied) and its root mapped back to φ's units, so that the noise G
/// reads is the same whether the text is standardised inside G (here) or
/// before it (the learning curve's PyTorch export). Along statements,
/// `groups` [N, K] numbers each caption's statement within its image
/// ([`caption_groups`]) and the covariance is of each caption about the
/// mean of its image's captions of the same statement.
pub fn text_spread(
    embeddings: &Tensor,
    train: &[usize],
    along: NoiseAlong,
    conditioning: &Conditioning,
    groups: Option<&Tensor>,
) -> Result<Tensor> {
    let own = super::rows(embeddings, train);
    let size = own.size();
    let (n, k, dim) = (size[0], size[1], size[2]);
    if along == NoiseAlong::Dimensions {
        return Ok(own.reshape([-1, dim]).std_dim(0, true, false).unsqueeze(0));
    }
    if k < 2 {
        bail!(
            "--text-noise-along {} needs two or more captions per image (this data has {k})",
            along.name()
        );
    }
    let own = TextScaling::new(conditioning, own.device())
        .apply(&own)
        .to_kind(Kind::Double);
    // Each caption's deviation from the mean of its group (the picture's
    // captions, or those of them that state the same), and the degrees of
    // freedom: captions less groups.
    let (deviations, freedom) = match along {
        NoiseAlong::Dimensions => unreachable!("returned above"),
        NoiseAlong::Phrasings => (
            (&own - own.mean_dim(1, true, Kind::Double)).reshape([-1, dim]),
            n * (k - 1),
        ),
        NoiseAlong::Statements => {
            let Some(groups) = groups else {
                bail!("--text-noise-along statements needs what each caption states")
            };
            if groups.size() != [embeddings.size()[0], k] {
                bail!(
                    "--text-noise-along statements: {:?} caption statements for {:?} caption embeddings",
                    groups.size(),
                    &embeddings.size()[..2]
                );
            }
            let groups = super::rows(groups, train).to_device(own.device());
            // One number per (picture, statement), then the groups' means.
            let global = (groups + Tensor::arange(n, (Kind::Int64, own.device())).unsqueeze(1) * k)
                .reshape([-1]);
            let flat = own.reshape([-1, dim]);
            let options = (Kind::Double, own.device());
            let sums = Tensor::zeros([n * k, dim], options).index_add(0, &global, &flat);
            let counts = Tensor::zeros([n * k], options).index_add(
                0,
                &global,
                &Tensor::ones([n * k], options),
            );
            let used = counts.gt(0.0).sum(Kind::Int64).int64_value(&[]);
            let means = sums / counts.clamp_min(1.0).unsqueeze(1);
            let freedom = n * k - used;
            if freedom == 0 {
                bail!("--text-noise-along statements: no picture has two captions that state the same attributes");
            }
            (flat - means.index_select(0, &global), freedom)
        }
    };
    let covariance = deviations.transpose(0, 1).matmul(&deviations) / freedom as f64;
    // Its symmetric square root, in f64 (unique, so PyTorch's mirror gets the
    // same matrix whatever order its eigenvectors come in).
    let (values, vectors) = covariance.linalg_eigh("L");
    let root = (&vectors * values.clamp_min(0.0).sqrt().unsqueeze(0))
        .matmul(&vectors.transpose(0, 1))
        .to_kind(Kind::Float);
    Ok(match conditioning {
        Conditioning::Raw => root,
        Conditioning::Standardised { std, .. } => {
            let std = Tensor::from_slice(std).to_device(root.device());
            root * std.unsqueeze(0)
        }
    })
}

/// What each caption states, as a number per caption within its picture
/// ([N, K], i64): captions of one picture with the same number state the
/// same attributes. From the dataset's `caption_states` attribute (one
/// comma-separated entry per caption; procedural flowers give it).
pub fn caption_groups(data: &TrainingSet) -> Result<Tensor> {
    let k = data.captions.first().map_or(0, Vec::len);
    let mut numbers = Vec::with_capacity(data.len() * k);
    for (i, attributes) in data.attributes.iter().enumerate() {
        let Some(states) = attributes.get("caption_states") else {
            bail!(
                "--text-noise-along statements needs a dataset that says what each caption states (procedural-flowers does); {} does not",
                data.spec
            );
        };
        let states: Vec<&str> = states.split(',').collect();
        if states.len() != data.captions[i].len() || states.len() != k {
            bail!(
                "{}: sample {} says what {} captions state, but it has {}",
                data.spec,
                data.names[i],
                states.len(),
                data.captions[i].len()
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for state in states {
            let number = seen.iter().position(|s| *s == state).unwrap_or_else(|| {
                seen.push(state);
                seen.len() - 1
            });
            numbers.push(number as i64);
        }
    }
    Ok(Tensor::from_slice(&numbers).view([data.len() as i64, k as i64]))
}

/// Refuses a text-noise spread that is negative, not a number, or so large
/// that the noise would drown the text (above 4 of its spreads).
pub fn check_text_noise(spread: f64) -> Result<()> {
    if !(0.0..=4.0).contains(&spread) {
        bail!("--text-noise must be between 0 and 4 (got {spread}): it is the noise's spread in units of the captions' own");
    }
    Ok(())
}

/// Refuses a share of reworded texts outside [0, 1].
pub fn check_reworded(share: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&share) {
        bail!("--reworded is the share of G's texts read reworded, between 0 and 1 (got {share})");
    }
    Ok(())
}

/// Refuses a phrasing-consistency weight that is negative or not a number.
pub fn check_phrasing_consistency(weight: f64) -> Result<()> {
    if !(weight >= 0.0 && weight.is_finite()) {
        bail!("--phrasing-consistency must be 0 or more (got {weight}): it weighs how far G's pictures of a caption as written and reworded may differ");
    }
    Ok(())
}

/// The training captions' embeddings [N, K, E] (as [`super::embed_captions`]
/// lays them out), each caption reworded once as people type
/// ([`super::distil::reword`]), the rewordings drawn from `seed` alone.
pub fn reworded_embeddings(
    model: &Model,
    data: &TrainingSet,
    per_image: usize,
    seed: u64,
) -> Result<Tensor> {
    let mut rng = Rng(seed ^ 0x2E30_4DED);
    super::embed_captions_as(
        &model.text_encoder.net,
        data,
        per_image,
        model.device,
        &mut |_, _| {},
        &mut |caption| super::distil::reword(caption, &mut rng),
    )
}

/// Refuses a decay of G's moving average outside [0, 1) (1 would never
/// move; 0 is none).
pub fn check_g_ema(decay: f64) -> Result<()> {
    if !(0.0..1.0).contains(&decay) {
        bail!("--g-ema is a decay in [0, 1) (e.g. 0.999), got {decay}");
    }
    Ok(())
}

/// Refuses a mode-seeking weight that is negative or not a number, or one
/// without fresh noise (the term compares G's two draws of each text).
pub fn check_mode_seeking(weight: f64, fresh_noise: bool) -> Result<()> {
    if !(weight >= 0.0 && weight.is_finite()) {
        bail!("--mode-seeking must be 0 or more (got {weight}): it weighs the mode-seeking term in G's loss");
    }
    if weight > 0.0 && !fresh_noise {
        bail!("--mode-seeking compares G's pictures of each text under two draws of z: it needs fresh noise for G (--fresh-noise; `bench learn` without --reuse-fakes)");
    }
    Ok(())
}

/// [B, B] mask: 1 where the two images of the batch are of different
/// classes (a picture is not asked to match its own text better than the text
/// of another image of its class, which says the same).
fn other_classes(classes: &[u32], device: Device) -> Tensor {
    let c = Tensor::from_slice(&classes.iter().map(|&c| c as i64).collect::<Vec<_>>());
    c.unsqueeze(1)
        .ne_tensor(&c.unsqueeze(0))
        .to_kind(tch::Kind::Float)
        .to_device(device)
}

/// Eight fixed captions for the sample grids: four from training classes and
/// four from held-out classes (where there are any).
fn sample_captions(data: &TrainingSet, embeddings: &Tensor) -> Vec<(String, Tensor)> {
    let mut picks = Vec::new();
    for held_out in [false, true] {
        let mut seen = std::collections::HashSet::new();
        for i in data.split(held_out) {
            if picks.len() >= if held_out { 8 } else { 4 } {
                break;
            }
            if seen.insert(data.classes[i]) {
                picks.push(i);
            }
        }
    }
    picks
        .into_iter()
        .map(|i| {
            (
                data.captions[i][0].clone(),
                embeddings.get(i as i64).get(0).to_device(Device::Cpu),
            )
        })
        .collect()
}

impl Trainer for GanTrainer<'_> {
    fn position(&self) -> &Position {
        &self.position
    }

    fn checkpoint_parts(&mut self) -> checkpoint::Parts<'_> {
        let mut networks = vec![
            ("generator", &self.model.generator.vs),
            ("discriminator", &self.model.discriminator.vs),
        ];
        if let Some(average) = &self.average {
            networks.push(("generator_average", &average.vs));
        }
        checkpoint::Parts {
            // How long to train, and G's average, may change between
            // invocations of a run ([`GanTrainer::resume`] starts an average
            // the checkpoint does not hold at G).
            settings: checkpoint::Settings::of(&self.config, |c| {
                (c.steps, c.epochs, c.g_ema) = (None, 0, 0.0)
            }),
            networks,
            optimizers: vec![("opt_g", &mut self.opt_g), ("opt_d", &mut self.opt_d)],
            position: &mut self.position,
        }
    }

    fn resumed(&mut self) {
        self.replay_order();
    }

    /// Continues the run saved in `path`. G's average comes back where the
    /// checkpoint holds one; a run that takes up `--g-ema` only now starts
    /// it at G (and one that leaves it out drops it).
    fn resume(&mut self, path: &Path) -> Result<()> {
        let average = self.average.take();
        let saved = checkpoint::resume(path, self.checkpoint_parts())?;
        if let Some(average) = average {
            let names = checkpoint::named(&average.vs, "generator_average");
            if names.iter().all(|(name, _)| saved.contains_key(name)) {
                checkpoint::restore(&names, &saved)?;
            } else {
                average.start_at_g();
            }
            self.average = Some(average);
        }
        self.resumed();
        Ok(())
    }

    fn length(&self) -> RunLength {
        RunLength {
            train_images: self.train.len(),
            batch: self.config.batch,
            steps: self.config.steps,
            epochs: self.config.epochs,
        }
    }

    fn train_step(&mut self) -> Result<StepLosses> {
        self.gan_step()
    }

    fn end_of_epoch(&mut self, epoch: u64, run: &Run) -> Result<BTreeMap<String, f64>> {
        self.sample_grid(&run.samples().join(format!("epoch-{epoch:04}.png")))?;
        Ok(BTreeMap::new())
    }
}
