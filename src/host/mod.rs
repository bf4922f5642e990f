//! The plugin host: finds plugin libraries, checks their declaration, and
//! wraps their C function tables in safe calls, one file per kind of plugin
//! as the ABI has them ([`sampler`], [`dataset`], [`style_encoder`]). All of
//! the host's `unsafe` lives here.
//!
//! Libraries are never unloaded (a plugin's static data and threads may
//! outlive any handle we hold), so each loaded library is leaked on purpose.
//! Plugins catch their own panics (the API crate's macro does it); the host
//! also guards each call and checks every output for length and NaN.

use anyhow::{anyhow, bail, Result};
use gantry_plugin_api::{
    DeclarationFn, ErrorBuf, PluginDeclaration, PluginKind, Status, ABI_VERSION, DECLARATION_SYMBOL,
};
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

pub mod allocator;
pub mod dataset;
pub mod sampler;
pub mod style_encoder;

pub use sampler::{linear_path, Sampler};

/// Set to anything but "0" to load no plugins at all.
pub const DISABLE_ENV: &str = "GANTRY_NO_PLUGINS";

/// A loaded, checked plugin.
#[derive(Clone)]
pub struct Plugin {
    pub name: String,
    pub version: String,
    pub description: String,
    pub kind: PluginKind,
    pub path: PathBuf,
    declaration: &'static PluginDeclaration,
}

/// A library that was found but could not be used, and why.
#[derive(Clone, Debug)]
pub struct Broken {
    pub path: PathBuf,
    pub error: String,
}

/// Everything found in the plugin directories.
#[derive(Clone, Default)]
pub struct Registry {
    pub plugins: Vec<Plugin>,
    pub broken: Vec<Broken>,
    pub disabled: bool,
}

pub fn plugins_disabled() -> bool {
    std::env::var(DISABLE_ENV).is_ok_and(|v| v != "0" && !v.is_empty())
}

/// The plugin search order: the user's plugin dir, then the plugins built with
/// the workspace (shared libraries named `libgantry_*` beside the executable).
pub fn search_dirs(user_plugin_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![user_plugin_dir.to_path_buf()];
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        // Test binaries live one level down, in target/<profile>/deps.
        if exe_dir.ends_with("deps") {
            if let Some(parent) = exe_dir.parent() {
                dirs.push(parent.to_path_buf());
            }
        }
        dirs.push(exe_dir);
    }
    dirs
}

fn is_library(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("so") | Some("dylib") | Some("dll")
    )
}

impl Registry {
    /// Loads every plugin in `dirs`. In the user's dir (the first) every
    /// library is a plugin; elsewhere only `libgantry_*` libraries are. A name
    /// found twice keeps the first (the user's copy wins).
    pub fn discover(dirs: &[PathBuf]) -> Self {
        if plugins_disabled() {
            return Self {
                disabled: true,
                ..Default::default()
            };
        }
        let mut registry = Self::default();
        for (i, dir) in dirs.iter().enumerate() {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for path in paths {
                let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if !is_library(&path) || (i > 0 && !file_name.starts_with("libgantry_")) {
                    continue;
                }
                match load(&path) {
                    Ok(plugin) => {
                        if !registry.plugins.iter().any(|p| p.name == plugin.name) {
                            registry.plugins.push(plugin);
                        }
                    }
                    Err(e) => registry.broken.push(Broken {
                        path: path.clone(),
                        error: format!("{e:#}"),
                    }),
                }
            }
        }
        registry
    }

    pub fn find(&self, kind: PluginKind, name: &str) -> Option<&Plugin> {
        self.plugins
            .iter()
            .find(|p| p.kind == kind && p.name == name)
    }

    pub fn names(&self, kind: PluginKind) -> Vec<&str> {
        self.plugins
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.name.as_str())
            .collect()
    }
}

