//! Discriminator D (paper.md §3; icml2016 `main_cls_int.lua`, ndf = 64).
//!
//! The image is downsampled to a 4x4 map (ndf*8 channels, residual); the text
//! embedding, squeezed to nt, is replicated over that grid and concatenated in
//! depth; a 1x1 and a 4x4 convolution give one score per (image, text) pair.
//!
//! With `minibatch_std` (not in the paper; Karras et al. 2018, §3), D also
//! reads how much its 4x4 features spread over groups of four images of the
//! batch, as one more channel beside the text: a G that draws the same
//! picture whatever z is makes batches that spread less than real ones, which
//! D can then tell apart.
//!
//! With `joint_norm: pair` (not in the paper), the joint layer is normalised
//! over each pair's own map instead of over the batch ([`JointNorm`]).

use super::{
    batch_norm1d, batch_norm2d, conv2d, layer_norm2d, linear, Activation, Conditioning, LeakyRelu,
    ResidualBlock, TextScaling,
};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscriminatorConfig {
    /// Base width: the first convolution has ndf channels.
    pub ndf: i64,
    /// Size the text embedding is projected to.
    pub nt: i64,
    /// Size of the text embedding φ(t).
    pub embedding_dim: i64,
    /// D reads the batch's spread ([`minibatch_std`]) beside the text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub minibatch_std: bool,
    /// How the joint layer (image features beside the text) is normalised.
    #[serde(default, skip_serializing_if = "JointNorm::is_paper")]
    pub joint_norm: JointNorm,
}

/// How D normalises its joint layer, where the image's features first meet
/// the text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JointNorm {
    /// Batch norm (the paper). In training mode each channel is normalised
    /// by the batch's own mean and spread, and the spread of a channel that
    /// adds image and text features depends on how well they agree over the
    /// batch: D can tell a batch of mismatched pairs by its statistics,
    /// without checking a pair.
    #[default]
    Batch,
    /// Layer norm over each pair's own joint map (group norm with one
    /// group, a scale and a shift per channel): how well an image agrees
    /// with its text shows in that pair's map alone, so D must check the
    /// pair. The image and text layers below keep their batch norm: a
    /// pair's score still depends on which images and which texts the
    /// batch holds (G's pictures are still seen together), but no longer
    /// on how they are paired.
    Pair,
}

impl JointNorm {
    pub const NAMES: [&'static str; 2] = ["batch", "pair"];

    pub fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "batch" => Self::Batch,
            "pair" => Self::Pair,
            _ => anyhow::bail!("unknown D joint norm '{s}' (batch, pair)"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Batch => "batch",
            Self::Pair => "pair",
        }
    }

    pub fn is_paper(&self) -> bool {
        *self == Self::Batch
    }
}

/// The joint layer's normalisation, as built.
#[derive(Debug)]
enum JointNormLayer {
    Batch(nn::BatchNorm),
    Pair(nn::GroupNorm),
}

/// How many images share one spread reading.
pub const MINIBATCH_STD_GROUP: i64 = 4;

/// `h` [B, C, H, W] with one more channel: the standard deviation of each
/// feature over a group of images (images i, i + B/g, ..., g of them; g =
/// [`MINIBATCH_STD_GROUP`] or the largest divisor of B below it), averaged
/// over features and positions, the same value over the whole map of every
/// image of the group.
pub fn minibatch_std(h: &Tensor) -> Tensor {
    let (b, c, height, width) = h.size4().expect("D's feature map is 4-d");
    let g = (1..=MINIBATCH_STD_GROUP.min(b))
        .rev()
        .find(|g| b % g == 0)
        .unwrap_or(1);
    let y = h.view([g, b / g, c, height, width]);
    let y = &y - y.mean_dim(0, true, None);
    let spread = (y.square().mean_dim(0, false, None) + 1e-8).sqrt();
    let spread = spread.mean_dim([1, 2, 3].as_slice(), true, None);
    let spread = spread.repeat([g, 1, height, width]);
    Tensor::cat(&[h.shallow_clone(), spread], 1)
}

