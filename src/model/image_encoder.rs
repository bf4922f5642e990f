//! Image encoder θ for the joint embedding (paper.md §1).
//!
//! The paper used fixed 1024-d GoogLeNet features; no pretrained image network
//! can be had here, so this small CNN is trained jointly with φ from scratch:
//! 64x64 -> 32 -> 16 -> 8 -> 4 (DCGAN-style strided convolutions) -> Linear.

use super::Downsampler;
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageEncoderConfig {
    /// Base width: the first convolution has `width` channels.
    pub width: i64,
    /// Size of the joint embedding (the text encoder's output size).
    pub embedding_dim: i64,
}

#[derive(Debug)]
pub struct ImageEncoder {
    pub config: ImageEncoderConfig,
    body: Downsampler,
    projection: nn::Linear,
}

impl ImageEncoder {
    pub fn new(p: &nn::Path, config: &ImageEncoderConfig) -> Self {
        let w = config.width;
        Self {
            config: config.clone(),
            body: Downsampler::new(&(p / "body"), w),
            projection: nn::linear(
                p / "projection",
                Downsampler::output_dim(w),
                config.embedding_dim,
                Default::default(),
            ),
        }
    }

    /// images: [B, 3, 64, 64] in [-1, 1] -> θ(v): [B, embedding_dim].
    pub fn forward_t(&self, images: &Tensor, train: bool) -> Tensor {
        self.body.forward_t(images, train).apply(&self.projection)
    }
}
