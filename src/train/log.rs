//! The loss log (`losses.jsonl`, one JSON object per logged step) and its
//! plot (`losses.png`), redrawn as training goes.

use crate::imageio::{write_png, Image};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct LossLog {
    path: PathBuf,
    pub rows: Vec<(u64, BTreeMap<String, f64>)>,
}

impl LossLog {
    /// Opens the log of a run, keeping only rows up to `resume_step` (rows
    /// written after the last checkpoint belong to steps that will be redone).
    pub fn open(path: &Path, resume_step: Option<u64>) -> Result<Self> {
        let mut rows = Vec::new();
        if let (Some(step), Ok(text)) = (resume_step, std::fs::read_to_string(path)) {
            for line in text.lines() {
                let Ok(mut row) = serde_json::from_str::<BTreeMap<String, f64>>(line) else {
                    continue;
                };
                let Some(s) = row.remove("step") else {
                    continue;
                };
                if s as u64 <= step {
                    rows.push((s as u64, row));
                }
            }
        }
        let log = Self {
            path: path.to_path_buf(),
            rows,
        };
        log.rewrite()?;
        Ok(log)
    }

    fn line(step: u64, values: &BTreeMap<String, f64>) -> String {
        let mut row = serde_json::Map::new();
        row.insert("step".into(), step.into());
        for (k, v) in values {
            row.insert(k.clone(), serde_json::Value::from(*v));
        }
        serde_json::Value::Object(row).to_string()
    }

    fn rewrite(&self) -> Result<()> {
        let text: String = self
            .rows
            .iter()
            .map(|(s, v)| Self::line(*s, v) + "\n")
            .collect();
        super::checkpoint::write_text(&self.path, &text)
    }

    pub fn push(&mut self, step: u64, values: BTreeMap<String, f64>) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        writeln!(file, "{}", Self::line(step, &values))?;
        self.rows.push((step, values));
        Ok(())
    }

    /// Draws every logged series against the step into a PNG.
    pub fn plot(&self, path: &Path) -> Result<()> {
        // The learning rate is logged but not plotted: it lives on another scale.
        let keys: Vec<String> = self
            .rows
            .iter()
            .flat_map(|(_, v)| v.keys().filter(|k| k.as_str() != "lr").cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let series: Vec<(String, Vec<(f64, f64)>)> = keys
            .iter()
            .map(|k| {
                let points = self
                    .rows
                    .iter()
                    .filter_map(|(s, v)| {
                        v.get(k).filter(|x| x.is_finite()).map(|x| (*s as f64, *x))
                    })
                    .collect();
                (k.clone(), points)
            })
            .collect();
        write_png(path, &line_plot(&series, 640, 360), &[])
    }
}

const PALETTE: [[u8; 3]; 6] = [
    [220, 60, 60],
    [60, 120, 220],
    [40, 160, 80],
    [230, 150, 30],
    [150, 70, 190],
    [60, 170, 170],
];

/// A simple line plot: each series smoothed with a running mean, drawn
/// over a light grid, with a legend. Pure pixels, no font files.
pub fn line_plot(series: &[(String, Vec<(f64, f64)>)], width: u32, height: u32) -> Image {
    let mut img = Image {
        width,
        height,
        rgb: vec![250; (width * height * 3) as usize],
    };
    let (left, right, top, bottom) = (40.0, width as f64 - 10.0, 10.0, height as f64 - 20.0);
    let all: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    if all.is_empty() {
        return img;
    }
    let (x0, x1) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (x1, y1) = (x1.max(x0 + 1e-9), y1.max(y0 + 1e-9));
    let to_px = |x: f64, y: f64| {
        (
            left + (x - x0) / (x1 - x0) * (right - left),
            bottom - (y - y0) / (y1 - y0) * (bottom - top),
        )
    };
    let put = |img: &mut Image, x: f64, y: f64, c: [u8; 3]| {
        if x >= 0.0 && y >= 0.0 && (x as u32) < img.width && (y as u32) < img.height {
            let i = ((y as u32 * img.width + x as u32) * 3) as usize;
            img.rgb[i..i + 3].copy_from_slice(&c);
        }
    };
    for k in 0..=4 {
        let y = top + (bottom - top) * k as f64 / 4.0;
        for x in left as u32..right as u32 {
            put(&mut img, x as f64, y, [215, 215, 215]);
        }
        let value = y1 - (y1 - y0) * k as f64 / 4.0;
        draw_text(
            &mut img,
            2,
            y as u32 - 3,
            &format!("{value:.2}"),
            [90, 90, 90],
        );
    }
    draw_text(
        &mut img,
        left as u32,
        height - 12,
        &format!("step {x0:.0}"),
        [90, 90, 90],
    );
    let end = format!("{x1:.0}");
    draw_text(
        &mut img,
        (right as u32).saturating_sub(8 * end.len() as u32),
        height - 12,
        &end,
        [90, 90, 90],
    );
    for (n, (name, points)) in series.iter().enumerate() {
        let colour = PALETTE[n % PALETTE.len()];
        let window = (points.len() / 50).max(1);
        let mut previous: Option<(f64, f64)> = None;
        for i in 0..points.len() {
            let lo = i.saturating_sub(window - 1);
            let mean = points[lo..=i].iter().map(|p| p.1).sum::<f64>() / (i - lo + 1) as f64;
            let (px, py) = to_px(points[i].0, mean);
            if let Some((qx, qy)) = previous {
                let steps = ((px - qx).abs().max((py - qy).abs()) as usize).max(1);
                for s in 0..=steps {
                    let t = s as f64 / steps as f64;
                    put(&mut img, qx + (px - qx) * t, qy + (py - qy) * t, colour);
                }
            }
            previous = Some((px, py));
        }
        draw_text(
            &mut img,
            right as u32 - 120,
            top as u32 + 4 + 10 * n as u32,
            name,
            colour,
        );
    }
    img
}

fn draw_text(img: &mut Image, x: u32, y: u32, text: &str, colour: [u8; 3]) {
    use font8x8::UnicodeFonts;
    for (k, ch) in text.chars().enumerate() {
        let Some(glyph) = font8x8::BASIC_FONTS.get(ch) else {
            continue;
        };
        for (gy, bits) in glyph.iter().enumerate() {
            for gx in 0..8u32 {
                let (px, py) = (x + k as u32 * 8 + gx, y + gy as u32);
                if bits & (1 << gx) != 0 && px < img.width && py < img.height {
                    let i = ((py * img.width + px) * 3) as usize;
                    img.rgb[i..i + 3].copy_from_slice(&colour);
                }
            }
        }
    }
}
