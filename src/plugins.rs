//! The plugin host: finds plugin libraries, checks their declaration, and
//! wraps their C function tables in safe calls.
//!
//! Libraries are never unloaded (a plugin's static data and threads may
//! outlive any handle we hold), so each loaded library is leaked on purpose.
//! Plugins catch their own panics (the API crate's macro does it); the host
//! also guards each call and checks every output for length and NaN.

use anyhow::{anyhow, bail, Result};
use gantry_plugin_api::{
    DatasetVTable, DeclarationFn, ErrorBuf, PluginDeclaration, PluginKind, SamplerVTable, Status,
    StyleEncoderVTable, StyleHost, ABI_VERSION, DECLARATION_SYMBOL,
};
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

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

impl Plugin {
    fn sampler_table(&self) -> Result<&'static SamplerVTable> {
        if self.kind != PluginKind::Sampler {
            bail!(
                "plugin '{}' is a {}, not a sampler",
                self.name,
                self.kind.as_str()
            );
        }
        // SAFETY: checked non-null at load time; static per the ABI.
        unsafe { self.declaration.sampler.as_ref() }
            .ok_or_else(|| anyhow!("plugin '{}' has no sampler table", self.name))
    }

    pub(crate) fn style_table(&self) -> Result<&'static StyleEncoderVTable> {
        if self.kind != PluginKind::StyleEncoder {
            bail!(
                "plugin '{}' is a {}, not a style encoder",
                self.name,
                self.kind.as_str()
            );
        }
        // SAFETY: checked non-null at load time; static per the ABI.
        unsafe { self.declaration.style_encoder.as_ref() }
            .ok_or_else(|| anyhow!("plugin '{}' has no style-encoder table", self.name))
    }

    /// Sets a style-encoder option.
    pub fn configure_style(&self, key: &str, value: &str) -> Result<()> {
        let table = self.style_table()?;
        let Some(configure) = table.configure else {
            bail!("style encoder '{}' takes no options", self.name);
        };
        call(self, &format!("option {key}={value}"), |err| unsafe {
            configure(key.as_ptr(), key.len(), value.as_ptr(), value.len(), err)
        })
    }

    /// Runs the plugin's encode with the host callbacks in `host`.
    pub fn encode_style(
        &self,
        host: &StyleHost,
        image: &crate::imageio::Image,
    ) -> Result<Vec<f32>> {
        let table = self.style_table()?;
        let mut out = vec![f32::NAN; host.nz];
        call(self, "encode", |err| unsafe {
            (table.encode)(
                host,
                image.rgb.as_ptr(),
                image.width,
                image.height,
                out.as_mut_ptr(),
                out.len(),
                err,
            )
        })?;
        check_output(self, "encode", &out)?;
        Ok(out)
    }

    pub(crate) fn dataset_table(&self) -> Result<&'static DatasetVTable> {
        if self.kind != PluginKind::DatasetLoader {
            bail!(
                "plugin '{}' is a {}, not a dataset loader",
                self.name,
                self.kind.as_str()
            );
        }
        // SAFETY: checked non-null at load time; static per the ABI.
        unsafe { self.declaration.dataset.as_ref() }
            .ok_or_else(|| anyhow!("plugin '{}' has no dataset table", self.name))
    }

    /// One z of `dim` floats per seed, row-major.
    pub fn sample(&self, seeds: &[u64], dim: usize) -> Result<Vec<f32>> {
        let table = self.sampler_table()?;
        // Pre-filled with NaN so that values the plugin failed to write are caught.
        let mut out = vec![f32::NAN; seeds.len() * dim];
        call(self, "sample", |err| unsafe {
            (table.sample)(
                seeds.as_ptr(),
                seeds.len(),
                dim,
                out.as_mut_ptr(),
                out.len(),
                err,
            )
        })?;
        check_output(self, "sample", &out)?;
        Ok(out)
    }

    /// Sets a sampler option (e.g. `psi` of `truncated`).
    pub fn configure(&self, key: &str, value: &str) -> Result<()> {
        let table = self.sampler_table()?;
        let Some(configure) = table.configure else {
            bail!("sampler '{}' takes no options", self.name);
        };
        call(self, &format!("option {key}={value}"), |err| unsafe {
            configure(key.as_ptr(), key.len(), value.as_ptr(), value.len(), err)
        })
    }

    /// The sampler's own path from `a` to `b`, if it has one.
    pub fn path(&self, a: &[f32], b: &[f32], steps: usize) -> Result<Option<Vec<f32>>> {
        let table = self.sampler_table()?;
        let Some(path) = table.path else {
            return Ok(None);
        };
        if a.len() != b.len() {
            bail!("path endpoints differ in size ({} vs {})", a.len(), b.len());
        }
        let mut out = vec![f32::NAN; steps * a.len()];
        call(self, "path", |err| unsafe {
            path(
                a.as_ptr(),
                b.as_ptr(),
                a.len(),
                steps,
                out.as_mut_ptr(),
                out.len(),
                err,
            )
        })?;
        check_output(self, "path", &out)?;
        Ok(Some(out))
    }
}

