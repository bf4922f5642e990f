//! Style encoder S (paper.md §5): inverts the generator, image -> z.
//!
//! Trained with G frozen on L = ‖z − S(G(z, φ(t)))‖²; then G(S(x), φ(t)) keeps
//! the pose and background of x and takes its content from t. The body is the
//! discriminator's downsampling path without the text, ending in a linear map
//! to nz.

use super::Downsampler;
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StyleEncoderConfig {
    /// Base width: the first convolution has `width` channels.
    pub width: i64,
    /// Size of z (the generator's nz).
    pub nz: i64,
}

#[derive(Debug)]
pub struct StyleEncoder {
    pub config: StyleEncoderConfig,
    body: Downsampler,
    to_z: nn::Linear,
}

impl StyleEncoder {
    pub fn new(p: &nn::Path, config: &StyleEncoderConfig) -> Self {
        let w = config.width;
        Self {
            config: config.clone(),
            body: Downsampler::new(&(p / "body"), w),
            to_z: nn::linear(
                p / "to_z",
                Downsampler::output_dim(w),
                config.nz,
                Default::default(),
            ),
        }
    }

    /// images: [B, 3, 64, 64] in [-1, 1] -> s: [B, nz].
    pub fn forward_t(&self, images: &Tensor, train: bool) -> Tensor {
        self.body.forward_t(images, train).apply(&self.to_z)
    }
}
