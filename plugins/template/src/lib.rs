//! A sampler plugin to start from: z ~ N(0, scale² I).
//!
//! A sampler turns seeds into z vectors (one row of `dim` floats per seed).
//! Everything crossing into gantry goes through `declare_sampler!`, which
//! exports the plugin's declaration, checks buffer sizes, and catches panics.

use gantry_plugin_api::random::standard_normal;
use gantry_plugin_api::{declare_sampler, Sampler};
use std::sync::atomic::{AtomicU32, Ordering};

/// An option, set with `:sampler my-sampler scale=0.5` (stored as f32 bits).
static SCALE: AtomicU32 = AtomicU32::new(0x3F80_0000); // 1.0

pub struct MySampler;

impl Sampler for MySampler {
    fn sample(seeds: &[u64], dim: usize, out: &mut [f32]) -> Result<(), String> {
        let scale = f32::from_bits(SCALE.load(Ordering::Relaxed));
        for (seed, row) in seeds.iter().zip(out.chunks_mut(dim.max(1))) {
            // The same seed must always give the same z: that is what makes
            // gantry's pictures reproducible.
            standard_normal(*seed, row);
            row.iter_mut().for_each(|x| *x *= scale);
        }
        Ok(())
    }

    fn configure(key: &str, value: &str) -> Result<(), String> {
        match key {
            "scale" => {
                let v: f32 = value
                    .parse()
                    .map_err(|_| format!("scale must be a number, not {value}"))?;
                SCALE.store(v.to_bits(), Ordering::Relaxed);
                Ok(())
            }
            _ => Err(format!("unknown option '{key}' (this sampler takes scale)")),
        }
    }
}

// The name is what users type after :sampler.
declare_sampler!(
    MySampler,
    name = "my-sampler",
    description = "z ~ N(0, scale^2 I): a template to copy"
);
