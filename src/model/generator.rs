//! Generator G (paper.md §2; icml2016 `main_cls_int.lua`, ngf = 128, nz = 100, nt = 128).
//!
//! z (nz) and the text embedding squeezed to nt are concatenated to a
//! (nz + nt) x 1 x 1 map and upsampled to a 64 x 64 RGB image in [-1, 1]:
//! 4x4 (ngf*8, residual) -> 8x8 (ngf*4, residual) -> 16x16 -> 32x32 -> 64x64.
//!
//! Every upsampling is a 4x4 transposed convolution of stride 2, as in the
//! paper. Optionally ([`RgbUpsampling::Resize`], not in the paper) the last
//! one, to the 64x64 pixels, is a nearest-neighbour upsampling followed by a
//! 3x3 convolution instead: a transposed convolution of stride 2 with a 4x4
//! kernel gives the even and the odd output pixels different sets of
//! weights, which draws a period-2 checkerboard unless training tunes the
//! two into agreement (Odena, Dumoulin & Olah 2016, "Deconvolution and
//! checkerboard artifacts"); after a nearest-neighbour upsampling every
//! output pixel reads its neighbourhood through the same kernel.

use super::{
    batch_norm2d, channels_last, conv2d, conv_transpose2d, linear, Activation, Conditioning,
    LeakyRelu, ResidualBlock, TextScaling,
};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// How G's last layer doubles the 32x32 map to the 64x64 pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RgbUpsampling {
    /// A 4x4 transposed convolution of stride 2 (the paper).
    #[default]
    Transposed,
    /// Nearest-neighbour upsampling, then a 3x3 convolution.
    Resize,
}

/// The names `--rgb-upsampling` takes.
pub const RGB_UPSAMPLING_NAMES: &str = "transposed (the paper), resize";

impl RgbUpsampling {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "transposed" => Self::Transposed,
            "resize" => Self::Resize,
            _ => bail!("unknown RGB upsampling '{s}' ({RGB_UPSAMPLING_NAMES})"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Transposed => "transposed",
            Self::Resize => "resize",
        }
    }

    /// What the layer is, for people (`model info`).
    pub fn describe(self) -> &'static str {
        match self {
            Self::Transposed => "4x4 transposed convolution (the paper)",
            Self::Resize => {
                "nearest-neighbour upsampling + 3x3 convolution (--rgb-upsampling resize)"
            }
        }
    }

    pub fn is_paper(&self) -> bool {
        *self == Self::Transposed
    }
}

/// G's last layer (no bias, no batch norm; tanh follows).
#[derive(Debug)]
pub(super) enum ToRgb {
    /// Weight [ngf, 3, 4, 4].
    Transposed(nn::ConvTranspose2D),
    /// Weight [3, ngf, 3, 3], applied to the map upsampled to 64x64.
    Resize(nn::Conv2D),
}

impl ToRgb {
    fn new(p: nn::Path, ngf: i64, upsampling: RgbUpsampling) -> Self {
        match upsampling {
            RgbUpsampling::Transposed => Self::Transposed(conv_transpose2d(p, ngf, 3, 4, 2, 1)),
            RgbUpsampling::Resize => Self::Resize(conv2d(p, ngf, 3, 3, 1, 1)),
        }
    }

