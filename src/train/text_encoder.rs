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
//!
//! Two more options beyond the paper, off by default: an attribute loss
//! ([`AttributeHeads`]) for data whose samples carry the attributes their
//! captions state, and word dropout on the captions (text-side augmentation).

use super::checkpoint::Position;
use super::optim::Optimizer;
use super::siblings::Siblings;
use super::{checkpoint, Run, RunLength, StepLosses, Trainer};
use crate::text;
use crate::training_set::{Rng, TrainingSet};
use crate::weights::Model;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::{nn, Device, Kind, Tensor};

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
    /// Weight of the attribute loss (0: none, the paper): see [`AttributeHeads`].
    #[serde(default)]
    pub attribute_loss: f64,
    /// Probability of dropping each word of a training caption (0: none, the
    /// paper). At least one word is always kept.
    #[serde(default)]
    pub word_dropout: f64,
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
            attribute_loss: 0.0,
            word_dropout: 0.0,
        }
    }
}

/// The symmetric structured hinge loss on a compatibility matrix F[i, j] =
/// F(v_i, t_j) whose diagonal holds the matching pairs.
pub fn symmetric_hinge(compat: &Tensor) -> Tensor {
    symmetric_hinge_where(compat, &off_diagonal(compat.size()[0], compat.device()))
}

/// [B, B] mask: 1 for every pair of two different items of the batch.
pub fn off_diagonal(b: i64, device: Device) -> Tensor {
    Tensor::ones([b, b], (Kind::Float, device)) - Tensor::eye(b, (Kind::Float, device))
}

/// [`symmetric_hinge`] over the pairs (i, j) where `mask` is 1 (a mask of
/// the off-diagonal pairs gives the plain loss); still divided by B².
pub fn symmetric_hinge_where(compat: &Tensor, mask: &Tensor) -> Tensor {
    let b = compat.size()[0];
    let diag = compat.diagonal(0, 0, 1);
    // Row i, column j: text j ranked against image i's own text.
    let by_image = (compat - diag.unsqueeze(1) + 1.0).relu();
    // F(v_j, t_i) is compat[j, i]: image j ranked against text i's own image.
    let by_text = (compat - diag.unsqueeze(0) + 1.0).relu();
    ((by_image + by_text) * mask).sum(Kind::Float) / (b * b) as f64
}

/// One linear read per content attribute (colour, shape, count, centre),
/// shared by both sides of the joint embedding and trained with cross-entropy
/// on φ(t) and on θ(v). The hinge loss only asks an attribute to be kept where
/// a batch happens to hold two images that differ in it; these reads ask for
/// every stated attribute on every step, as a direction the two sides share.
/// Training-only: the heads live in the checkpoint, not in the model.
pub struct AttributeHeads {
    vs: nn::VarStore,
    heads: Vec<nn::Linear>,
    /// Per content attribute, its values in the training set (sorted): the
    /// classes of its head.
    values: Vec<Vec<String>>,
}

impl AttributeHeads {
    fn new(
        data: &TrainingSet,
        train: &[usize],
        embedding_dim: i64,
        device: Device,
    ) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let mut heads = Vec::new();
        let mut values = Vec::new();
        for (attribute, label) in crate::eval::CONTENT {
            let mut seen = std::collections::BTreeSet::new();
            for &i in train {
                let value = data.attributes[i].get(attribute).ok_or_else(|| {
                    anyhow::anyhow!(
                        "the attribute loss needs the content attributes of every image ({} has no '{attribute}': not procedural flowers?)",
                        data.names[i]
                    )
                })?;
                seen.insert(value.clone());
            }
            heads.push(nn::linear(
                &vs.root() / label,
                embedding_dim,
                seen.len() as i64,
                Default::default(),
            ));
            values.push(seen.into_iter().collect());
        }
        Ok(Self { vs, heads, values })
    }

    /// Mean cross-entropy of every head on both sides, for the batch's images.
    fn loss(&self, data: &TrainingSet, images: &[usize], t: &Tensor, v: &Tensor) -> Tensor {
        let device = t.device();
        let mut total = Tensor::zeros([], (Kind::Float, device));
        for ((head, values), (attribute, _)) in self
            .heads
            .iter()
            .zip(&self.values)
            .zip(crate::eval::CONTENT)
        {
            let labels: Vec<i64> = images
                .iter()
                .map(|&i| {
                    let value = &data.attributes[i][attribute];
                    values.iter().position(|x| x == value).unwrap_or(0) as i64
                })
                .collect();
            let y = Tensor::from_slice(&labels).to_device(device);
            total = total
                + t.apply(head).cross_entropy_for_logits(&y)
                + v.apply(head).cross_entropy_for_logits(&y);
        }
        total / (2 * self.heads.len()) as f64
    }
}

