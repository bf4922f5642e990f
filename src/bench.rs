//! Speed measurements (never in tests): median wall time of repeated runs.

use crate::runtime::Runtime;
use anyhow::Result;
use std::time::Instant;

/// Times `f` `repeats` times after `warmup` untimed runs; returns the
/// per-run milliseconds, sorted.
pub fn time_runs(
    warmup: usize,
    repeats: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<Vec<f64>> {
    for _ in 0..warmup {
        f()?;
    }
    let mut ms = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        f()?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    Ok(ms)
}

pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// One batch from caption text to RGB bytes on the host: text encoding,
/// sampling z, G, and the copy back are all inside the timed region.
pub fn generate(
    runtime: &Runtime,
    batch: usize,
    warmup: usize,
    repeats: usize,
) -> Result<Vec<f64>> {
    let caption = "this flower has five large pink petals with a yellow centre";
    time_runs(warmup, repeats, || {
        let out = runtime.generate(caption, batch, 0)?;
        debug_assert_eq!(out.images.len(), batch);
        Ok(())
    })
}