/// Loads one library and checks its declaration.
pub fn load(path: &Path) -> Result<Plugin> {
    // SAFETY: loading a library runs its initialisers; plugins are code the
    // user chose to install, the same trust as any executable they run.
    let library = unsafe { libloading::Library::new(path) }
        .map_err(|e| anyhow!("{}: cannot load: {e}", path.display()))?;
    // Never unload: leak the handle so the symbols stay valid for 'static.
    let library: &'static libloading::Library = Box::leak(Box::new(library));
    let symbol_name = String::from_utf8_lossy(&DECLARATION_SYMBOL[..DECLARATION_SYMBOL.len() - 1]);
    // SAFETY: the symbol's type is fixed by the ABI; a library exporting the
    // name with another type is a broken plugin we cannot detect.
    let declare: libloading::Symbol<DeclarationFn> = unsafe { library.get(DECLARATION_SYMBOL) }
        .map_err(|_| {
            anyhow!(
                "{}: not a gantry plugin (no `{symbol_name}` symbol)",
                path.display()
            )
        })?;
    let declare: DeclarationFn = *declare;
    // SAFETY: per the ABI the function takes nothing and returns a pointer to static data.
    let declaration = catch_unwind(|| unsafe { declare() })
        .map_err(|_| anyhow!("{}: panicked while declaring itself", path.display()))?;
    // SAFETY: checked for null; the ABI promises a 'static declaration.
    let declaration: &'static PluginDeclaration = unsafe { declaration.as_ref() }
        .ok_or_else(|| anyhow!("{}: returned a null declaration", path.display()))?;
    if declaration.abi_version != ABI_VERSION {
        bail!(
            "{}: built for plugin ABI {}, this gantry speaks ABI {ABI_VERSION}; rebuild it against gantry-plugin-api {}",
            path.display(),
            declaration.abi_version,
            env!("CARGO_PKG_VERSION")
        );
    }
    let text = |p: *const std::ffi::c_char, what: &str| -> Result<String> {
        if p.is_null() {
            bail!("{}: declaration has no {what}", path.display());
        }
        // SAFETY: non-null, NUL-terminated static string per the ABI.
        Ok(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    };
    let name = text(declaration.name, "name")?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!(
            "{}: plugin name '{name}' is not a plain name",
            path.display()
        );
    }
    let kind = PluginKind::from_raw(declaration.kind).ok_or_else(|| {
        anyhow!(
            "{}: unknown plugin kind {}",
            path.display(),
            declaration.kind
        )
    })?;
    if kind == PluginKind::Sampler && declaration.sampler.is_null() {
        bail!("{}: a sampler without a sampler table", path.display());
    }
    if kind == PluginKind::DatasetLoader && declaration.dataset.is_null() {
        bail!(
            "{}: a dataset loader without a dataset table",
            path.display()
        );
    }
    if kind == PluginKind::StyleEncoder && declaration.style_encoder.is_null() {
        bail!(
            "{}: a style encoder without a style-encoder table",
            path.display()
        );
    }
    Ok(Plugin {
        version: text(declaration.version, "version")?,
        description: text(declaration.description, "description")?,
        name,
        kind,
        path: path.to_path_buf(),
        declaration,
    })
}

/// Calls into a plugin with an error buffer, turning its status into a Result.
pub(crate) fn call(
    plugin: &Plugin,
    what: &str,
    f: impl FnOnce(*mut ErrorBuf) -> Status,
) -> Result<()> {
    let mut message = vec![0u8; 1024];
    let mut err = ErrorBuf {
        ptr: message.as_mut_ptr(),
        cap: message.len(),
        len: 0,
    };
    let status = catch_unwind(AssertUnwindSafe(|| f(&mut err)))
        .map_err(|_| anyhow!("plugin '{}': {what} panicked in the host", plugin.name))?;
    let text = String::from_utf8_lossy(&message[..err.len.min(message.len())]).into_owned();
    match status {
        Status::Ok => Ok(()),
        Status::Error => bail!("plugin '{}': {what} failed: {text}", plugin.name),
        Status::Panic => bail!("plugin '{}': {what} {text}", plugin.name),
    }
}

/// Checks a plugin's output: every value written and finite.
fn check_output(plugin: &Plugin, what: &str, out: &[f32]) -> Result<()> {
    if let Some(i) = out.iter().position(|x| !x.is_finite()) {
        bail!(
            "plugin '{}': {what} returned a non-finite value at index {i} of {} (NaN, infinity, or a value it never wrote)",
            plugin.name,
            out.len()
        );
    }
    Ok(())
}

/// Context for errors about a plugin directory.
pub fn describe_dirs(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
