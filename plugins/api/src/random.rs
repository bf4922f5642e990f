//! Portable random numbers for plugins: SplitMix64 (Steele, Lea, Flood 2014)
//! and a Box-Muller standard normal, the same on every machine, so that a
//! seed means the same z everywhere.

pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The whole state: `SplitMix64::new(rng.state())` continues the stream.
    pub fn state(&self) -> u64 {
        self.0
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

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }

    /// One standard normal number (Box-Muller, one of the pair).
    pub fn normal(&mut self) -> f64 {
        let radius = (-2.0 * self.next_open01().ln()).sqrt();
        radius * (std::f64::consts::TAU * self.next_open01()).cos()
    }
}

/// Writes `out.len()` standard normal numbers for `seed` (both numbers of
/// each Box-Muller pair are used).
pub fn standard_normal(seed: u64, out: &mut [f32]) {
    let mut rng = SplitMix64::new(seed);
    for pair in out.chunks_mut(2) {
        let radius = (-2.0 * rng.next_open01().ln()).sqrt();
        let angle = std::f64::consts::TAU * rng.next_open01();
        pair[0] = (radius * angle.cos()) as f32;
        if let Some(second) = pair.get_mut(1) {
            *second = (radius * angle.sin()) as f32;
        }
    }
}