/// Where z comes from: a sampler plugin, or (with plugins turned off) the
/// built-in Gaussian, which is the `gaussian` plugin's own code linked in.
#[derive(Clone)]
pub enum Sampler {
    Plugin(Plugin),
    BuiltinGaussian,
}

impl Sampler {
    /// Picks the sampler called `name` from the registry.
    pub fn select(registry: &Registry, name: &str) -> Result<Self> {
        if let Some(p) = registry.find(PluginKind::Sampler, name) {
            return Ok(Self::Plugin(p.clone()));
        }
        if name == "gaussian"
            && (registry.disabled || registry.find(PluginKind::Sampler, name).is_none())
        {
            return Ok(Self::BuiltinGaussian);
        }
        let names = registry.names(PluginKind::Sampler);
        let why = if registry.disabled {
            format!(" (plugins are turned off by {DISABLE_ENV})")
        } else {
            String::new()
        };
        bail!(
            "no sampler named '{name}'{why}; available: {}",
            if names.is_empty() {
                "gaussian".to_string()
            } else {
                names.join(", ")
            }
        )
    }

    pub fn name(&self) -> &str {
        match self {
            Sampler::Plugin(p) => &p.name,
            Sampler::BuiltinGaussian => "gaussian",
        }
    }

    /// Where the sampler comes from, for status lines and `model info`.
    pub fn origin(&self) -> String {
        match self {
            Sampler::Plugin(p) => format!("plugin {}", p.path.display()),
            Sampler::BuiltinGaussian => "built in".to_string(),
        }
    }

    pub fn configure(&self, key: &str, value: &str) -> Result<()> {
        match self {
            Sampler::Plugin(p) => p.configure(key, value),
            Sampler::BuiltinGaussian => bail!("sampler 'gaussian' takes no options"),
        }
    }

    pub fn sample(&self, seeds: &[u64], dim: usize) -> Result<Vec<f32>> {
        match self {
            Sampler::Plugin(p) => p.sample(seeds, dim),
            Sampler::BuiltinGaussian => {
                let mut out = vec![0.0; seeds.len() * dim];
                for (seed, row) in seeds.iter().zip(out.chunks_mut(dim.max(1))) {
                    gantry_sampler_gaussian::standard_normal(*seed, row);
                }
                Ok(out)
            }
        }
    }

    /// `steps` z from `a` to `b`: the sampler's own path, or a straight line.
    pub fn path(&self, a: &[f32], b: &[f32], steps: usize) -> Result<Vec<f32>> {
        if let Sampler::Plugin(p) = self {
            if let Some(path) = p.path(a, b, steps)? {
                return Ok(path);
            }
        }
        Ok(linear_path(a, b, steps))
    }
}

/// Evenly spaced points from `a` to `b`, both included.
pub fn linear_path(a: &[f32], b: &[f32], steps: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(steps * a.len());
    for i in 0..steps {
        let w = if steps > 1 {
            i as f32 / (steps - 1) as f32
        } else {
            0.0
        };
        out.extend(a.iter().zip(b).map(|(x, y)| (1.0 - w) * x + w * y));
    }
    out
}

/// Context for errors about a plugin directory.
pub fn describe_dirs(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
