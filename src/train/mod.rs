//! Training: the DS-SJE text encoder (paper.md §1), GAN-INT-CLS and its
//! ablations (§4), and the style encoder (§5), all driven by one loop that
//! logs losses, draws sample grids, writes checkpoints atomically and stops
//! cleanly when asked.

pub mod assemble;
pub mod checkpoint;
pub mod distil;
pub mod gan;
pub mod log;
pub mod optim;
pub mod siblings;
pub mod style;
pub mod text_encoder;

use crate::training_set::{Rng, TrainingSet};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// A training run's folder.
#[derive(Clone, Debug)]
pub struct Run {
    pub dir: PathBuf,
}

impl Run {
    /// The name the run's model gets: its folder's.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map_or("model".into(), |n| n.to_string_lossy().into_owned())
    }

    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir.join("samples"))
            .with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint.safetensors")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("losses.jsonl")
    }

    pub fn plot(&self) -> PathBuf {
        self.dir.join("losses.png")
    }

    pub fn samples(&self) -> PathBuf {
        self.dir.join("samples")
    }

    /// Where the trained model folder is written.
    pub fn model(&self) -> PathBuf {
        self.dir.join("model")
    }
}

/// When to stop early and how often to save.
#[derive(Clone, Debug)]
pub struct Control {
    /// Set by Ctrl-C: the loop writes a checkpoint and returns.
    pub stop: Arc<AtomicBool>,
    pub checkpoint_every: u64,
    pub log_every: u64,
    /// Stop (with a checkpoint) after this many steps in this invocation.
    pub stop_after: Option<u64>,
    /// Stop (with a checkpoint) after this much wall time.
    pub time_limit: Option<std::time::Duration>,
}

impl Default for Control {
    fn default() -> Self {
        Self {
            stop: Arc::new(AtomicBool::new(false)),
            checkpoint_every: 200,
            log_every: 10,
            stop_after: None,
            time_limit: None,
        }
    }
}

/// What a front end shows while training runs.
pub trait Observer {
    fn started(&mut self, _done: u64, _total: u64) {}
    fn step(&mut self, step: u64, total: u64, losses: &BTreeMap<String, f64>, images_per_s: f64);
    fn message(&mut self, text: &str);
}

/// An observer that shows nothing (tests, scripts).
pub struct Quiet;

impl Observer for Quiet {
    fn step(&mut self, _: u64, _: u64, _: &BTreeMap<String, f64>, _: f64) {}
    fn message(&mut self, _: &str) {}
}

/// One step's loss terms, left where they were computed: reading a number
/// back from a GPU waits for all the work queued before it, so the loop reads
/// them (all at once) only when it logs or checkpoints.
#[derive(Debug, Default)]
pub struct StepLosses {
    terms: Vec<(String, Tensor)>,
    known: BTreeMap<String, f64>,
}

impl StepLosses {
    /// A 0-d tensor term (detached; it stays on its device).
    pub fn term(&mut self, name: &str, value: &Tensor) {
        self.terms.push((
            name.to_string(),
            value.detach().to_kind(Kind::Float).reshape([1]),
        ));
    }

    /// A number the host already knows (the learning rate).
    pub fn value(&mut self, name: &str, value: f64) {
        self.known.insert(name.to_string(), value);
    }

    /// A tensor term, where it was computed.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.terms.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.known.contains_key(name) || self.terms.iter().any(|(n, _)| n == name)
    }

    /// The tensor terms end to end, on their device (None when there are none).
    fn stacked(&self) -> Option<Tensor> {
        let all: Vec<&Tensor> = self.terms.iter().map(|(_, t)| t).collect();
        (!all.is_empty()).then(|| Tensor::cat(&all, 0))
    }

    /// 1-element bool tensor on the terms' device: every term finite.
    pub fn finite(&self) -> Option<Tensor> {
        self.stacked().map(|t| t.isfinite().all())
    }

    /// Every term as a number: one transfer, which waits for the device.
    pub fn read(&self) -> Result<BTreeMap<String, f64>> {
        let mut out = self.known.clone();
        if let Some(all) = self.stacked() {
            let values = Vec::<f64>::try_from(all.to_kind(Kind::Double).to_device(Device::Cpu))?;
            for ((name, _), v) in self.terms.iter().zip(values) {
                out.insert(name.clone(), v);
            }
        }
        Ok(out)
    }
}

