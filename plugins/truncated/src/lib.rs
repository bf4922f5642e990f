//! The `truncated` sampler: the truncation trick (Brock et al., BigGAN):
//! each component of z is drawn from N(0, 1) and redrawn while its size is
//! above ψ. A smaller ψ trades variety for typical, cleaner pictures.
//! Option: `psi` (default 1.0, at least 0.05).

use gantry_plugin_api::random::SplitMix64;
use gantry_plugin_api::{declare_sampler, Sampler};
use std::sync::atomic::{AtomicU32, Ordering};

/// ψ as f32 bits; set by `configure`.
static PSI: AtomicU32 = AtomicU32::new(0x3F80_0000); // 1.0

pub fn psi() -> f32 {
    f32::from_bits(PSI.load(Ordering::Relaxed))
}

pub struct Truncated;

impl Sampler for Truncated {
    fn sample(seeds: &[u64], dim: usize, out: &mut [f32]) -> Result<(), String> {
        let psi = psi() as f64;
        for (seed, row) in seeds.iter().zip(out.chunks_mut(dim.max(1))) {
            let mut rng = SplitMix64::new(*seed ^ 0x7275_6E63);
            for x in row.iter_mut() {
                let mut v = rng.normal();
                while v.abs() > psi {
                    v = rng.normal();
                }
                *x = v as f32;
            }
        }
        Ok(())
    }

    fn configure(key: &str, value: &str) -> Result<(), String> {
        match key {
            "psi" => {
                let psi: f32 = value
                    .parse()
                    .map_err(|_| format!("psi must be a number (got {value})"))?;
                if !(0.05..=10.0).contains(&psi) {
                    return Err(format!("psi must be between 0.05 and 10 (got {psi})"));
                }
                PSI.store(psi.to_bits(), Ordering::Relaxed);
                Ok(())
            }
            _ => Err(format!("unknown option '{key}' (truncated takes psi)")),
        }
    }
}

declare_sampler!(
    Truncated,
    name = "truncated",
    description =
        "truncated normal z: each component redrawn while |z| > psi (option psi, default 1.0)"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_stay_within_psi_and_seeds_repeat() {
        Truncated::configure("psi", "0.5").unwrap();
        let mut a = vec![0.0; 1000];
        let mut b = vec![0.0; 1000];
        Truncated::sample(&[3], 1000, &mut a).unwrap();
        Truncated::sample(&[3], 1000, &mut b).unwrap();
        assert_eq!(a, b);
        assert!(a.iter().all(|x| x.abs() <= 0.5));
        assert!(Truncated::configure("psi", "0").is_err());
        assert!(Truncated::configure("tau", "1").is_err());
        Truncated::configure("psi", "1.0").unwrap();
    }
}
