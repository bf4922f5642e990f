//! Teaching a trained text encoder new phrasings without moving its embedding
//! space, so the G and D trained on that space stay valid.
//!
//! The teacher is the model's text encoder as it is; the student starts as a
//! copy. Both see the same images: the teacher with the captions it was
//! trained on (e.g. procedural flowers' `classic` grammar), the student with
//! those and with captions in new phrasings (the `rich` grammar). Targets:
//!
//! - a caption the teacher knows: the teacher's own φ(t), so what G already
//!   draws for it does not change;
//! - a caption in a new phrasing: the mean of the teacher's φ over the
//!   image's own captions. Under a squared loss the student then learns the
//!   mean of that over the images the new caption fits, E[φ̄(image) | t]:
//!   a caption stating only the colour goes where the images of that colour
//!   are, one stating all four attributes where those flowers are. G was
//!   trained on means of 4 caption embeddings per image (paper.md §4), so
//!   these targets lie where G has learned to draw.
//!
//! The loss is the squared error per dimension in units of the dimension's
//! spread over the targets (the caption-dependent part is what G reads, and
//! raw φ has a tiny scale); `explained` = 1 − loss is the share of that
//! variance the student gets right.

use super::checkpoint::Position;
use super::optim::Optimizer;
use super::{checkpoint, embed_captions, RunLength, StepLosses, Trainer};
use crate::eval::{CROSS_CHECK_PHRASINGS, HELD_OUT_PHRASINGS};
use crate::text;
use crate::training_set::{Rng, TrainingSet};
use crate::weights::Model;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DistilConfig {
    /// The student's dataset (its new phrasings) and the teacher's.
    pub dataset: String,
    pub teacher_dataset: String,
    pub batch: usize,
    pub steps: u64,
    pub lr: f64,
    /// Share of each batch drawn from the teacher's own captions.
    pub own_captions: f64,
    /// Share of the captions [`rephrase`]d before the student reads them
    /// (their targets unchanged).
    #[serde(default)]
    pub rephrase: f64,
    /// Share of the captions [`perturb`]ed before the student reads them
    /// (after any rephrasing; their targets unchanged).
    #[serde(default)]
    pub perturb: f64,
    /// Share of the perturbed captions written as a [`terse`] list instead.
    #[serde(default)]
    pub terse: f64,
    /// Share of the words [`perturb`] puts in that are [`MadeUpWords`]
    /// instead of [`CHATTER`]'s.
    #[serde(default)]
    pub made_up: f64,
    /// Share of the loss measured as G reads φ (through its text
    /// projection, per feature over the spread of the image means' features)
    /// instead of per dimension of φ.
    #[serde(default)]
    pub g_weight: f64,
    pub seed: u64,
}

impl DistilConfig {
    pub fn new(dataset: &str, teacher_dataset: &str) -> Self {
        Self {
            dataset: dataset.to_string(),
            teacher_dataset: teacher_dataset.to_string(),
            batch: 64,
            steps: 3000,
            lr: 1e-4,
            own_captions: 0.5,
            rephrase: 0.0,
            perturb: 0.0,
            terse: 0.0,
            made_up: 0.0,
            g_weight: 0.0,
            seed: 0,
        }
    }
}

pub struct DistilTrainer<'a> {
    /// The model whose text encoder is being taught (everything else as loaded).
    pub model: Model,
    pub config: DistilConfig,
    student: &'a TrainingSet,
    teacher_captions: &'a TrainingSet,
    /// The teacher's φ of each image's own captions: [N, K, E].
    targets: Tensor,
    /// Their mean per image: [N, E].
    image_targets: Tensor,
    /// 1 / the spread of each dimension over the image means: [E].
    inverse_spread: Tensor,
    /// The same of G's text features of the image means: [nt].
    inverse_feature_spread: Tensor,
    train: Vec<usize>,
    /// What `--made-up` puts in (only where asked for): no word of either
    /// caption set or of a sentence form `gantry eval` holds out.
    made_up: Option<MadeUpWords>,
    opt: Optimizer,
    position: Position,
}

