//! G for drawing only (evaluation mode, no gradients): each batch norm is
//! folded into the (transposed) convolution before it, the text scaling into
//! the text projection, and G's first layer (a 4x4 transposed convolution of
//! a 1x1 input) becomes one matrix product. Training keeps the unfolded
//! network; [`Generator::folded`] makes this copy from its current weights.
//!
//! In evaluation mode a batch norm is a fixed affine map per channel,
//! y = γ (x − μ) / √(σ² + ε) + β = s·x + (β − s·μ) with s = γ / √(σ² + ε),
//! so a convolution W followed by it is the convolution s·W with bias
//! β − s·μ: the same pixels up to float rounding, with a pass over every
//! feature map saved per batch norm. On the CPU the larger maps are also
//! kept channels-last, the layout oneDNN's transposed convolutions prefer.

use super::generator::{Blur, Generator, Upsample};
use super::{channels_last, LeakyRelu, ResidualBlock, BN_EPS};
use tch::{nn, Device, Kind, Tensor};

/// The largest difference between two batches of images in [-1, 1], in
/// 8-bit levels (255 levels span the range): how far two ways of drawing
/// are apart as saved pictures.
pub fn levels_apart(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[]) * 127.5
}

/// A convolution with its batch norm folded in.
#[derive(Debug)]
struct FoldedConv {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
    padding: i64,
    transposed: bool,
    /// A [`Blur`] between the convolution and the bias (a bilinear doubling:
    /// the batch norm's scale commutes with the blur, its shift is added after).
    blur: Option<Blur>,
}

impl FoldedConv {
    /// `weight` (bias-free) followed by `bn` in evaluation mode. The output
    /// channels are dim 0 of a convolution's weight, dim 1 of a transposed
    /// one's.
    fn new(
        weight: &Tensor,
        bn: &nn::BatchNorm,
        stride: i64,
        padding: i64,
        transposed: bool,
    ) -> Self {
        let (scale, shift) = bn_affine(bn);
        let shape: Vec<i64> = if transposed {
            vec![1, -1, 1, 1]
        } else {
            vec![-1, 1, 1, 1]
        };
        Self {
            weight: (weight * scale.view(shape.as_slice())).contiguous(),
            bias: shift,
            stride,
            padding,
            transposed,
            blur: None,
        }
    }

    fn to_kind(&self, kind: Kind) -> Self {
        Self {
            weight: self.weight.to_kind(kind),
            bias: self.bias.to_kind(kind),
            blur: self.blur.as_ref().map(|b| b.to_kind(kind)),
            ..*self
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (s, p) = ([self.stride; 2], [self.padding; 2]);
        let bias = self.blur.is_none().then_some(&self.bias);
        let y = if self.transposed {
            x.conv_transpose2d(&self.weight, bias, s, p, [0, 0], 1, [1, 1])
        } else {
            x.conv2d(&self.weight, bias, s, p, [1, 1], 1)
        };
        match &self.blur {
            Some(blur) => blur.forward_plus(&y, Some(&self.bias)),
            None => y,
        }
    }
}

/// A 4x4 transposed convolution of stride 2 and padding 1 as a 2x2
/// convolution with four outputs per channel, one per phase, whose outputs
/// are interleaved (a sub-pixel convolution): output pixel (2m + a, 2n + c)
/// reads input rows m + i through tap a + 1 − 2i, which exists for two i:
/// rows m − 1 + a and m + a through taps 3 − a and 1 − a. A 2x2 window of
/// the input padded by one, at (m + a, n + c), holds just those, so phase
/// (a, c) is the 2x2 convolution with taps (3 − a − 2r, 3 − c − 2s) at
/// (m + a, n + c). The same values up to rounding and the same arithmetic
/// (plus one row and column), but oneDNN's convolutions run where its
/// transposed ones lag: on the 4x4 map of G's first doubling and on the
/// three channels of its last (about 1.4x and 3x on this project's 2-core
/// CPU, one thread; `bench/generate.sh` measures the whole of G).
#[derive(Debug)]
struct SubPixelConv {
    /// [4 · C_out, C_in, 2, 2]: channel (2a + c) · C_out + o for phase (a, c).
    weight: Tensor,
    /// The batch norm's shift where one follows; with no blur it goes into
    /// the convolution (once per phase).
    bias: Option<Tensor>,
    blur: Option<Blur>,
    c_out: i64,
}

impl SubPixelConv {
    /// `w` [C_in, C_out, 4, 4], a transposed convolution's weight, then
    /// `blur` (if any), then `bias` (if any).
    fn new(w: &Tensor, bias: Option<Tensor>, blur: Option<Blur>) -> Self {
        let [c_in, c_out, k, _] = w.size()[..] else {
            unreachable!("a transposed convolution's weight is 4-d")
        };
        assert_eq!(k, 4, "the sub-pixel form is for 4x4 kernels of stride 2");
        // Index (2a + r) of `taps` is tap 3 − a − 2r.
        let taps = Tensor::from_slice(&[3i64, 1, 2, 0]).to_device(w.device());
        let weight = w
            .detach()
            .index_select(2, &taps)
            .index_select(3, &taps)
            .view([c_in, c_out, 2, 2, 2, 2])
            // [C_in, C_out, a, r, c, s] -> [a, c, C_out, C_in, r, s]
            .permute([2, 4, 1, 0, 3, 5])
            .reshape([4 * c_out, c_in, 2, 2]);
        Self {
            weight,
            bias,
            blur,
            c_out,
        }
    }

