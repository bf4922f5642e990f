//! Generator G (paper.md §2; icml2016 `main_cls_int.lua`, ngf = 128, nz = 100, nt = 128).
//!
//! z (nz) and the text embedding squeezed to nt are concatenated to a
//! (nz + nt) x 1 x 1 map and upsampled to a 64 x 64 RGB image in [-1, 1]:
//! 4x4 (ngf*8, residual) -> 8x8 (ngf*4, residual) -> 16x16 -> 32x32 -> 64x64.
//!
//! Every upsampling is a 4x4 transposed convolution of stride 2, as in the
//! paper. Optionally ([`Upsampling`], not in the paper) the last one, to the
//! 64x64 pixels, or every one after the first 4x4 map is a nearest-neighbour
//! (or bilinear) upsampling followed by a 3x3 convolution instead: a
//! transposed convolution of stride 2 with a 4x4 kernel gives the even and
//! the odd output pixels different sets of weights, which draws a period-2
//! checkerboard unless training tunes the two into agreement (Odena,
//! Dumoulin & Olah 2016, "Deconvolution and checkerboard artifacts"); after
//! a fixed upsampling every output pixel reads its neighbourhood through the
//! same kernel. A transposed convolution left at 32x32 or below draws its
//! pattern there, and the upsamplings after it double its period (a period-4
//! grid at 64x64 from the 32x32 map's checkerboard): hence the option for
//! every layer. Nearest neighbour copies each pixel into a 2x2 block, which
//! shows as blocky, axis-aligned streaks; bilinear weights the two nearest
//! pixels 3/4 and 1/4 along each axis, the usual remedy.

use super::{
    batch_norm2d, channels_last, conv2d, conv_transpose2d, linear, Activation, Conditioning,
    LeakyRelu, ResidualBlock, TextScaling,
};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// How G doubles its maps from 4x4 up to the 64x64 pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Upsampling {
    /// 4x4 transposed convolutions of stride 2 (the paper).
    #[default]
    Transposed,
    /// The last layer (32x32 to the pixels) a nearest-neighbour upsampling
    /// and a 3x3 convolution, the others transposed.
    ResizeLast,
    /// Every doubling (8x8, 16x16, 32x32, the pixels) a nearest-neighbour
    /// upsampling and a 3x3 convolution.
    Resize,
    /// Every doubling a bilinear upsampling and a 3x3 convolution.
    Bilinear,
}

/// The names `--upsampling` takes, the paper's first.
pub const UPSAMPLINGS: [&str; 4] = ["transposed", "resize-last", "resize", "bilinear"];

impl Upsampling {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "transposed" => Self::Transposed,
            "resize-last" => Self::ResizeLast,
            "resize" => Self::Resize,
            "bilinear" => Self::Bilinear,
            _ => bail!("unknown upsampling '{s}' ({})", UPSAMPLINGS.join(", ")),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Transposed => "transposed",
            Self::ResizeLast => "resize-last",
            Self::Resize => "resize",
            Self::Bilinear => "bilinear",
        }
    }

    /// What G's upsamplings are, for people (`model info`).
    pub fn describe(self) -> &'static str {
        match self {
            Self::Transposed => "4x4 transposed convolutions (the paper)",
            Self::ResizeLast => {
                "4x4 transposed convolutions, the last (to the pixels) a nearest-neighbour \
                 upsampling + 3x3 convolution (--upsampling resize-last)"
            }
            Self::Resize => {
                "nearest-neighbour upsampling + 3x3 convolution at every doubling (--upsampling resize)"
            }
            Self::Bilinear => {
                "bilinear upsampling + 3x3 convolution at every doubling (--upsampling bilinear)"
            }
        }
    }

    pub fn is_paper(&self) -> bool {
        *self == Self::Transposed
    }

    /// The fixed upsampling before a 3x3 convolution that doubles a map,
    /// the last (to the pixels) or another; None for a transposed convolution.
    fn filter(self, last: bool) -> Option<Filter> {
        match (self, last) {
            (Self::Transposed, _) | (Self::ResizeLast, false) => None,
            (Self::ResizeLast, true) | (Self::Resize, _) => Some(Filter::Nearest),
            (Self::Bilinear, _) => Some(Filter::Bilinear),
        }
    }
}

/// A fixed upsampling by 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Filter {
    Nearest,
    Bilinear,
}

