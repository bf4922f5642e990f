//! Discriminator D (paper.md §3; icml2016 `main_cls_int.lua`, ndf = 64).
//!
//! The image is downsampled to a 4x4 map (ndf*8 channels, residual); the text
//! embedding, squeezed to nt, is replicated over that grid and concatenated in
//! depth; a 1x1 and a 4x4 convolution give one score per (image, text) pair.

use super::{
    batch_norm1d, batch_norm2d, conv2d, linear, Activation, Conditioning, LeakyRelu, ResidualBlock,
    TextScaling,
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
    joint_bn: nn::BatchNorm,
    score: nn::Conv2D,
}

impl Discriminator {
    pub fn new(p: &nn::Path, config: &DiscriminatorConfig, conditioning: &Conditioning) -> Self {
        let DiscriminatorConfig {
            ndf,
            nt,
            embedding_dim,
        } = *config;
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
            joint: conv2d(p / "joint", ndf * 8 + nt, ndf * 8, 1, 1, 0),
            joint_bn: batch_norm2d(p / "joint_bn", ndf * 8),
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
        let h = h.apply(&self.joint).apply_t(&self.joint_bn, train).lrelu();
        h.apply(&self.score).view([batch])
    }

    /// The probability that (image, text) is a real, matching pair.
    pub fn score(&self, images: &Tensor, text: &Tensor) -> Tensor {
        self.forward_t(images, text, false).sigmoid()
    }
}