impl<'a> DistilTrainer<'a> {
    /// `teacher` holds the text encoder to copy (the student is `model`, which
    /// starts equal to it); `student` and `teacher_captions` are the same images
    /// with the new and the known captions.
    pub fn new(
        mut model: Model,
        config: DistilConfig,
        student: &'a TrainingSet,
        teacher_captions: &'a TrainingSet,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        if student.len() != teacher_captions.len() || student.names != teacher_captions.names {
            bail!(
                "the two caption sets must hold the same images in the same order ({} has {} images, {} has {})",
                config.dataset,
                student.len(),
                config.teacher_dataset,
                teacher_captions.len()
            );
        }
        if !(0.0..=1.0).contains(&config.own_captions) {
            bail!("the share of own captions must be in [0, 1]");
        }
        if !(0.0..=1.0).contains(&config.rephrase) {
            bail!("the share of rephrased captions must be in [0, 1]");
        }
        if !(0.0..=1.0).contains(&config.perturb) {
            bail!("the share of perturbed captions must be in [0, 1]");
        }
        if !(0.0..=1.0).contains(&config.terse) {
            bail!("the share of terse captions must be in [0, 1]");
        }
        if !(0.0..=1.0).contains(&config.g_weight) {
            bail!("the share of the loss measured as G reads φ must be in [0, 1]");
        }
        if !(0.0..=1.0).contains(&config.made_up) {
            bail!("the share of made-up words must be in [0, 1]");
        }
        if config.terse > 0.0 && config.perturb == 0.0 {
            bail!("--terse is a share of the perturbed captions: pass --perturb too");
        }
        if config.made_up > 0.0 && config.perturb == 0.0 {
            bail!("--made-up is a share of the words perturbing puts in: pass --perturb too");
        }
        let train = student.split(false);
        if train.is_empty() {
            bail!("no images in training classes");
        }
        let per_image = teacher_captions
            .captions
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .max(1);
        let targets = embed_captions(
            &model.text_encoder.net,
            teacher_captions,
            per_image,
            model.device,
            progress,
        )?;
        let image_targets = targets.mean_dim(1, false, Kind::Float);
        let spread = super::rows(&image_targets, &train)
            .std_dim(0, true, false)
            .clamp_min(1e-6);
        let feature_spread = tch::no_grad(|| {
            super::rows(&model.generator.net.text_features(&image_targets), &train)
                .std_dim(0, true, false)
                .clamp_min(1e-6)
        });
        // G reads φ here but is not taught.
        model.generator.vs.freeze();
        let opt = Optimizer::adam(&model.text_encoder.vs, config.lr, 0.9);
        let made_up = (config.made_up > 0.0).then(|| {
            MadeUpWords::avoiding(
                student
                    .captions
                    .iter()
                    .chain(&teacher_captions.captions)
                    .flatten()
                    .map(String::as_str)
                    .chain(
                        HELD_OUT_PHRASINGS
                            .iter()
                            .chain(&CROSS_CHECK_PHRASINGS)
                            .map(|(form, _)| *form),
                    )
                    .flat_map(|text| text.split(|c: char| !c.is_alphanumeric()))
                    .filter(|w| !w.is_empty()),
            )
        });
        Ok(Self {
            made_up,
            inverse_spread: spread.reciprocal(),
            inverse_feature_spread: feature_spread.reciprocal(),
            model,
            student,
            teacher_captions,
            targets,
            image_targets,
            train,
            opt,
            position: Position::start(config.seed ^ 0x7EAC_4E25_D157_11C3),
            config,
        })
    }

    /// One batch: (caption, target row) pairs.
    fn batch(&mut self) -> Result<(Vec<text::EncodedCaption>, Tensor)> {
        let per_image = self.targets.size()[1];
        let mut captions = Vec::with_capacity(self.config.batch);
        let mut rows = Vec::with_capacity(self.config.batch);
        for _ in 0..self.config.batch {
            let i = self.train[self.position.rng.below(self.train.len())];
            let own = (self.position.rng.below(1 << 20) as f64)
                < self.config.own_captions * (1 << 20) as f64;
            let options = if own {
                &self.teacher_captions.captions[i]
            } else {
                &self.student.captions[i]
            };
            if options.is_empty() {
                bail!("sample {} ({}) has no captions", i, self.student.names[i]);
            }
            let k = self.position.rng.below(options.len());
            // A share of the captions, the teacher's own too (their target
            // stays the teacher's φ of the caption as written), reach the
            // student rephrased and perturbed. The draws are taken only where
            // asked for, so that earlier runs take the batches they took.
            let rephrased = (!own || self.config.rephrase > 0.0)
                && self.position.rng.uniform() < self.config.rephrase;
            let mut caption = if rephrased {
                rephrase(&options[k], &mut self.position.rng)
            } else {
                options[k].clone()
            };
            if self.config.perturb > 0.0 && self.position.rng.uniform() < self.config.perturb {
                caption =
                    if self.config.terse > 0.0 && self.position.rng.uniform() < self.config.terse {
                        terse(&caption, &mut self.position.rng)
                    } else {
                        let (share, made_up) = (self.config.made_up, &self.made_up);
                        perturb_with(&caption, &mut self.position.rng, &mut |rng| match made_up {
                            Some(words) if rng.uniform() < share => words.draw(rng),
                            _ => chatter(rng),
                        })
                    };
            }
            captions.push(text::encode(&caption)?);
            rows.push(if own {
                self.targets.get(i as i64).get(k as i64 % per_image)
            } else {
                self.image_targets.get(i as i64)
            });
        }
        Ok((captions, Tensor::stack(&rows, 0)))
    }

    pub fn distil_step(&mut self) -> Result<StepLosses> {
        self.opt.lr = self.config.lr;
        let (captions, target) = self.batch()?;
        let one_hot = crate::model::text_encoder::caption_batch(&captions, self.model.device);
        let phi = self.model.text_encoder.net.forward_t(&one_hot, true);
        let w = self.config.g_weight;
        let mut loss = ((&phi - &target) * &self.inverse_spread)
            .square()
            .mean(Kind::Float)
            * (1.0 - w);
        if w > 0.0 {
            let g = &self.model.generator.net;
            let as_g_reads =
                (g.text_features(&phi) - g.text_features(&target)) * &self.inverse_feature_spread;
            loss += as_g_reads.square().mean(Kind::Float) * w;
        }
        self.opt.zero_grad();
        loss.backward();
        self.opt.step();
        self.position.step += 1;
        let mut losses = StepLosses::default();
        losses.term("loss", &loss);
        losses.value("explained", 1.0 - loss.double_value(&[]));
        Ok(losses)
    }
}

