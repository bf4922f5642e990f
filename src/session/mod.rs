//! A session: what the REPL and the script runner share. It holds the loaded
//! model, the settings a user changes as they go (n, seed, sampler, style
//! encoder), and the transcript of entries with their pictures (`#3.2` is
//! picture 2 of entry 3). It knows nothing of terminals: front ends feed it
//! lines and draw what it returns.

pub mod commands;
pub mod words;

use crate::config::{Config, Paths};
use crate::dataset::DatasetSpec;
use crate::host::{Registry, Sampler};
use crate::imageio::{self, Image};
use crate::provenance::{Batch, Provenance};
use crate::runtime::{describe_device, parse_device, Generated, Runtime};
use crate::weights::Model;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// One generated (or loaded) image in the transcript.
#[derive(Clone, Debug)]
pub struct Picture {
    /// `#entry.index`, e.g. `#3.2`.
    pub id: String,
    pub image: Image,
    /// A short label: the seed, or the step of an interpolation.
    pub label: String,
    /// Provenance written into the PNG (tEXt): enough to remake it.
    pub metadata: Vec<(String, String)>,
    /// Where the pixels are while they are out of memory (`image` is then
    /// empty): older rows of a long session are kept as PNGs, see
    /// [`RESIDENT_PICTURE_BYTES`]. [`Session::image`] reads them back.
    pub spilled: Option<PathBuf>,
}

impl Picture {
    /// Whether the pixels are in memory.
    pub fn is_resident(&self) -> bool {
        self.spilled.is_none()
    }
}

/// Pixels the transcript keeps in memory (about 680 pictures of 64x64). Older
/// rows are written to the session's spill folder as PNGs, provenance
/// included, so that a session of any length stays flat in memory; commands
/// that need an older picture (`:save`, `:style #id`, ...) read it back.
pub const RESIDENT_PICTURE_BYTES: usize = 8 << 20;

/// A folder for the pictures a session keeps out of memory, removed with it.
struct SpillFolder(PathBuf);

impl SpillFolder {
    fn create() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("gantry-session-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for SpillFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What an entry shows under the line that was typed.
#[derive(Clone, Debug)]
pub enum Body {
    Pictures(Vec<Picture>),
    Text(String),
    Error(String),
}

#[derive(Clone, Debug)]
pub struct Entry {
    /// The row number of an entry with pictures (0 for text and errors).
    pub number: u32,
    pub input: String,
    pub body: Body,
    pub warnings: Vec<String>,
    pub elapsed_ms: f64,
}

/// What running a line did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new entry was added to the transcript (its index).
    Entry(usize),
    /// The transcript was cleared.
    Cleared,
    /// The user asked to leave.
    Quit,
}

/// How seeds are chosen for a new caption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedMode {
    /// Every caption starts from this seed (image i uses seed + i).
    Fixed(u64),
    /// Every caption gets fresh seeds.
    Random,
}

/// Progress of the running job, readable from another thread.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub done: Arc<AtomicUsize>,
    pub total: Arc<AtomicUsize>,
}

/// The status line's facts.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub model: String,
    pub device: String,
    pub seed: String,
    pub n: usize,
    pub sampler: String,
    pub encoder: String,
    pub last_latency_ms: Option<f64>,
    pub live: bool,
    /// How large the REPL draws pictures (1 to [`MAX_ZOOM`]).
    pub zoom: u16,
}

/// The largest picture size the REPL offers (64 columns by 32 rows each).
pub const MAX_ZOOM: u16 = 4;

