//! Model folders: five safetensors files (one per network) and a `model.json`
//! card. Loading checks every file against the card and the architecture, so
//! a missing, truncated, corrupt or mismatched file is an error that names it.

use crate::model::{
    parameter_count, Conditioning, Discriminator, Generator, ImageEncoder, ModelConfig,
    StyleEncoder, TextEncoder, NETWORKS,
};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::{nn, Device, Kind, Tensor};

pub const CARD_FILE: &str = "model.json";
pub const CARD_FORMAT: u32 = 1;

/// `model.json`: what the model is, how it was made, how good it is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelCard {
    pub format: u32,
    pub name: String,
    pub architecture: ModelConfig,
    /// Trained weights, or a random initialisation from `gantry model init`.
    pub trained: bool,
    /// The dataset trained on, as `KIND:PATH`.
    #[serde(default)]
    pub dataset: Option<String>,
    /// Training details (variant, epochs, time, hardware), free-form.
    #[serde(default)]
    pub training: BTreeMap<String, serde_json::Value>,
    /// Measured quality, as written by `gantry eval`.
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub notes: Vec<String>,
    /// Where G and D stand on their one training schedule, so that a run
    /// continued from this model takes the schedule up where it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// The words of the text encoder's training captions (sorted), so that a
    /// caption word the model never saw can be named when it is typed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vocabulary: Vec<String>,
    /// Every weight file with its checksum.
    pub files: BTreeMap<String, FileEntry>,
    pub gantry_version: String,
}

impl ModelCard {
    /// A short fingerprint of the weights this card describes (the first 16
    /// hex digits of a SHA-256 over each file's name and SHA-256): what a
    /// PNG records so that `:replay` can tell the same weights from a model
    /// of the same name trained further or replaced. Empty for a card that
    /// lists no files.
    pub fn weights_fingerprint(&self) -> String {
        if self.files.is_empty() {
            return String::new();
        }
        let mut hash = Sha256::new();
        for (name, file) in &self.files {
            hash.update(format!("{name}:{}\n", file.sha256));
        }
        hash.finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether the card holds a text encoder whose G was never trained: a
    /// text-side folder (`state/procedural-text-encoder`), or a trained model
    /// whose training record is the text encoder's alone (`train
    /// text-encoder` writes G as initialised). A GAN run leaves its schedule,
    /// or (older cards) its variant or keys named after it (`gan...`).
    pub fn text_side_only(&self) -> bool {
        let gan_trained = self.schedule.is_some()
            || self.training.contains_key("variant")
            || self.training.keys().any(|k| k.starts_with("gan"));
        !self.files.contains_key("generator") || (self.trained && !gan_trained)
    }
}

/// The GAN's schedule (paper.md §4: lr halved every 100 epochs, 600 epochs)
/// and the step it has reached.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// GAN steps taken since G and D were initialised.
    pub step: u64,
    pub steps_per_epoch: u64,
    /// Epochs the schedule runs to.
    pub epochs: u64,
    pub lr: f64,
    pub lr_halve_every_epochs: u64,
}

impl Schedule {
    pub fn epoch(&self) -> f64 {
        self.step as f64 / self.steps_per_epoch.max(1) as f64
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub sha256: String,
    pub bytes: u64,
    pub dtype: String,
    pub parameters: i64,
}

/// One network with the var store that owns its weights.
#[derive(Debug)]
pub struct Net<T> {
    pub vs: nn::VarStore,
    pub net: T,
}

impl<T> Net<T> {
    fn build(device: Device, f: impl FnOnce(&nn::Path) -> T) -> Self {
        let vs = nn::VarStore::new(device);
        let net = f(&vs.root());
        Self { vs, net }
    }