#[derive(Debug)]
pub struct Discriminator {
    pub config: DiscriminatorConfig,
    down32: nn::Conv2D,
    down16: nn::Conv2D,
    down16_bn: nn::BatchNorm,
    down8: nn::Conv2D,
    down8_bn: nn::BatchNorm,
    down4: nn::Conv2D,
    down4_bn: nn::BatchNorm,
    res4: ResidualBlock,
    /// φ(t) as D reads it: the same map as G's.
    text_scaling: TextScaling,
    text_projection: nn::Linear,
    text_projection_bn: nn::BatchNorm,
    joint: nn::Conv2D,
    joint_norm: JointNormLayer,
    score: nn::Conv2D,
}

impl Discriminator {
    pub fn new(p: &nn::Path, config: &DiscriminatorConfig, conditioning: &Conditioning) -> Self {
        let DiscriminatorConfig {
            ndf,
            nt,
            embedding_dim,
            minibatch_std,
            joint_norm,
        } = *config;
        let spread = minibatch_std as i64;
        Self {
            config: config.clone(),
            down32: conv2d(p / "down32", 3, ndf, 4, 2, 1),
            down16: conv2d(p / "down16", ndf, ndf * 2, 4, 2, 1),
            down16_bn: batch_norm2d(p / "down16_bn", ndf * 2),
            down8: conv2d(p / "down8", ndf * 2, ndf * 4, 4, 2, 1),
            down8_bn: batch_norm2d(p / "down8_bn", ndf * 4),
            down4: conv2d(p / "down4", ndf * 4, ndf * 8, 4, 2, 1),
            down4_bn: batch_norm2d(p / "down4_bn", ndf * 8),
            res4: ResidualBlock::new(p / "res4", ndf * 8, ndf * 2, Activation::LeakyRelu),
            text_scaling: TextScaling::new(conditioning, p.device()),
            text_projection: linear(p / "text_projection", embedding_dim, nt),
            text_projection_bn: batch_norm1d(p / "text_projection_bn", nt),
            joint: conv2d(p / "joint", ndf * 8 + spread + nt, ndf * 8, 1, 1, 0),
            joint_norm: match joint_norm {
                JointNorm::Batch => JointNormLayer::Batch(batch_norm2d(p / "joint_bn", ndf * 8)),
                JointNorm::Pair => JointNormLayer::Pair(layer_norm2d(p / "joint_ln", ndf * 8)),
            },
            score: conv2d(p / "score", ndf * 8, 1, 4, 1, 0),
        }
    }

    /// Changes how φ(t) is scaled (training sets it once, from its data).
    pub fn set_conditioning(&mut self, conditioning: &Conditioning) {
        let device = self.text_projection.ws.device();
        self.text_scaling = TextScaling::new(conditioning, device);
    }

    /// images: [B, 3, 64, 64], text: [B, embedding_dim] -> logits [B]
    /// (the sigmoid is left to the loss, `binary_cross_entropy_with_logits`,
    /// which is the same function computed stably).
    pub fn forward_t(&self, images: &Tensor, text: &Tensor, train: bool) -> Tensor {
        let h = images.apply(&self.down32).lrelu();
        let h = h
            .apply(&self.down16)
            .apply_t(&self.down16_bn, train)
            .lrelu();
        // The int script has no LeakyReLU after the next two batch norms.
        let h = h.apply(&self.down8).apply_t(&self.down8_bn, train);
        let h = h.apply(&self.down4).apply_t(&self.down4_bn, train);
        let h = self.res4.forward_t(&h, train);
        let h = if self.config.minibatch_std {
            minibatch_std(&h)
        } else {
            h
        };

        let (batch, _, height, width) = h.size4().expect("D's feature map is 4-d");
        let t = self
            .text_scaling
            .apply(text)
            .apply(&self.text_projection)
            .apply_t(&self.text_projection_bn, train)
            .lrelu();
        let t = t
            .view([batch, self.config.nt, 1, 1])
            .expand([batch, self.config.nt, height, width], false);
        let h = Tensor::cat(&[h, t], 1);
        let h = h.apply(&self.joint);
        let h = match &self.joint_norm {
            JointNormLayer::Batch(bn) => h.apply_t(bn, train),
            JointNormLayer::Pair(ln) => h.apply(ln),
        };
        let h = h.lrelu();
        h.apply(&self.score).view([batch])
    }

