//! The attribute probe of evaluation.md: a CNN trained on real procedural
//! renders to read every attribute back from an image (petal colour, shape,
//! count, centre colour, background bin, position bin). The metrics use it to
//! check what the generator drew; it must reach >= 98% on held-out renders for
//! each attribute it is used for, and its accuracy is printed beside every
//! number it produces.

use crate::model::{batch_norm2d, parameter_count};
use crate::training_set::{Rng, TrainingSet};
use crate::weights::{load_var_store, save_var_store, write_atomic};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

/// The attributes the probe reads, as the procedural-flowers plugin names them.
pub const PROBED: [&str; 6] = [
    "petal_colour",
    "petal_shape",
    "petal_count",
    "centre_colour",
    "background",
    "position",
];

/// One output head: an attribute and its possible values.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Head {
    pub attribute: String,
    pub labels: Vec<String>,
}

/// `weights/probe/model.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeCard {
    pub kind: String,
    pub width: i64,
    pub heads: Vec<Head>,
    /// Accuracy per attribute on held-out renders, from `gantry probe eval`.
    pub accuracy: BTreeMap<String, f64>,
    pub trained_on: String,
    pub evaluated_on: String,
    pub steps: usize,
    pub parameters: i64,
    pub gantry_version: String,
}

#[derive(Debug)]
pub struct Probe {
    body: Vec<(nn::Conv2D, nn::BatchNorm)>,
    hidden: nn::Linear,
    heads: Vec<nn::Linear>,
}

impl Probe {
    pub fn new(p: &nn::Path, width: i64, heads: &[Head]) -> Self {
        let conv = |name: &str, c_in, c_out, k, stride, padding| {
            let cfg = nn::ConvConfig {
                stride,
                padding,
                bias: false,
                ..Default::default()
            };
            nn::conv2d(p / name, c_in, c_out, k, cfg)
        };
        let w = width;
        // 64 -> 32 (strided), then 3x3 convolutions with 2x2 pooling: 32 -> 16 -> 8 -> 4.
        let body = vec![
            (conv("conv1", 3, w, 4, 2, 1), batch_norm2d(p / "bn1", w)),
            (
                conv("conv2", w, 2 * w, 3, 1, 1),
                batch_norm2d(p / "bn2", 2 * w),
            ),
            (
                conv("conv3", 2 * w, 4 * w, 3, 1, 1),
                batch_norm2d(p / "bn3", 4 * w),
            ),
            (
                conv("conv4", 4 * w, 4 * w, 3, 1, 1),
                batch_norm2d(p / "bn4", 4 * w),
            ),
        ];
        let hidden = nn::linear(p / "hidden", 4 * w * 16, 256, Default::default());
        let heads = heads
            .iter()
            .map(|h| {
                nn::linear(
                    p / "head" / h.attribute.as_str(),
                    256,
                    h.labels.len() as i64,
                    Default::default(),
                )
            })
            .collect();
        Self {
            body,
            hidden,
            heads,
        }
    }

    /// images [B, 3, 64, 64] in [-1, 1] -> one logit tensor per head.
    pub fn forward_t(&self, images: &Tensor, train: bool) -> Vec<Tensor> {
        let h = self.features_t(images, train);
        self.heads.iter().map(|head| h.apply(head)).collect()
    }

    /// The penultimate features every head reads: [B, 256].
    pub fn features_t(&self, images: &Tensor, train: bool) -> Tensor {
        let mut h = images.shallow_clone();
        for (i, (conv, bn)) in self.body.iter().enumerate() {
            h = h.apply(conv).apply_t(bn, train).relu();
            if i > 0 {
                h = h.max_pool2d_default(2);
            }
        }
        h.flatten(1, -1).apply(&self.hidden).relu()
    }
}

/// The one head of a class probe: which class a photo shows. A captioned set
/// without procedural attributes (Oxford-102) gets this probe, the
/// classifier evaluation.md uses for realism: a classification accuracy
/// score and a Fréchet distance in its penultimate features.
pub const CLASS_HEAD: &str = "class";