    pub fn parameters(&self) -> i64 {
        parameter_count(&self.vs)
    }
}

/// A whole model in memory.
#[derive(Debug)]
pub struct Model {
    pub card: ModelCard,
    pub dir: Option<PathBuf>,
    pub device: Device,
    pub text_encoder: Net<TextEncoder>,
    pub image_encoder: Net<ImageEncoder>,
    pub generator: Net<Generator>,
    pub discriminator: Net<Discriminator>,
    pub style_encoder: Net<StyleEncoder>,
}

impl Model {
    /// Builds all five networks with fresh (paper.md) initialisation.
    pub fn new(name: &str, config: &ModelConfig, device: Device, seed: i64) -> Result<Self> {
        config.validate()?;
        tch::manual_seed(seed);
        Ok(Self {
            card: ModelCard {
                format: CARD_FORMAT,
                name: name.to_string(),
                architecture: config.clone(),
                trained: false,
                dataset: None,
                // `trained: false` says it draws noise; the seed says which.
                training: BTreeMap::from([("init_seed".to_string(), seed.into())]),
                metrics: BTreeMap::new(),
                notes: Vec::new(),
                schedule: None,
                vocabulary: Vec::new(),
                files: BTreeMap::new(),
                gantry_version: env!("CARGO_PKG_VERSION").to_string(),
            },
            dir: None,
            device,
            text_encoder: Net::build(device, |p| {
                TextEncoder::new(&(p / "text_encoder"), &config.text_encoder)
            }),
            image_encoder: Net::build(device, |p| {
                ImageEncoder::new(&(p / "image_encoder"), &config.image_encoder)
            }),
            generator: Net::build(device, |p| {
                Generator::new(&(p / "generator"), &config.generator, &config.conditioning)
            }),
            discriminator: Net::build(device, |p| {
                Discriminator::new(
                    &(p / "discriminator"),
                    &config.discriminator,
                    &config.conditioning,
                )
            }),
            style_encoder: Net::build(device, |p| {
                StyleEncoder::new(&(p / "style_encoder"), &config.style_encoder)
            }),
        })
    }

    fn var_stores(&self) -> [(&'static str, &nn::VarStore); 5] {
        [
            (NETWORKS[0], &self.text_encoder.vs),
            (NETWORKS[1], &self.image_encoder.vs),
            (NETWORKS[2], &self.generator.vs),
            (NETWORKS[3], &self.discriminator.vs),
            (NETWORKS[4], &self.style_encoder.vs),
        ]
    }

    /// Sets how φ(t) is scaled before G and D read it, in the card and in
    /// both networks (training does this once, from its data, before step 0).
    pub fn set_conditioning(&mut self, conditioning: Conditioning) -> Result<()> {
        conditioning.validate(self.card.architecture.text_encoder.embedding_dim)?;
        self.generator.net.set_conditioning(&conditioning);
        self.discriminator.net.set_conditioning(&conditioning);
        self.card.architecture.conditioning = conditioning;
        Ok(())
    }

    /// Parameter counts per network, in `NETWORKS` order.
    pub fn parameter_counts(&self) -> Vec<(&'static str, i64)> {
        self.var_stores()
            .iter()
            .map(|(name, vs)| (*name, parameter_count(vs)))
            .collect()
    }

    /// Loads a model folder onto `device`.
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        Self::load_networks(dir, device, &NETWORKS)
    }

    /// Loads only the text side of a model folder (the text and image
    /// encoders), for training G and D on it: a folder that holds just those
    /// two files (a text encoder between trainings) loads too. G, D and S are
    /// freshly initialised.
    pub fn load_text_side(dir: &Path, device: Device) -> Result<Self> {
        Self::load_networks(dir, device, &NETWORKS[..2])
    }

    fn load_networks(dir: &Path, device: Device, networks: &[&str]) -> Result<Self> {
        let card = read_card(dir)?;
        let mut model = Self::new(&card.name, &card.architecture, device, 0)
            .with_context(|| format!("{}: architecture", dir.join(CARD_FILE).display()))?;
        for (name, vs) in model.var_stores() {
            if !networks.contains(&name) {
                continue;
            }
            let file = dir.join(format!("{name}.safetensors"));
            let entry = card.files.get(name).ok_or_else(|| {
                anyhow!(
                    "{}: lists no file for the {name}",
                    dir.join(CARD_FILE).display()
                )
            })?;
            verify_checksum(&file, entry)?;
            load_var_store(vs, &file)?;
        }
        model.card = card;
        model.dir = Some(dir.to_path_buf());
        Ok(model)
    }

