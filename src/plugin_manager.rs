//! Installing, listing and removing plugins.
//!
//! `install` takes a plugin crate folder (built with cargo) or a built
//! library, loads it once in a child process (`gantry plugin probe`) so that a
//! plugin that crashes on load cannot take the caller down, then copies it
//! into the user's plugin folder beside a manifest (name, kind, version, ABI,
//! sha256, source).

use crate::host::{self, Registry};
use crate::weights::{sha256_file, write_atomic};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the probe reports about a library (JSON on its stdout).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Probed {
    pub name: String,
    pub kind: String,
    pub version: String,
    pub abi: u32,
}

/// `<plugin dir>/<name>.json`, written at install.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub kind: String,
    pub version: String,
    pub abi: u32,
    pub sha256: String,
    /// Where it was installed from.
    pub source: String,
    /// The library file in the plugin folder.
    pub file: String,
}

/// The sampler template and the plugin API crate, as they were when this
/// gantry was built: what `plugin new` writes.
const TEMPLATE_LIB: &str = include_str!("../plugins/template/src/lib.rs");
const API_SOURCES: [(&str, &str); 5] = [
    ("lib.rs", include_str!("../plugins/api/src/lib.rs")),
    ("random.rs", include_str!("../plugins/api/src/random.rs")),
    ("sampler.rs", include_str!("../plugins/api/src/sampler.rs")),
    ("dataset.rs", include_str!("../plugins/api/src/dataset.rs")),
    (
        "style_encoder.rs",
        include_str!("../plugins/api/src/style_encoder.rs"),
    ),
];

/// Writes a new sampler plugin crate `<dir>/<name>` that builds where it is
/// written: the template's code named `name`, and a copy of this gantry's
/// plugin API crate inside it (`gantry-plugin-api/`), so that no path points
/// into gantry's sources. Returns the crate folder.
pub fn new_plugin(dir: &Path, name: &str) -> Result<PathBuf> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!("'{name}' is not a plugin name: lowercase letters, digits and '-', starting with a letter (e.g. my-sampler)");
    }
    let root = dir.join(name);
    if root.exists() {
        bail!(
            "{} already exists: choose another name or folder",
            root.display()
        );
    }
    let version = env!("CARGO_PKG_VERSION");
    let abi = gantry_plugin_api::ABI_VERSION;
    let manifest = format!(
        r#"# A gantry sampler plugin, written by `gantry plugin new` (gantry {version}).
# Build and install it with
#   gantry plugin install {name}
# then use it with `:sampler {name}` (or --sampler {name}).
# gantry-plugin-api/ is a copy of the plugin API crate of gantry {version}
# (ABI {abi}); keep it beside the plugin.
[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
gantry-plugin-api = {{ path = "gantry-plugin-api" }}

# A workspace of its own, wherever the folder is put.
[workspace]
"#
    );
    let api_manifest = format!(
        r#"# The plugin API crate of gantry {version} (ABI {abi}), copied by `gantry plugin new`.
[package]
name = "gantry-plugin-api"
version = "{version}"
edition = "2021"
license = "MIT"
publish = false
description = "C ABI shared by gantry and its plugins"

[dependencies]
"#
    );
    let lib = TEMPLATE_LIB
        .replace("name = \"my-sampler\"", &format!("name = \"{name}\""))
        .replace("`:sampler my-sampler", &format!("`:sampler {name}"));
    let mut files: Vec<(String, &str)> = vec![
        ("Cargo.toml".into(), &manifest),
        ("src/lib.rs".into(), &lib),
        ("gantry-plugin-api/Cargo.toml".into(), &api_manifest),
    ];
    for (file, text) in API_SOURCES {
        files.push((format!("gantry-plugin-api/src/{file}"), text));
    }
    for (file, text) in files {
        let path = root.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        write_atomic(&path, text.as_bytes())?;
    }
    Ok(root)
}