/// Every `HELD_OUT_EVERY`-th photo of each class (in dataset order) is kept
/// from a class probe's training, to measure it: 20% of each class.
pub const HELD_OUT_EVERY: usize = 5;

/// Which samples a class probe holds out: per class, in dataset order, every
/// fifth (the last of each five), so every class keeps 80% for training.
pub fn class_probe_held_out(set: &TrainingSet) -> Vec<bool> {
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    set.classes
        .iter()
        .map(|c| {
            let k = seen.entry(*c).or_default();
            *k += 1;
            (*k).is_multiple_of(HELD_OUT_EVERY)
        })
        .collect()
}

/// Whether every sample carries every probed attribute (procedural flowers).
pub fn has_probed_attributes(set: &TrainingSet) -> bool {
    !set.is_empty()
        && set
            .attributes
            .iter()
            .all(|a| PROBED.iter().all(|k| a.contains_key(*k)))
}

/// The heads for a training set: each probed attribute with its values
/// (numbers in numeric order, names alphabetically), or, for a set without
/// them, the class ([`CLASS_HEAD`]) with the set's class names.
pub fn heads_for(set: &TrainingSet) -> Result<Vec<Head>> {
    if !has_probed_attributes(set) {
        if set.class_info.len() < 2 {
            bail!(
                "{}: neither procedural attributes nor two classes to tell apart",
                set.spec
            );
        }
        return Ok(vec![Head {
            attribute: CLASS_HEAD.to_string(),
            labels: set.class_info.iter().map(|c| c.name.clone()).collect(),
        }]);
    }
    PROBED
        .iter()
        .map(|&attribute| {
            let mut labels: Vec<String> = set
                .attributes
                .iter()
                .map(|a| a.get(attribute).cloned().ok_or_else(|| anyhow!("samples have no '{attribute}' attribute: the probe needs procedural-flowers")))
                .collect::<Result<std::collections::BTreeSet<_>>>()?
                .into_iter()
                .collect();
            labels.sort_by_key(|l| (l.parse::<i64>().unwrap_or(i64::MAX), l.clone()));
            Ok(Head {
                attribute: attribute.to_string(),
                labels,
            })
        })
        .collect()
}

/// Label indices [N] for one head over `indices` of the set.
fn targets(set: &TrainingSet, head: &Head, indices: &[usize]) -> Result<Tensor> {
    let ids: Vec<i64> = indices
        .iter()
        .map(|&i| {
            let value = if head.attribute == CLASS_HEAD {
                &set.class_info[set.classes[i] as usize].name
            } else {
                set.attributes[i]
                    .get(&head.attribute)
                    .ok_or_else(|| anyhow!("sample {i} has no {}", head.attribute))?
            };
            head.labels
                .iter()
                .position(|l| l == value)
                .map(|p| p as i64)
                .ok_or_else(|| {
                    anyhow!(
                        "{} = {value} is not one of the probe's labels",
                        head.attribute
                    )
                })
        })
        .collect::<Result<_>>()?;
    Ok(Tensor::from_slice(&ids))
}

/// A trained probe on a device.
pub struct LoadedProbe {
    pub card: ProbeCard,
    pub vs: nn::VarStore,
    pub net: Probe,
}