    fn to_kind(&self, kind: Kind) -> Self {
        Self {
            weight: self.weight.to_kind(kind),
            bias: self.bias.as_ref().map(|b| b.to_kind(kind)),
            blur: self.blur.as_ref().map(|b| b.to_kind(kind)),
            c_out: self.c_out,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let [b, _, h, w] = x.size()[..] else {
            unreachable!("G's maps are 4-d")
        };
        let c_out = self.c_out;
        let inner_bias = match (&self.bias, &self.blur) {
            (Some(bias), None) => Some(bias.repeat([4])),
            _ => None,
        };
        let y = x
            .conv2d(&self.weight, inner_bias.as_ref(), [1, 1], [1, 1], [1, 1], 1)
            .view([b, 2, 2, c_out, h + 1, w + 1]);
        let phases = |a: i64| {
            let row: Vec<Tensor> = (0..2)
                .map(|c| y.select(1, a).select(1, c).narrow(2, a, h).narrow(3, c, w))
                .collect();
            Tensor::stack(&row, -1) // [B, C_out, H, W, 2 (c)]
        };
        // [B, C_out, H, 2 (a), W, 2 (c)] is the doubled map.
        let y = Tensor::stack(&[phases(0), phases(1)], 3).reshape([b, c_out, 2 * h, 2 * w]);
        match (&self.blur, &self.bias) {
            (Some(blur), bias) => blur.forward_plus(&y, bias.as_ref()),
            (None, _) => y,
        }
    }
}

/// A doubling with its batch norm folded in, in the form that is faster
/// where G draws.
#[derive(Debug)]
enum FoldedUp {
    Transposed(FoldedConv),
    SubPixel(SubPixelConv),
}

impl FoldedUp {
    fn to_kind(&self, kind: Kind) -> Self {
        match self {
            Self::Transposed(conv) => Self::Transposed(conv.to_kind(kind)),
            Self::SubPixel(conv) => Self::SubPixel(conv.to_kind(kind)),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            Self::Transposed(conv) => conv.forward(x),
            Self::SubPixel(conv) => conv.forward(x),
        }
    }
}

/// One of G's doublings with the batch norm after it folded in.
fn fold_up(up: &Upsample, bn: &nn::BatchNorm) -> FoldedConv {
    FoldedConv {
        blur: up.blur().cloned(),
        ..FoldedConv::new(&up.transposed_weight(), bn, 2, 1, true)
    }
}

/// (s, β − s·μ) of a batch norm in evaluation mode.
fn bn_affine(bn: &nn::BatchNorm) -> (Tensor, Tensor) {
    let c = bn.running_mean.size()[0];
    let options = (Kind::Float, bn.running_mean.device());
    let gamma = bn
        .ws
        .as_ref()
        .map_or_else(|| Tensor::ones([c], options), Tensor::shallow_clone);
    let beta = bn
        .bs
        .as_ref()
        .map_or_else(|| Tensor::zeros([c], options), Tensor::shallow_clone);
    let scale = gamma / (&bn.running_var + BN_EPS).sqrt();
    let shift = beta - &bn.running_mean * &scale;
    (scale.detach(), shift.detach())
}

#[derive(Debug)]
struct FoldedResidual {
    reduce: FoldedConv,
    conv: FoldedConv,
    expand: FoldedConv,
}

impl FoldedResidual {
    fn new(block: &ResidualBlock) -> Self {
        Self {
            reduce: FoldedConv::new(&block.reduce.ws, &block.reduce_bn, 1, 0, false),
            conv: FoldedConv::new(&block.conv.ws, &block.conv_bn, 1, 1, false),
            expand: FoldedConv::new(&block.expand.ws, &block.expand_bn, 1, 1, false),
        }
    }

