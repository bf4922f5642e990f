//! The networks of paper.md, one file each, and the presets that size them.
//!
//! Every network is a plain struct built from an `nn::Path`; variable names
//! follow the paper's layer names, so a weights file explains itself.

pub mod conditioning;
pub mod discriminator;
pub mod folded;
pub mod generator;
pub mod image_encoder;
pub mod style_encoder;
pub mod text_encoder;

pub use conditioning::{Conditioning, TextScaling};
pub use discriminator::{Discriminator, DiscriminatorConfig, JointNorm};
pub use generator::{Generator, GeneratorConfig, Upsampling, UPSAMPLINGS};
pub use image_encoder::{ImageEncoder, ImageEncoderConfig};
pub use style_encoder::{StyleEncoder, StyleEncoderConfig};
pub use text_encoder::{TextEncoder, TextEncoderConfig};

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// The sizes of all five networks of one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The preset these sizes came from (informational).
    pub preset: String,
    pub text_encoder: TextEncoderConfig,
    pub image_encoder: ImageEncoderConfig,
    pub generator: GeneratorConfig,
    pub discriminator: DiscriminatorConfig,
    pub style_encoder: StyleEncoderConfig,
    /// How φ(t) is scaled before G and D read it (raw in the paper).
    #[serde(default, skip_serializing_if = "Conditioning::is_raw")]
    pub conditioning: Conditioning,
}

/// The choices of G's and D's layers a run makes beside its preset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layers {
    /// How G doubles its maps.
    pub upsampling: Upsampling,
    /// D reads the batch's spread ([`discriminator::minibatch_std`]).
    pub minibatch_std: bool,
    /// How D normalises its joint layer ([`JointNorm`]).
    pub d_joint_norm: JointNorm,
}

impl Layers {
    /// What sets these apart from the paper's layers, in words: none for
    /// the paper's, else e.g. ["upsampling resize", "minibatch-std",
    /// "d-joint-norm pair"].
    pub fn words(&self) -> Vec<String> {
        let mut words = Vec::new();
        if !self.upsampling.is_paper() {
            words.push(format!("upsampling {}", self.upsampling.name()));
        }
        if self.minibatch_std {
            words.push("minibatch-std".to_string());
        }
        if !self.d_joint_norm.is_paper() {
            words.push(format!("d-joint-norm {}", self.d_joint_norm.name()));
        }
        words
    }

    /// The [`Self::words`] as a run's header says them: "" for the paper's
    /// layers, else ", upsampling resize, minibatch-std".
    pub fn describe(&self) -> String {
        self.words().iter().map(|w| format!(", {w}")).collect()
    }
}

/// The presets: `reed` is paper.md exactly; the others are narrower copies
/// of the same architecture for CPU training and for tests.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "reed",
        "paper.md exactly: ngf 128, ndf 64, char-CNN-RNN 384/512/512 + GRU 512, 1024-d text",
    ),
    (
        "small",
        "half width for CPU training: ngf 64, ndf 32, char-CNN-RNN 192/256/256 + GRU 256, 512-d text",
    ),
    (
        "tiny",
        "for tests and smoke runs: ngf 16, ndf 8, char-CNN-RNN 32/32/32 + GRU 32, 64-d text",
    ),
];

impl ModelConfig {
    /// These sizes with `layers`' choices.
    pub fn with_layers(mut self, layers: Layers) -> Self {
        self.generator.upsampling = layers.upsampling;
        self.discriminator.minibatch_std = layers.minibatch_std;
        self.discriminator.joint_norm = layers.d_joint_norm;
        self
    }

    /// The layer choices these sizes were made with.
    pub fn layers(&self) -> Layers {
        Layers {
            upsampling: self.generator.upsampling,
            minibatch_std: self.discriminator.minibatch_std,
            d_joint_norm: self.discriminator.joint_norm,
        }
    }