/// Parses and checks a manifest's text (`origin` names it in errors). Its
/// library must be a plain file name in the plugin folder: a manifest naming
/// `../x` would otherwise have `plugin remove` delete a file elsewhere.
pub fn parse_manifest(text: &str, origin: &str) -> Result<Manifest> {
    let manifest: Manifest =
        serde_json::from_str(text).with_context(|| format!("{origin}: corrupt manifest"))?;
    let plain = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0']);
    if !plain(&manifest.file) {
        bail!(
            "{origin}: its library '{}' is not a file name in the plugin folder",
            manifest.file
        );
    }
    if !plain(&manifest.name) {
        bail!("{origin}: '{}' is not a plugin name", manifest.name);
    }
    Ok(manifest)
}

/// Loads a library in this process and describes it: what `gantry plugin
/// probe` runs, in a child process of the installer.
pub fn probe_here(library: &Path) -> Result<Probed> {
    let plugin = host::load(library)?;
    Ok(Probed {
        name: plugin.name,
        kind: plugin.kind.as_str().to_string(),
        version: plugin.version,
        abi: gantry_plugin_api::ABI_VERSION,
    })
}

/// Runs `gantry plugin probe LIBRARY` in a child process.
pub fn probe_in_child(gantry: &Path, library: &Path) -> Result<Probed> {
    let out = Command::new(gantry)
        .args(["plugin", "probe"])
        .arg(library)
        .env_remove(host::DISABLE_ENV)
        .output()
        .with_context(|| format!("running {} to probe the plugin", gantry.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim_start_matches("error: ");
        return match out.status.code() {
            Some(_) => Err(anyhow!("{message}")),
            None => Err(anyhow!(
                "{}: the plugin crashed the process that loaded it (killed by a signal)",
                library.display()
            )),
        };
    }
    serde_json::from_slice(&out.stdout).context("reading the probe's report")
}

fn is_library(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("so") | Some("dylib") | Some("dll")
    )
}

/// Builds a plugin crate in release mode and returns its shared library.
pub fn build_crate(dir: &Path) -> Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.exists() {
        bail!(
            "{}: not a plugin crate (no Cargo.toml) and not a library",
            dir.display()
        );
    }
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo (is Rust installed?)")?;
    if !out.status.success() {
        bail!(
            "{}: cargo build failed (see the messages above)",
            dir.display()
        );
    }
    let mut libraries = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact"
            || !message["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        {
            continue;
        }
        for file in message["filenames"].as_array().into_iter().flatten() {
            if let Some(f) = file.as_str().map(PathBuf::from).filter(|p| is_library(p)) {
                libraries.push(f);
            }
        }
    }
    match libraries.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "{}: the crate builds no shared library (set crate-type = [\"cdylib\"])",
            dir.display()
        ),
        _ => bail!(
            "{}: the crate builds several libraries; install one of them by path",
            dir.display()
        ),
    }
}

/// Installs a plugin (crate folder or library) into `plugin_dir`.
pub fn install(plugin_dir: &Path, source: &Path, gantry: &Path) -> Result<Manifest> {
    let library = if source.is_dir() {
        build_crate(source)?
    } else if source.is_file() {
        source.to_path_buf()
    } else {
        bail!("{}: no such file or folder", source.display());
    };
    let probed = probe_in_child(gantry, &library)?;
    std::fs::create_dir_all(plugin_dir)
        .with_context(|| format!("creating {}", plugin_dir.display()))?;
    let extension = library.extension().and_then(|e| e.to_str()).unwrap_or("so");
    let file = format!("lib{}.{extension}", probed.name.replace('-', "_"));
    let target = plugin_dir.join(&file);
    let bytes =
        std::fs::read(&library).with_context(|| format!("reading {}", library.display()))?;
    // A new file and a rename: a process that already loaded the old library
    // keeps its mapping intact.
    write_atomic(&target, &bytes)?;
    let (sha256, _) = sha256_file(&target)?;
    let manifest = Manifest {
        name: probed.name.clone(),
        kind: probed.kind,
        version: probed.version,
        abi: probed.abi,
        sha256,
        source: source
            .canonicalize()
            .unwrap_or_else(|_| source.to_path_buf())
            .display()
            .to_string(),
        file,
    };
    write_atomic(
        &plugin_dir.join(format!("{}.json", probed.name)),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    Ok(manifest)
}

/// The plugin built with gantry that an installed plugin called `name`
/// replaces (the user's plugin folder is searched first), if any.
pub fn replaces(plugin_dir: &Path, name: &str) -> Option<PathBuf> {
    host::search_dirs(plugin_dir)
        .iter()
        .skip(1)
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libgantry_"))
        })
        .find(|p| crate::host::load(p).is_ok_and(|plugin| plugin.name == name))
}

