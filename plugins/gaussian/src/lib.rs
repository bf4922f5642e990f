//! The `gaussian` sampler: z ~ N(0, I), as paper.md §2 draws it.
//!
//! Each seed gets its own stream, so image `i` of a batch can be remade on its
//! own from its seed, and the numbers are the same on every machine (the
//! generator is SplitMix64 and the normal transform is Box-Muller in f64,
//! with no platform maths library in the way beyond `ln`, `sqrt`, `cos`, `sin`).

use gantry_plugin_api::{declare_sampler, Sampler};

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough to
/// seed and drive a per-image stream.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in the open interval (0, 1): never 0, so `ln` stays finite.
    pub fn next_open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// Writes `out.len()` standard normal numbers for `seed`.
pub fn standard_normal(seed: u64, out: &mut [f32]) {
    let mut rng = SplitMix64::new(seed);
    let mut chunks = out.chunks_mut(2);
    for pair in &mut chunks {
        let radius = (-2.0 * rng.next_open01().ln()).sqrt();
        let angle = std::f64::consts::TAU * rng.next_open01();
        pair[0] = (radius * angle.cos()) as f32;
        if let Some(second) = pair.get_mut(1) {
            *second = (radius * angle.sin()) as f32;
        }
    }
}

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
