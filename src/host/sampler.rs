//! Sampler plugins: z for a list of seeds, options, and their own paths
//! between two z; and [`Sampler`], the sampler a runtime draws with.

use super::{call, check_output, Plugin, Registry, DISABLE_ENV};
use anyhow::{anyhow, bail, Result};
use gantry_plugin_api::{PluginKind, SamplerVTable};

impl Plugin {
    fn sampler_table(&self) -> Result<&'static SamplerVTable> {
        if self.kind != PluginKind::Sampler {
            bail!(
                "plugin '{}' is a {}, not a sampler",
                self.name,
                self.kind.as_str()
            );
        }
        // SAFETY: checked non-null at load time; static per the ABI.
        unsafe { self.declaration.sampler.as_ref() }
            .ok_or_else(|| anyhow!("plugin '{}' has no sampler table", self.name))
    }

    /// One z of `dim` floats per seed, row-major.
    pub fn sample(&self, seeds: &[u64], dim: usize) -> Result<Vec<f32>> {
        let table = self.sampler_table()?;
        // Pre-filled with NaN so that values the plugin failed to write are caught.
        let mut out = vec![f32::NAN; seeds.len() * dim];
        call(self, "sample", |err| unsafe {
            (table.sample)(
                seeds.as_ptr(),
                seeds.len(),
                dim,
                out.as_mut_ptr(),
                out.len(),
                err,
            )
        })?;
        check_output(self, "sample", &out)?;
        Ok(out)
    }

    /// Sets a sampler option (e.g. `psi` of `truncated`).
    pub fn configure(&self, key: &str, value: &str) -> Result<()> {
        let table = self.sampler_table()?;
        let Some(configure) = table.configure else {
            bail!("sampler '{}' takes no options", self.name);
        };
        call(self, &format!("option {key}={value}"), |err| unsafe {
            configure(key.as_ptr(), key.len(), value.as_ptr(), value.len(), err)
        })
    }

    /// The sampler's own path from `a` to `b`, if it has one.
    pub fn path(&self, a: &[f32], b: &[f32], steps: usize) -> Result<Option<Vec<f32>>> {
        let table = self.sampler_table()?;
        let Some(path) = table.path else {
            return Ok(None);
        };
        if a.len() != b.len() {
            bail!("path endpoints differ in size ({} vs {})", a.len(), b.len());
        }
        let mut out = vec![f32::NAN; steps * a.len()];
        call(self, "path", |err| unsafe {
            path(
                a.as_ptr(),
                b.as_ptr(),
                a.len(),
                steps,
                out.as_mut_ptr(),
                out.len(),
                err,
            )
        })?;
        check_output(self, "path", &out)?;
        Ok(Some(out))
    }
}

/// Where z comes from: a sampler plugin, or (with plugins turned off) the
/// built-in Gaussian, which is the `gaussian` plugin's own code linked in.
#[derive(Clone)]
pub enum Sampler {
    Plugin(Plugin),
    BuiltinGaussian,
}

impl Sampler {
    /// Picks the sampler called `name` from the registry.
    pub fn select(registry: &Registry, name: &str) -> Result<Self> {
        if let Some(p) = registry.find(PluginKind::Sampler, name) {
            return Ok(Self::Plugin(p.clone()));
        }
        if name == "gaussian"
            && (registry.disabled || registry.find(PluginKind::Sampler, name).is_none())
        {
            return Ok(Self::BuiltinGaussian);
        }
        let names = registry.names(PluginKind::Sampler);
        let why = if registry.disabled {
            format!(" (plugins are turned off by {DISABLE_ENV})")
        } else {
            String::new()
        };
        bail!(
            "no sampler named '{name}'{why}; available: {}",
            if names.is_empty() {
                "gaussian".to_string()
            } else {
                names.join(", ")
            }
        )
    }

    pub fn name(&self) -> &str {
        match self {
            Sampler::Plugin(p) => &p.name,
            Sampler::BuiltinGaussian => "gaussian",
        }
    }

    /// Where the sampler comes from, for status lines and `model info`.
    pub fn origin(&self) -> String {
        match self {
            Sampler::Plugin(p) => format!("plugin {}", p.path.display()),
            Sampler::BuiltinGaussian => "built in".to_string(),
        }
    }

    pub fn configure(&self, key: &str, value: &str) -> Result<()> {
        match self {
            Sampler::Plugin(p) => p.configure(key, value),
            Sampler::BuiltinGaussian => bail!("sampler 'gaussian' takes no options"),
        }
    }

    pub fn sample(&self, seeds: &[u64], dim: usize) -> Result<Vec<f32>> {
        match self {
            Sampler::Plugin(p) => p.sample(seeds, dim),
            Sampler::BuiltinGaussian => {
                let mut out = vec![0.0; seeds.len() * dim];
                for (seed, row) in seeds.iter().zip(out.chunks_mut(dim.max(1))) {
                    gantry_plugin_api::random::standard_normal(*seed, row);
                }
                Ok(out)
            }
        }
    }

    /// `steps` z from `a` to `b`: the sampler's own path, or a straight line.
    pub fn path(&self, a: &[f32], b: &[f32], steps: usize) -> Result<Vec<f32>> {
        if let Sampler::Plugin(p) = self {
            if let Some(path) = p.path(a, b, steps)? {
                return Ok(path);
            }
        }
        Ok(linear_path(a, b, steps))
    }
}

/// Evenly spaced points from `a` to `b`, both included.
pub fn linear_path(a: &[f32], b: &[f32], steps: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(steps * a.len());
    for i in 0..steps {
        let w = if steps > 1 {
            i as f32 / (steps - 1) as f32
        } else {
            0.0
        };
        out.extend(a.iter().zip(b).map(|(x, y)| (1.0 - w) * x + w * y));
    }
    out
}