impl Trainer for DistilTrainer<'_> {
    fn position(&self) -> &Position {
        &self.position
    }

    fn checkpoint_parts(&mut self) -> checkpoint::Parts<'_> {
        checkpoint::Parts {
            settings: checkpoint::Settings::of(&self.config, |c| c.steps = 0),
            networks: vec![("text_encoder", &self.model.text_encoder.vs)],
            optimizers: vec![("opt", &mut self.opt)],
            position: &mut self.position,
        }
    }

    fn length(&self) -> RunLength {
        RunLength {
            train_images: self.train.len(),
            batch: self.config.batch,
            steps: Some(self.config.steps),
            epochs: 0,
        }
    }

    fn train_step(&mut self) -> Result<StepLosses> {
        self.distil_step()
    }
}

/// Words people put into a caption that state nothing about the picture.
const FILLERS: [&str; 16] = [
    "well", "um", "oh", "just", "really", "very", "quite", "like", "hmm", "ok", "yes", "now",
    "here", "this", "nice", "lovely",
];

/// A caption as people vary theirs, stating the same: its clauses (split
/// at `,` `;` `:` `.`) in a random order, and one or two filler words put
/// in at random places.
pub fn rephrase(caption: &str, rng: &mut Rng) -> String {
    let mut clauses: Vec<&str> = caption
        .split([',', ';', ':', '.'])
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    rng.shuffle(&mut clauses);
    let joined = clauses.join(", ");
    let mut words: Vec<&str> = joined.split(' ').collect();
    for _ in 0..1 + rng.below(2) {
        let at = rng.below(words.len() + 1);
        words.insert(at, FILLERS[rng.below(FILLERS.len())]);
    }
    words.join(" ")
}

