//! Speed measurements (never in tests): median wall time of repeated runs.

use crate::runtime::Runtime;
use anyhow::Result;
use std::time::Instant;

/// Times `f` `repeats` times after `warmup` untimed runs; returns the
/// per-run milliseconds, sorted.
pub fn time_runs(
    warmup: usize,
    repeats: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<Vec<f64>> {
    for _ in 0..warmup {
        f()?;
    }
    let mut ms = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        f()?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    Ok(ms)
}

pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The caption every generation benchmark draws.
const BENCH_CAPTION: &str = "this flower has five large pink petals with a yellow centre";

/// z (seeds 0..batch) and φ(t) of [`BENCH_CAPTION`] for `batch` images.
fn bench_inputs(runtime: &Runtime, batch: usize) -> Result<(tch::Tensor, tch::Tensor)> {
    let seeds: Vec<u64> = (0..batch as u64).collect();
    let (text, _) = runtime.embed(&[BENCH_CAPTION])?;
    Ok((
        runtime.noise(&seeds)?,
        text.expand([batch as i64, -1], false),
    ))
}

/// G as trained (batch norms not folded), in f32 and evaluation mode.
fn draw_unfolded(runtime: &Runtime, z: &tch::Tensor, text: &tch::Tensor) -> tch::Tensor {
    tch::no_grad(|| runtime.model().generator.net.forward_t(z, text, false))
}

/// One batch from caption text to RGB bytes on the host: text encoding,
/// sampling z, G, and the copy back are all inside the timed region. With
/// `unfolded`, G runs as trained (batch norms not folded into the
/// convolutions, see `model::folded`) instead of as the runtime draws.
pub fn generate(
    runtime: &Runtime,
    batch: usize,
    warmup: usize,
    repeats: usize,
    unfolded: bool,
) -> Result<Vec<f64>> {
    time_runs(warmup, repeats, || {
        if unfolded {
            let (z, text) = bench_inputs(runtime, batch)?;
            let images = crate::imageio::images_from_tensor(&draw_unfolded(runtime, &z, &text))?;
            debug_assert_eq!(images.len(), batch);
        } else {
            let out = runtime.generate(BENCH_CAPTION, batch, 0)?;
            debug_assert_eq!(out.images.len(), batch);
        }
        Ok(())
    })
}

/// How far the G that drawing uses (`model::folded`, in half precision on a
/// GPU where it passed its check) is from G as trained in f32, on `batch`
/// images of one caption (the same z and text, on the model's device): the
/// largest difference in 8-bit levels. Within 1 on the CPU (tested); `bench
/// generate --check` measures it on any device.
pub fn folded_drift(runtime: &Runtime, batch: usize) -> Result<f64> {
    let (z, text) = bench_inputs(runtime, batch)?;
    let drawn: Vec<tch::Tensor> = runtime.drawing().draw_chunks(&z, &text, batch).collect();
    Ok(crate::model::folded::levels_apart(
        &tch::Tensor::cat(&drawn, 0),
        &draw_unfolded(runtime, &z, &text),
    ))
}

/// A dataset of random pixels in two classes, and random caption
/// embeddings, for timing a GAN step without reading any data.
pub fn synthetic_set(
    n: usize,
    embedding_dim: i64,
    device: tch::Device,
) -> (crate::training_set::TrainingSet, tch::Tensor) {
    use crate::dataset::Class;
    let images = tch::Tensor::randint(
        256,
        [n as i64, 3, 64, 64],
        (tch::Kind::Uint8, tch::Device::Cpu),
    );
    let mut set = crate::training_set::TrainingSet {
        spec: "synthetic".to_string(),
        images,
        captions: vec![vec!["a synthetic flower".to_string()]; n],
        classes: (0..n).map(|i| (i % 2) as u32).collect(),
        class_info: (0..2)
            .map(|c| Class {
                name: format!("class {c}"),
                held_out: false,
            })
            .collect(),
        attributes: vec![Default::default(); n],
        names: (0..n).map(|i| format!("synthetic_{i}")).collect(),
        problems: Vec::new(),
    };
    // Where `gantry train` keeps them (see cli/train.rs).
    if device != tch::Device::Cpu {
        set.move_images_to(device);
    }
    let embeddings = tch::Tensor::randn([n as i64, 10, embedding_dim], (tch::Kind::Float, device));
    (set, embeddings)
}

/// Full GAN-INT-CLS steps (D and G updates) at `batch`, on synthetic
/// inputs, after `warmup` untimed steps.
pub struct TrainSpeed {
    pub images_per_s: f64,
    /// With `phases`: milliseconds per step in each phase of the step, from
    /// a second run of `steps` steps with the device synchronised between
    /// phases (so as not to disturb the first).
    pub phases: Vec<(&'static str, f64)>,
}

pub fn train_gan(
    config: &crate::model::ModelConfig,
    device: tch::Device,
    batch: usize,
    steps: usize,
    warmup: usize,
    phases: bool,
) -> Result<TrainSpeed> {
    use crate::train::gan::{GanConfig, GanTrainer, Variant};
    crate::host::allocator::keep_freed_memory();
    let model = crate::weights::Model::new("bench", config, device, 0)?;
    let (set, embeddings) = synthetic_set(batch * 4, config.text_encoder.embedding_dim, device);
    let steps = steps.max(1);
    let gan = GanConfig {
        batch,
        steps: Some((warmup + steps * (1 + phases as usize)) as u64),
        ..GanConfig::paper(Variant::GanIntCls, "synthetic")
    };
    let mut trainer = GanTrainer::new(model, gan, &set, embeddings)?;
    for i in 0..warmup {
        let losses = trainer.gan_step()?;
        if i + 1 == warmup {
            losses.read()?; // the device is idle when the clock starts
        }
    }
    let start = Instant::now();
    let mut last = None;
    for _ in 0..steps {
        last = Some(trainer.gan_step()?);
    }
    // Reading the last step's losses waits for the device to finish.
    if let Some(losses) = last {
        losses.read()?;
    }
    let images_per_s = (batch * steps) as f64 / start.elapsed().as_secs_f64();
    let mut per_phase = Vec::new();
    if phases {
        trainer.phases.enable(device);
        for _ in 0..steps {
            trainer.gan_step()?.read()?;
        }
        per_phase = trainer
            .phases
            .totals
            .iter()
            .map(|(phase, seconds)| (*phase, seconds * 1e3 / steps as f64))
            .collect();
    }
    Ok(TrainSpeed {
        images_per_s,
        phases: per_phase,
    })
}