    /// Writes the model folder: each network atomically, then the card.
    /// `half` stores f16 (for shipping); loading converts back to f32.
    pub fn save(&mut self, dir: &Path, half: bool) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut files = BTreeMap::new();
        for (name, vs) in self.var_stores() {
            let file = dir.join(format!("{name}.safetensors"));
            save_var_store(vs, &file, half)?;
            let (sha256, bytes) = sha256_file(&file)?;
            files.insert(
                name.to_string(),
                FileEntry {
                    sha256,
                    bytes,
                    dtype: if half { "f16" } else { "f32" }.to_string(),
                    parameters: parameter_count(vs),
                },
            );
        }
        self.card.files = files;
        self.card.gantry_version = env!("CARGO_PKG_VERSION").to_string();
        write_atomic(
            &dir.join(CARD_FILE),
            serde_json::to_string_pretty(&self.card)?.as_bytes(),
        )?;
        self.dir = Some(dir.to_path_buf());
        Ok(())
    }
}

/// Rewrites `model.json` (metrics, notes); the weight files are untouched.
pub fn write_card(dir: &Path, card: &ModelCard) -> Result<()> {
    write_atomic(
        &dir.join(CARD_FILE),
        serde_json::to_string_pretty(card)?.as_bytes(),
    )
}

/// Whether `dir` holds a model (its card reads as a model card; the probes
/// under weights/ have cards of their own kind).
pub fn is_model_dir(dir: &Path) -> bool {
    dir.join(CARD_FILE).exists() && read_card(dir).is_ok()
}

/// Names of the model folders in `search` (sorted, each once).
pub fn model_names(search: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = search
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .filter(|e| is_model_dir(&e.path()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Reads and checks `model.json`.
pub fn read_card(dir: &Path) -> Result<ModelCard> {
    let path = dir.join(CARD_FILE);
    if !dir.is_dir() {
        bail!("{}: no such model folder", dir.display());
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read the model card", path.display()))?;
    parse_card(&text, &path.display().to_string())
}

/// Parses and checks the text of a `model.json` (`origin` names it in errors):
/// its format, and the architecture's sizes (bounds and agreement), before
/// anything is allocated from them.
pub fn parse_card(text: &str, origin: &str) -> Result<ModelCard> {
    let card: ModelCard =
        serde_json::from_str(text).with_context(|| format!("{origin}: not a valid model card"))?;
    if card.format != CARD_FORMAT {
        bail!(
            "{origin}: card format {} is not the one this gantry reads ({CARD_FORMAT})",
            card.format
        );
    }
    card.architecture
        .validate()
        .with_context(|| format!("{origin}: architecture"))?;
    Ok(card)
}

/// Writes bytes to a temporary file beside `path`, then renames it over
/// `path`, so a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    publish(path, |tmp| Ok(std::fs::write(tmp, bytes)?))
}

/// Has `write` write the file into a temporary path beside `path`, makes it
/// durable, then renames it over `path`. Whatever fails (a full disk, a
/// folder removed), the temporary file is removed, the file that was at
/// `path` is untouched, and the error names `path`.
pub fn publish(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    let result = write(&tmp)
        .and_then(|()| {
            // Make the data durable before the rename publishes it.
            std::fs::File::open(&tmp)?.sync_all()?;
            Ok(())
        })
        .and_then(|()| Ok(std::fs::rename(&tmp, path)?));
    let Err(e) = result else { return Ok(()) };
    let _ = std::fs::remove_file(&tmp);
    // libtorch's writer reports a full disk in its own words: say it plainly.
    let text = format!("{e:#}");
    if text.contains("StorageFull") || text.contains("No space left") {
        bail!(
            "writing {}: No space left on device (nothing was changed there; free some space and try again)",
            path.display()
        );
    }
    Err(e.context(format!("writing {}", path.display())))
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Saves a var store as safetensors, atomically.
pub fn save_var_store(vs: &nn::VarStore, path: &Path, half: bool) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| {
            let t = t.detach().to_device(Device::Cpu);
            let t = if half && t.is_floating_point() {
                t.to_kind(Kind::Half)
            } else {
                t
            };
            (name, t)
        })
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    publish(path, |tmp| Ok(Tensor::write_safetensors(&named, tmp)?))
}

/// Loads a safetensors file into a var store, checking that it holds exactly
/// the tensors the architecture has, with the same shapes.
pub fn load_var_store(vs: &nn::VarStore, path: &Path) -> Result<()> {
    check_safetensors_header(path)?;
    let tensors = Tensor::read_safetensors(path)
        .with_context(|| format!("{}: not a readable safetensors file", path.display()))?;
    let mut by_name: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut var) in variables {
        let src = by_name.remove(&name).ok_or_else(|| {
            anyhow!(
                "{}: missing tensor '{name}' (weights of a different architecture?)",
                path.display()
            )
        })?;
        if src.size() != var.size() {
            bail!(
                "{}: tensor '{name}' has shape {:?}, the architecture in model.json needs {:?}",
                path.display(),
                src.size(),
                var.size()
            );
        }
        tch::no_grad(|| var.f_copy_(&src.to_kind(var.kind())))
            .with_context(|| format!("{}: copying '{name}'", path.display()))?;
    }
    if let Some(extra) = by_name.keys().next() {
        bail!(
            "{}: holds {} tensor(s) the architecture does not have, e.g. '{extra}'",
            path.display(),
            by_name.len()
        );
    }
    Ok(())
}

/// Reads the safetensors header and checks that the file is as long as it says.
fn check_safetensors_header(path: &Path) -> Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let size = file.metadata()?.len();
    safetensors_header(file, size).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(())
}

