//! The statistics the measurements share: ROC AUC, entropy, and the
//! checkerboard measure of evaluation.md.

use anyhow::{bail, Result};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// evaluation.md's checkerboard measure of images `[N, 3, H, W]`: the power
/// of the mean grey-level spectrum at the period-2 pixel frequencies (the
/// Nyquist row, column and corner, where stride-2 transposed convolutions
/// leave their pattern) over the mean power of the frequencies next to them.
/// Natural images fall off smoothly there (about 1); a checkerboard stands out.
pub fn checkerboard(images: &Tensor) -> Result<f64> {
    let size = images.size();
    if size.len() != 4 || size[0] == 0 || size[2] < 4 || size[3] < 4 {
        bail!("checkerboard: expected [N, C, H, W] images, got {size:?}");
    }
    let (h, w) = (size[2] as usize, size[3] as usize);
    let grey = images
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .mean_dim(1, false, Kind::Float);
    let grey = &grey - grey.mean_dim([1i64, 2].as_slice(), true, Kind::Float);
    let power = grey
        .fft_fft2(None::<&[i64]>, [1i64, 2].as_slice(), "backward")
        .abs()
        .square()
        .mean_dim(0, false, Kind::Float);
    let power = Vec::<f32>::try_from(power.reshape([-1]))?;
    let at = |y: isize, x: isize| {
        let (y, x) = (y.rem_euclid(h as isize), x.rem_euclid(w as isize));
        power[y as usize * w + x as usize] as f64
    };
    let (ny, nx) = ((h / 2) as isize, (w / 2) as isize);
    let (mut peak, mut around) = (0.0, 0.0);
    for (y, x) in [(ny, 0), (0, nx), (ny, nx)] {
        peak += at(y, x);
        around += (at(y - 1, x) + at(y + 1, x) + at(y, x - 1) + at(y, x + 1)) / 4.0;
    }
    Ok(peak / around.max(1e-12))
}

pub fn entropy(counts: &BTreeMap<String, usize>) -> f64 {
    let total: usize = counts.values().sum();
    counts
        .values()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total as f64;
            -p * p.ln()
        })
        .sum()
}

/// ROC AUC of scores for positives against negatives (Mann-Whitney U).
pub fn roc_auc(positives: &[f64], negatives: &[f64]) -> f64 {
    if positives.is_empty() || negatives.is_empty() {
        return f64::NAN;
    }
    let mut all: Vec<(f64, bool)> = positives
        .iter()
        .map(|&s| (s, true))
        .chain(negatives.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Average ranks over ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += all[i..=j].iter().filter(|x| x.1).count() as f64 * rank;
        i = j + 1;
    }
    let (p, n) = (positives.len() as f64, negatives.len() as f64);
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_orders_scores() {
        assert_eq!(roc_auc(&[0.9, 0.8], &[0.1, 0.2]), 1.0);
        assert_eq!(roc_auc(&[0.1], &[0.9]), 0.0);
        assert_eq!(roc_auc(&[0.5], &[0.5]), 0.5);
    }
}
