//! The text encoder φ and image encoder θ, trained as a deep symmetric
//! structured joint embedding (paper.md §1):
//!
//! L = 1/B² Σ_i Σ_{j≠i} [max(0, 1 + F(v_i,t_j) − F(v_i,t_i)) + max(0, 1 + F(v_j,t_i) − F(v_i,t_i))]
//!
//! over a batch of one (image, caption) pair from each of B distinct classes,
//! F(v, t) = θ(v)ᵀ φ(t). RMSprop lr 7e-4, ×0.98 per epoch, B = 40 classes
//! (or all training classes where there are fewer).
//!
//! [`Matching::Image`] is our one departure, for data whose captions state
//! more than the class: the B pairs are B distinct images, so a caption must
//! single out its own image among others of the same class. The embedding then
//! has to carry every attribute a caption states (on procedural flowers the
//! centre colour and petal count, which class-level matching has no reason to
//! keep: the class is petal colour x shape).

use super::checkpoint::Position;
use super::optim::Optimizer;
use super::{checkpoint, Run, RunLength, StepLosses, Trainer};
use crate::text;
use crate::training_set::{Rng, TrainingSet};
use crate::weights::Model;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// What the B pairs of a batch are drawn from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Matching {
    /// One pair from each of B distinct classes (the paper).
    #[default]
    Class,
    /// B distinct images, any classes.
    Image,
}

impl Matching {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "class" => Self::Class,
            "image" => Self::Image,
            _ => bail!("unknown matching '{s}' (class, image)"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Class => "class",
            Self::Image => "image",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JointConfig {
    pub dataset: String,
    /// Pairs per batch: one from each of this many classes, or this many
    /// distinct images (see `matching`).
    pub batch_classes: usize,
    #[serde(default)]
    pub matching: Matching,
    pub epochs: u64,
    pub steps: Option<u64>,
    pub lr: f64,
    /// Learning-rate factor per epoch.
    pub lr_decay: f64,
    pub seed: u64,
    /// Measure zero-shot accuracy every this many epochs (0: only at the end).
    pub eval_every_epochs: u64,
    /// With image matching: half of each batch are siblings of the other
    /// half, images whose content attributes all agree but one (data with
    /// attributes only, e.g. procedural flowers). Random batches almost never
    /// hold two images that differ only in, say, the petal count, so nothing
    /// makes the embedding keep it; siblings do.
    #[serde(default)]
    pub hard_negatives: bool,
}

impl JointConfig {
    pub fn paper(dataset: &str) -> Self {
        Self {
            dataset: dataset.to_string(),
            batch_classes: 40,
            matching: Matching::Class,
            epochs: 300,
            steps: None,
            lr: 7e-4,
            lr_decay: 0.98,
            seed: 0,
            eval_every_epochs: 10,
            hard_negatives: false,
        }
    }
}

/// The symmetric structured hinge loss on a compatibility matrix F[i, j] =
/// F(v_i, t_j) whose diagonal holds the matching pairs.
pub fn symmetric_hinge(compat: &Tensor) -> Tensor {
    let b = compat.size()[0];
    let diag = compat.diagonal(0, 0, 1);
    // Row i, column j: text j ranked against image i's own text.
    let by_image = (compat - diag.unsqueeze(1) + 1.0).relu();
    // F(v_j, t_i) is compat[j, i]: image j ranked against text i's own image.
    let by_text = (compat - diag.unsqueeze(0) + 1.0).relu();
    let off_diagonal = Tensor::ones([b, b], (Kind::Float, compat.device()))
        - Tensor::eye(b, (Kind::Float, compat.device()));
    ((by_image + by_text) * off_diagonal).sum(Kind::Float) / (b * b) as f64
}

pub struct JointTrainer<'a> {
    pub model: Model,
    pub config: JointConfig,
    data: &'a TrainingSet,
    by_class: BTreeMap<u32, Vec<usize>>,
    train: Vec<usize>,
    /// Training images by their content attributes (for hard negatives).
    by_content: BTreeMap<Vec<String>, Vec<usize>>,
    opt_text: Optimizer,
    opt_image: Optimizer,
    position: Position,
    pub last_zero_shot: Option<f64>,
}

impl<'a> JointTrainer<'a> {
    pub fn new(model: Model, mut config: JointConfig, data: &'a TrainingSet) -> Result<Self> {
        let train = data.split(false);
        let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for i in &train {
            by_class.entry(data.classes[*i]).or_default().push(*i);
        }
        if by_class.len() < 2 {
            bail!(
                "the joint embedding needs at least two training classes (found {})",
                by_class.len()
            );
        }
        config.batch_classes = match config.matching {
            Matching::Class => config.batch_classes.min(by_class.len()),
            Matching::Image => config.batch_classes.min(train.len()),
        }
        .max(2);
        let mut by_content: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
        if config.hard_negatives {
            if config.matching != Matching::Image {
                bail!("hard negatives need image matching (--match image)");
            }
            for &i in &train {
                let key = content_key(data, i).ok_or_else(|| {
                    anyhow::anyhow!(
                        "hard negatives need the content attributes of every image ({} has none: not procedural flowers?)",
                        data.names[i]
                    )
                })?;
                by_content.entry(key).or_default().push(i);
            }
        }
        let opt_text = Optimizer::rmsprop(&model.text_encoder.vs, config.lr);
        let opt_image = Optimizer::rmsprop(&model.image_encoder.vs, config.lr);
        Ok(Self {
            by_content,
            model,
            data,
            by_class,
            train,
            opt_text,
            opt_image,
            position: Position::start(config.seed ^ 0xA54F_F53A_5F1D_36F1),
            last_zero_shot: None,
            config,
        })
    }

