//! Checkpoints: one safetensors file holding the networks, the optimizer
//! state and a JSON record of where training stands (step, epoch, RNG), written
//! to a temporary file and renamed into place, so that a run killed at any
//! moment leaves the previous checkpoint or the new one, never half of one.

use super::optim::{Moment, Optimizer};
use crate::training_set::Rng;
use crate::weights::write_atomic;
use anyhow::{anyhow, bail, Context, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::{nn::VarStore, Device, Kind, Tensor};

const STATE_KEY: &str = "__state__";

/// Where a run stands besides its weights: its settings, the step, the RNG
/// and the seconds trained (the checkpoint's JSON record).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Progress<C> {
    pub config: C,
    pub step: u64,
    pub rng: u64,
    pub elapsed_s: f64,
    /// Written by [`pack`]: networks f16, second moments bf16, no first
    /// moments (they start again at zero when the run resumes).
    #[serde(default)]
    pub packed: bool,
}

/// A var store's variables under `prefix/`, sorted by name, as checkpoints
/// store them.
pub fn named(vs: &VarStore, prefix: &str) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (format!("{prefix}/{n}"), t))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Where a trainer stands in its run: the step, the RNG and the seconds
/// trained before this invocation. Every checkpoint records it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Position {
    pub step: u64,
    pub rng: Rng,
    pub elapsed_before: f64,
}

impl Position {
    /// A fresh run whose RNG starts at `seed`.
    pub fn start(seed: u64) -> Self {
        Self {
            rng: Rng(seed),
            ..Self::default()
        }
    }
}

/// A run's settings as a checkpoint records them, and the test of whether a
/// checkpoint's are of the same run.
pub struct Settings {
    json: serde_json::Value,
    same_run: Box<dyn Fn(&serde_json::Value) -> bool>,
}

impl Settings {
    /// `config`, where `length_free` clears what may change between
    /// invocations of one run (how long to train).
    pub fn of<C>(config: &C, length_free: fn(&mut C)) -> Self
    where
        C: Clone + PartialEq + Serialize + DeserializeOwned + 'static,
    {
        let mut ours = config.clone();
        length_free(&mut ours);
        Self {
            json: serde_json::to_value(config).unwrap_or_default(),
            same_run: Box::new(move |saved| {
                serde_json::from_value::<C>(saved.clone()).is_ok_and(|mut saved| {
                    length_free(&mut saved);
                    saved == ours
                })
            }),
        }
    }
}

/// What a checkpoint holds of a trainer: its settings, its networks and
/// optimizers (each under its name) and its position.
pub struct Parts<'a> {
    pub settings: Settings,
    pub networks: Vec<(&'static str, &'a VarStore)>,
    pub optimizers: Vec<(&'static str, &'a mut Optimizer)>,
    pub position: &'a mut Position,
}

/// Saves a trainer's parts, with `elapsed_s` seconds trained in all.
pub fn save_parts(path: &Path, parts: &Parts, elapsed_s: f64) -> Result<()> {
    let mut tensors = Vec::new();
    for (prefix, vs) in &parts.networks {
        tensors.extend(named(vs, prefix));
    }
    for (prefix, opt) in &parts.optimizers {
        tensors.extend(opt.state(prefix));
    }
    let progress = Progress {
        config: &parts.settings.json,
        step: parts.position.step,
        rng: parts.position.rng.0,
        elapsed_s,
        packed: false,
    };
    save(path, &tensors, &progress)
}