pub struct Session {
    pub paths: Paths,
    pub config: Config,
    pub runtime: Runtime,
    pub registry: Registry,
    pub entries: Vec<Entry>,
    next_entry: u32,
    pub n: usize,
    pub seed: SeedMode,
    random_seed: u64,
    pub encoder: String,
    /// Every option set on each sampler this session, by sampler name: a
    /// plugin keeps its options for the life of the process, so these are
    /// the options in force whenever that sampler is chosen again.
    sampler_options: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// The style encoder `:style` uses (named by `encoder`).
    pub style_encoder: crate::runtime::StyleEncoderChoice,
    pub output_dir: PathBuf,
    pub live: bool,
    /// How large the REPL draws pictures (`:zoom`).
    pub zoom: u16,
    /// Set from another thread to stop the running job; the same flag as
    /// `runtime.cancel`, which G and plugin callbacks check.
    pub cancel: Arc<AtomicBool>,
    pub progress: Progress,
    pub history: Vec<String>,
    pub last_latency_ms: Option<f64>,
    /// The scripts being run by `:source`, outermost first (to refuse loops).
    sourcing: Vec<PathBuf>,
    /// Class vectors for `:classify`, built on first use.
    class_vectors: Option<(Vec<String>, tch::Tensor)>,
    /// The gantry executable that probes plugins before `:plugin install`.
    pub probe_exe: Option<PathBuf>,
    /// Bytes of pixels in memory, and the first entry that may hold some.
    resident_bytes: usize,
    oldest_resident: usize,
    /// Where older pictures go (made on first use).
    spill: Option<SpillFolder>,
}

/// Images are generated in chunks of this many, checking for cancellation between.
const CHUNK: usize = 8;

impl Session {
    /// Opens the configured model on the configured device.
    pub fn open(paths: Paths, config: Config) -> Result<Self> {
        let registry = paths.discover_plugins();
        Self::open_with(paths, config, registry)
    }

    /// Opens the configured model with the plugins already found.
    pub fn open_with(paths: Paths, config: Config, registry: Registry) -> Result<Self> {
        let device = parse_device(&config.device)?;
        let sampler = Sampler::select(&registry, &config.sampler)?;
        let dir = paths.find_model(&config.model)?;
        let model = Model::load(&dir, device)?;
        let random_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let cancel = Arc::new(AtomicBool::new(false));
        let mut runtime = Runtime::new(model, sampler);
        runtime.cancel = cancel.clone();
        Ok(Self {
            runtime,
            registry,
            entries: Vec::new(),
            next_entry: 1,
            n: config.n.max(1) as usize,
            seed: SeedMode::Fixed(config.seed),
            random_seed,
            encoder: "learned".to_string(),
            sampler_options: Default::default(),
            style_encoder: crate::runtime::StyleEncoderChoice::Learned,
            output_dir: config.output_dir.clone(),
            live: false,
            zoom: (config.zoom.clamp(1, MAX_ZOOM as u32)) as u16,
            cancel,
            progress: Progress::default(),
            history: Vec::new(),
            last_latency_ms: None,
            sourcing: Vec::new(),
            class_vectors: None,
            probe_exe: std::env::current_exe()
                .ok()
                .filter(|e| e.file_stem().is_some_and(|s| s == "gantry")),
            paths,
            config,
            resident_bytes: 0,
            oldest_resident: 0,
            spill: None,
        })
    }

    pub fn status(&self) -> Status {
        Status {
            model: self.runtime.model().card.name.clone(),
            device: describe_device(self.runtime.device),
            seed: match self.seed {
                SeedMode::Fixed(s) => s.to_string(),
                SeedMode::Random => "random".to_string(),
            },
            n: self.n,
            sampler: self.runtime.sampler.name().to_string(),
            encoder: self.encoder.clone(),
            last_latency_ms: self.last_latency_ms,
            live: self.live,
            zoom: self.zoom,
        }
    }

