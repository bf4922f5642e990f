//! Text encoder φ: the char-CNN-RNN of paper.md §1 (cvpr2016 `HybridCNNLong` +
//! `FixedGRU`), trained as a deep symmetric structured joint embedding.
//!
//! A caption arrives as a one-hot [70 x 201] matrix (see `crate::text`):
//! Conv1d(70->384,k4) ReLU MaxPool(3) -> Conv1d(384->512,k4) ReLU MaxPool(3)
//! -> Conv1d(512->512,k4) ReLU (18 time steps) -> GRU(512), outputs averaged
//! over time -> Linear(512->1024).

use crate::text::{ALPHABET_SIZE, MAX_CAPTION_CHARS};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::RNN, Tensor};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextEncoderConfig {
    /// Channels of the three temporal convolutions (384, 512, 512 in the paper).
    pub conv_channels: [i64; 3],
    /// GRU hidden size (cnn_dim = 512 in the paper).
    pub rnn_dim: i64,
    /// Size of the embedding φ(t) (1024 in the paper).
    pub embedding_dim: i64,
}

const KERNEL: i64 = 4;
const POOL: i64 = 3;

#[derive(Debug)]
pub struct TextEncoder {
    pub config: TextEncoderConfig,
    conv1: nn::Conv1D,
    conv2: nn::Conv1D,
    conv3: nn::Conv1D,
    rnn: nn::GRU,
    projection: nn::Linear,
}

impl TextEncoder {
    pub fn new(p: &nn::Path, config: &TextEncoderConfig) -> Self {
        let [c1, c2, c3] = config.conv_channels;
        let conv = Default::default();
        let rnn = nn::RNNConfig {
            batch_first: true,
            ..Default::default()
        };
        Self {
            config: config.clone(),
            conv1: nn::conv1d(p / "conv1", ALPHABET_SIZE as i64, c1, KERNEL, conv),
            conv2: nn::conv1d(p / "conv2", c1, c2, KERNEL, conv),
            conv3: nn::conv1d(p / "conv3", c2, c3, KERNEL, conv),
            rnn: nn::gru(p / "rnn", c3, config.rnn_dim, rnn),
            projection: nn::linear(
                p / "projection",
                config.rnn_dim,
                config.embedding_dim,
                Default::default(),
            ),
        }
    }

    /// Number of time steps the GRU sees (18 for 201 characters).
    pub fn time_steps() -> i64 {
        let after1 = (MAX_CAPTION_CHARS as i64 - KERNEL + 1) / POOL;
        let after2 = (after1 - KERNEL + 1) / POOL;
        after2 - KERNEL + 1
    }

    /// one_hot: [B, 70, 201] -> φ(t): [B, embedding_dim].
    pub fn forward_t(&self, one_hot: &Tensor, _train: bool) -> Tensor {
        let h = one_hot
            .apply(&self.conv1)
            .relu()
            .max_pool1d(POOL, POOL, 0, 1, false);
        let h = h
            .apply(&self.conv2)
            .relu()
            .max_pool1d(POOL, POOL, 0, 1, false);
        let h = h.apply(&self.conv3).relu();
        // [B, C, T] -> [B, T, C] for a batch-first GRU.
        let (outputs, _) = self.rnn.seq(&h.transpose(1, 2));
        outputs.mean_dim(1, false, None).apply(&self.projection)
    }

    /// φ(t) of encoded captions with the encoder frozen: [N, embedding_dim]
    /// on `device`, at most [`EMBED_CHUNK`] captions through it at a time;
    /// `progress(done, total)` after each chunk. The one path from captions
    /// to φ(t) for the runtime, evaluation and training.
    pub fn embed(
        &self,
        captions: &[crate::text::EncodedCaption],
        device: tch::Device,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Tensor {
        let mut chunks = Vec::with_capacity(captions.len().div_ceil(EMBED_CHUNK));
        for (n, chunk) in captions.chunks(EMBED_CHUNK).enumerate() {
            let one_hot = caption_batch(chunk, device);
            chunks.push(tch::no_grad(|| self.forward_t(&one_hot, false)));
            progress(((n + 1) * EMBED_CHUNK).min(captions.len()), captions.len());
        }
        Tensor::cat(&chunks, 0)
    }
}

/// Captions through the text encoder at a time in [`TextEncoder::embed`].
pub const EMBED_CHUNK: usize = 512;

/// Encoded captions as the text encoder's input: one-hot [B, 70, 201] on
/// `device` (channels = alphabet, time = characters).
pub fn caption_batch(captions: &[crate::text::EncodedCaption], device: tch::Device) -> tch::Tensor {
    tch::Tensor::from_slice(&crate::text::one_hot(captions))
        .view([
            captions.len() as i64,
            crate::text::ALPHABET_SIZE as i64,
            crate::text::MAX_CAPTION_CHARS as i64,
        ])
        .to_device(device)
}