impl LoadedProbe {
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        let card_path = dir.join("model.json");
        let text = std::fs::read_to_string(&card_path).with_context(|| {
            format!(
                "{}: no probe card (train one with `gantry probe train`)",
                card_path.display()
            )
        })?;
        let card: ProbeCard = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a probe card", card_path.display()))?;
        let vs = nn::VarStore::new(device);
        let net = Probe::new(&vs.root(), card.width, &card.heads);
        load_var_store(&vs, &dir.join("probe.safetensors"))?;
        Ok(Self { card, vs, net })
    }

    /// Predicted label index per head for a batch of images.
    pub fn predict(&self, images: &Tensor) -> Vec<Vec<i64>> {
        let logits = tch::no_grad(|| {
            self.net
                .forward_t(&images.to_device(self.vs.device()), false)
        });
        logits
            .iter()
            .map(|l| {
                Vec::<i64>::try_from(l.argmax(1, false).to_device(Device::Cpu)).unwrap_or_default()
            })
            .collect()
    }

    /// Penultimate features of a batch of images, on the CPU: [B, 256].
    pub fn features(&self, images: &Tensor) -> Tensor {
        tch::no_grad(|| {
            self.net
                .features_t(&images.to_device(self.vs.device()), false)
                .to_device(Device::Cpu)
        })
    }

    /// The `k` most likely labels of one head per image, best first: [B, k].
    pub fn top_k(&self, images: &Tensor, attribute: &str, k: i64) -> Result<Tensor> {
        let h = self.head_index(attribute)?;
        let logits = tch::no_grad(|| {
            self.net
                .forward_t(&images.to_device(self.vs.device()), false)
                .swap_remove(h)
        });
        let k = k.min(self.card.heads[h].labels.len() as i64);
        Ok(logits.topk(k, 1, true, true).1.to_device(Device::Cpu))
    }

    /// How many of `images` a class probe puts in their class `truth` ([B]
    /// label indices) first, and within its five best guesses.
    pub fn class_hits(&self, images: &Tensor, truth: &Tensor) -> Result<(usize, usize)> {
        let best = self.top_k(images, CLASS_HEAD, 5)?;
        let truth = truth.to_device(Device::Cpu).unsqueeze(1);
        let count = |hit: Tensor| hit.sum(Kind::Int64).int64_value(&[]) as usize;
        Ok((
            count(best.narrow(1, 0, 1).eq_tensor(&truth)),
            count(best.eq_tensor(&truth).any_dim(1, false)),
        ))
    }

    /// Whether this probe reads the classes of `set` (a class probe whose
    /// labels are the set's class names, in order).
    pub fn reads_classes_of(&self, set: &TrainingSet) -> bool {
        matches!(self.card.heads.as_slice(), [head] if head.attribute == CLASS_HEAD
            && head.labels.len() == set.class_info.len()
            && head.labels.iter().zip(&set.class_info).all(|(l, c)| *l == c.name))
    }

    fn head_index(&self, attribute: &str) -> Result<usize> {
        self.card
            .heads
            .iter()
            .position(|h| h.attribute == attribute)
            .ok_or_else(|| anyhow!("the probe has no '{attribute}' head"))
    }

    /// The label a head predicts for each image, as text.
    pub fn read(&self, images: &Tensor, attribute: &str) -> Result<Vec<String>> {
        let [labels] = self.read_each(images, [attribute])?;
        Ok(labels)
    }

    /// [`Self::read`] for several heads from one pass over the images.
    pub fn read_each<const A: usize>(
        &self,
        images: &Tensor,
        attributes: [&str; A],
    ) -> Result<[Vec<String>; A]> {
        let mut heads = [0; A];
        for (h, attribute) in heads.iter_mut().zip(attributes) {
            *h = self.head_index(attribute)?;
        }
        let predictions = self.predict(images);
        Ok(heads.map(|h| {
            predictions[h]
                .iter()
                .map(|&i| self.card.heads[h].labels[i as usize].clone())
                .collect()
        }))
    }

    /// Accuracy per attribute on samples `indices` of a set of real images
    /// (a class probe adds its top-5 accuracy as `class_top5`).
    pub fn evaluate(
        &self,
        set: &TrainingSet,
        indices: &[usize],
        batch: usize,
    ) -> Result<BTreeMap<String, f64>> {
        if indices.is_empty() {
            bail!("no images to evaluate the probe on");
        }
        let mut correct = vec![0usize; self.card.heads.len()];
        let mut top5 = 0usize;
        let mut rng = Rng(0);
        for chunk in indices.chunks(batch.max(1)) {
            let images = set.image_batch(chunk, false, &mut rng);
            if let [head] = self.card.heads.as_slice() {
                if head.attribute == CLASS_HEAD {
                    // One pass gives both top-1 and top-5.
                    let (top1, five) = self.class_hits(&images, &targets(set, head, chunk)?)?;
                    correct[0] += top1;
                    top5 += five;
                    continue;
                }
            }
            let predicted = self.predict(&images);
            for (h, head) in self.card.heads.iter().enumerate() {
                let truth = Vec::<i64>::try_from(targets(set, head, chunk)?)?;
                correct[h] += truth
                    .iter()
                    .zip(&predicted[h])
                    .filter(|(a, b)| a == b)
                    .count();
            }
        }
        let n = indices.len() as f64;
        let mut accuracy: BTreeMap<String, f64> = self
            .card
            .heads
            .iter()
            .zip(correct)
            .map(|(head, c)| (head.attribute.clone(), c as f64 / n))
            .collect();
        if self.card.heads.iter().any(|h| h.attribute == CLASS_HEAD) {
            accuracy.insert(format!("{CLASS_HEAD}_top5"), top5 as f64 / n);
        }
        Ok(accuracy)
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        save_var_store(&self.vs, &dir.join("probe.safetensors"), false)?;
        write_atomic(
            &dir.join("model.json"),
            serde_json::to_string_pretty(&self.card)?.as_bytes(),
        )
    }
}