    /// Looks up a preset by name; the error lists the known ones.
    pub fn preset(name: &str) -> anyhow::Result<Self> {
        let (text, width, ngf, ndf, nt, embedding_dim) = match name {
            "reed" => ([384, 512, 512], 512, 128, 64, 128, 1024),
            "small" => ([192, 256, 256], 256, 64, 32, 128, 512),
            "tiny" => ([32, 32, 32], 32, 16, 8, 16, 64),
            _ => {
                let known: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                anyhow::bail!("unknown preset '{name}' (known: {})", known.join(", "))
            }
        };
        let nz = 100;
        Ok(Self {
            preset: name.to_string(),
            text_encoder: TextEncoderConfig {
                conv_channels: text,
                rnn_dim: width,
                embedding_dim,
            },
            image_encoder: ImageEncoderConfig {
                width: ndf,
                embedding_dim,
            },
            generator: GeneratorConfig {
                nz,
                nt,
                ngf,
                embedding_dim,
                upsampling: Upsampling::Transposed,
            },
            discriminator: DiscriminatorConfig {
                ndf,
                nt,
                embedding_dim,
                minibatch_std: false,
                joint_norm: JointNorm::Batch,
            },
            style_encoder: StyleEncoderConfig { width: ndf, nz },
            conditioning: Conditioning::Raw,
        })
    }

    /// Checks that the networks fit together (a hand-edited card can break this).
    pub fn validate(&self) -> anyhow::Result<()> {
        let e = self.text_encoder.embedding_dim;
        anyhow::ensure!(
            self.image_encoder.embedding_dim == e
                && self.generator.embedding_dim == e
                && self.discriminator.embedding_dim == e,
            "text, image, generator and discriminator must share one embedding size"
        );
        anyhow::ensure!(
            self.style_encoder.nz == self.generator.nz,
            "the style encoder must output the generator's z size ({})",
            self.generator.nz
        );
        self.conditioning.validate(e)?;
        // A card is outside input: sizes are checked against sane bounds
        // before anything is allocated (8x the paper's widths; a corrupted
        // `ngf` of 10^8 would otherwise ask libtorch for terabytes).
        let sizes = [
            ("generator.nz", self.generator.nz, 4096),
            ("generator.nt", self.generator.nt, 4096),
            ("generator.ngf", self.generator.ngf, 1024),
            ("discriminator.ndf", self.discriminator.ndf, 512),
            ("discriminator.nt", self.discriminator.nt, 4096),
            ("image_encoder.width", self.image_encoder.width, 512),
            ("style_encoder.width", self.style_encoder.width, 512),
            (
                "text_encoder.conv_channels[0]",
                self.text_encoder.conv_channels[0],
                4096,
            ),
            (
                "text_encoder.conv_channels[1]",
                self.text_encoder.conv_channels[1],
                4096,
            ),
            (
                "text_encoder.conv_channels[2]",
                self.text_encoder.conv_channels[2],
                4096,
            ),
            ("text_encoder.rnn_dim", self.text_encoder.rnn_dim, 4096),
            ("embedding_dim", e, 8192),
        ];
        for (name, size, most) in sizes {
            anyhow::ensure!(
                size > 0 && size <= most,
                "{name} is {size}: it must be between 1 and {most}"
            );
        }
        anyhow::ensure!(self.generator.ngf % 2 == 0, "generator.ngf must be even");
        Ok(())
    }
}

/// The five networks' names, which are also their weight file stems.
pub const NETWORKS: [&str; 5] = [
    "text_encoder",
    "image_encoder",
    "generator",
    "discriminator",
    "style_encoder",
];

/// paper.md §2: "Init: conv N(0,0.02); BN γ ~ N(1,0.02), β = 0."
pub const CONV_INIT: nn::Init = nn::Init::Randn {
    mean: 0.0,
    stdev: 0.02,
};

/// A convolution as the GAN uses it: no bias, DCGAN initialisation.
pub fn conv2d(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, pad: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride,
        padding: pad,
        bias: false,
        ws_init: CONV_INIT,
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, cfg)
}

