//! Datasets as the host sees them: opened through a dataset-loader plugin,
//! read sample by sample into owned values.

use super::{call, Plugin, Registry};
use crate::imageio::Image;
use anyhow::{anyhow, bail, Result};
use gantry_plugin_api::{
    DatasetHandle, DatasetInfo, DatasetVTable, ErrorBuf, PluginKind, SampleView,
};
use std::collections::BTreeMap;

impl Plugin {
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
}

/// `KIND` or `KIND:PATH`, e.g. `procedural-flowers` or `reed:../shared/datasets/oxford102`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetSpec {
    pub kind: String,
    pub path: String,
}

impl std::str::FromStr for DatasetSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let (kind, path) = s.split_once(':').unwrap_or((s, ""));
        if kind.is_empty() {
            bail!("dataset '{s}': expected KIND or KIND:PATH (e.g. reed:path/to/oxford102)");
        }
        Ok(Self {
            kind: kind.to_string(),
            path: path.to_string(),
        })
    }
}

impl std::fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}:{}", self.kind, self.path)
        }
    }
}

/// One sample, owned by the host.
#[derive(Clone, Debug)]
pub struct Sample {
    pub image: Option<Image>,
    pub captions: Vec<String>,
    pub class: u32,
    pub attributes: BTreeMap<String, String>,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct Class {
    pub name: String,
    pub held_out: bool,
}

/// Where samples come from: a plugin's table, or a loader linked in.
trait Source {
    fn get(&mut self, index: usize) -> Result<Sample>;
}

struct PluginSource {
    plugin: Plugin,
    handle: DatasetHandle,
}

impl Drop for PluginSource {
    fn drop(&mut self) {
        if let Ok(table) = self.plugin.dataset_table() {
            // SAFETY: the handle came from this table's `open` and is closed once.
            unsafe { (table.close)(self.handle) };
        }
    }
}

/// Copies a (ptr, len) string lent by a plugin.
///
/// # Safety
/// `ptr` must be valid for `len` bytes or null.
unsafe fn lent_str(ptr: *const u8, len: usize) -> String {
    if ptr.is_null() || len == 0 {
        return String::new();
    }
    String::from_utf8_lossy(std::slice::from_raw_parts(ptr, len)).into_owned()
}

fn parse_attributes(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Source for PluginSource {
    fn get(&mut self, index: usize) -> Result<Sample> {
        let table = self.plugin.dataset_table()?;
        let mut view = SampleView {
            width: 0,
            height: 0,
            pixels: std::ptr::null(),
            pixels_len: 0,
            captions: std::ptr::null(),
            captions_len: 0,
            class: 0,
            attributes: std::ptr::null(),
            attributes_len: 0,
            name: std::ptr::null(),
            name_len: 0,
        };
        let handle = self.handle;
        call(&self.plugin, "get", |err| unsafe {
            (table.get)(handle, index, &mut view, err)
        })?;
        // SAFETY: the view's buffers are valid until the next call on this handle.
        let image = if view.pixels.is_null() {
            None
        } else {
            let expected = view.width as usize * view.height as usize * 3;
            if view.pixels_len != expected {
                bail!(
                    "plugin '{}': sample {index} has {} pixel bytes for {}x{}",
                    self.plugin.name,
                    view.pixels_len,
                    view.width,
                    view.height
                );
            }
            Some(Image {
                width: view.width,
                height: view.height,
                rgb: unsafe { std::slice::from_raw_parts(view.pixels, view.pixels_len) }.to_vec(),
            })
        };
        let captions = unsafe { lent_str(view.captions, view.captions_len) };
        Ok(Sample {
            image,
            captions: captions.lines().map(str::to_string).collect(),
            class: view.class,
            attributes: parse_attributes(&unsafe {
                lent_str(view.attributes, view.attributes_len)
            }),
            name: unsafe { lent_str(view.name, view.name_len) },
        })
    }
}

/// An open dataset.
pub struct Dataset {
    pub spec: DatasetSpec,
    pub len: usize,
    pub has_images: bool,
    pub captions: usize,
    pub held_out_samples: usize,
    pub classes: Vec<Class>,
    /// Problems the loader found (bad files it skipped), one line each.
    pub problems: Vec<String>,
    /// Where the loader came from, for messages.
    pub origin: String,
    source: Box<dyn Source>,
}

impl Dataset {
    /// Opens `spec` with `options` (`key=value`), through the registry's
    /// dataset-loader plugin of that name.
    pub fn open(
        registry: &Registry,
        spec: &DatasetSpec,
        options: &[(String, String)],
    ) -> Result<Self> {
        let options_text: String = options.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        if let Some(plugin) = registry.find(PluginKind::DatasetLoader, &spec.kind) {
            return Self::open_plugin(plugin.clone(), spec, &options_text);
        }
        let names = registry.names(PluginKind::DatasetLoader);
        let why = if registry.disabled {
            format!(" (plugins are turned off by {})", crate::host::DISABLE_ENV)
        } else {
            String::new()
        };
        bail!(
            "no dataset loader named '{}'{why}; available: {}",
            spec.kind,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )
    }

    fn open_plugin(plugin: Plugin, spec: &DatasetSpec, options: &str) -> Result<Self> {
        let table = plugin.dataset_table()?;
        let mut handle: DatasetHandle = std::ptr::null_mut();
        call(&plugin, &format!("opening {spec}"), |err| unsafe {
            (table.open)(
                spec.path.as_ptr(),
                spec.path.len(),
                options.as_ptr(),
                options.len(),
                &mut handle,
                err,
            )
        })
        .map_err(|e| anyhow!("{e:#}"))?;
        if handle.is_null() {
            bail!("plugin '{}': open returned no handle", plugin.name);
        }
        // From here the handle is closed on every path by PluginSource's Drop.
        let source = PluginSource {
            plugin: plugin.clone(),
            handle,
        };
        let mut info = DatasetInfo::default();
        call(&plugin, "info", |err| unsafe {
            (table.info)(handle, &mut info, err)
        })?;
        let mut classes = Vec::with_capacity(info.classes as usize);
        for class in 0..info.classes {
            let mut name = vec![0u8; 512];
            let mut name_buf = ErrorBuf {
                ptr: name.as_mut_ptr(),
                cap: name.len(),
                len: 0,
            };
            let mut held_out = 0u32;
            call(&plugin, "class_info", |err| unsafe {
                (table.class_info)(handle, class, &mut name_buf, &mut held_out, err)
            })?;
            classes.push(Class {
                name: String::from_utf8_lossy(&name[..name_buf.len]).into_owned(),
                held_out: held_out != 0,
            });
        }
        let mut problems = Vec::new();
        let count = unsafe { (table.problems)(handle, usize::MAX, std::ptr::null_mut()) };
        for i in 0..count {
            let mut text = vec![0u8; 2048];
            let mut buf = ErrorBuf {
                ptr: text.as_mut_ptr(),
                cap: text.len(),
                len: 0,
            };
            unsafe { (table.problems)(handle, i, &mut buf) };
            problems.push(String::from_utf8_lossy(&text[..buf.len]).into_owned());
        }
        Ok(Self {
            spec: spec.clone(),
            len: info.samples,
            has_images: info.has_images != 0,
            captions: info.captions,
            held_out_samples: info.held_out_samples,
            classes,
            problems,
            origin: format!("plugin {}", plugin.path.display()),
            source: Box::new(source),
        })
    }

    pub fn get(&mut self, index: usize) -> Result<Sample> {
        if index >= self.len {
            bail!(
                "{}: sample {index} out of range ({} samples)",
                self.spec,
                self.len
            );
        }
        self.source.get(index)
    }
}
