//! The `slerp` sampler: z ~ N(0, I) as `gaussian`, with a spherical path
//! between two z (White, "Sampling Generative Networks", 2016): straight
//! lines between Gaussian samples pass near the origin, where z is
//! atypical; great circles keep the norm typical all the way.

use gantry_plugin_api::random::standard_normal;
use gantry_plugin_api::{declare_sampler, Sampler};

pub struct Slerp;

/// Spherical interpolation between `a` and `b` at `t` in [0, 1].
pub fn slerp(a: &[f32], b: &[f32], t: f32, out: &mut [f32]) {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64) * (*y as f64))
        .sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let cos = (dot / (na * nb).max(1e-12)).clamp(-1.0, 1.0);
    let omega = cos.acos();
    let t = t as f64;
    let (wa, wb) = if omega.abs() < 1e-6 {
        (1.0 - t, t)
    } else {
        (
            ((1.0 - t) * omega).sin() / omega.sin(),
            (t * omega).sin() / omega.sin(),
        )
    };
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = (wa * *x as f64 + wb * *y as f64) as f32;
    }
}

impl Sampler for Slerp {
    fn sample(seeds: &[u64], dim: usize, out: &mut [f32]) -> Result<(), String> {
        for (seed, row) in seeds.iter().zip(out.chunks_mut(dim.max(1))) {
            standard_normal(*seed, row);
        }
        Ok(())
    }

    fn path(a: &[f32], b: &[f32], steps: usize, out: &mut [f32]) -> Option<Result<(), String>> {
        let dim = a.len();
        for (k, row) in out.chunks_mut(dim.max(1)).take(steps).enumerate() {
            let t = if steps > 1 {
                k as f32 / (steps - 1) as f32
            } else {
                0.0
            };
            slerp(a, b, t, row);
        }
        Some(Ok(()))
    }

    const HAS_PATH: bool = true;
}

declare_sampler!(
    Slerp,
    name = "slerp",
    description = "z ~ N(0, I) with spherical (great-circle) paths for :interp-z"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_ends_at_both_points_and_keeps_the_norm() {
        let a = [3.0f32, 0.0];
        let b = [0.0f32, 3.0];
        let mut out = vec![0.0; 6];
        Slerp::path(&a, &b, 3, &mut out).unwrap().unwrap();
        assert!((out[0] - 3.0).abs() < 1e-5 && out[1].abs() < 1e-5);
        assert!(out[4].abs() < 1e-5 && (out[5] - 3.0).abs() < 1e-5);
        let norm = (out[2] * out[2] + out[3] * out[3]).sqrt();
        assert!(
            (norm - 3.0).abs() < 1e-4,
            "the midpoint keeps the norm: {norm}"
        );
    }
}