/// Bilinear upsampling by 2 (corners not aligned) is nearest-neighbour
/// upsampling followed by this blur: [1, 2, 1]/4 along each axis turns the
/// copies x_m, x_m into (x_(m−1) + 3x_m)/4, (3x_m + x_(m+1))/4. Per channel
/// (a depthwise 3x3 convolution), zero beyond the map. The kernel is made
/// once, with the layer; it is fixed, not a weight.
#[derive(Debug)]
pub(super) struct Blur {
    /// [C, 1, 3, 3]: the same 3x3 kernel for each of C channels.
    kernel: Tensor,
}

impl Blur {
    pub(super) fn new(channels: i64, device: tch::Device) -> Self {
        let taps = Tensor::from_slice(&[0.25f32, 0.5, 0.25]).to_device(device);
        let kernel = taps
            .outer(&taps)
            .view([1, 1, 3, 3])
            .expand([channels, 1, 3, 3], false)
            .contiguous();
        Self { kernel }
    }

    pub(super) fn to_kind(&self, kind: Kind) -> Self {
        Self {
            kernel: self.kernel.to_kind(kind),
        }
    }

    pub(super) fn forward(&self, h: &Tensor) -> Tensor {
        self.forward_plus(h, None)
    }

    /// The blur of `h` plus `bias` per channel (where given), in one pass.
    pub(super) fn forward_plus(&self, h: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let kernel = if self.kernel.kind() == h.kind() {
            self.kernel.shallow_clone()
        } else {
            self.kernel.to_kind(h.kind())
        };
        let channels = kernel.size()[0];
        h.conv2d(&kernel, bias, [1, 1], [1, 1], [1, 1], channels)
    }

    /// `h` through `blur` where there is one (a bilinear doubling), else `h`.
    pub(super) fn after(blur: Option<&Blur>, h: Tensor) -> Tensor {
        match blur {
            Some(blur) => blur.forward(&h),
            None => h,
        }
    }
}

impl Clone for Blur {
    fn clone(&self) -> Self {
        Self {
            kernel: self.kernel.shallow_clone(),
        }
    }
}

/// One doubling of G's maps (no bias: a batch norm follows, or for the last
/// layer tanh).
///
/// A resize-convolution is itself a 4x4 transposed convolution of stride 2
/// and padding 1, one whose kernel is tied: output pixel 2m + a reads
/// upsampled pixels 2m + a + d, d in {-1, 0, 1}, which are input pixels
/// m + ⌊(a + d)/2⌋, and the transposed convolution reads input m + i through
/// tap a + 1 − 2i; so along each axis the 3x3 kernel's taps (k0, k1, k2)
/// become the 4x4 kernel's (k2, k1 + k2, k0 + k1, k0). G computes it that
/// way: the same values up to rounding, at the transposed convolution's cost
/// (four taps an output pixel instead of nine) and without the upsampled map;
/// the learned weight stays the 3x3 kernel.
///
/// Bilinear upsampling is nearest neighbour's followed by a [`Blur`], and the
/// blur, a convolution too, commutes with the 3x3 kernel: a bilinear
/// doubling is the nearest one, then the blur. The same values as bilinear
/// upsampling then the 3x3 kernel away from the border (at the border the
/// blur reads zeros beyond the map), for the nearest one's cost and a blur
/// per channel; as one tied transposed convolution it would take a 6x6
/// kernel, 2.25 times the arithmetic.
#[derive(Debug)]
pub(super) enum Upsample {
    /// Weight [C_in, C_out, 4, 4], stride 2, padding 1.
    Transposed(nn::ConvTranspose2D),
    /// Weight [C_out, C_in, 3, 3], of the map upsampled twice over by
    /// nearest neighbour, then (bilinear) blurred.
    Resize {
        conv: nn::Conv2D,
        blur: Option<Blur>,
    },
}

impl Upsample {
    fn new(p: nn::Path, c_in: i64, c_out: i64, upsampling: Upsampling, last: bool) -> Self {
        match upsampling.filter(last) {
            None => Self::Transposed(conv_transpose2d(p, c_in, c_out, 4, 2, 1)),
            Some(filter) => Self::Resize {
                blur: (filter == Filter::Bilinear).then(|| Blur::new(c_out, p.device())),
                conv: conv2d(p, c_in, c_out, 3, 1, 1),
            },
        }
    }

