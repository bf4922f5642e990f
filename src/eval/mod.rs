//! The measurements of evaluation.md. Inception weights cannot be had here,
//! so these replace IS/FID:
//!
//! - procedural flowers (exact ground truth, read back by the attribute
//!   probe): content accuracy per attribute on training and held-out classes,
//!   style transfer (style kept, content followed), sentence interpolation
//!   (endpoints, background steady), diversity, and the style AUC;
//! - any captioned set: R-precision of generated images against real ones,
//!   zero-shot top-1 of the joint embedding, and (Oxford-102) colour accuracy;
//!   with a class probe of its photos, realism: the classification accuracy
//!   score of generated images and the Fréchet distance in the probe's
//!   features, each beside the real photos' own.

//!
//! One file per kind of measurement: [`procedural`] (the probe on procedural
//! flowers), [`captioned`] (any captioned set), [`colour`] (Oxford-102's
//! colour words and pixels), [`statistics`] (AUC, entropy, the checkerboard
//! measure).

pub mod captioned;
pub mod colour;
pub mod procedural;
pub mod statistics;

pub use captioned::{captioned, realism};
pub use colour::{caption_colour, dominant_colour, COLOURS};
pub use procedural::{
    content_accuracy, d_rejects, diversity, embedding_reads, embedding_reads_with, full_caption,
    phrased_caption, phrased_caption_in, procedural, style_encoders, ContentRate, Rejects, CONTENT,
    CROSS_CHECK_PHRASINGS, HELD_OUT_PHRASINGS,
};
pub use statistics::{checkerboard, frechet_distance, grid, grids, roc_auc, GRID_PERIODS};

use crate::text;
use crate::weights::Model;
use anyhow::Result;
use tch::{Device, Tensor};

/// One number of the evaluation table.
#[derive(Clone, Debug)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub note: String,
    /// A rate in [0, 1] (printed as a percentage) or, false, a plain number
    /// (a distance).
    pub rate: bool,
}

impl Metric {
    /// The value as the table prints it: "87.5%" or "12.34".
    pub fn shown(&self) -> String {
        if self.rate {
            format!("{:.1}%", self.value * 100.0)
        } else {
            format!("{:.2}", self.value)
        }
    }
}

pub(crate) fn metric(name: &str, value: f64, note: impl Into<String>) -> Metric {
    Metric {
        name: name.to_string(),
        value,
        note: note.into(),
        rate: true,
    }
}

/// A metric that is a plain number, not a rate.
pub(crate) fn number(name: &str, value: f64, note: impl Into<String>) -> Metric {
    Metric {
        rate: false,
        ..metric(name, value, note)
    }
}

/// φ(t) for many captions, batched: [N, E] on the model's device.
pub fn embed(model: &Model, captions: &[String]) -> Result<Tensor> {
    let encoded: Vec<text::EncodedCaption> = captions
        .iter()
        .map(|c| text::encode(c))
        .collect::<Result<_, _>>()?;
    Ok(model
        .text_encoder
        .net
        .embed(&encoded, model.device, &mut |_, _| {}))
}

/// G(z, text) in batches (G folded, as the runtime draws): [N, 3, 64, 64]
/// on the CPU.
pub fn draw(model: &Model, z: &Tensor, text: &Tensor) -> Tensor {
    let chunks: Vec<Tensor> = model
        .generator
        .net
        .folded()
        .draw_chunks(z, text, 256)
        .map(|images| images.to_device(Device::Cpu))
        .collect();
    Tensor::cat(&chunks, 0)
}

/// A net applied in batches of 256 to CPU images: [N, D] on the CPU.
pub(crate) fn in_batches(images: &Tensor, device: Device, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
    let n = images.size()[0];
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let len = (n - start).min(256);
        out.push(
            tch::no_grad(|| f(&images.narrow(0, start, len).to_device(device)))
                .to_device(Device::Cpu),
        );
        start += len;
    }
    Tensor::cat(&out, 0)
}