    /// Draws the images of one batch (each gets one of its captions).
    pub fn batch_images(&mut self) -> Vec<usize> {
        let b = self.config.batch_classes;
        match self.config.matching {
            Matching::Class => {
                let mut classes: Vec<u32> = self.by_class.keys().copied().collect();
                self.position.rng.shuffle(&mut classes);
                classes.truncate(b);
                classes
                    .iter()
                    .map(|class| {
                        let members = &self.by_class[class];
                        members[self.position.rng.below(members.len())]
                    })
                    .collect()
            }
            Matching::Image => {
                // b distinct draws (a partial Fisher-Yates over the indices).
                let anchors = if self.config.hard_negatives {
                    b.div_ceil(2)
                } else {
                    b
                };
                let mut pool = self.train.clone();
                for k in 0..anchors {
                    let j = k + self.position.rng.below(pool.len() - k);
                    pool.swap(k, j);
                }
                pool.truncate(anchors);
                if self.config.hard_negatives {
                    let mut batch = pool.clone();
                    for &anchor in &pool {
                        if batch.len() == b {
                            break;
                        }
                        if let Some(s) = self.sibling(anchor, &batch) {
                            batch.push(s);
                        }
                    }
                    // Where no sibling exists, any other image fills the place.
                    while batch.len() < b {
                        let i = self.train[self.position.rng.below(self.train.len())];
                        if !batch.contains(&i) {
                            batch.push(i);
                        }
                    }
                    return batch;
                }
                pool
            }
        }
    }

    /// A training image whose content attributes equal `anchor`'s in all but
    /// one (chosen at random), not already in `taken`.
    fn sibling(&mut self, anchor: usize, taken: &[usize]) -> Option<usize> {
        let key = content_key(self.data, anchor)?;
        let mut attributes: Vec<usize> = (0..key.len()).collect();
        self.position.rng.shuffle(&mut attributes);
        for a in attributes {
            let others: Vec<&Vec<usize>> = self
                .by_content
                .iter()
                .filter(|(k, _)| {
                    k[a] != key[a]
                        && k.iter()
                            .zip(&key)
                            .enumerate()
                            .all(|(j, (x, y))| j == a || x == y)
                })
                .map(|(_, v)| v)
                .collect();
            if others.is_empty() {
                continue;
            }
            let members = others[self.position.rng.below(others.len())];
            let pick = members[self.position.rng.below(members.len())];
            if !taken.contains(&pick) {
                return Some(pick);
            }
        }
        None
    }