    fn to_kind(&self, kind: Kind) -> Self {
        Self {
            reduce: self.reduce.to_kind(kind),
            conv: self.conv.to_kind(kind),
            expand: self.expand.to_kind(kind),
        }
    }

    /// G's residual blocks use ReLU.
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.reduce.forward(x).relu_();
        let h = self.conv.forward(&h).relu_();
        let mut h = self.expand.forward(&h);
        let _ = h.g_add_(x);
        h.relu_()
    }
}

/// G with its batch norms folded: see the module comment.
#[derive(Debug)]
pub struct FoldedGenerator {
    /// The text projection with the text scaling folded in (W·diag(1/σ),
    /// b − W·diag(1/σ)·mean), [nt, embedding_dim] and [nt].
    text_weight: Tensor,
    text_bias: Tensor,
    /// up4 and its batch norm as a matrix [nz + nt, C·16] and a bias [C·16].
    up4_weight: Tensor,
    up4_bias: Tensor,
    up4_channels: i64,
    res4: FoldedResidual,
    up8: FoldedUp,
    res8: FoldedResidual,
    up16: FoldedConv,
    up32: FoldedConv,
    to_rgb: SubPixelConv,
    device: Device,
    /// The precision G computes in (inputs are converted to it, pixels come
    /// back as f32): f32, or half on a GPU where that draws the same pixels
    /// (see [`FoldedGenerator::in_precision`]).
    kind: Kind,
}

impl Generator {
    /// This G, folded for drawing (from its weights as they are now).
    pub fn folded(&self) -> FoldedGenerator {
        tch::no_grad(|| {
            let (text_weight, text_bias) = self.text_scaling.fold_into(
                &self.text_projection.ws,
                self.text_projection
                    .bs
                    .as_ref()
                    .expect("G's text projection has a bias"),
            );
            let up4 = FoldedConv::new(&self.up4.ws, &self.up4_bn, 1, 0, true);
            let [c_in, c_out, kh, kw] = up4.weight.size()[..] else {
                unreachable!("a transposed convolution's weight is 4-d")
            };
            FoldedGenerator {
                text_weight: text_weight.contiguous(),
                text_bias,
                up4_weight: up4.weight.reshape([c_in, c_out * kh * kw]),
                up4_bias: up4
                    .bias
                    .unsqueeze(1)
                    .expand([c_out, kh * kw], false)
                    .reshape([c_out * kh * kw]),
                up4_channels: c_out,
                res4: FoldedResidual::new(&self.res4),
                // A resize-convolution is a transposed convolution with a
                // tied kernel (see `Upsample`): folded as one.
                // On the CPU the first doubling (of a 4x4 map) is faster as a
                // sub-pixel convolution; elsewhere not measured.
                up8: if self.text_projection.ws.device() == Device::Cpu {
                    let up8 = fold_up(&self.up8, &self.up8_bn);
                    FoldedUp::SubPixel(SubPixelConv::new(&up8.weight, Some(up8.bias), up8.blur))
                } else {
                    FoldedUp::Transposed(fold_up(&self.up8, &self.up8_bn))
                },
                res8: FoldedResidual::new(&self.res8),
                up16: fold_up(&self.up16, &self.up16_bn),
                up32: fold_up(&self.up32, &self.up32_bn),
                to_rgb: SubPixelConv::new(
                    &self.to_rgb.transposed_weight(),
                    None,
                    self.to_rgb.blur().cloned(),
                ),
                device: self.text_projection.ws.device(),
                kind: Kind::Float,
            }
        })
    }
}

impl FoldedGenerator {
    /// z: [B, nz], text: [B, embedding_dim] -> images [B, 3, 64, 64] in
    /// [-1, 1], as `Generator::forward_t(z, text, false)` draws them.
    pub fn forward(&self, z: &Tensor, text: &Tensor) -> Tensor {
        let b = z.size()[0];
        let (z, text) = (&z.to_kind(self.kind), &text.to_kind(self.kind));
        let t = text
            .linear(&self.text_weight, Some(&self.text_bias))
            .lrelu();
        let h = self
            .up4_bias
            .addmm(&Tensor::cat(&[z, &t], 1), &self.up4_weight)
            .view([b, self.up4_channels, 4, 4]);
        let h = self.res4.forward(&h);
        // From 8x8 on, on the CPU, oneDNN's (transposed) convolutions run
        // faster on channels-last input (bench/generate.sh).
        let h = channels_last(&self.up8.forward(&h));
        let h = self.res8.forward(&h);
        let h = self.up16.forward(&h).relu_();
        let h = self.up32.forward(&h).relu_();
        self.to_rgb.forward(&h).tanh_().to_kind(Kind::Float)
    }