/// Options of `gantry probe train`.
pub struct TrainOptions {
    pub steps: usize,
    pub batch: usize,
    pub width: i64,
    pub learning_rate: f64,
    pub device: Device,
    pub seed: u64,
    /// Random crops and flips (photos; renders are read as drawn).
    pub augment: bool,
}

/// Trains a probe on samples `indices` of `set`; `progress(step, loss)` is
/// called every step.
pub fn train(
    set: &TrainingSet,
    indices: &[usize],
    options: &TrainOptions,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<LoadedProbe> {
    if indices.is_empty() {
        bail!("no training images");
    }
    tch::manual_seed(options.seed as i64);
    let heads = heads_for(set)?;
    let vs = nn::VarStore::new(options.device);
    let net = Probe::new(&vs.root(), options.width, &heads);
    let mut optimizer = nn::Adam::default().build(&vs, options.learning_rate)?;
    let mut rng = Rng(options.seed);
    let mut order: Vec<usize> = indices.to_vec();
    let mut cursor = order.len();
    for step in 0..options.steps {
        if cursor + options.batch > order.len() {
            rng.shuffle(&mut order);
            cursor = 0;
        }
        let indices = &order[cursor..cursor + options.batch.min(order.len())];
        cursor += indices.len();
        let images = set.image_batch(indices, options.augment, &mut rng);
        // A little pixel noise, so that the probe also reads the slightly
        // noisy images a generator draws.
        let images = (&images + images.randn_like() * 0.03).to_device(options.device);
        let logits = net.forward_t(&images, true);
        let mut loss = Tensor::zeros([], (Kind::Float, options.device));
        for (head, logit) in heads.iter().zip(&logits) {
            let t = targets(set, head, indices)?.to_device(options.device);
            loss += logit.cross_entropy_for_logits(&t);
        }
        // Cosine decay to zero over the run.
        let lr = options.learning_rate
            * 0.5
            * (1.0 + (std::f64::consts::PI * step as f64 / options.steps as f64).cos());
        optimizer.set_lr(lr);
        optimizer.backward_step(&loss);
        progress(step + 1, loss.double_value(&[]));
    }
    let parameters = parameter_count(&vs);
    Ok(LoadedProbe {
        card: ProbeCard {
            kind: if heads.iter().any(|h| h.attribute == CLASS_HEAD) {
                "class-probe"
            } else {
                "attribute-probe"
            }
            .to_string(),
            width: options.width,
            heads,
            accuracy: BTreeMap::new(),
            trained_on: set.spec.clone(),
            evaluated_on: String::new(),
            steps: options.steps,
            parameters,
            gantry_version: env!("CARGO_PKG_VERSION").to_string(),
        },
        vs,
        net,
    })
}