/// How long a run is: a batch (images or pairs per step) over its training
/// images, for `steps` steps or else `epochs` epochs.
pub struct RunLength {
    pub train_images: usize,
    pub batch: usize,
    pub steps: Option<u64>,
    pub epochs: u64,
}

/// One kind of training, as the loop drives it.
pub trait Trainer {
    /// Where the run stands (restored on resume).
    fn position(&self) -> &checkpoint::Position;
    /// What a checkpoint holds of this trainer.
    fn checkpoint_parts(&mut self) -> checkpoint::Parts<'_>;
    /// How long the run is.
    fn length(&self) -> RunLength;
    fn train_step(&mut self) -> Result<StepLosses>;
    /// Called after each epoch: sample grids, held-out metrics. Returns
    /// values to log.
    fn end_of_epoch(&mut self, _epoch: u64, _run: &Run) -> Result<BTreeMap<String, f64>> {
        Ok(BTreeMap::new())
    }
    /// After a resume, whatever follows from the restored position.
    fn resumed(&mut self) {}

    fn steps_per_epoch(&self) -> u64 {
        let l = self.length();
        (l.train_images / l.batch.max(1)).max(1) as u64
    }
    fn total_steps(&self) -> u64 {
        let l = self.length();
        l.steps.unwrap_or(l.epochs * self.steps_per_epoch())
    }
    /// Images (or pairs) processed per step, for images/s.
    fn images_per_step(&self) -> usize {
        self.length().batch
    }
    /// Steps done so far.
    fn step_index(&self) -> u64 {
        self.position().step
    }
    /// Seconds of training before this invocation.
    fn elapsed_before(&self) -> f64 {
        self.position().elapsed_before
    }
    /// Writes the checkpoint: networks, optimizers, settings and position,
    /// with `elapsed_s` seconds trained in all.
    fn save_checkpoint(&mut self, path: &Path, elapsed_s: f64) -> Result<()> {
        checkpoint::save_parts(path, &self.checkpoint_parts(), elapsed_s)
    }
    /// Continues the run saved in `path`; its settings must be this run's.
    fn resume(&mut self, path: &Path) -> Result<()> {
        checkpoint::resume(path, self.checkpoint_parts())?;
        self.resumed();
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// Stopped early (Ctrl-C, --stop-after, --time-limit) with a checkpoint.
    Stopped,
}

/// Runs `trainer` to its total step count. Returns the outcome and the
/// seconds of training in total.
pub fn run_loop(
    trainer: &mut dyn Trainer,
    run: &Run,
    control: &Control,
    observer: &mut dyn Observer,
) -> Result<(Outcome, f64)> {
    crate::host::allocator::keep_freed_memory();
    let resumed_at = trainer.step_index();
    let mut log = log::LossLog::open(&run.log(), Some(resumed_at))?;
    let total = trainer.total_steps();
    let per_epoch = trainer.steps_per_epoch().max(1);
    let started = Instant::now();
    let elapsed = |t: &dyn Trainer| t.elapsed_before() + started.elapsed().as_secs_f64();
    observer.started(resumed_at, total);
    // A checkpoint exists from the first moment, so that a run killed at any
    // point can be resumed.
    if !run.checkpoint().exists() {
        trainer.save_checkpoint(&run.checkpoint(), elapsed(trainer))?;
    }
    let mut window_start = Instant::now();
    let mut window_steps = 0u64;
    let mut images_per_s = 0.0;
    // The losses last read back, shown until the next read; and a device-side
    // flag that every loss since then was finite.
    let mut shown = BTreeMap::new();
    let mut all_finite: Option<Tensor> = None;
    let mut checked_at = resumed_at;
    while trainer.step_index() < total {
        let done_here = trainer.step_index() - resumed_at;
        let out_of_time = control.time_limit.is_some_and(|t| started.elapsed() >= t);
        if control.stop.load(Ordering::SeqCst)
            || control.stop_after.is_some_and(|n| done_here >= n)
            || out_of_time
        {
            ensure_finite(all_finite.take(), checked_at, trainer.step_index(), &shown)?;
            trainer.save_checkpoint(&run.checkpoint(), elapsed(trainer))?;
            log.plot(&run.plot())?;
            observer.message(&format!(
                "stopped at step {}/{total}; checkpoint written to {} (continue with --resume)",
                trainer.step_index(),
                run.checkpoint().display()
            ));
            return Ok((Outcome::Stopped, elapsed(trainer)));
        }
        let losses = trainer.train_step()?;
        let step = trainer.step_index();
        if let Some(f) = losses.finite() {
            all_finite = Some(match all_finite {
                Some(a) => a.logical_and(&f),
                None => f,
            });
        }
        window_steps += 1;
        let window = window_start.elapsed().as_secs_f64();
        if window >= 2.0 || window_steps >= 50 {
            images_per_s =
                (window_steps as usize * trainer.images_per_step()) as f64 / window.max(1e-9);
            window_start = Instant::now();
            window_steps = 0;
        }
        let end_of_epoch = step.is_multiple_of(per_epoch);
        let checkpoint_now = step.is_multiple_of(control.checkpoint_every.max(1)) || step == total;
        // Read back (and check) at log steps and before every checkpoint, so
        // a non-finite loss never reaches a checkpoint.
        let log_now =
            step.is_multiple_of(control.log_every.max(1)) || step == total || end_of_epoch;
        if log_now || checkpoint_now {
            let mut values = losses.read()?;
            ensure_finite(all_finite.take(), checked_at, step, &values)?;
            checked_at = step;
            if end_of_epoch {
                values.extend(trainer.end_of_epoch(step / per_epoch, run)?);
            }
            if log_now {
                log.push(step, values.clone())?;
            }
            shown = values;
        }
        observer.step(step, total, &shown, images_per_s);
        if step.is_multiple_of(per_epoch) {
            log.plot(&run.plot())?;
        }
        if checkpoint_now {
            trainer.save_checkpoint(&run.checkpoint(), elapsed(trainer))?;
        }
    }
    log.plot(&run.plot())?;
    Ok((Outcome::Finished, elapsed(trainer)))
}

/// Fails when `all_finite` (a flag left on the device over the steps since
/// `checked_at`) or the values just read say a loss went non-finite.
fn ensure_finite(
    all_finite: Option<Tensor>,
    checked_at: u64,
    step: u64,
    values: &BTreeMap<String, f64>,
) -> Result<()> {
    let finite = match all_finite {
        Some(f) => bool::try_from(f.to_device(Device::Cpu))?,
        None => true,
    };
    if !finite || values.values().any(|v| !v.is_finite()) {
        let when = if checked_at + 1 >= step {
            format!("at step {step}")
        } else {
            format!("between steps {} and {step}", checked_at + 1)
        };
        anyhow::bail!(
            "a loss became non-finite {when} (last read: {values:?}); stopping: the last checkpoint is intact (lower the learning rate?)"
        );
    }
    Ok(())
}

/// Standard normal noise from our own generator, so that the noise a step
/// draws is part of the checkpointed RNG state: [n, dim] on `device`.
pub fn noise(rng: &mut Rng, n: usize, dim: usize, device: Device) -> Tensor {
    let mut z = vec![0f32; n * dim];
    gantry_plugin_api::random::standard_normal(rng.next_u64(), &mut z);
    Tensor::from_slice(&z)
        .view([n as i64, dim as i64])
        .to_device(device)
}

/// The rows `indices` of `t` (e.g. the training images' of a per-image
/// tensor), on `t`'s device.
pub fn rows(t: &Tensor, indices: &[usize]) -> Tensor {
    let index = Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>())
        .to_device(t.device());
    t.index_select(0, &index)
}