/// Short words a caption can lose and still state all it did.
const SMALL_WORDS: [&str; 14] = [
    "a", "an", "the", "with", "and", "of", "is", "are", "has", "this", "its", "that", "it", "there",
];

/// Words of chat and requests that state nothing about the picture, none of
/// them a word of the held-out sentence forms `gantry eval` reads with
/// (its six and the six of its cross-check; `tests/training.rs` checks).
const CHATTER: [&str; 36] = [
    "hey",
    "hi",
    "okay",
    "alright",
    "sure",
    "maybe",
    "actually",
    "kind of",
    "sort of",
    "pretty",
    "honestly",
    "basically",
    "simply",
    "show me",
    "draw",
    "make",
    "give me",
    "want",
    "need",
    "some",
    "see",
    "got",
    "exactly",
    "perhaps",
    "definitely",
    "super",
    "cute",
    "thanks",
    "thank you",
    "imagine",
    "probably",
    "you know",
    "stuff",
    "wow",
    "one",
    "thing",
];

/// Where clauses meet, as people type them.
const SEPARATORS: [&str; 7] = [",", ";", ".", ":", " -", "", " /"];

/// A caption as a person might type what a grammar wrote, stating the same:
/// small words ("a", "the", "with", ...) left out now and then, one to three
/// words of chat put in at random places, and the punctuation between
/// clauses changed (or dropped). Unlike [`rephrase`]'s sixteen fillers, the
/// point is words and joins the text encoder has not met, so that it learns
/// to read past what it does not know.
pub fn perturb(caption: &str, rng: &mut Rng) -> String {
    perturb_with(caption, rng, &mut chatter)
}

/// One of the [`CHATTER`] words.
fn chatter(rng: &mut Rng) -> String {
    CHATTER[rng.below(CHATTER.len())].to_string()
}

/// [`perturb`] with the words put in drawn by `put_in`.
pub fn perturb_with(
    caption: &str,
    rng: &mut Rng,
    put_in: &mut dyn FnMut(&mut Rng) -> String,
) -> String {
    let mut words: Vec<String> = Vec::new();
    for word in caption.split_whitespace() {
        let bare = word.trim_end_matches([',', ';', ':', '.']);
        let tail = &word[bare.len()..];
        let small = SMALL_WORDS.contains(&bare.to_lowercase().as_str());
        if small && tail.is_empty() && rng.below(10) < 3 {
            continue;
        }
        if !tail.is_empty() && rng.below(2) == 0 {
            words.push(format!("{bare}{}", SEPARATORS[rng.below(SEPARATORS.len())]));
        } else {
            words.push(word.to_string());
        }
    }
    if words.is_empty() {
        return caption.to_string();
    }
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(words.len() + 1);
        let word = put_in(rng);
        words.insert(at, word);
    }
    words.join(" ")
}

/// Words made up of syllables ("brenolt", "skivu"), as many as a person's
/// words that no caption has: what [`perturb`] puts in with `--made-up`, so
/// that the text encoder learns to read past any word it never met rather
/// than past [`CHATTER`]'s 36. A made-up word is none of the words it is
/// told to avoid and contains none of three letters or more (so it neither
/// states an attribute nor brings in a word of a held-out sentence form).
pub struct MadeUpWords {
    avoid: Vec<String>,
}

const ONSETS: [&str; 32] = [
    "", "", "b", "br", "c", "ch", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "l", "m", "n",
    "p", "pl", "qu", "r", "s", "sh", "sk", "sl", "st", "t", "tr", "v", "w", "z",
];
const VOWELS: [&str; 10] = ["a", "e", "i", "o", "u", "ai", "ea", "oo", "ou", "y"];
const CODAS: [&str; 12] = ["", "", "", "n", "r", "s", "t", "l", "m", "ck", "nd", "st"];