    /// Runs one line: a caption, or a `:command`. Errors become an entry
    /// too (the transcript shows them); the Result is only for the caller
    /// that must stop at the first error (scripts).
    pub fn execute(&mut self, line: &str) -> Result<Outcome> {
        let line = line.trim();
        if line.is_empty() {
            bail!("nothing to do: type a caption, or :help");
        }
        self.history.push(line.to_string());
        self.cancel.store(false, Ordering::SeqCst);
        let started = Instant::now();
        // A panic in a job (tch panics on libtorch errors it does not
        // return) becomes that job's error; the session and its model go on.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            failpoint(line);
            if let Some(rest) = line.strip_prefix(':') {
                commands::run(self, rest)
            } else {
                self.caption(line).map(Reply::Pictures)
            }
        }))
        .unwrap_or_else(|payload| {
            let text = panic_text(payload.as_ref());
            let first = text.lines().next().unwrap_or("");
            Err(if out_of_memory(&text) {
                anyhow!(
                    "out of memory on {} ({first}): this job stopped, the session goes on; try fewer pictures at once (:n {})",
                    describe_device(self.runtime.device),
                    (self.n / 2).max(1)
                )
            } else {
                anyhow!(
                    "internal error, this job stopped (the session goes on; please report it): {first}"
                )
            })
        });
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        match result {
            Ok(Reply::Quit) => Ok(Outcome::Quit),
            Ok(Reply::Cleared) => {
                self.entries.clear();
                (self.resident_bytes, self.oldest_resident) = (0, 0);
                Ok(Outcome::Cleared)
            }
            Ok(reply) => {
                let (body, warnings) = match reply {
                    Reply::Pictures((pictures, warnings)) => {
                        self.last_latency_ms = Some(elapsed_ms);
                        (Body::Pictures(pictures), warnings)
                    }
                    Reply::Text(t) => (Body::Text(t), Vec::new()),
                    Reply::Quit | Reply::Cleared => unreachable!(),
                };
                Ok(Outcome::Entry(self.push(line, body, warnings, elapsed_ms)))
            }
            Err(e) => {
                // However deep the job was (a plugin, a callback), a
                // cancelled job says just that.
                let message = if self.cancel.load(Ordering::SeqCst) {
                    "cancelled".to_string()
                } else {
                    format!("{e:#}")
                };
                self.push(line, Body::Error(message.clone()), Vec::new(), elapsed_ms);
                Err(anyhow!(message))
            }
        }
    }

    fn push(&mut self, input: &str, body: Body, warnings: Vec<String>, elapsed_ms: f64) -> usize {
        // Rows of pictures are numbered (#3.2 is picture 2 of row 3); text
        // and errors are not. Pictures were named before the entry existed.
        let number = match &body {
            Body::Pictures(p) if !p.is_empty() => {
                self.next_entry += 1;
                self.next_entry - 1
            }
            _ => 0,
        };
        if let Body::Pictures(pictures) = &body {
            self.resident_bytes += pictures.iter().map(|p| p.image.rgb.len()).sum::<usize>();
        }
        self.entries.push(Entry {
            number,
            input: input.to_string(),
            body,
            warnings,
            elapsed_ms,
        });
        self.bound_memory();
        self.entries.len() - 1
    }

    /// Writes the oldest rows' pictures out of memory until the resident
    /// ones fit [`RESIDENT_PICTURE_BYTES`] (the newest row always stays). A
    /// picture that cannot be written out stays in memory.
    fn bound_memory(&mut self) {
        while self.resident_bytes > RESIDENT_PICTURE_BYTES
            && self.oldest_resident + 1 < self.entries.len()
        {
            if self.spill.is_none() {
                match SpillFolder::create() {
                    Ok(folder) => self.spill = Some(folder),
                    Err(_) => return,
                }
            }
            let dir = self.spill.as_ref().map(|f| f.0.clone()).unwrap_or_default();
            if let Body::Pictures(pictures) = &mut self.entries[self.oldest_resident].body {
                for p in pictures.iter_mut().filter(|p| p.is_resident()) {
                    let path = dir.join(format!("{}.png", p.id.trim_start_matches('#')));
                    if imageio::write_png(&path, &p.image, &p.metadata).is_err() {
                        return;
                    }
                    self.resident_bytes -= p.image.rgb.len();
                    p.image = Image {
                        width: 0,
                        height: 0,
                        rgb: Vec::new(),
                    };
                    p.spilled = Some(path);
                }
            }
            self.oldest_resident += 1;
        }
    }

    /// A picture's pixels, read back from its PNG if it is out of memory.
    pub fn image(&self, picture: &Picture) -> Result<Image> {
        match &picture.spilled {
            None => Ok(picture.image.clone()),
            Some(path) => imageio::read_png_pixels(path)
                .with_context(|| format!("reading {} back", picture.id)),
        }
    }

    /// The number the next row of pictures will get.
    pub fn next_number(&self) -> u32 {
        self.next_entry
    }

    /// Finds a picture by `#3.2` (or `3.2`).
    pub fn picture(&self, id: &str) -> Option<&Picture> {
        let id = if id.starts_with('#') {
            id.to_string()
        } else {
            format!("#{id}")
        };
        self.entries.iter().rev().find_map(|e| match &e.body {
            Body::Pictures(p) => p.iter().find(|p| p.id == id),
            _ => None,
        })
    }

    /// All picture ids, newest first (for completion).
    pub fn picture_ids(&self) -> Vec<String> {
        self.entries
            .iter()
            .rev()
            .flat_map(|e| match &e.body {
                Body::Pictures(p) => p.iter().map(|p| p.id.clone()).collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// The first seed for a new caption.
    pub(crate) fn next_seed(&mut self) -> u64 {
        match self.seed {
            SeedMode::Fixed(s) => s,
            SeedMode::Random => {
                self.random_seed = self
                    .random_seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                self.random_seed >> 16
            }
        }
    }

    pub(crate) fn check_cancel(&self) -> Result<()> {
        // `cancel` is the runtime's flag (shared at open).
        self.runtime.check_cancel()
    }

    pub(crate) fn base_metadata(&self, caption: &str, command: &str) -> Provenance {
        self.runtime.provenance(caption, command, &self.encoder)
    }

    /// The provenance of picture `k` of a caption's batch of `n` from seed
    /// `first`: enough to remake it bit for bit (the same batch, which image).
    pub(crate) fn batch_metadata(
        &self,
        caption: &str,
        n: usize,
        first: u64,
        k: usize,
    ) -> Vec<(String, String)> {
        Provenance {
            seed: Some(first.wrapping_add(k as u64)),
            batch: Some(Batch {
                n: Some(n as u64),
                first_seed: Some(first),
                index: k as u64,
            }),
            ..self.base_metadata(caption, caption)
        }
        .to_pairs()
    }

    /// Pictures for a row, numbered under the next entry.
    pub(crate) fn pictures(
        &self,
        images: Vec<Image>,
        labels: Vec<String>,
        metadata: impl Fn(usize) -> Vec<(String, String)>,
    ) -> Vec<Picture> {
        let number = self.next_entry;
        images
            .into_iter()
            .zip(labels)
            .enumerate()
            .map(|(k, (image, label))| Picture {
                id: format!("#{number}.{}", k + 1),
                image,
                label,
                metadata: metadata(k),
                spilled: None,
            })
            .collect()
    }

    /// `n` images of a caption, in chunks so that a long batch can be cancelled.
    pub fn caption(&mut self, caption: &str) -> Result<(Vec<Picture>, Vec<String>)> {
        let first = self.next_seed();
        let (images, warnings) = self.generate_batch(caption, self.n, first)?;
        let n = self.n;
        let pictures = self.pictures(
            images,
            (0..n)
                .map(|k| format!("seed {}", first.wrapping_add(k as u64)))
                .collect(),
            |k| self.batch_metadata(caption, n, first, k),
        );
        Ok((pictures, warnings))
    }

    /// Generates `n` images from seed `first` in chunks of the same size as
    /// an uninterrupted run would use, so chunking never changes pixels.
    pub fn generate_batch(
        &self,
        caption: &str,
        n: usize,
        first: u64,
    ) -> Result<(Vec<Image>, Vec<String>)> {
        let mut images = Vec::with_capacity(n);
        let mut warnings = Vec::new();
        self.progress.total.store(n, Ordering::SeqCst);
        self.progress.done.store(0, Ordering::SeqCst);
        for start in (0..n).step_by(CHUNK) {
            self.check_cancel()?;
            let len = CHUNK.min(n - start);
            let Generated {
                images: chunk,
                warnings: w,
                ..
            } = self
                .runtime
                .generate(caption, len, first.wrapping_add(start as u64))?;
            if start == 0 {
                warnings = w;
            }
            images.extend(chunk);
            self.progress.done.store(images.len(), Ordering::SeqCst);
        }
        Ok((images, warnings))
    }

    /// The live preview: one image of the text so far, at the current seed.
    pub fn preview(&self, text: &str) -> Result<Image> {
        let seed = match self.seed {
            SeedMode::Fixed(s) => s,
            SeedMode::Random => 0,
        };
        let g = self.runtime.generate(text, 1, seed)?;
        g.images
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("no image"))
    }

    /// An image from a `#id` or a file path.
    pub fn image_argument(&self, arg: &str) -> Result<(Image, String)> {
        if let Some(p) = self.picture(arg) {
            return Ok((self.image(p)?, p.id.clone()));
        }
        if arg.starts_with('#') {
            bail!("no picture {arg} in this session (ids look like #3.2)");
        }
        let path = Path::new(arg);
        let photo = imageio::load_photo(path)?;
        Ok((photo, arg.to_string()))
    }

    /// Loads another model (by name or folder).
    pub fn set_model(&mut self, name: &str) -> Result<String> {
        let dir = self.paths.find_model(name)?;
        let model = Model::load(&dir, self.runtime.device)?;
        let card = model.card.clone();
        self.runtime.set_model(model);
        self.class_vectors = None;
        Ok(format!(
            "model {} ({}, {}trained) from {}",
            card.name,
            card.architecture.preset,
            if card.trained { "" } else { "un" },
            dir.display()
        ))
    }

    /// Chooses a sampler, with `key=value` options (e.g. `psi=0.7`).
    pub fn set_sampler(&mut self, name: &str, options: &[String]) -> Result<String> {
        let mut parsed = Vec::new();
        for option in options {
            let (k, v) = option
                .split_once('=')
                .ok_or_else(|| anyhow!("sampler option '{option}' is not key=value"))?;
            parsed.push((k.trim().to_string(), v.trim().to_string()));
        }
        self.use_sampler(name, &parsed)?;
        let shown = if options.is_empty() {
            String::new()
        } else {
            format!(" {}", options.join(" "))
        };
        let in_force = crate::runtime::options_text(&self.runtime.sampler_options);
        let earlier = if !in_force.is_empty() && options.is_empty() {
            format!("; options in force: {in_force}")
        } else {
            String::new()
        };
        Ok(format!(
            "sampler {}{shown} ({}){earlier}",
            self.runtime.sampler.name(),
            self.runtime.sampler.origin()
        ))
    }

    /// Selects sampler `name`, configures it with `options`, and records the
    /// options now in force in it.
    fn use_sampler(&mut self, name: &str, options: &[(String, String)]) -> Result<()> {
        let sampler = Sampler::select(&self.registry, name)?;
        for (k, v) in options {
            sampler.configure(k, v)?;
        }
        let in_force = self.sampler_options.entry(name.to_string()).or_default();
        for (k, v) in options {
            in_force.insert(k.clone(), v.clone());
        }
        self.runtime.sampler_options = in_force.clone();
        self.runtime.sampler = sampler;
        Ok(())
    }

    /// Runs `f` with the sampler a PNG was made with (name and options), then
    /// goes back to the current one. A plugin's options cannot be reset to
    /// their defaults, so a PNG made without an option that this session has
    /// since set is refused with the reason rather than remade differently.
    pub(crate) fn with_sampler_of<T>(
        &mut self,
        name: &str,
        options: &std::collections::BTreeMap<String, String>,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let current_name = self.runtime.sampler.name().to_string();
        if name == current_name && *options == self.runtime.sampler_options {
            return f(self);
        }
        let in_force = self.sampler_options.get(name).cloned().unwrap_or_default();
        if let Some(k) = in_force.keys().find(|k| !options.contains_key(*k)) {
            bail!(
                "it was made with sampler {name} without the option {k}, which this session has set to {} since; a plugin's option cannot be unset, so replay it in a new session",
                in_force[k]
            );
        }
        let wanted: Vec<(String, String)> = options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let back: Vec<(String, String)> = self
            .runtime
            .sampler_options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.use_sampler(name, &wanted)?;
        let result = f(self);
        // Back to the sampler and the options in force before.
        let restored = self.use_sampler(&current_name, &back);
        let value = result?;
        restored?;
        Ok(value)
    }

    /// Chooses how `:style` encodes images: `learned` (the model's S) or a
    /// style-encoder plugin, with `key=value` options.
    pub fn set_encoder(&mut self, name: &str, options: &[String]) -> Result<String> {
        use crate::runtime::StyleEncoderChoice;
        let choice = if name == "learned" {
            if !options.is_empty() {
                bail!("the learned style encoder takes no options");
            }
            StyleEncoderChoice::Learned
        } else {
            let plugin = self
                .registry
                .find(gantry_plugin_api::PluginKind::StyleEncoder, name)
                .cloned()
                .ok_or_else(|| {
                    let mut names = vec!["learned".to_string()];
                    names.extend(
                        self.registry
                            .names(gantry_plugin_api::PluginKind::StyleEncoder)
                            .iter()
                            .map(|s| s.to_string()),
                    );
                    anyhow!(
                        "no style encoder named '{name}' (available: {})",
                        names.join(", ")
                    )
                })?;
            for option in options {
                let (k, v) = option
                    .split_once('=')
                    .ok_or_else(|| anyhow!("option '{option}' is not key=value"))?;
                plugin.configure_style(k.trim(), v.trim())?;
            }
            StyleEncoderChoice::Plugin(plugin)
        };
        self.encoder = choice.name().to_string();
        self.style_encoder = choice;
        Ok(format!("style encoder {}", self.encoder))
    }

    /// Looks for plugins again (after an install or a removal).
    pub fn rediscover_plugins(&mut self) {
        self.registry = self.paths.discover_plugins();
    }

    /// Names of models found in the search folders (for completion).
    pub fn model_names(&self) -> Vec<String> {
        crate::weights::model_names(&self.paths.model_dirs())
    }

    /// Class vectors for `:classify`: the mean caption embedding of up to 10
    /// images of each class of the model's dataset.
    pub fn class_vectors(&mut self) -> Result<&(Vec<String>, tch::Tensor)> {
        if self.class_vectors.is_none() {
            let spec = self.runtime.model().card.dataset.clone().ok_or_else(|| {
                anyhow!("the model's card names no dataset, so its classes are unknown")
            })?;
            let spec: DatasetSpec = spec.parse()?;
            let mut options = Vec::new();
            if spec.kind == "procedural-flowers" {
                options.push(("count".to_string(), "2000".to_string()));
            }
            let mut dataset = crate::dataset::Dataset::open(&self.registry, &spec, &options)
                .with_context(|| {
                    format!("opening the model's dataset {spec} to learn its classes")
                })?;
            let mut by_class: Vec<Vec<String>> = vec![Vec::new(); dataset.classes.len()];
            let mut per_class = vec![0usize; dataset.classes.len()];
            for i in 0..dataset.len {
                if i % 64 == 0 {
                    self.check_cancel()?;
                }
                let s = dataset.get(i)?;
                let c = s.class as usize;
                if c < per_class.len() && per_class[c] < 10 {
                    per_class[c] += 1;
                    by_class[c].extend(s.captions);
                }
            }
            let names: Vec<String> = dataset.classes.iter().map(|c| c.name.clone()).collect();
            let mut vectors = Vec::new();
            for captions in &by_class {
                self.check_cancel()?;
                if captions.is_empty() {
                    bail!("a class of {spec} has no captions");
                }
                vectors.push(
                    crate::eval::embed(self.runtime.model(), captions)?.mean_dim(
                        0,
                        false,
                        tch::Kind::Float,
                    ),
                );
            }
            self.class_vectors = Some((names, tch::Tensor::stack(&vectors, 0)));
        }
        self.class_vectors
            .as_ref()
            .ok_or_else(|| anyhow!("no classes"))
    }

    /// θ(x) for one image.
    pub fn image_embedding(&self, image: &Image) -> Result<tch::Tensor> {
        let image = crate::training_set::square(image, imageio::IMAGE_SIZE)?;
        let x = imageio::tensor_from_images(std::slice::from_ref(&image))?
            .to_device(self.runtime.device);
        Ok(
            tch::no_grad(|| self.runtime.model().image_encoder.net.forward_t(&x, false))
                .squeeze_dim(0),
        )
    }

    /// Writes a picture as a PNG with its provenance.
    pub fn save_picture(&self, picture: &Picture, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = format!(
            "gantry-{}.png",
            picture.id.trim_start_matches('#').replace('.', "-")
        );
        let path = dir.join(name);
        imageio::write_png(&path, &self.image(picture)?, &picture.metadata)?;
        Ok(path)
    }

    /// Runs a script file line by line; stops at the first error with
    /// `FILE:LINE: message`. Blank lines and `#` comments are skipped.
    pub fn source(&mut self, path: &Path) -> Result<usize> {
        // A script that sources itself, directly or through others, is
        // refused where the loop closes (one message, not a chain of eight).
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(first) = self.sourcing.iter().position(|p| *p == canonical) {
            let chain: Vec<String> = self.sourcing[first..]
                .iter()
                .chain([&canonical])
                .map(|p| p.display().to_string())
                .collect();
            bail!("a script sources itself: {}", chain.join(" -> "));
        }
        if self.sourcing.len() >= 8 {
            bail!("scripts nested more than 8 deep");
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        self.sourcing.push(canonical);
        let mut ran = 0;
        let result = (|| {
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if let Outcome::Quit = self
                    .execute(line)
                    .map_err(|e| anyhow!("{}:{}: {e:#}", path.display(), i + 1))?
                {
                    break;
                }
                ran += 1;
            }
            Ok(ran)
        })();
        self.sourcing.pop();
        result
    }
}

/// What a command handler returns.
pub enum Reply {
    Pictures((Vec<Picture>, Vec<String>)),
    Text(String),
    Cleared,
    Quit,
}

/// The message a panic carried.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Tests make a job panic inside the host: with GANTRY_FAILPOINT=job-panic,
/// a line containing `__panic__` panics where a failing libtorch call would.
/// A line containing `__oom__` panics as libtorch does when memory runs out.
fn failpoint(line: &str) {
    if !std::env::var("GANTRY_FAILPOINT").is_ok_and(|v| v == "job-panic") {
        return;
    }
    if line.contains("__panic__") {
        panic!("failpoint job-panic: {line}");
    }
    if line.contains("__oom__") {
        panic!("CUDA out of memory. Tried to allocate 20.00 GiB (failpoint)");
    }
}

/// Whether a libtorch failure is memory running out (CUDA's words, or the
/// CPU allocator's).
pub fn out_of_memory(text: &str) -> bool {
    text.contains("out of memory") || text.contains("can't allocate memory")
}
