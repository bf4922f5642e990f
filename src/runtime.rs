//! The operations every front end calls: embed captions, generate, the two
//! interpolations and style transfer, on one loaded model and device.
//!
//! Deterministic: the same model, caption, seed and device give the same
//! pixels. Image i of a batch is drawn from seed + i, so any single image can
//! be remade from its own seed.

use crate::host::Sampler;
use crate::imageio::{images_from_tensor, tensor_from_images, Image};
use crate::model::folded::FoldedGenerator;
use crate::text;
use crate::weights::Model;
use anyhow::{bail, Context, Result};
use tch::{Device, Kind, Tensor};

/// The most images one call draws (memory stays bounded whatever is asked).
pub const MAX_BATCH: usize = 4096;
/// Images G draws at once, so that its activations stay bounded whatever n
/// is, and so that a cancelled row (an `:interp` of 64) stops within one
/// chunk's time. 64 images take 58 ms in chunks of 16, 53 in chunks of 32
/// and 51.5 in one (`small`, this 2-core CPU, `bench generate --batch 64`).
pub const DRAW_CHUNK: usize = 32;

/// Parses `auto`, `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    match spec.as_str() {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        _ => {
            let index = match spec.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => match rest.strip_prefix(':').and_then(|n| n.parse::<usize>().ok()) {
                    Some(n) => n,
                    None => bail!("unknown device '{spec}' (use auto, cpu, cuda or cuda:N)"),
                },
                None => bail!("unknown device '{spec}' (use auto, cpu, cuda or cuda:N)"),
            };
            let count = tch::Cuda::device_count() as usize;
            if count == 0 {
                bail!("--device {spec}: libtorch sees no CUDA device on this machine (use cpu or auto)");
            }
            if index >= count {
                bail!("--device {spec}: there are only {count} CUDA device(s)");
            }
            Ok(Device::Cuda(index))
        }
    }
}

pub fn describe_device(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A row of images and what made them.
#[derive(Debug)]
pub struct Generated {
    pub images: Vec<Image>,
    /// The seed of each image (for noise interpolation, the endpoints' seeds).
    pub seeds: Vec<u64>,
    /// Things the user should know (captions cut, unknown characters).
    pub warnings: Vec<String>,
}

pub struct Runtime {
    /// Private so that G's folded copy always matches it (see `set_model`).
    model: Model,
    /// G folded for drawing (`model::folded`), made from `model`'s G.
    drawing: FoldedGenerator,
    pub sampler: Sampler,
    /// The options in force in the sampler (a plugin keeps what it was
    /// configured with for the life of the process), recorded in every PNG.
    pub sampler_options: std::collections::BTreeMap<String, String>,
    pub device: Device,
    /// Set from another thread to stop the running job: checked between
    /// chunks of G and at every host callback of a style encoder plugin.
    pub cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Sampler options as PNGs record them: `key=value` words, sorted.
pub fn options_text(options: &std::collections::BTreeMap<String, String>) -> String {
    options
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The inverse of [`options_text`].
pub fn parse_options_text(text: &str) -> Result<std::collections::BTreeMap<String, String>> {
    text.split_whitespace()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("sampler option '{kv}' is not key=value"))
        })
        .collect()
}

/// Captions of both shipped datasets, the calibration batch on which a GPU's
/// half-precision G must draw what f32 draws (eight z each).
const CALIBRATION_CAPTIONS: [&str; 4] = [
    "a red flower with five round petals and a yellow centre",
    "this flower has long thin white petals around a brown middle",
    "the petals are pink and pointed, with dark lines",
    "a flower",
];

/// The most a half-precision G may differ from f32 on the calibration batch
/// (8-bit levels) to draw in its place.
pub const HALF_PRECISION_LEVELS: f64 = 1.0;