/// Caption embeddings of every sample, computed once with the (frozen) text
/// encoder: [N, K, E] on `device`, K = `per_image` captions per sample
/// (repeated cyclically where a sample has fewer).
pub fn embed_captions(
    encoder: &crate::model::TextEncoder,
    data: &TrainingSet,
    per_image: usize,
    device: Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Tensor> {
    embed_captions_as(encoder, data, per_image, device, progress, &mut |c| {
        c.to_string()
    })
}

/// [`embed_captions`] of each caption as `written` writes it (e.g.
/// reworded as people type, [`distil::reword`]).
pub fn embed_captions_as(
    encoder: &crate::model::TextEncoder,
    data: &TrainingSet,
    per_image: usize,
    device: Device,
    progress: &mut dyn FnMut(usize, usize),
    written: &mut dyn FnMut(&str) -> String,
) -> Result<Tensor> {
    let mut flat: Vec<crate::text::EncodedCaption> = Vec::with_capacity(data.len() * per_image);
    for (i, captions) in data.captions.iter().enumerate() {
        if captions.is_empty() {
            anyhow::bail!("sample {} ({}) has no captions", i, data.names[i]);
        }
        for k in 0..per_image {
            flat.push(crate::text::encode(&written(
                &captions[k % captions.len()],
            ))?);
        }
    }
    let e = encoder.embed(&flat, device, progress);
    let dim = e.size()[1];
    Ok(e.view([data.len() as i64, per_image as i64, dim]))
}

/// Binary cross-entropy of logits against a constant target.
pub fn bce(logits: &Tensor, target: f64) -> Tensor {
    logits.binary_cross_entropy_with_logits::<Tensor>(
        &logits.full_like(target),
        None,
        None,
        tch::Reduction::Mean,
    )
}

/// A description of the machine, for model cards.
pub fn hardware(device: Device) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    // The threads libtorch computes with (GANTRY_THREADS / `threads`), and
    // the machine's, which differ when a run is kept to one core.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match tch::get_num_threads() {
        t if t as usize == cores => format!("{t} threads"),
        t => format!("{t} of {cores} threads"),
    };
    match device {
        Device::Cuda(i) => {
            let gpu = std::process::Command::new("nvidia-smi")
                .args([
                    "--query-gpu=name",
                    "--format=csv,noheader",
                    &format!("--id={i}"),
                ])
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "CUDA GPU".to_string());
            format!("{gpu} (cuda:{i}); host {cpu}, {threads}")
        }
        _ => format!("CPU: {cpu}, {threads}"),
    }
}