/// Removes an installed plugin (its library and manifest).
pub fn remove(plugin_dir: &Path, name: &str) -> Result<Manifest> {
    let manifest_path = plugin_dir.join(format!("{name}.json"));
    let text = std::fs::read_to_string(&manifest_path).map_err(|_| {
        let installed = installed(plugin_dir).into_iter().map(|m| m.name).collect::<Vec<_>>();
        anyhow!(
            "no installed plugin named '{name}' (installed: {}; plugins built with gantry cannot be removed, {} turns all off)",
            if installed.is_empty() { "none".to_string() } else { installed.join(", ") },
            host::DISABLE_ENV
        )
    })?;
    let manifest = parse_manifest(&text, &manifest_path.display().to_string())?;
    let library = plugin_dir.join(&manifest.file);
    if library.exists() {
        std::fs::remove_file(&library)
            .with_context(|| format!("removing {}", library.display()))?;
    }
    std::fs::remove_file(&manifest_path)
        .with_context(|| format!("removing {}", manifest_path.display()))?;
    Ok(manifest)
}

/// The manifests in the plugin folder.
pub fn installed(plugin_dir: &Path) -> Vec<Manifest> {
    let mut out: Vec<Manifest> = std::fs::read_dir(plugin_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| parse_manifest(&std::fs::read_to_string(e.path()).ok()?, "").ok())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One row of `gantry plugin list`.
#[derive(Clone, Debug)]
pub struct Listed {
    pub name: String,
    pub kind: String,
    pub version: String,
    pub source: String,
    pub status: String,
}

/// Everything found, with where it came from and whether it works.
pub fn list(plugin_dir: &Path) -> Vec<Listed> {
    let registry = Registry::discover(&host::search_dirs(plugin_dir));
    let manifests = installed(plugin_dir);
    let mut rows: Vec<Listed> = registry
        .plugins
        .iter()
        .map(|p| {
            let manifest = manifests
                .iter()
                .find(|m| plugin_dir.join(&m.file) == p.path);
            let mut status = match manifest {
                Some(m) => match sha256_file(&p.path) {
                    Ok((sha, _)) if sha == m.sha256 => "ok".to_string(),
                    _ => "changed since install (reinstall it)".to_string(),
                },
                None => "ok".to_string(),
            };
            if p.path.starts_with(plugin_dir) {
                if let Some(shipped) = replaces(plugin_dir, &p.name) {
                    status += &format!(
                        "; replaces the one built with gantry ({})",
                        shipped.display()
                    );
                }
            }
            Listed {
                name: p.name.clone(),
                kind: p.kind.as_str().to_string(),
                version: p.version.clone(),
                source: match manifest {
                    Some(m) => format!("installed from {}", m.source),
                    None if p.path.starts_with(plugin_dir) => {
                        "in the plugin folder (no manifest)".to_string()
                    }
                    None => format!("built with gantry: {}", p.path.display()),
                },
                status,
            }
        })
        .collect();
    for b in &registry.broken {
        rows.push(Listed {
            name: b
                .path
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
            kind: "?".into(),
            version: "?".into(),
            source: b.path.display().to_string(),
            status: format!("broken: {}", b.error),
        });
    }
    rows
}
