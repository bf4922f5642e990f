//! The statistics the measurements share: ROC AUC, entropy, the Fréchet
//! distance, and the checkerboard measure of evaluation.md.

use anyhow::{bail, Result};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// evaluation.md's checkerboard measure of images `[N, 3, H, W]`: the power
/// of the mean grey-level spectrum at the period-2 pixel frequencies (the
/// Nyquist row, column and corner, where stride-2 transposed convolutions
/// leave their pattern) over the mean power of the frequencies next to them.
/// Natural images fall off smoothly there (about 1); a checkerboard stands out.
pub fn checkerboard(images: &Tensor) -> Result<f64> {
    grid(images, 2)
}

/// The periods [`grid`] is read at: 2 (the checkerboard a stride-2
/// transposed convolution draws at the pixels), 4 and 8 (the same drawn on a
/// 32x32 or 16x16 map and doubled since, by nearest-neighbour upsampling or
/// by the layers after it), and 16 (the blocks of G's first 4x4 map doubled
/// four times by nearest neighbour).
pub const GRID_PERIODS: [usize; 4] = [2, 4, 8, 16];

/// The checkerboard measure generalised to a grid of `period` pixels: the
/// power of the mean grey-level spectrum at the frequencies only a pattern of
/// that period has (multiples of H/period and W/period, at least one of them
/// an odd multiple: the even ones belong to the shorter periods and the
/// mean), over the mean power of the frequencies next to each. Period 2 is
/// [`checkerboard`].
pub fn grid(images: &Tensor, period: usize) -> Result<f64> {
    Spectrum::of(images)?.grid(period)
}

/// [`grid`] at each of `periods`, from one spectrum.
pub fn grids(images: &Tensor, periods: &[usize]) -> Result<Vec<f64>> {
    let spectrum = Spectrum::of(images)?;
    periods.iter().map(|&p| spectrum.grid(p)).collect()
}

/// The mean grey-level power spectrum of images `[N, C, H, W]`, which every
/// grid measure reads.
struct Spectrum {
    power: Vec<f32>,
    h: usize,
    w: usize,
}

impl Spectrum {
    fn of(images: &Tensor) -> Result<Self> {
        let size = images.size();
        if size.len() != 4 || size[0] == 0 {
            bail!("grid measure: expected [N, C, H, W] images, got {size:?}");
        }
        let grey =
            images
                .to_device(Device::Cpu)
                .to_kind(Kind::Float)
                .mean_dim(1, false, Kind::Float);
        let grey = &grey - grey.mean_dim([1i64, 2].as_slice(), true, Kind::Float);
        let power = grey
            .fft_fft2(None::<&[i64]>, [1i64, 2].as_slice(), "backward")
            .abs()
            .square()
            .mean_dim(0, false, Kind::Float);
        Ok(Self {
            power: Vec::<f32>::try_from(power.reshape([-1]))?,
            h: size[2] as usize,
            w: size[3] as usize,
        })
    }

    fn grid(&self, period: usize) -> Result<f64> {
        let (h, w) = (self.h, self.w);
        if period < 2 || h < 2 * period || w < 2 * period {
            bail!(
                "grid measure of period {period}: expected images of at least {0}x{0}, got {h}x{w}",
                2 * period
            );
        }
        if h % period != 0 || w % period != 0 {
            bail!("grid measure of period {period}: {h}x{w} images are not whole periods");
        }
        let at = |y: isize, x: isize| {
            let (y, x) = (y.rem_euclid(h as isize), x.rem_euclid(w as isize));
            self.power[y as usize * w + x as usize] as f64
        };
        let (sy, sx) = ((h / period) as isize, (w / period) as isize);
        let (mut peak, mut around) = (0.0, 0.0);
        for a in 0..period as isize {
            for b in 0..period as isize {
                if a % 2 == 0 && b % 2 == 0 {
                    continue;
                }
                let (y, x) = (a * sy, b * sx);
                peak += at(y, x);
                around += (at(y - 1, x) + at(y + 1, x) + at(y, x - 1) + at(y, x + 1)) / 4.0;
            }
        }
        Ok(peak / around.max(1e-12))
    }
}