/// Mean of `k` embeddings drawn without replacement from each sample's
/// caption embeddings: [B, E] (paper.md §4: 4 captions averaged).
pub fn mean_caption_embedding(
    embeddings: &Tensor,
    indices: &[usize],
    k: usize,
    rng: &mut Rng,
) -> Tensor {
    let picks = caption_picks(embeddings.size()[1] as usize, indices.len(), k, rng);
    mean_of_picks(embeddings, indices, &picks)
}

/// Which `k` of each sample's `per_image` captions to average: one row of
/// caption indices per sample, drawn as [`mean_caption_embedding`] draws them.
pub fn caption_picks(per_image: usize, samples: usize, k: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let k = k.clamp(1, per_image);
    (0..samples)
        .map(|_| {
            let mut order: Vec<usize> = (0..per_image).collect();
            rng.shuffle(&mut order);
            order.truncate(k);
            order
        })
        .collect()
}

/// The mean of the picked caption embeddings of each sample: [B, E].
pub fn mean_of_picks(embeddings: &Tensor, indices: &[usize], picks: &[Vec<usize>]) -> Tensor {
    let per_image = embeddings.size()[1] as usize;
    let k = picks.first().map_or(1, Vec::len);
    let flat_picks: Vec<i64> = indices
        .iter()
        .zip(picks)
        .flat_map(|(&i, row)| row.iter().map(move |&c| (i * per_image + c) as i64))
        .collect();
    let dim = embeddings.size()[2];
    let flat = embeddings.view([-1, dim]);
    let index = Tensor::from_slice(&flat_picks).to_device(flat.device());
    flat.index_select(0, &index)
        .view([indices.len() as i64, k as i64, dim])
        .mean_dim(1, false, Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_says_how_many_threads_trained() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tch::set_num_threads(1);
        let said = hardware(Device::Cpu);
        let expected = if cores == 1 {
            "1 threads".to_string()
        } else {
            format!("1 of {cores} threads")
        };
        assert!(said.ends_with(&expected), "{said}");
    }
}