    /// The probability that (image, text) is a real, matching pair.
    pub fn score(&self, images: &Tensor, text: &Tensor) -> Tensor {
        self.forward_t(images, text, false).sigmoid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// D's score of a pair when the batch's other images and texts are
    /// paired otherwise: the same with `JointNorm::Pair` (the batch holds the
    /// same images and texts, so the image and text batch norms see the
    /// same statistics), not with the paper's batch norm, whose joint
    /// statistics read how well the whole batch's pairs agree.
    #[test]
    fn with_pair_norm_a_score_does_not_depend_on_how_the_others_are_paired() {
        tch::manual_seed(0);
        let images = Tensor::rand([8, 3, 64, 64], (Kind::Float, Device::Cpu)) * 2 - 1;
        let texts = Tensor::randn([8, 64], (Kind::Float, Device::Cpu));
        // Pair 0 kept; the other seven texts move one place along.
        let order: Vec<i64> = [0, 2, 3, 4, 5, 6, 7, 1].to_vec();
        let shuffled = texts.index_select(0, &Tensor::from_slice(&order));
        let change = |joint_norm| {
            let vs = nn::VarStore::new(Device::Cpu);
            let config = DiscriminatorConfig {
                ndf: 8,
                nt: 16,
                embedding_dim: 64,
                minibatch_std: false,
                joint_norm,
            };
            let d = Discriminator::new(&vs.root(), &config, &Conditioning::Raw);
            let before = d.forward_t(&images, &texts, true).double_value(&[0]);
            let after = d.forward_t(&images, &shuffled, true).double_value(&[0]);
            (before - after).abs()
        };
        assert!(
            change(JointNorm::Pair) < 1e-5,
            "{}",
            change(JointNorm::Pair)
        );
        assert!(
            change(JointNorm::Batch) > 1e-3,
            "{}",
            change(JointNorm::Batch)
        );
    }

    /// The spread channel reads each group of images (i, i + B/4, ...): zero
    /// where the group's images are the same, the features' spread where
    /// they are not, over the whole 4x4 map; the features pass unchanged.
    #[test]
    fn the_spread_channel_reads_each_group_of_the_batch() {
        let same = Tensor::randn([1, 5, 4, 4], (Kind::Float, Device::Cpu));
        let varied = Tensor::randn([4, 5, 4, 4], (Kind::Float, Device::Cpu));
        // B = 8: groups {0, 2, 4, 6} (all `same`) and {1, 3, 5, 7} (varied).
        let h = Tensor::stack(
            &(0..8)
                .map(|i| {
                    if i % 2 == 0 {
                        same.get(0)
                    } else {
                        varied.get(i / 2)
                    }
                })
                .collect::<Vec<_>>(),
            0,
        );
        let out = minibatch_std(&h);
        assert_eq!(out.size(), vec![8, 6, 4, 4]);
        assert!(out.narrow(1, 0, 5).equal(&h));
        let spread = out.select(1, 5);
        let expected = (&varied - varied.mean_dim(0, true, None))
            .square()
            .mean_dim(0, false, None)
            .sqrt()
            .mean(Kind::Float)
            .double_value(&[]);
        for i in 0..8 {
            let map = spread.get(i);
            let (lo, hi) = (map.min().double_value(&[]), map.max().double_value(&[]));
            assert!((hi - lo) < 1e-6, "one value over the map");
            let want = if i % 2 == 0 { 0.0 } else { expected };
            assert!((lo - want).abs() < 1e-3, "image {i}: {lo}, want {want}");
        }
        // A batch that four does not divide takes the largest divisor below it.
        assert_eq!(minibatch_std(&h.narrow(0, 0, 6)).size(), vec![6, 6, 4, 4]);
    }
}
