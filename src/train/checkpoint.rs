//! Checkpoints: one safetensors file holding the networks, the optimizer
//! state and a JSON record of where training stands (step, epoch, RNG), written
//! to a temporary file and renamed into place, so that a run killed at any
//! moment leaves the previous checkpoint or the new one, never half of one.

use crate::weights::write_atomic;
use anyhow::{anyhow, Context, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Tensor};

const STATE_KEY: &str = "__state__";

pub fn save(path: &Path, tensors: &[(String, Tensor)], state: &impl Serialize) -> Result<()> {
    let json = serde_json::to_vec(state)?;
    let mut named: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.detach().to_device(Device::Cpu)))
        .collect();
    named.push((STATE_KEY.to_string(), Tensor::from_slice(&json)));
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    Tensor::write_safetensors(&named, &tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    // Make the data durable before the rename publishes it.
    if let Ok(file) = std::fs::File::open(&tmp) {
        let _ = file.sync_all();
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))
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