impl MadeUpWords {
    /// Made-up words that avoid `words` (lowercased).
    pub fn avoiding<'w>(words: impl IntoIterator<Item = &'w str>) -> Self {
        let mut avoid: Vec<String> = words.into_iter().map(str::to_lowercase).collect();
        avoid.sort();
        avoid.dedup();
        Self { avoid }
    }

    /// Whether `word` may be put in.
    fn allows(&self, word: &str) -> bool {
        !self
            .avoid
            .iter()
            .any(|a| a == word || (a.len() >= 3 && word.contains(a.as_str())))
    }

    /// One made-up word of one to three syllables.
    pub fn draw(&self, rng: &mut Rng) -> String {
        loop {
            let mut word = String::new();
            for _ in 0..1 + rng.below(3) {
                word.push_str(ONSETS[rng.below(ONSETS.len())]);
                word.push_str(VOWELS[rng.below(VOWELS.len())]);
                word.push_str(CODAS[rng.below(CODAS.len())]);
            }
            if word.len() >= 2 && self.allows(&word) {
                return word;
            }
        }
    }
}

/// What joins the items of a terse list, one kind per caption as people
/// keep to theirs ("=" and "-" left out: held-out forms are marked by them).
const LIST_JOINS: [&str; 9] = [",", ", ", ";", "; ", "/", " / ", " | ", "+", ". "];

/// A caption as a person types a list of what they want, stating the same:
/// every small word left out and the punctuation dropped, the words that are
/// left joined now by a space and now by one symbol (`,` `;` `/` `|` `+`
/// ...), often without spaces ("red,round petals,5,yellow centre"). Teaches
/// the text encoder to read attributes apart from the sentence around them.
pub fn terse(caption: &str, rng: &mut Rng) -> String {
    let words: Vec<&str> = caption
        .split(|c: char| c.is_whitespace() || ",;:.".contains(c))
        .filter(|w| !w.is_empty() && !SMALL_WORDS.contains(&w.to_lowercase().as_str()))
        .collect();
    let Some((first, rest)) = words.split_first() else {
        return caption.to_string();
    };
    let join = LIST_JOINS[rng.below(LIST_JOINS.len())];
    let mut out = first.to_string();
    for word in rest {
        out.push_str(if rng.below(2) == 0 { join } else { " " });
        out.push_str(word);
    }
    out
}

/// A caption reworded as people type the same thing, stating all it did
/// and nothing more: its clauses reordered with a filler word now and then
/// ([`rephrase`], three times in ten), then written as a [`terse`] list (one
/// time in four) or [`perturb`]ed (small words left out, chat put in, joins
/// changed). What G reads in training with `--reworded`.
pub fn reword(caption: &str, rng: &mut Rng) -> String {
    let caption = if rng.below(10) < 3 {
        rephrase(caption, rng)
    } else {
        caption.to_string()
    };
    if rng.below(4) == 0 {
        terse(&caption, rng)
    } else {
        perturb(&caption, rng)
    }
}

/// The student's error on held captions, in the loss's units, without
/// training: how far a text encoder's φ lies from the teacher's targets for
/// the new phrasings of the images in `indices` (for reports and tests).
pub fn new_phrasing_error(trainer: &DistilTrainer, indices: &[usize]) -> Result<f64> {
    let mut total = 0.0;
    let mut n = 0usize;
    for &i in indices {
        let captions: Vec<text::EncodedCaption> = trainer.student.captions[i]
            .iter()
            .map(|c| text::encode(c))
            .collect::<Result<_, _>>()?;
        if captions.is_empty() {
            continue;
        }
        let phi =
            trainer
                .model
                .text_encoder
                .net
                .embed(&captions, trainer.model.device, &mut |_, _| {});
        let err = ((phi - trainer.image_targets.get(i as i64).unsqueeze(0))
            * &trainer.inverse_spread)
            .square()
            .mean_dim(1, false, Kind::Float)
            .sum(Kind::Float)
            .to_device(Device::Cpu)
            .double_value(&[]);
        total += err;
        n += captions.len();
    }
    Ok(if n == 0 { 0.0 } else { total / n as f64 })
}