/// G folded for drawing. On a GPU in half precision where, on the
/// calibration batch, its pixels stay within [`HALF_PRECISION_LEVELS`] of
/// f32's; on the CPU (and where the check fails or cannot run) in f32.
fn drawing_for(model: &Model) -> FoldedGenerator {
    let folded = model.generator.net.folded();
    if !model.device.is_cuda() {
        crate::host::allocator::keep_drawing_memory();
        return folded;
    }
    let Ok(encoded) = CALIBRATION_CAPTIONS
        .iter()
        .map(|c| text::encode(c))
        .collect::<Result<Vec<_>, _>>()
    else {
        return folded;
    };
    let per_caption = 8;
    let text = model
        .text_encoder
        .net
        .embed(&encoded, model.device, &mut |_, _| {})
        .repeat_interleave_self_int(per_caption, 0, None);
    let n = text.size()[0];
    let nz = model.card.architecture.generator.nz;
    let mut z = vec![0f32; (n * nz) as usize];
    gantry_plugin_api::random::standard_normal(0xCA11B, &mut z);
    let z = Tensor::from_slice(&z).view([n, nz]);
    folded
        .in_precision(Kind::Half, &z, &text, HALF_PRECISION_LEVELS)
        .0
}

impl Runtime {
    pub fn new(model: Model, sampler: Sampler) -> Self {
        let device = model.device;
        Self {
            drawing: drawing_for(&model),
            model,
            sampler,
            sampler_options: Default::default(),
            device,
            cancel: Default::default(),
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Draws with `model` from now on.
    pub fn set_model(&mut self, model: Model) {
        self.drawing = drawing_for(&model);
        self.model = model;
    }

    /// G as drawing runs it (folded; half precision on a GPU where checked).
    pub fn drawing(&self) -> &FoldedGenerator {
        &self.drawing
    }

    pub fn into_model(self) -> Model {
        self.model
    }

    /// An error if the running job was cancelled.
    pub fn check_cancel(&self) -> Result<()> {
        if self.cancel.load(std::sync::atomic::Ordering::SeqCst) {
            bail!("cancelled");
        }
        Ok(())
    }

    /// The size of z.
    pub fn nz(&self) -> usize {
        self.model.card.architecture.generator.nz as usize
    }

    /// The provenance every PNG carries (product.md: enough to remake it);
    /// callers add the seed and where in a batch the picture was.
    pub fn provenance(
        &self,
        caption: &str,
        command: &str,
        style_encoder: &str,
    ) -> crate::provenance::Provenance {
        crate::provenance::Provenance {
            caption: caption.to_string(),
            command: command.to_string(),
            model: self.model.card.name.clone(),
            weights: self.model.card.weights_fingerprint(),
            sampler: self.sampler.name().to_string(),
            sampler_options: options_text(&self.sampler_options),
            style_encoder: style_encoder.to_string(),
            device: describe_device(self.device),
            software: format!("gantry {}", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        }
    }

    /// φ(t) for each caption: [B, embedding_dim], plus warnings.
    pub fn embed(&self, captions: &[&str]) -> Result<(Tensor, Vec<String>)> {
        let mut encoded = Vec::with_capacity(captions.len());
        let mut warnings = Vec::new();
        for caption in captions {
            let e = text::encode(caption)?;
            warnings.extend(e.warnings());
            let vocabulary = &self.model.card.vocabulary;
            if !vocabulary.is_empty() {
                let unknown = text::unknown_words(caption, vocabulary);
                if !unknown.is_empty() {
                    let (words, occur, it) = if unknown.len() == 1 {
                        ("this word", "occurs", "it says")
                    } else {
                        ("these words", "occur", "they say")
                    };
                    warnings.push(format!(
                        "{words} never {occur} in this model's training captions, so what {it} will not be drawn: {}",
                        unknown.join(", ")
                    ));
                }
            }
            encoded.push(e);
        }
        let embedding = self
            .model
            .text_encoder
            .net
            .embed(&encoded, self.device, &mut |_, _| {});
        Ok((embedding, warnings))
    }

    /// z for each seed, from the sampler: [B, nz] on the model's device.
    pub fn noise(&self, seeds: &[u64]) -> Result<Tensor> {
        let z = self.sampler.sample(seeds, self.nz())?;
        Ok(Tensor::from_slice(&z)
            .view([seeds.len() as i64, self.nz() as i64])
            .to_device(self.device))
    }

    /// G(z, text) -> images, at most [`DRAW_CHUNK`] through G at a time, so
    /// that memory stays bounded for any n.
    fn draw(&self, z: &Tensor, text: &Tensor) -> Result<Vec<Image>> {
        let mut out = Vec::with_capacity(z.size()[0] as usize);
        let mut chunks = self.drawing.draw_chunks(z, text, DRAW_CHUNK);
        loop {
            self.check_cancel()?;
            slow_device_failpoint();
            let Some(images) = chunks.next() else {
                return Ok(out);
            };
            out.extend(images_from_tensor(&images)?);
        }
    }

    /// `n` images of `caption`, image i from seed `seed + i`.
    pub fn generate(&self, caption: &str, n: usize, seed: u64) -> Result<Generated> {
        if n == 0 || n > MAX_BATCH {
            bail!("n must be between 1 and {MAX_BATCH} (got {n})");
        }
        let seeds: Vec<u64> = (0..n as u64).map(|i| seed.wrapping_add(i)).collect();
        let (text, warnings) = self.embed(&[caption])?;
        let text = text.expand([n as i64, -1], false);
        let z = self.noise(&seeds)?;
        Ok(Generated {
            images: self.draw(&z, &text)?,
            seeds,
            warnings,
        })
    }

    /// Sentence interpolation (paper.md §6): z fixed by `seed`, the text
    /// embedding moving in `steps` even steps from φ(a) to φ(b).
    pub fn interpolate_text(&self, a: &str, b: &str, steps: usize, seed: u64) -> Result<Generated> {
        check_steps(steps)?;
        let (ends, warnings) = self.embed(&[a, b])?;
        let weights =
            Tensor::linspace(0.0, 1.0, steps as i64, (Kind::Float, self.device)).unsqueeze(1);
        let text =
            ends.get(0).unsqueeze(0) * (1.0 - &weights) + ends.get(1).unsqueeze(0) * &weights;
        let z = self.noise(&[seed])?.expand([steps as i64, -1], false);
        Ok(Generated {
            images: self.draw(&z, &text)?,
            seeds: vec![seed; steps],
            warnings,
        })
    }

    /// Noise interpolation (paper.md §6): the caption fixed, z moving from the
    /// z of `seed` to the z of `seed + 1` along the sampler's path.
    pub fn interpolate_noise(&self, caption: &str, steps: usize, seed: u64) -> Result<Generated> {
        check_steps(steps)?;
        let nz = self.nz();
        let ends = self.sampler.sample(&[seed, seed.wrapping_add(1)], nz)?;
        let path = self.sampler.path(&ends[..nz], &ends[nz..], steps)?;
        let z = Tensor::from_slice(&path)
            .view([steps as i64, nz as i64])
            .to_device(self.device);
        let (text, warnings) = self.embed(&[caption])?;
        let text = text.expand([steps as i64, -1], false);
        Ok(Generated {
            images: self.draw(&z, &text)?,
            seeds: vec![seed, seed.wrapping_add(1)],
            warnings,
        })
    }

    /// s = S(x) for a 64x64 image.
    pub fn style_of(&self, image: &Image) -> Result<Tensor> {
        if image.width != crate::imageio::IMAGE_SIZE || image.height != crate::imageio::IMAGE_SIZE {
            bail!(
                "style images must be {0}x{0} (got {1}x{2}); load photos with imageio::load_photo",
                crate::imageio::IMAGE_SIZE,
                image.width,
                image.height
            );
        }
        let x = tensor_from_images(std::slice::from_ref(image))?.to_device(self.device);
        Ok(tch::no_grad(|| {
            self.model.style_encoder.net.forward_t(&x, false)
        }))
    }

    /// Style transfer (paper.md §5): x̂ = G(S(x), φ(t)).
    pub fn style_transfer(&self, image: &Image, caption: &str) -> Result<Generated> {
        let s = self.style_of(image).context("encoding the style image")?;
        let (text, warnings) = self.embed(&[caption])?;
        Ok(Generated {
            images: self.draw(&s, &text)?,
            seeds: vec![],
            warnings,
        })
    }
}

fn check_steps(steps: usize) -> Result<()> {
    if !(2..=64).contains(&steps) {
        bail!("steps must be between 2 and 64 (got {steps})");
    }
    Ok(())
}

/// How an image becomes z for style transfer: the model's learned S, or a
/// style-encoder plugin that inverts G through the host's callbacks.
#[derive(Clone)]
pub enum StyleEncoderChoice {
    Learned,
    Plugin(crate::host::Plugin),
}

impl StyleEncoderChoice {
    pub fn name(&self) -> &str {
        match self {
            Self::Learned => "learned",
            Self::Plugin(p) => &p.name,
        }
    }
}

/// The caption whose embedding fixes t while a plugin inverts G: style
/// encoders see photos with no caption, so the reconstruction uses a neutral one.
pub const INVERSION_CAPTION: &str = "a flower";

impl Runtime {
    /// z for the style of a 64x64 image, by the chosen style encoder.
    pub fn style_code(&self, image: &Image, encoder: &StyleEncoderChoice) -> Result<Tensor> {
        match encoder {
            StyleEncoderChoice::Learned => self.style_of(image),
            StyleEncoderChoice::Plugin(plugin) => {
                crate::host::style_encoder::style_code(self, plugin, image)
            }
        }
    }

    /// G(z, φ(t)) for a style code z ([1, nz]) from [`Self::style_code`].
    pub fn draw_style(&self, z: &Tensor, caption: &str) -> Result<Generated> {
        let (text, warnings) = self.embed(&[caption])?;
        Ok(Generated {
            images: self.draw(z, &text)?,
            seeds: vec![],
            warnings,
        })
    }

    /// Style transfer with a chosen style encoder: G(encoder(x), φ(t)).
    pub fn style_transfer_with(
        &self,
        image: &Image,
        caption: &str,
        encoder: &StyleEncoderChoice,
    ) -> Result<Generated> {
        let s = self
            .style_code(image, encoder)
            .context("encoding the style image")?;
        self.draw_style(&s, caption)
    }
}

/// Tests stand in for a slow device: with GANTRY_FAILPOINT=slow-draw every
/// chunk of G takes 150 ms longer (so that Ctrl-C can be shown to cut a row).
fn slow_device_failpoint() {
    static SLOW: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *SLOW.get_or_init(|| std::env::var("GANTRY_FAILPOINT").is_ok_and(|v| v == "slow-draw")) {
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
}

/// A style code z as PNG provenance: its f32 values' bits in hex, exact.
pub fn style_code_text(z: &Tensor) -> Result<String> {
    let values = Vec::<f32>::try_from(z.to_device(Device::Cpu).flatten(0, -1))?;
    Ok(values
        .iter()
        .map(|v| format!("{:08x}", v.to_bits()))
        .collect())
}

/// The style code [`style_code_text`] wrote, for a model whose z has `nz`
/// components.
pub fn parse_style_code(text: &str, nz: usize) -> Result<Tensor> {
    let text = text.trim();
    if text.len() != 8 * nz || !text.is_ascii() {
        bail!(
            "a style code of {} characters, not the {} of {nz} numbers",
            text.len(),
            8 * nz
        );
    }
    let values = (0..nz)
        .map(|i| {
            u32::from_str_radix(&text[8 * i..8 * i + 8], 16)
                .map(f32::from_bits)
                .map_err(|_| anyhow::anyhow!("a style code with a character that is not hex"))
        })
        .collect::<Result<Vec<f32>>>()?;
    if values.iter().any(|v| !v.is_finite()) {
        bail!("a style code with a value that is not a finite number");
    }
    Ok(Tensor::from_slice(&values).view([1, nz as i64]))
}