    pub fn joint_step(&mut self) -> Result<StepLosses> {
        let device = self.model.device;
        let epoch = self.position.step / self.steps_per_epoch();
        let lr = self.config.lr * self.config.lr_decay.powi(epoch.min(10_000) as i32);
        self.opt_text.lr = lr;
        self.opt_image.lr = lr;

        let images = self.batch_images();
        let mut captions = Vec::with_capacity(images.len());
        for &i in &images {
            let options = &self.data.captions[i];
            captions.push(text::encode(
                &options[self.position.rng.below(options.len())],
            )?);
        }
        let b = images.len() as i64;
        let v = self.model.image_encoder.net.forward_t(
            &self
                .data
                .image_batch(&images, true, &mut self.position.rng)
                .to_device(device),
            true,
        );
        let one_hot = crate::model::text_encoder::caption_batch(&captions, device);
        let t = self.model.text_encoder.net.forward_t(&one_hot, true);
        let compat = v.matmul(&t.transpose(0, 1));
        let loss = symmetric_hinge(&compat);
        self.opt_text.zero_grad();
        self.opt_image.zero_grad();
        loss.backward();
        self.opt_text.step();
        self.opt_image.step();
        self.position.step += 1;
        // Batch accuracy: how often each image's own caption scores highest.
        let hits = compat
            .argmax(1, false)
            .eq_tensor(&Tensor::arange(b, (Kind::Int64, device)));
        let mut losses = StepLosses::default();
        losses.term("loss", &loss);
        losses.term("batch_top1", &hits.to_kind(Kind::Float).mean(Kind::Float));
        losses.value("lr", lr);
        Ok(losses)
    }
}

/// A sample's content attributes (what captions state), where it has them.
fn content_key(data: &TrainingSet, i: usize) -> Option<Vec<String>> {
    crate::eval::CONTENT
        .iter()
        .map(|(a, _)| data.attributes[i].get(*a).cloned())
        .collect()
}

/// Zero-shot top-1 (paper.md §1): each image of the chosen split is given the
/// class whose captions score highest on average, class(v) = argmax_y
/// mean_{t ∈ T(y)} F(v, t), among the split's classes. At most
/// `per_class` images (and their captions) of each class are used.
pub fn zero_shot_top1(
    model: &Model,
    data: &TrainingSet,
    held_out: bool,
    per_class: usize,
) -> Result<f64> {
    let device = model.device;
    let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for i in data.split(held_out) {
        let members = by_class.entry(data.classes[i]).or_default();
        if members.len() < per_class {
            members.push(i);
        }
    }
    if by_class.len() < 2 {
        bail!(
            "zero-shot needs at least two classes in the split (found {})",
            by_class.len()
        );
    }
    let classes: Vec<u32> = by_class.keys().copied().collect();
    // Class vectors: the mean embedding of all captions of the class's images.
    let mut class_vectors = Vec::with_capacity(classes.len());
    for class in &classes {
        let encoded: Vec<text::EncodedCaption> = by_class[class]
            .iter()
            .flat_map(|&i| data.captions[i].iter())
            .map(|c| text::encode(c))
            .collect::<Result<_, _>>()?;
        if encoded.is_empty() {
            anyhow::bail!("class {class} has no captions");
        }
        let e = model
            .text_encoder
            .net
            .embed(&encoded, device, &mut |_, _| {});
        class_vectors.push(e.mean_dim(0, false, Kind::Float));
    }
    let class_matrix = Tensor::stack(&class_vectors, 0);
    let mut correct = 0usize;
    let mut total = 0usize;
    let mut rng = Rng(0);
    for (c, class) in classes.iter().enumerate() {
        for chunk in by_class[class].chunks(256) {
            let images = data.image_batch(chunk, false, &mut rng).to_device(device);
            let v = tch::no_grad(|| model.image_encoder.net.forward_t(&images, false));
            let predicted = Vec::<i64>::try_from(
                v.matmul(&class_matrix.transpose(0, 1))
                    .argmax(1, false)
                    .to_device(Device::Cpu),
            )?;
            correct += predicted.iter().filter(|&&p| p as usize == c).count();
            total += chunk.len();
        }
    }
    Ok(correct as f64 / total as f64)
}

impl Trainer for JointTrainer<'_> {
    fn position(&self) -> &Position {
        &self.position
    }

    fn checkpoint_parts(&mut self) -> checkpoint::Parts<'_> {
        checkpoint::Parts {
            settings: checkpoint::Settings::of(&self.config, |c| (c.steps, c.epochs) = (None, 0)),
            networks: vec![
                ("text_encoder", &self.model.text_encoder.vs),
                ("image_encoder", &self.model.image_encoder.vs),
            ],
            optimizers: vec![
                ("opt_text", &mut self.opt_text),
                ("opt_image", &mut self.opt_image),
            ],
            position: &mut self.position,
        }
    }

    fn length(&self) -> RunLength {
        RunLength {
            train_images: self.train.len(),
            batch: self.config.batch_classes,
            steps: self.config.steps,
            epochs: self.config.epochs,
        }
    }

    fn train_step(&mut self) -> Result<StepLosses> {
        self.joint_step()
    }

    fn end_of_epoch(&mut self, epoch: u64, _run: &Run) -> Result<BTreeMap<String, f64>> {
        let mut out = BTreeMap::new();
        let every = self.config.eval_every_epochs;
        if every > 0 && epoch.is_multiple_of(every) && self.data.class_count(true) >= 2 {
            let top1 = zero_shot_top1(&self.model, self.data, true, 50)?;
            self.last_zero_shot = Some(top1);
            out.insert("zero_shot_top1".to_string(), top1);
        }
        Ok(out)
    }
}