/// The header of safetensors bytes from `reader` (`size` bytes in all),
/// checked: a JSON object no bigger than 100 MiB whose tensors' data offsets
/// lie within the file.
pub fn safetensors_header(
    mut reader: impl Read,
    size: u64,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut len_bytes = [0u8; 8];
    reader
        .read_exact(&mut len_bytes)
        .map_err(|_| anyhow!("truncated ({size} bytes, no header)"))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > size.saturating_sub(8) || header_len > 100 << 20 {
        bail!("truncated or not safetensors (header claims {header_len} bytes, file has {size})");
    }
    let mut header = vec![0u8; header_len as usize];
    reader
        .read_exact(&mut header)
        .map_err(|_| anyhow!("truncated in its header"))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| anyhow!("corrupt safetensors header: {e}"))?;
    let mut data_end = 0u64;
    for (name, entry) in header.iter().filter(|(k, _)| k.as_str() != "__metadata__") {
        let offsets = entry
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .filter(|o| o.len() == 2)
            .and_then(|o| Some((o[0].as_u64()?, o[1].as_u64()?)))
            .ok_or_else(|| {
                anyhow!("corrupt safetensors header: tensor '{name}' has no data offsets")
            })?;
        if offsets.0 > offsets.1 {
            bail!("corrupt safetensors header: tensor '{name}' ends before it starts");
        }
        data_end = data_end.max(offsets.1);
    }
    let needed = (8 + header_len).saturating_add(data_end);
    if size < needed {
        bail!("truncated at byte {size} (the header promises {needed} bytes)");
    }
    Ok(header)
}

fn verify_checksum(path: &Path, entry: &FileEntry) -> Result<()> {
    if !path.exists() {
        bail!("{}: missing weights file", path.display());
    }
    let (sha256, bytes) = sha256_file(path)?;
    if bytes != entry.bytes {
        bail!(
            "{}: {bytes} bytes, model.json says {} (truncated or replaced?)",
            path.display(),
            entry.bytes
        );
    }
    if sha256 != entry.sha256 {
        bail!(
            "{}: checksum does not match model.json (corrupt or replaced file)",
            path.display()
        );
    }
    Ok(())
}

pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let digest = Sha256::digest(&bytes);
    let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, bytes.len() as u64))
}

/// Finds a model by name: a path to a folder, or a folder name under one of
/// the search directories (first match wins).
pub fn find_model(name: &str, search: &[PathBuf]) -> Result<PathBuf> {
    let direct = Path::new(name);
    if direct.join(CARD_FILE).exists() {
        return Ok(direct.to_path_buf());
    }
    if name.contains('/') || name.contains('\\') {
        bail!("{name}: not a model folder (no {CARD_FILE})");
    }
    for dir in search {
        let candidate = dir.join(name);
        if candidate.join(CARD_FILE).exists() {
            return Ok(candidate);
        }
    }
    let available = model_names(search);
    let searched: Vec<String> = search.iter().map(|d| d.display().to_string()).collect();
    bail!(
        "model '{name}' not found (searched {}); available: {}. \
         `gantry model init NAME --preset small` makes an untrained one",
        searched.join(", "),
        if available.is_empty() {
            "none".to_string()
        } else {
            available.join(", ")
        }
    )
}
