//! Drawing one flower: a background with texture, petals arranged around a
//! centre disc, anti-aliased from signed distances (one sample per pixel).

/// What to draw. Content: colour, shape, petals, centre. Style: the rest.
#[derive(Clone, Debug, PartialEq)]
pub struct Flower {
    pub colour: usize,
    pub shape: usize,
    pub petals: u32,
    pub centre: usize,
    pub background: usize,
    pub position: u32,
    pub x: f32,
    pub y: f32,
    pub rotation: f32,
    pub radius: f32,
    pub texture_seed: u64,
}

pub use gantry_plugin_api::random::SplitMix64;

const PETAL_RGB: [[f32; 3]; 8] = [
    [212.0, 32.0, 42.0],   // red
    [242.0, 132.0, 22.0],  // orange
    [246.0, 214.0, 48.0],  // yellow
    [242.0, 242.0, 236.0], // white
    [246.0, 146.0, 186.0], // pink
    [118.0, 44.0, 164.0],  // purple
    [52.0, 92.0, 214.0],   // blue
    [48.0, 196.0, 196.0],  // turquoise
];

const CENTRE_RGB: [[f32; 3]; 4] = [
    [236.0, 188.0, 36.0],  // yellow
    [108.0, 64.0, 30.0],   // brown
    [26.0, 22.0, 22.0],    // black
    [236.0, 234.0, 222.0], // white
];

/// Top and bottom colour of each background's vertical gradient.
const BACKGROUND_RGB: [[[f32; 3]; 2]; 6] = [
    [[28.0, 68.0, 34.0], [46.0, 98.0, 46.0]],       // forest
    [[124.0, 172.0, 84.0], [92.0, 146.0, 66.0]],    // meadow
    [[132.0, 182.0, 234.0], [214.0, 230.0, 248.0]], // sky
    [[116.0, 116.0, 122.0], [152.0, 152.0, 150.0]], // stone
    [[104.0, 80.0, 56.0], [78.0, 58.0, 40.0]],      // soil
    [[18.0, 22.0, 48.0], [46.0, 40.0, 82.0]],       // night
];