/// A transposed convolution as the generator uses it: no bias, DCGAN init.
pub fn conv_transpose2d(
    p: nn::Path,
    c_in: i64,
    c_out: i64,
    k: i64,
    stride: i64,
    pad: i64,
) -> nn::ConvTranspose2D {
    let cfg = nn::ConvTransposeConfig {
        stride,
        padding: pad,
        bias: false,
        ws_init: CONV_INIT,
        ..Default::default()
    };
    nn::conv_transpose2d(p, c_in, c_out, k, cfg)
}

/// A linear layer as Torch7's `nn.Linear` initialises it, which the icml2016
/// code leaves as it is: weight and bias uniform in ±1/√in (PyTorch's
/// default too). tch's default weight is Kaiming-uniform for ReLU, √6 ≈ 2.4x
/// wider, which would make G's text path start at another scale than the
/// paper's and PyTorch's.
pub fn linear(p: nn::Path, c_in: i64, c_out: i64) -> nn::Linear {
    let bound = 1.0 / (c_in as f64).sqrt();
    let init = nn::Init::Uniform {
        lo: -bound,
        up: bound,
    };
    nn::linear(
        p,
        c_in,
        c_out,
        nn::LinearConfig {
            ws_init: init,
            bs_init: Some(init),
            bias: true,
        },
    )
}

/// Batch norm with γ ~ N(1, 0.02), β = 0.
pub fn batch_norm2d(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, c, batch_norm_config())
}

/// Layer norm over each image's whole [C, H, W] map (group norm with one
/// group), a scale and a shift per channel, initialised as batch norm.
pub fn layer_norm2d(p: nn::Path, c: i64) -> nn::GroupNorm {
    let bn = batch_norm_config();
    nn::group_norm(
        p,
        1,
        c,
        nn::GroupNormConfig {
            ws_init: bn.ws_init,
            bs_init: bn.bs_init,
            eps: bn.eps,
            ..Default::default()
        },
    )
}

/// 1-d batch norm (the discriminator's text projection), same init.
pub fn batch_norm1d(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm1d(p, c, batch_norm_config())
}

fn batch_norm_config() -> nn::BatchNormConfig {
    nn::BatchNormConfig {
        ws_init: nn::Init::Randn {
            mean: 1.0,
            stdev: 0.02,
        },
        bs_init: nn::Init::Const(0.0),
        eps: BN_EPS,
        ..Default::default()
    }
}

/// On the CPU, `x` [N, C, H, W] with channels-last strides (NHWC in memory,
/// the same values), the layout for which oneDNN runs (transposed)
/// convolutions on its fast path; every layer after it keeps the layout.
/// Elsewhere `x` as it is (not measured on GPUs).
pub fn channels_last(x: &Tensor) -> Tensor {
    if x.device() == tch::Device::Cpu {
        x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    } else {
        x.shallow_clone()
    }
}

/// Every batch norm's ε (PyTorch's and Torch7's default).
pub const BN_EPS: f64 = 1e-5;

/// Number of trainable parameters under a var store.
pub fn parameter_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// The non-linearity inside a residual block: ReLU in G, LeakyReLU(0.2) in D.
#[derive(Clone, Copy, Debug)]
pub enum Activation {
    Relu,
    LeakyRelu,
}

impl Activation {
    pub fn apply(self, x: Tensor) -> Tensor {
        match self {
            Activation::Relu => x.relu(),
            Activation::LeakyRelu => x.lrelu(),
        }
    }
}

/// The bottleneck residual block that G uses at 4x4 and 8x8 and D at 4x4:
/// 1x1 c->b BN act, 3x3 b->b BN act, 3x3 b->c BN; add the identity; act.
#[derive(Debug)]
pub struct ResidualBlock {
    pub(super) reduce: nn::Conv2D,
    pub(super) reduce_bn: nn::BatchNorm,
    pub(super) conv: nn::Conv2D,
    pub(super) conv_bn: nn::BatchNorm,
    pub(super) expand: nn::Conv2D,
    pub(super) expand_bn: nn::BatchNorm,
    activation: Activation,
}

