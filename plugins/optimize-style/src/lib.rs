//! The `optimize` style encoder: instead of the learned S, find z by
//! inverting G directly, minimising the host's reconstruction loss
//! mean((G(z, t) − x)²) with Adam on z. It starts from S(x) (`start=learned`,
//! the default) or from a fixed random z (`start=random`). Slower than S, but
//! it follows the very image rather than what S learned to expect.
//! Options: `steps` (default 60), `lr` (0.05), `start` (learned | random).

use gantry_plugin_api::random::standard_normal;
use gantry_plugin_api::{declare_style_encoder, Host, StyleEncoder};
use std::sync::Mutex;

struct Settings {
    steps: usize,
    lr: f32,
    from_learned: bool,
}

static SETTINGS: Mutex<Settings> = Mutex::new(Settings {
    steps: 60,
    lr: 0.05,
    from_learned: true,
});

pub struct Optimize;

impl StyleEncoder for Optimize {
    fn encode(
        host: &Host,
        _pixels: &[u8],
        _width: u32,
        _height: u32,
        out: &mut [f32],
    ) -> Result<(), String> {
        let (steps, lr, from_learned) = {
            let s = SETTINGS.lock().map_err(|_| "settings poisoned")?;
            (s.steps, s.lr, s.from_learned)
        };
        let mut z = if from_learned {
            host.learned()?
        } else {
            let mut z = vec![0.0; host.nz()];
            standard_normal(0, &mut z);
            z
        };
        // Adam on z.
        let (beta1, beta2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let mut m = vec![0.0f32; z.len()];
        let mut v = vec![0.0f32; z.len()];
        let mut best = (f32::INFINITY, z.clone());
        for t in 1..=steps {
            let (loss, grad) = host.reconstruction(&z)?;
            if !loss.is_finite() {
                return Err(format!("the reconstruction loss became {loss} at step {t}"));
            }
            if loss < best.0 {
                best = (loss, z.clone());
            }
            for i in 0..z.len() {
                m[i] = beta1 * m[i] + (1.0 - beta1) * grad[i];
                v[i] = beta2 * v[i] + (1.0 - beta2) * grad[i] * grad[i];
                let m_hat = m[i] / (1.0 - beta1.powi(t as i32));
                let v_hat = v[i] / (1.0 - beta2.powi(t as i32));
                z[i] -= lr * m_hat / (v_hat.sqrt() + eps);
            }
        }
        let (loss, _) = host.reconstruction(&z)?;
        if loss < best.0 {
            best = (loss, z);
        }
        out.copy_from_slice(&best.1);
        Ok(())
    }

    fn configure(key: &str, value: &str) -> Result<(), String> {
        let mut s = SETTINGS.lock().map_err(|_| "settings poisoned")?;
        match key {
            "steps" => {
                s.steps = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or("steps must be 1 to 10000")?
            }
            "lr" => {
                s.lr = value
                    .parse()
                    .ok()
                    .filter(|x: &f32| *x > 0.0 && *x < 10.0)
                    .ok_or("lr must be between 0 and 10")?
            }
            "start" => {
                s.from_learned = match value {
                    "learned" => true,
                    "random" => false,
                    _ => return Err("start must be learned or random".to_string()),
                }
            }
            _ => {
                return Err(format!(
                    "unknown option '{key}' (optimize takes steps, lr, start)"
                ))
            }
        }
        Ok(())
    }
}

declare_style_encoder!(
    Optimize,
    name = "optimize",
    description =
        "invert G by Adam on z against the reconstruction loss (options steps, lr, start)"
);