    fn forward(&self, h: &Tensor) -> Tensor {
        match self {
            Self::Transposed(layer) => h.apply(layer),
            Self::Resize(layer) => {
                let [.., height, width] = h.size()[..] else {
                    unreachable!("G's maps are 4-d")
                };
                h.upsample_nearest2d([height * 2, width * 2], None, None)
                    .apply(layer)
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Size of the noise vector z.
    pub nz: i64,
    /// Size the text embedding is projected to before it joins z.
    pub nt: i64,
    /// Base width: the first feature map has ngf * 8 channels.
    pub ngf: i64,
    /// Size of the text embedding φ(t).
    pub embedding_dim: i64,
    /// How the last layer upsamples to the pixels (the paper's transposed
    /// convolution where the card does not say).
    #[serde(default, skip_serializing_if = "RgbUpsampling::is_paper")]
    pub rgb_upsampling: RgbUpsampling,
}

#[derive(Debug)]
pub struct Generator {
    pub config: GeneratorConfig,
    /// φ(t) as G reads it (see `conditioning.rs`); not a learned weight.
    pub(super) text_scaling: TextScaling,
    pub(super) text_projection: nn::Linear,
    pub(super) up4: nn::ConvTranspose2D,
    pub(super) up4_bn: nn::BatchNorm,
    pub(super) res4: ResidualBlock,
    pub(super) up8: nn::ConvTranspose2D,
    pub(super) up8_bn: nn::BatchNorm,
    pub(super) res8: ResidualBlock,
    pub(super) up16: nn::ConvTranspose2D,
    pub(super) up16_bn: nn::BatchNorm,
    pub(super) up32: nn::ConvTranspose2D,
    pub(super) up32_bn: nn::BatchNorm,
    pub(super) to_rgb: ToRgb,
}

impl Generator {
    pub fn new(p: &nn::Path, config: &GeneratorConfig, conditioning: &Conditioning) -> Self {
        let GeneratorConfig {
            nz,
            nt,
            ngf,
            embedding_dim,
            rgb_upsampling,
        } = *config;
        Self {
            config: config.clone(),
            text_scaling: TextScaling::new(conditioning, p.device()),
            // Linear(1024 -> 128) + LeakyReLU(0.2), no batch norm.
            text_projection: linear(p / "text_projection", embedding_dim, nt),
            up4: conv_transpose2d(p / "up4", nz + nt, ngf * 8, 4, 1, 0),
            up4_bn: batch_norm2d(p / "up4_bn", ngf * 8),
            res4: ResidualBlock::new(p / "res4", ngf * 8, ngf * 2, Activation::Relu),
            up8: conv_transpose2d(p / "up8", ngf * 8, ngf * 4, 4, 2, 1),
            up8_bn: batch_norm2d(p / "up8_bn", ngf * 4),
            res8: ResidualBlock::new(p / "res8", ngf * 4, ngf, Activation::Relu),
            up16: conv_transpose2d(p / "up16", ngf * 4, ngf * 2, 4, 2, 1),
            up16_bn: batch_norm2d(p / "up16_bn", ngf * 2),
            up32: conv_transpose2d(p / "up32", ngf * 2, ngf, 4, 2, 1),
            up32_bn: batch_norm2d(p / "up32_bn", ngf),
            to_rgb: ToRgb::new(p / "to_rgb", ngf, rgb_upsampling),
        }
    }

    /// Changes how φ(t) is scaled (training sets it once, from its data).
    pub fn set_conditioning(&mut self, conditioning: &Conditioning) {
        let device = self.text_projection.ws.device();
        self.text_scaling = TextScaling::new(conditioning, device);
    }

    /// z: [B, nz], text: [B, embedding_dim] -> images [B, 3, 64, 64] in [-1, 1].
    pub fn forward_t(&self, z: &Tensor, text: &Tensor, train: bool) -> Tensor {
        let t = self
            .text_scaling
            .apply(text)
            .apply(&self.text_projection)
            .lrelu();
        let h = Tensor::cat(&[z, &t], 1).unsqueeze(-1).unsqueeze(-1);
        // Channels-last from the first 4x4 map on (see `channels_last`).
        let h = channels_last(&h.apply(&self.up4)).apply_t(&self.up4_bn, train);
        let h = self.res4.forward_t(&h, train);
        let h = h.apply(&self.up8).apply_t(&self.up8_bn, train);
        let h = self.res8.forward_t(&h, train);
        let h = h.apply(&self.up16).apply_t(&self.up16_bn, train).relu();
        let h = h.apply(&self.up32).apply_t(&self.up32_bn, train).relu();
        self.to_rgb.forward(&h).tanh()
    }
}