/// A cheap per-pixel hash in [-1, 1] for texture.
fn hash_noise(seed: u64, x: u32, y: u32) -> f32 {
    let mut rng = SplitMix64::new(seed ^ ((x as u64) << 32 | y as u64).wrapping_mul(0x9E37_79B9));
    (rng.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// Smooth value noise at a coarse scale, for the background's blotches.
fn blotch(seed: u64, x: f32, y: f32, cell: f32) -> f32 {
    let (gx, gy) = (x / cell, y / cell);
    let (ix, iy) = (gx.floor(), gy.floor());
    let (fx, fy) = (gx - ix, gy - iy);
    let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
    let corner = |dx: f32, dy: f32| hash_noise(seed, (ix + dx) as u32, (iy + dy) as u32);
    let top = corner(0.0, 0.0) + (corner(1.0, 0.0) - corner(0.0, 0.0)) * smooth(fx);
    let bottom = corner(0.0, 1.0) + (corner(1.0, 1.0) - corner(0.0, 1.0)) * smooth(fx);
    top + (bottom - top) * smooth(fy)
}

/// Half-width of a petal at t in [-1, 1] along its axis (base to tip), as a
/// fraction of its half-length.
fn petal_profile(shape: usize, petals: u32, t: f32) -> f32 {
    let t = t.clamp(-1.0, 1.0);
    let ellipse = (1.0 - t * t).max(0.0).sqrt();
    match shape {
        // round: broad ellipses, a little narrower when there are many.
        0 => ellipse * (2.0 * (std::f32::consts::PI / petals as f32).sin()).clamp(0.55, 0.8),
        // pointed: an almond, sharp at the tip, fuller towards the base.
        1 => 0.62 * (1.0 - t * t) * (1.0 - 0.35 * t),
        // thin: narrow straps.
        _ => 0.2 * ellipse,
    }
}

fn mix(a: [f32; 3], b: [f32; 3], w: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * w,
        a[1] + (b[1] - a[1]) * w,
        a[2] + (b[2] - a[2]) * w,
    ]
}

fn scale(c: [f32; 3], f: f32) -> [f32; 3] {
    [c[0] * f, c[1] * f, c[2] * f]
}

/// Renders the flower as `size` x `size` RGB bytes.
pub fn render(f: &Flower, size: u32) -> Vec<u8> {
    let mut rng = SplitMix64::new(f.texture_seed);
    let tint = [
        rng.uniform(-10.0, 10.0),
        rng.uniform(-10.0, 10.0),
        rng.uniform(-10.0, 10.0),
    ];
    let [top, bottom] = BACKGROUND_RGB[f.background];
    let petal = PETAL_RGB[f.colour];
    let centre = CENTRE_RGB[f.centre];
    let hue_jitter = rng.uniform(0.94, 1.04);
    let r = f.radius;
    let base = 0.12 * r;
    let half_len = (r - base) / 2.0;
    let mid = base + half_len;
    let centre_radius = 0.26 * r;
    let axes: Vec<(f32, f32)> = (0..f.petals)
        .map(|k| {
            let a = f.rotation + std::f32::consts::TAU * k as f32 / f.petals as f32;
            (a.cos(), a.sin())
        })
        .collect();

    let mut out = Vec::with_capacity((size * size * 3) as usize);
    for py in 0..size {
        for px in 0..size {
            let (x, y) = (px as f32 + 0.5, py as f32 + 0.5);
            // Background: gradient, blotches, grain, vignette.
            let v = y / size as f32;
            let mut c = mix(top, bottom, v);
            let b = blotch(f.texture_seed, x, y, 12.0) * 12.0
                + hash_noise(f.texture_seed, px, py) * 4.0;
            let dx = x / size as f32 - 0.5;
            let dy = y / size as f32 - 0.5;
            let vignette = 1.0 - 0.35 * (dx * dx + dy * dy);
            for i in 0..3 {
                c[i] = (c[i] + tint[i] + b) * vignette;
            }

            let (ox, oy) = (x - f.x, y - f.y);
            if ox.abs() <= r + 2.0 && oy.abs() <= r + 2.0 {
                // A soft shadow under the flower lifts it off the ground.
                let dist = (ox * ox + oy * oy).sqrt();
                let shadow = ((r + 2.0 - dist) / 4.0).clamp(0.0, 1.0) * 0.18;
                c = scale(c, 1.0 - shadow);
                for &(ax, ay) in &axes {
                    let u = ox * ax + oy * ay;
                    let w = -ox * ay + oy * ax;
                    let t = (u - mid) / half_len;
                    let half_width = petal_profile(f.shape, f.petals, t) * half_len;
                    let d = (w.abs() - half_width).max((t.abs() - 1.0) * half_len);
                    let coverage = (0.5 - d).clamp(0.0, 1.0);
                    if coverage <= 0.0 {
                        continue;
                    }
                    // Lighter toward the tip, a darker rim and a faint vein.
                    let along = ((t + 1.0) / 2.0).clamp(0.0, 1.0);
                    let rim = 1.0 - 0.28 * (1.0 + d / 1.6).clamp(0.0, 1.0);
                    let vein = 1.0 - 0.1 * (-(w * w) / 0.5).exp() * along;
                    let shade = (0.74 + 0.3 * along) * rim * vein * hue_jitter;
                    c = mix(c, scale(petal, shade), coverage);
                }
                let d = dist - centre_radius;
                let coverage = (0.5 - d).clamp(0.0, 1.0);
                if coverage > 0.0 {
                    let dots = 1.0 + 0.12 * hash_noise(f.texture_seed ^ 7, px, py);
                    let shade = (1.05 - 0.35 * (dist / centre_radius).min(1.0)) * dots;
                    c = mix(c, scale(centre, shade), coverage);
                }
            }
            out.extend(c.iter().map(|v| v.round().clamp(0.0, 255.0) as u8));
        }
    }
    out
}