    /// The 4x4 transposed convolution's weight [C_in, C_out, 4, 4] this
    /// doubling is, before any blur (see the type's comment), with its
    /// gradient.
    pub(super) fn transposed_weight(&self) -> Tensor {
        match self {
            Self::Transposed(layer) => layer.ws.shallow_clone(),
            Self::Resize { conv, .. } => {
                // Row y of `tie` says which of the 3 taps add up to tap y of 4.
                let tie = Tensor::from_slice(&[0f32, 0., 1., 0., 1., 1., 1., 1., 0., 1., 0., 0.])
                    .view([4, 3])
                    .to_kind(conv.ws.kind())
                    .to_device(conv.ws.device());
                tie.matmul(&conv.ws).matmul(&tie.tr()).transpose(0, 1)
            }
        }
    }

    /// The [`Blur`] after the transposed convolution (a bilinear doubling).
    pub(super) fn blur(&self) -> Option<&Blur> {
        match self {
            Self::Resize { blur, .. } => blur.as_ref(),
            Self::Transposed(_) => None,
        }
    }

    fn forward(&self, h: &Tensor) -> Tensor {
        let h = match self {
            Self::Transposed(layer) => return h.apply(layer),
            Self::Resize { .. } => h.conv_transpose2d(
                &self.transposed_weight(),
                None::<&Tensor>,
                [2, 2],
                [1, 1],
                [0, 0],
                1,
                [1, 1],
            ),
        };
        Blur::after(self.blur(), h)
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
    /// How G doubles its maps (the paper's transposed convolutions where
    /// the card does not say).
    #[serde(default, skip_serializing_if = "Upsampling::is_paper")]
    pub upsampling: Upsampling,
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
    pub(super) up8: Upsample,
    pub(super) up8_bn: nn::BatchNorm,
    pub(super) res8: ResidualBlock,
    pub(super) up16: Upsample,
    pub(super) up16_bn: nn::BatchNorm,
    pub(super) up32: Upsample,
    pub(super) up32_bn: nn::BatchNorm,
    pub(super) to_rgb: Upsample,
}

impl Generator {
    pub fn new(p: &nn::Path, config: &GeneratorConfig, conditioning: &Conditioning) -> Self {
        let GeneratorConfig {
            nz,
            nt,
            ngf,
            embedding_dim,
            upsampling,
        } = *config;
        Self {
            config: config.clone(),
            text_scaling: TextScaling::new(conditioning, p.device()),
            // Linear(1024 -> 128) + LeakyReLU(0.2), no batch norm.
            text_projection: linear(p / "text_projection", embedding_dim, nt),
            up4: conv_transpose2d(p / "up4", nz + nt, ngf * 8, 4, 1, 0),
            up4_bn: batch_norm2d(p / "up4_bn", ngf * 8),
            res4: ResidualBlock::new(p / "res4", ngf * 8, ngf * 2, Activation::Relu),
            up8: Upsample::new(p / "up8", ngf * 8, ngf * 4, upsampling, false),
            up8_bn: batch_norm2d(p / "up8_bn", ngf * 4),
            res8: ResidualBlock::new(p / "res8", ngf * 4, ngf, Activation::Relu),
            up16: Upsample::new(p / "up16", ngf * 4, ngf * 2, upsampling, false),
            up16_bn: batch_norm2d(p / "up16_bn", ngf * 2),
            up32: Upsample::new(p / "up32", ngf * 2, ngf, upsampling, false),
            up32_bn: batch_norm2d(p / "up32_bn", ngf),
            to_rgb: Upsample::new(p / "to_rgb", ngf, 3, upsampling, true),
        }
    }

    /// Changes how φ(t) is scaled (training sets it once, from its data).
    pub fn set_conditioning(&mut self, conditioning: &Conditioning) {
        let device = self.text_projection.ws.device();
        self.text_scaling = TextScaling::new(conditioning, device);
    }

    /// What G reads of φ(t) before its non-linearity: the scaled text
    /// through the text projection, [B, nt].
    pub fn text_features(&self, text: &Tensor) -> Tensor {
        self.text_scaling.apply(text).apply(&self.text_projection)
    }