impl ResidualBlock {
    pub fn new(p: nn::Path, channels: i64, bottleneck: i64, activation: Activation) -> Self {
        Self {
            reduce: conv2d(&p / "reduce", channels, bottleneck, 1, 1, 0),
            reduce_bn: batch_norm2d(&p / "reduce_bn", bottleneck),
            conv: conv2d(&p / "conv", bottleneck, bottleneck, 3, 1, 1),
            conv_bn: batch_norm2d(&p / "conv_bn", bottleneck),
            expand: conv2d(&p / "expand", bottleneck, channels, 3, 1, 1),
            expand_bn: batch_norm2d(&p / "expand_bn", channels),
            activation,
        }
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let act = self.activation;
        let h = act.apply(x.apply(&self.reduce).apply_t(&self.reduce_bn, train));
        let h = act.apply(h.apply(&self.conv).apply_t(&self.conv_bn, train));
        let h = h.apply(&self.expand).apply_t(&self.expand_bn, train);
        act.apply(x + h)
    }
}

/// 64x64 RGB -> [B, width*8*4*4] features: four strided 4x4 convolutions
/// (64 -> 32 -> 16 -> 8 -> 4), batch norm after all but the first, LeakyReLU
/// after each. The body of the image encoder θ and the style encoder S.
#[derive(Debug)]
pub struct Downsampler {
    down32: nn::Conv2D,
    down16: nn::Conv2D,
    down16_bn: nn::BatchNorm,
    down8: nn::Conv2D,
    down8_bn: nn::BatchNorm,
    down4: nn::Conv2D,
    down4_bn: nn::BatchNorm,
}

impl Downsampler {
    pub fn new(p: &nn::Path, width: i64) -> Self {
        let w = width;
        Self {
            down32: conv2d(p / "down32", 3, w, 4, 2, 1),
            down16: conv2d(p / "down16", w, w * 2, 4, 2, 1),
            down16_bn: batch_norm2d(p / "down16_bn", w * 2),
            down8: conv2d(p / "down8", w * 2, w * 4, 4, 2, 1),
            down8_bn: batch_norm2d(p / "down8_bn", w * 4),
            down4: conv2d(p / "down4", w * 4, w * 8, 4, 2, 1),
            down4_bn: batch_norm2d(p / "down4_bn", w * 8),
        }
    }

    /// Size of the flattened output for a base width.
    pub fn output_dim(width: i64) -> i64 {
        width * 8 * 4 * 4
    }

    pub fn forward_t(&self, images: &Tensor, train: bool) -> Tensor {
        let h = images.apply(&self.down32).lrelu();
        let h = h
            .apply(&self.down16)
            .apply_t(&self.down16_bn, train)
            .lrelu();
        let h = h.apply(&self.down8).apply_t(&self.down8_bn, train).lrelu();
        let h = h.apply(&self.down4).apply_t(&self.down4_bn, train).lrelu();
        h.flatten(1, -1)
    }
}

/// LeakyReLU with slope 0.2, the GAN's non-linearity. tch's `leaky_relu`
/// has the fixed slope 0.01, so this borrows the kernel of its gradient:
/// `leaky_relu_backward(g = x, x, 0.2)` is x where x > 0 and 0.2·x elsewhere,
/// one kernel, and autograd differentiates it (through g) as LeakyReLU, so
/// values and gradients equal PyTorch's `leaky_relu(x, 0.2)` bit for bit. A
/// PReLU with a constant slope, as before, took 3x as long forward and
/// backward on the CPU (its backward also reduces a gradient for the slope).
pub trait LeakyRelu {
    fn lrelu(&self) -> Tensor;
}

impl LeakyRelu for Tensor {
    fn lrelu(&self) -> Tensor {
        self.leaky_relu_backward(self, 0.2, false)
    }
}