/// `caption` with each word dropped with probability `p` (at least one kept).
fn drop_words(caption: &str, p: f64, rng: &mut Rng) -> String {
    let words: Vec<&str> = caption.split_whitespace().collect();
    if words.is_empty() {
        return caption.to_string();
    }
    let kept: Vec<&str> = words
        .iter()
        .copied()
        .filter(|_| rng.uniform() >= p)
        .collect();
    if kept.is_empty() {
        words[rng.below(words.len())].to_string()
    } else {
        kept.join(" ")
    }
}

pub struct JointTrainer<'a> {
    pub model: Model,
    pub config: JointConfig,
    data: &'a TrainingSet,
    by_class: BTreeMap<u32, Vec<usize>>,
    train: Vec<usize>,
    /// Each image's siblings (for hard negatives).
    siblings: Option<Siblings>,
    opt_text: Optimizer,
    opt_image: Optimizer,
    /// The attribute reads and their optimizer, with `attribute_loss` > 0.
    attribute_heads: Option<(AttributeHeads, Optimizer)>,
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
        if config.hard_negatives && config.matching != Matching::Image {
            bail!("hard negatives need image matching (--match image)");
        }
        let siblings = config
            .hard_negatives
            .then(|| Siblings::new(data, &train, "hard negatives"))
            .transpose()?;
        if !(config.lr_decay > 0.0 && config.lr_decay <= 1.0) {
            bail!(
                "the learning-rate decay per epoch must be in (0, 1] (got {})",
                config.lr_decay
            );
        }
        let opt_text = Optimizer::rmsprop(&model.text_encoder.vs, config.lr);
        let opt_image = Optimizer::rmsprop(&model.image_encoder.vs, config.lr);
        if !(0.0..1.0).contains(&config.word_dropout) {
            bail!(
                "word dropout must be in [0, 1) (got {})",
                config.word_dropout
            );
        }
        if !(config.attribute_loss >= 0.0 && config.attribute_loss.is_finite()) {
            bail!(
                "the attribute loss weight must be 0 or more (got {})",
                config.attribute_loss
            );
        }
        let attribute_heads = if config.attribute_loss > 0.0 {
            let heads = AttributeHeads::new(
                data,
                &train,
                model.text_encoder.net.config.embedding_dim,
                model.device,
            )?;
            let opt = Optimizer::rmsprop(&heads.vs, config.lr);
            Some((heads, opt))
        } else {
            None
        };
        Ok(Self {
            attribute_heads,
            siblings,
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
                if let Some(siblings) = &self.siblings {
                    let mut batch = pool.clone();
                    for &anchor in &pool {
                        if batch.len() == b {
                            break;
                        }
                        if let Some(s) = siblings.pick(anchor, &batch, &mut self.position.rng) {
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
            let caption = &options[self.position.rng.below(options.len())];
            captions.push(if self.config.word_dropout > 0.0 {
                text::encode(&drop_words(
                    caption,
                    self.config.word_dropout,
                    &mut self.position.rng,
                ))?
            } else {
                text::encode(caption)?
            });
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
        let hinge = symmetric_hinge(&compat);
        let mut losses = StepLosses::default();
        let loss = match &mut self.attribute_heads {
            Some((heads, opt)) => {
                opt.lr = lr;
                opt.zero_grad();
                let attributes = heads.loss(self.data, &images, &t, &v);
                losses.term("attribute_loss", &attributes);
                &hinge + attributes * self.config.attribute_loss
            }
            None => hinge.shallow_clone(),
        };
        self.opt_text.zero_grad();
        self.opt_image.zero_grad();
        loss.backward();
        self.opt_text.step();
        self.opt_image.step();
        if let Some((_, opt)) = &mut self.attribute_heads {
            opt.step();
        }
        self.position.step += 1;
        // Batch accuracy: how often each image's own caption scores highest.
        let hits = compat
            .argmax(1, false)
            .eq_tensor(&Tensor::arange(b, (Kind::Int64, device)));
        losses.term("loss", &hinge);
        losses.term("batch_top1", &hits.to_kind(Kind::Float).mean(Kind::Float));
        losses.value("lr", lr);
        Ok(losses)
    }
}

/// A sample's content attributes (what captions state), where it has them.
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
        let (heads, opt_heads) = match &mut self.attribute_heads {
            Some((heads, opt)) => (
                Some(("attribute_heads", &heads.vs)),
                Some(("opt_attribute_heads", opt)),
            ),
            None => (None, None),
        };
        checkpoint::Parts {
            settings: checkpoint::Settings::of(&self.config, |c| (c.steps, c.epochs) = (None, 0)),
            networks: [
                ("text_encoder", &self.model.text_encoder.vs),
                ("image_encoder", &self.model.image_encoder.vs),
            ]
            .into_iter()
            .chain(heads)
            .collect(),
            optimizers: [
                ("opt_text", &mut self.opt_text),
                ("opt_image", &mut self.opt_image),
            ]
            .into_iter()
            .chain(opt_heads)
            .collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_dropout_drops_about_p_of_the_words_and_keeps_one() {
        let caption = "a red flower with five round petals and a yellow centre";
        let mut rng = Rng(7);
        let (mut kept, mut total) = (0, 0);
        for _ in 0..2000 {
            let out = drop_words(caption, 0.25, &mut rng);
            let words: Vec<&str> = out.split_whitespace().collect();
            assert!(!words.is_empty());
            // Words stay whole and in order.
            let mut rest = caption.split_whitespace();
            assert!(words.iter().all(|w| rest.any(|c| c == *w)), "{out}");
            kept += words.len();
            total += caption.split_whitespace().count();
        }
        let dropped = 1.0 - kept as f64 / total as f64;
        assert!((dropped - 0.25).abs() < 0.02, "dropped {dropped}");
        // Even when every word would go, one stays.
        assert_eq!(
            drop_words("hello there", 0.999_999, &mut rng)
                .split_whitespace()
                .count(),
            1
        );
        assert_eq!(drop_words("", 0.5, &mut rng), "");
    }

    #[test]
    fn the_masked_hinge_counts_only_the_pairs_its_mask_keeps() {
        // Image 0 matches its own text by 3 over text 1 (no loss), image 1
        // its own by 0.5 (loss 0.5 each way), image 2 not at all.
        let compat = Tensor::from_slice(&[
            4.0f32, 1.0, 0.0, //
            1.0, 1.5, 2.0, //
            0.0, 0.0, 0.0,
        ])
        .view([3, 3]);
        let all = Tensor::ones([3, 3], (Kind::Float, Device::Cpu))
            - Tensor::eye(3, (Kind::Float, Device::Cpu));
        let plain = symmetric_hinge(&compat).double_value(&[]);
        assert!((symmetric_hinge_where(&compat, &all).double_value(&[]) - plain).abs() < 1e-6);
        // By hand: rows (image i against text j) and columns (text i against image j).
        let by_hand = [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
            .iter()
            .map(|&(i, j)| {
                let f =
                    |a: usize, b: usize| [[4.0, 1.0, 0.0], [1.0, 1.5, 2.0], [0.0, 0.0, 0.0]][a][b];
                f64::max(0.0, f(i, j) - f(i, i) + 1.0) + f64::max(0.0, f(j, i) - f(i, i) + 1.0)
            })
            .sum::<f64>()
            / 9.0;
        assert!((plain - by_hand).abs() < 1e-6, "{plain} vs {by_hand}");
        // Pairs left out of the mask (same class) add nothing: with only
        // (1, 2) kept, text 2 against image 1's own text and image 1 against
        // image 2 for text 2.
        let mut only = vec![0f32; 9];
        only[3 + 2] = 1.0;
        let one = Tensor::from_slice(&only).view([3, 3]);
        let expected = ((2.0 - 1.5 + 1.0) + (2.0 - 0.0 + 1.0)) / 9.0;
        assert!((symmetric_hinge_where(&compat, &one).double_value(&[]) - expected).abs() < 1e-6);
    }
}