    /// z: [B, nz], text: [B, embedding_dim] -> images [B, 3, 64, 64] in [-1, 1].
    pub fn forward_t(&self, z: &Tensor, text: &Tensor, train: bool) -> Tensor {
        let t = self.text_features(text).lrelu();
        let h = Tensor::cat(&[z, &t], 1).unsqueeze(-1).unsqueeze(-1);
        // Channels-last from the first 4x4 map on (see `channels_last`).
        let h = channels_last(&h.apply(&self.up4)).apply_t(&self.up4_bn, train);
        let h = self.res4.forward_t(&h, train);
        let h = self.up8.forward(&h).apply_t(&self.up8_bn, train);
        let h = self.res8.forward_t(&h, train);
        let h = self.up16.forward(&h).apply_t(&self.up16_bn, train).relu();
        let h = self.up32.forward(&h).apply_t(&self.up32_bn, train).relu();
        self.to_rgb.forward(&h).tanh()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// The tied transposed convolution G computes is the resize-convolution
    /// it stands for: upsampling by nearest neighbour, then the 3x3 kernel
    /// (zero-padded), border pixels included.
    #[test]
    fn a_resize_doubling_is_nearest_upsampling_then_its_3x3_kernel() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let layer = Upsample::new(vs.root() / "up", 5, 7, Upsampling::Resize, false);
        let Upsample::Resize { conv, blur } = &layer else {
            panic!("resize asked, {layer:?} made")
        };
        assert!(blur.is_none());
        let h = Tensor::randn([2, 5, 6, 9], (Kind::Float, Device::Cpu));
        let ours = tch::no_grad(|| layer.forward(&h));
        let theirs = tch::no_grad(|| {
            h.upsample_nearest2d([12, 18], None, None).conv2d::<Tensor>(
                &conv.ws,
                None,
                [1, 1],
                [1, 1],
                [1, 1],
                1,
            )
        });
        assert_eq!(ours.size(), vec![2, 7, 12, 18]);
        let apart = (&ours - &theirs).abs().max().double_value(&[]);
        assert!(apart < 1e-5, "{apart}");
        // The last layer follows --upsampling resize-last; the others not.
        let last = Upsample::new(vs.root() / "l", 5, 3, Upsampling::ResizeLast, true);
        let map = Upsample::new(vs.root() / "m", 5, 3, Upsampling::ResizeLast, false);
        assert!(matches!(last, Upsample::Resize { .. }) && matches!(map, Upsample::Transposed(_)));
    }

    /// A bilinear doubling is bilinear upsampling (PyTorch's, corners not
    /// aligned), then the 3x3 kernel: exactly so away from the border; at
    /// the border it is the nearest doubling, then the blur, zero-padded.
    #[test]
    fn a_bilinear_doubling_is_bilinear_upsampling_then_its_3x3_kernel() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let layer = Upsample::new(vs.root() / "up", 5, 7, Upsampling::Bilinear, true);
        let Upsample::Resize { conv, blur } = &layer else {
            panic!("bilinear asked, {layer:?} made")
        };
        assert!(blur.is_some());
        let h = Tensor::randn([2, 5, 6, 9], (Kind::Float, Device::Cpu));
        let ours = tch::no_grad(|| layer.forward(&h));
        assert_eq!(ours.size(), vec![2, 7, 12, 18]);
        let kernel = |g: &Tensor| g.conv2d::<Tensor>(&conv.ws, None, [1, 1], [1, 1], [1, 1], 1);
        let apart = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
        // Everywhere: nearest, the kernel, the blur [1, 2, 1]/4 per axis.
        let blurred = tch::no_grad(|| {
            let f = Tensor::from_slice(&[0.25f32, 0.5, 0.25]);
            let f = f.outer(&f).view([1, 1, 3, 3]).expand([7, 1, 3, 3], false);
            kernel(&h.upsample_nearest2d([12, 18], None, None)).conv2d::<Tensor>(
                &f.contiguous(),
                None,
                [1, 1],
                [1, 1],
                [1, 1],
                7,
            )
        });
        let d = apart(&ours, &blurred);
        assert!(d < 1e-5, "{d}");
        // Away from the border: PyTorch's bilinear, then the kernel.
        let theirs = tch::no_grad(|| kernel(&h.upsample_bilinear2d([12, 18], false, None, None)));
        let inside = |t: &Tensor| t.narrow(2, 2, 8).narrow(3, 2, 14);
        let d = apart(&inside(&ours), &inside(&theirs));
        assert!(d < 1e-5, "{d}");
        assert!(
            apart(&ours, &theirs) > 1e-3,
            "the border differs, as documented"
        );
    }
}