/// The grid measures of pictures the model drew and of real images of the
/// same data, as metrics: the checkerboard (period 2; evaluation.md: within
/// 1.5x of real) and the coarser grids of [`GRID_PERIODS`].
pub fn checkerboards(generated: &Tensor, real: &Tensor) -> Result<Vec<super::Metric>> {
    let mut metrics = Vec::new();
    let (generated_grids, real_grids) = (
        grids(generated, &GRID_PERIODS)?,
        grids(real, &GRID_PERIODS)?,
    );
    for ((period, g), r) in GRID_PERIODS
        .into_iter()
        .zip(generated_grids)
        .zip(real_grids)
    {
        let name = match period {
            2 => "checkerboard".to_string(),
            _ => format!("grid{period}"),
        };
        metrics.push(super::number(
            &format!("{name}_generated"),
            g,
            format!(
                "period-{period} spectral power over its neighbours', {} pictures ({:.2}x real)",
                generated.size()[0],
                g / r.max(1e-12)
            ),
        ));
        metrics.push(super::number(
            &format!("{name}_real"),
            r,
            format!("the same on {} real images", real.size()[0]),
        ));
    }
    Ok(metrics)
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

/// The Fréchet distance between Gaussians fitted to two sets of features
/// `[N, D]` (FID's formula, in whatever features are given):
/// |μa − μb|² + tr(Σa + Σb − 2 (Σa Σb)^½), in f64. tr((Σa Σb)^½) is the sum of
/// the square roots of the eigenvalues of Σa^½ Σb Σa^½ (symmetric, so
/// `eigh` applies); tiny negative eigenvalues of rounding count as 0.
pub fn frechet_distance(a: &Tensor, b: &Tensor) -> Result<f64> {
    let (sa, sb) = (a.size(), b.size());
    if sa.len() != 2 || sb.len() != 2 || sa[1] != sb[1] || sa[0] < 2 || sb[0] < 2 {
        bail!("Fréchet distance needs two [N, D] feature sets with N >= 2 (got {sa:?}, {sb:?})");
    }
    let moments = |x: &Tensor| {
        let x = x.to_device(Device::Cpu).to_kind(Kind::Double);
        let mean = x.mean_dim(0, false, Kind::Double);
        let centred = &x - mean.unsqueeze(0);
        let cov = centred.transpose(0, 1).matmul(&centred) / (x.size()[0] - 1) as f64;
        (mean, cov)
    };
    let (ma, ca) = moments(a);
    let (mb, cb) = moments(b);
    let (values, vectors) = ca.linalg_eigh("L");
    let root_a =
        (&vectors * values.clamp_min(0.0).sqrt().unsqueeze(0)).matmul(&vectors.transpose(0, 1));
    let middle = root_a.matmul(&cb).matmul(&root_a);
    let middle = (&middle + middle.transpose(0, 1)) / 2.0;
    let cross = middle
        .linalg_eigvalsh("L")
        .clamp_min(0.0)
        .sqrt()
        .sum(Kind::Double);
    let d = (&ma - &mb).square().sum(Kind::Double) + ca.trace() + cb.trace() - cross * 2.0;
    Ok(d.double_value(&[]).max(0.0))
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

    #[test]
    fn frechet_distance_is_zero_for_the_same_set_and_sees_mean_and_spread() {
        tch::manual_seed(0);
        let x = Tensor::randn([4000, 8], (Kind::Float, Device::Cpu));
        assert!(frechet_distance(&x, &x).unwrap() < 1e-6);
        // A shift of 1 in every one of 8 dimensions: 8.
        let shifted = frechet_distance(&x, &(&x + 1.0)).unwrap();
        assert!((shifted - 8.0).abs() < 1e-6, "{shifted}");
        // Twice the spread: per dimension 1 + 4 - 2·2 = 1, so about 8.
        let y = Tensor::randn([4000, 8], (Kind::Float, Device::Cpu)) * 2.0;
        let wider = frechet_distance(&x, &y).unwrap();
        assert!((wider - 8.0).abs() < 0.5, "{wider}");
        assert!(frechet_distance(&x, &Tensor::zeros([1, 8], (Kind::Float, Device::Cpu))).is_err());
    }

    /// Pictures with a natural images' spectrum (noise with its amplitude
    /// falling as 1/f), and the same with a faint checkerboard (±0.05)
    /// drawn at 64x64, 32x32, 16x16 or 8x8 and doubled by nearest neighbour
    /// since: each period reads higher only where its own pattern is (the
    /// others read exactly what they read without it: the patterns have no
    /// power at their frequencies), and the plain pictures read about 1.
    #[test]
    fn each_grid_period_sees_its_own_pattern() {
        tch::manual_seed(0);
        let options = (Kind::Float, Device::Cpu);
        let f = Tensor::fft_fftfreq(64, 1.0 / 64.0, options);
        let radius = (f.view([-1, 1]).square() + f.view([1, -1]).square()).sqrt();
        let noise = Tensor::randn([32, 3, 64, 64], options);
        let smooth = (noise.fft_fft2(None::<&[i64]>, [-2i64, -1].as_slice(), "backward")
            / (radius + 1.0))
            .fft_ifft2(None::<&[i64]>, [-2i64, -1].as_slice(), "backward")
            .real();
        let smooth = &smooth / smooth.std(true) * 0.5;
        let checker = |size: i64| {
            let i = Tensor::arange(size, (Kind::Float, Device::Cpu));
            let sign = (i.view([-1, 1]) + i.view([1, -1])).remainder(2.0) * 2.0 - 1.0;
            sign.view([1, 1, size, size])
                .upsample_nearest2d([64, 64], None, None)
                * 0.05
        };
        let read = |images: &Tensor| grids(images, &GRID_PERIODS).unwrap();
        let plain = read(&smooth);
        assert!(plain.iter().all(|&v| (0.8..1.25).contains(&v)), "{plain:?}");
        assert_eq!(checkerboard(&smooth).unwrap(), plain[0]);
        assert_eq!(grid(&smooth, 8).unwrap(), plain[2]);
        for (which, size) in [(0, 64), (1, 32), (2, 16), (3, 8)] {
            let values = read(&(&smooth + checker(size)));
            for (k, &v) in values.iter().enumerate() {
                let period = GRID_PERIODS[k];
                if k == which {
                    assert!(v > 1.5 * plain[k], "period {period} of {size}: {values:?}");
                } else {
                    let apart = (v / plain[k] - 1.0).abs();
                    assert!(apart < 0.01, "period {period} of {size}: {values:?}");
                }
            }
        }
        assert!(grid(&smooth, 3).is_err(), "64 is not whole periods of 3");
        assert!(grid(&smooth.narrow(2, 0, 8).narrow(3, 0, 8), 8).is_err());
    }
}