    /// The precision G computes in.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// This G computing in `kind` (half precision on a GPU) if, on the
    /// calibration batch `z`, `text`, its pixels stay within `max_levels`
    /// 8-bit levels of this one's; else this G as it is. Either way, the
    /// largest difference measured.
    pub fn in_precision(
        self,
        kind: Kind,
        z: &Tensor,
        text: &Tensor,
        max_levels: f64,
    ) -> (Self, f64) {
        let lower = Self {
            text_weight: self.text_weight.to_kind(kind),
            text_bias: self.text_bias.to_kind(kind),
            up4_weight: self.up4_weight.to_kind(kind),
            up4_bias: self.up4_bias.to_kind(kind),
            up4_channels: self.up4_channels,
            res4: self.res4.to_kind(kind),
            up8: self.up8.to_kind(kind),
            res8: self.res8.to_kind(kind),
            up16: self.up16.to_kind(kind),
            up32: self.up32.to_kind(kind),
            to_rgb: self.to_rgb.to_kind(kind),
            device: self.device,
            kind,
        };
        let drawn = |g: &Self| {
            tch::no_grad(|| g.forward(&z.to_device(self.device), &text.to_device(self.device)))
        };
        let levels = levels_apart(&drawn(&lower), &drawn(&self));
        // NaN (an overflow in the lower precision) fails the test too.
        if levels <= max_levels {
            (lower, levels)
        } else {
            (self, levels)
        }
    }

    /// G(z, text) `chunk` rows at a time, without gradients, as a lazy
    /// iterator (a caller can stop, or check for cancellation, between
    /// chunks): the one batched path through G for the runtime and
    /// evaluation.
    pub fn draw_chunks<'a>(
        &'a self,
        z: &'a Tensor,
        text: &'a Tensor,
        chunk: usize,
    ) -> impl Iterator<Item = Tensor> + 'a {
        let n = z.size()[0];
        let chunk = chunk.max(1) as i64;
        (0..n).step_by(chunk as usize).map(move |start| {
            let len = (n - start).min(chunk);
            tch::no_grad(|| {
                self.forward(
                    &z.narrow(0, start, len).to_device(self.device),
                    &text.narrow(0, start, len).to_device(self.device),
                )
            })
        })
    }
}
