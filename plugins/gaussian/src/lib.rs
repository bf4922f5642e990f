//! The `gaussian` sampler: z ~ N(0, I), as paper.md §2 draws it.
//!
//! Each seed gets its own stream, so image `i` of a batch can be remade on its
//! own from its seed, and the numbers are the same on every machine (the
//! generator is SplitMix64 and the normal transform is Box-Muller in f64,
//! with no platform maths library in the way beyond `ln`, `sqrt`, `cos`, `sin`).

use gantry_plugin_api::{declare_sampler, Sampler};

pub use gantry_plugin_api::random::{standard_normal, SplitMix64};

pub struct Gaussian;

impl Sampler for Gaussian {
    fn sample(seeds: &[u64], dim: usize, out: &mut [f32]) -> Result<(), String> {
        for (seed, row) in seeds.iter().zip(out.chunks_mut(dim.max(1))) {
            standard_normal(*seed, row);
        }
        Ok(())
    }
}

declare_sampler!(
    Gaussian,
    name = "gaussian",
    description = "z ~ N(0, I), one SplitMix64 stream per seed"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers_and_seeds_differ() {
        let mut a = vec![0.0; 100];
        let mut b = vec![0.0; 100];
        let mut c = vec![0.0; 100];
        standard_normal(7, &mut a);
        standard_normal(7, &mut b);
        standard_normal(8, &mut c);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn moments_are_standard_normal() {
        let mut z = vec![0.0f32; 100_001];
        standard_normal(1, &mut z);
        let n = z.len() as f64;
        let mean = z.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = z.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
    }
}