/// Loads what [`save_parts`] wrote into a trainer's live networks,
/// optimizers and position, and returns the saved tensors (for a part a
/// trainer restores itself). The saved settings must be the same run's
/// ([`Settings::of`]); otherwise nothing is touched.
pub fn resume(path: &Path, parts: Parts) -> Result<HashMap<String, Tensor>> {
    let (tensors, progress): (_, Progress<serde_json::Value>) = load(path)?;
    if !(parts.settings.same_run)(&progress.config) {
        bail!(
            "{}: this checkpoint is of another run (its settings: {}); use the same dataset and settings, or another --run folder",
            path.display(),
            serde_json::to_string(&progress.config)?
        );
    }
    for (prefix, vs) in &parts.networks {
        restore(&named(vs, prefix), &tensors)?;
    }
    for (prefix, opt) in parts.optimizers {
        opt.load_state(&tensors, prefix, progress.step as i64, progress.packed)?;
    }
    *parts.position = Position {
        step: progress.step,
        rng: Rng(progress.rng),
        elapsed_before: progress.elapsed_s,
    };
    Ok(tensors)
}

/// What [`pack`] wrote: bytes before and after, and the run's step.
pub struct Packed {
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub step: u64,
}

/// Writes the checkpoint at `from` compactly to `to`, to carry the run to
/// another machine and continue it there: network weights as f16 (as the
/// shipped models are), the optimizers' second moments as bf16 (the range of
/// f32, so that small squared gradients do not vanish), and no first moments:
/// Adam's β1 = 0.5 forgets them within a few steps, so they start again at
/// zero. Copied into a run folder as its checkpoint, `--resume` continues
/// from it at the same step, learning rate and RNG.
pub fn pack(from: &Path, to: &Path) -> Result<Packed> {
    let (tensors, mut progress): (HashMap<String, Tensor>, Progress<serde_json::Value>) =
        load(from)?;
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let mut kept = Vec::new();
    for name in names {
        let t = &tensors[name];
        if !t.is_floating_point() {
            kept.push((name.clone(), t.shallow_clone()));
            continue;
        }
        match super::optim::moment_of(name) {
            Some(Moment::First) => {}
            Some(Moment::Second) => kept.push((name.clone(), t.to_kind(Kind::BFloat16))),
            None => kept.push((name.clone(), t.to_kind(Kind::Half))),
        }
    }
    progress.packed = true;
    save(to, &kept, &progress)?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    Ok(Packed {
        bytes_before: size(from),
        bytes_after: size(to),
        step: progress.step,
    })
}

pub fn save(path: &Path, tensors: &[(String, Tensor)], state: &impl Serialize) -> Result<()> {
    let json = serde_json::to_vec(state)?;
    let mut named: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.detach().to_device(Device::Cpu)))
        .collect();
    named.push((STATE_KEY.to_string(), Tensor::from_slice(&json)));
    crate::weights::publish(path, |tmp| Ok(Tensor::write_safetensors(&named, tmp)?))
}

pub fn load<S: DeserializeOwned>(path: &Path) -> Result<(HashMap<String, Tensor>, S)> {
    let tensors = Tensor::read_safetensors(path)
        .with_context(|| format!("{}: not a readable checkpoint", path.display()))?;
    let mut map: HashMap<String, Tensor> = tensors.into_iter().collect();
    let state = map
        .remove(STATE_KEY)
        .ok_or_else(|| anyhow!("{}: checkpoint has no training state", path.display()))?;
    let bytes = Vec::<u8>::try_from(state)?;
    let state = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: corrupt training state", path.display()))?;
    Ok((map, state))
}

/// Copies saved tensors into live ones (same names, same shapes).
pub fn restore(into: &[(String, Tensor)], from: &HashMap<String, Tensor>) -> Result<()> {
    for (name, dst) in into {
        let src = from
            .get(name)
            .ok_or_else(|| anyhow!("checkpoint has no tensor '{name}'"))?;
        if src.size() != dst.size() {
            return Err(anyhow!(
                "checkpoint tensor '{name}' has shape {:?}, expected {:?}",
                src.size(),
                dst.size()
            ));
        }
        let mut dst = dst.shallow_clone();
        tch::no_grad(|| dst.f_copy_(src))?;
    }
    Ok(())
}

/// Writes text atomically (for logs rewritten on resume).
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, text.as_bytes())
}
