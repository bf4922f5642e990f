//! Checkpoints: one safetensors file holding the networks, the optimizer
//! state and a JSON record of where training stands (step, epoch, RNG), written
//! to a temporary file and renamed into place, so that a run killed at any
//! moment leaves the previous checkpoint or the new one, never half of one.

use super::optim::Optimizer;
use crate::weights::write_atomic;
use anyhow::{anyhow, bail, Context, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::{nn::VarStore, Device, Tensor};

const STATE_KEY: &str = "__state__";

/// Where a run stands besides its weights: its settings, the step, the RNG
/// and the seconds trained (the checkpoint's JSON record).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Progress<C> {
    pub config: C,
    pub step: u64,
    pub rng: u64,
    pub elapsed_s: f64,
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

/// Saves a trainer: its networks and optimizers, each under its prefix, and
/// where it stands.
pub fn save_run<C: Serialize>(
    path: &Path,
    nets: &[(&str, &VarStore)],
    optimizers: &[(&str, &Optimizer)],
    progress: &Progress<C>,
) -> Result<()> {
    let mut tensors = Vec::new();
    for (prefix, vs) in nets {
        tensors.extend(named(vs, prefix));
    }
    for (prefix, opt) in optimizers {
        tensors.extend(opt.state(prefix));
    }
    save(path, &tensors, progress)
}

/// Loads what [`save_run`] wrote into live networks and optimizers. The
/// saved settings must be `config`'s once `length_free` has cleared what may
/// change between invocations (how long to train); otherwise it is another
/// run and nothing is touched.
pub fn load_run<C>(
    path: &Path,
    config: &C,
    length_free: fn(&mut C),
    nets: &[(&str, &VarStore)],
    optimizers: &mut [(&str, &mut Optimizer)],
) -> Result<Progress<C>>
where
    C: Clone + PartialEq + Serialize + DeserializeOwned,
{
    let (tensors, progress): (_, Progress<C>) = load(path)?;
    let (mut saved, mut ours) = (progress.config.clone(), config.clone());
    length_free(&mut saved);
    length_free(&mut ours);
    if saved != ours {
        bail!(
            "{}: this checkpoint is of another run (its settings: {}); use the same dataset and settings, or another --run folder",
            path.display(),
            serde_json::to_string(&progress.config)?
        );
    }
    for (prefix, vs) in nets {
        restore(&named(vs, prefix), &tensors)?;
    }
    for (prefix, opt) in optimizers.iter_mut() {
        opt.load_state(&tensors, prefix, progress.step as i64)?;
    }
    Ok(progress)
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
