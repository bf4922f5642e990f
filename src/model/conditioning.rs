//! How the text embedding φ(t) is scaled before G and D read it.
//!
//! The paper's φ(t) was trained against fixed GoogLeNet features, which gave
//! it a real scale. Here the image side of the joint embedding is learned
//! from scratch, nothing fixes the scale, and the image side takes it: the
//! text embedding comes out with norm ~0.6 and a per-dimension spread across
//! captions of ~0.02. D's text path has batch norm and scales that up; G's
//! (Linear + LeakyReLU, as in the paper) passes it on, so G hardly sees the
//! caption next to z. `Standardised` moves each dimension to zero mean and
//! unit spread over the training captions, with the statistics stored in the
//! model card, so training and inference apply the same map.

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Conditioning {
    /// φ(t) as the text encoder gives it (the paper).
    #[default]
    Raw,
    /// (φ(t) − mean) / std per dimension, over the training captions.
    Standardised { mean: Vec<f32>, std: Vec<f32> },
}

/// The names `--conditioning` takes.
pub const CONDITIONING_NAMES: &str = "raw, standardised";

impl Conditioning {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Standardised { .. } => "standardised",
        }
    }

    pub fn is_raw(&self) -> bool {
        matches!(self, Self::Raw)
    }

    /// Per-dimension statistics of caption embeddings `[..., E]` (every
    /// caption counts once).
    pub fn standardised_from(embeddings: &Tensor) -> Result<Self> {
        let dim = *embeddings.size().last().unwrap_or(&0);
        let flat = embeddings.to_kind(Kind::Float).reshape([-1, dim]);
        ensure!(
            flat.size()[0] >= 2,
            "standardising the text needs at least two caption embeddings"
        );
        let mean = flat.mean_dim(0, false, Kind::Float);
        // A dimension that never moves is left unscaled rather than blown up.
        let std = (&flat - &mean)
            .square()
            .mean_dim(0, false, Kind::Float)
            .sqrt()
            .clamp_min(1e-6);
        let this = Self::Standardised {
            mean: Vec::<f32>::try_from(mean.to_device(Device::Cpu))?,
            std: Vec::<f32>::try_from(std.to_device(Device::Cpu))?,
        };
        this.validate(dim)?;
        Ok(this)
    }

    /// Checks the statistics against the embedding size (a hand-edited or
    /// corrupted card can break them).
    pub fn validate(&self, embedding_dim: i64) -> Result<()> {
        if let Self::Standardised { mean, std } = self {
            ensure!(
                mean.len() as i64 == embedding_dim && std.len() as i64 == embedding_dim,
                "the text standardisation has {} means and {} spreads for a {embedding_dim}-d embedding",
                mean.len(),
                std.len()
            );
            ensure!(
                mean.iter().all(|m| m.is_finite()) && std.iter().all(|s| s.is_finite() && *s > 0.0),
                "the text standardisation holds a non-finite mean or a spread that is not positive"
            );
        }
        Ok(())
    }
}

/// A [`Conditioning`] as tensors on a device, applied in G's and D's forward.
#[derive(Debug)]
pub struct TextScaling {
    shift_scale: Option<(Tensor, Tensor)>,
}

impl TextScaling {
    pub fn new(conditioning: &Conditioning, device: Device) -> Self {
        let shift_scale = match conditioning {
            Conditioning::Raw => None,
            Conditioning::Standardised { mean, std } => {
                let mean = Tensor::from_slice(mean).to_device(device);
                let inv_std = Tensor::from_slice(std).to_device(device).reciprocal();
                Some((mean, inv_std))
            }
        };
        Self { shift_scale }
    }

    /// A linear layer (weight [out, dim], bias [out]) that reads the scaled
    /// text, as one that reads φ(t) itself: W·diag(1/σ) and b − W·diag(1/σ)·mean.
    pub fn fold_into(&self, weight: &Tensor, bias: &Tensor) -> (Tensor, Tensor) {
        match &self.shift_scale {
            None => (weight.detach().copy(), bias.detach().copy()),
            Some((mean, inv_std)) => {
                let w = weight * inv_std.unsqueeze(0);
                let b = bias - w.mv(mean);
                (w.detach(), b.detach())
            }
        }
    }

    pub fn apply(&self, text: &Tensor) -> Tensor {
        match &self.shift_scale {
            None => text.shallow_clone(),
            Some((mean, inv_std)) => (text - mean) * inv_std,
        }
    }
}
