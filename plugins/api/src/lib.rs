//! The C ABI between gantry and its plugins.
//!
//! Only `#[repr(C)]` structs, plain integers, raw pointers and `extern "C"`
//! functions cross the boundary: a plugin may be built by another compiler
//! version than the host, so no Rust `String`, `Vec`, `Box` or trait object is
//! ever passed. Tensors travel as flat `f32` buffers whose shape is given next
//! to them, and every output buffer comes with its length so that a plugin can
//! never write past it.
//!
//! Each plugin exports one symbol, [`DECLARATION_SYMBOL`], a function that
//! returns a pointer to a static [`PluginDeclaration`]. The host reads
//! `abi_version` first and refuses the plugin if it is not [`ABI_VERSION`].
//!
//! Writing a plugin is one trait implementation and one macro call:
//!
//! ```
//! use gantry_plugin_api::{declare_sampler, Sampler};
//!
//! pub struct Zeros;
//! impl Sampler for Zeros {
//!     fn sample(seeds: &[u64], dim: usize, out: &mut [f32]) -> Result<(), String> {
//!         let _ = (seeds, dim);
//!         out.fill(0.0);
//!         Ok(())
//!     }
//! }
//! declare_sampler!(Zeros, name = "zeros", description = "all-zero z (for tests)");
//! ```

pub mod random;

use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Bumped whenever a struct or function signature below changes.
pub const ABI_VERSION: u32 = 1;

/// The one symbol every plugin exports (NUL-terminated for `dlsym`).
pub const DECLARATION_SYMBOL: &[u8] = b"gantry_plugin_declaration\0";

/// The type of the exported declaration function.
pub type DeclarationFn = unsafe extern "C" fn() -> *const PluginDeclaration;

/// What a plugin adds to gantry.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginKind {
    /// Produces z vectors for seeds (and optionally a path between two z).
    Sampler = 1,
    /// Maps an image to a z (style) vector.
    StyleEncoder = 2,
    /// Opens a dataset and yields images with captions.
    DatasetLoader = 3,
}

impl PluginKind {
    /// Reads a raw kind number coming from a plugin; unknown numbers are `None`.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Self::Sampler),
            2 => Some(Self::StyleEncoder),
            3 => Some(Self::DatasetLoader),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sampler => "sampler",
            Self::StyleEncoder => "style-encoder",
            Self::DatasetLoader => "dataset-loader",
        }
    }
}

/// Result of every plugin call.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    /// The plugin reported an error; its message is in the [`ErrorBuf`].
    Error = 1,
    /// The plugin panicked; the panic was caught on the plugin's side.
    Panic = 2,
}

/// A buffer owned by the host into which a plugin writes an error message
/// (UTF-8, not NUL-terminated, cut to `cap` bytes).
#[repr(C)]
pub struct ErrorBuf {
    pub ptr: *mut u8,
    pub cap: usize,
    pub len: usize,
}

impl ErrorBuf {
    /// Writes `message` into the buffer, cutting it at a character boundary.
    ///
    /// # Safety
    /// `self.ptr` must be valid for `self.cap` bytes of writes.
    pub unsafe fn write(&mut self, message: &str) {
        let mut n = message.len().min(self.cap);
        while !message.is_char_boundary(n) {
            n -= 1;
        }
        std::ptr::copy_nonoverlapping(message.as_ptr(), self.ptr, n);
        self.len = n;
    }
}

/// Function table of a sampler plugin.
#[repr(C)]
pub struct SamplerVTable {
    /// Optional: sets an option (`key`, `value` as UTF-8) before sampling,
    /// e.g. the truncation ψ. `None`: the sampler takes no options.
    pub configure: Option<
        unsafe extern "C" fn(
            key: *const u8,
            key_len: usize,
            value: *const u8,
            value_len: usize,
            err: *mut ErrorBuf,
        ) -> Status,
    >,
    /// Writes `n_seeds` z vectors of `dim` floats into `out` (row `i` for
    /// `seeds[i]`). `out_len` is the number of floats `out` holds.
    pub sample: unsafe extern "C" fn(
        seeds: *const u64,
        n_seeds: usize,
        dim: usize,
        out: *mut f32,
        out_len: usize,
        err: *mut ErrorBuf,
    ) -> Status,
    /// Optional: writes `steps` vectors going from `a` to `b` (both `dim`
    /// floats) into `out`. `None` means the host interpolates linearly.
    pub path: Option<
        unsafe extern "C" fn(
            a: *const f32,
            b: *const f32,
            dim: usize,
            steps: usize,
            out: *mut f32,
            out_len: usize,
            err: *mut ErrorBuf,
        ) -> Status,
    >,
}

/// What [`DECLARATION_SYMBOL`] returns. All strings are static and
/// NUL-terminated; the table pointer for the plugin's kind is non-null.
#[repr(C)]
pub struct PluginDeclaration {
    pub abi_version: u32,
    /// A [`PluginKind`] as a number, so that an unknown kind can be reported.
    pub kind: u32,
    pub name: *const c_char,
    pub version: *const c_char,
    pub description: *const c_char,
    /// Non-null for samplers.
    pub sampler: *const SamplerVTable,
    /// Non-null for dataset loaders.
    pub dataset: *const DatasetVTable,
    /// Non-null for style encoders.
    pub style_encoder: *const StyleEncoderVTable,
}

// The declaration is immutable static data.
unsafe impl Sync for PluginDeclaration {}
unsafe impl Sync for SamplerVTable {}
unsafe impl Sync for DatasetVTable {}
unsafe impl Sync for StyleEncoderVTable {}

/// What a sampler plugin implements (on the plugin's side of the boundary).
pub trait Sampler {
    /// Fills `out` (`seeds.len() * dim` floats) with one z per seed.
    fn sample(seeds: &[u64], dim: usize, out: &mut [f32]) -> Result<(), String>;

    /// Fills `out` (`steps * dim` floats) with a path from `a` to `b`.
    /// `None`: this sampler has no path of its own.
    fn path(a: &[f32], b: &[f32], steps: usize, out: &mut [f32]) -> Option<Result<(), String>> {
        let _ = (a, b, steps, out);
        None
    }

    /// Whether [`Sampler::path`] is implemented.
    const HAS_PATH: bool = false;

    /// Sets an option; the default sampler takes none.
    fn configure(key: &str, value: &str) -> Result<(), String> {
        Err(format!(
            "this sampler has no option '{key}' (value {value})"
        ))
    }
}

/// Runs a plugin-side body, turning errors and panics into a [`Status`].
/// Used by the code that [`declare_sampler!`] generates.
///
/// # Safety
/// `err` must be null or point to a valid [`ErrorBuf`].
pub unsafe fn guard(err: *mut ErrorBuf, body: impl FnOnce() -> Result<(), String>) -> Status {
    // A plugin's panic is reported through `err`; the default hook would
    // also print it over the host's screen (the REPL). The hook belongs to
    // the plugin's own copy of std, so this silences the plugin alone.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => Status::Ok,
        Ok(Err(message)) => {
            if let Some(err) = err.as_mut() {
                err.write(&message);
            }
            Status::Error
        }
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            if let Some(err) = err.as_mut() {
                err.write(&format!("panicked: {message}"));
            }
            Status::Panic
        }
    }
}

/// Checks a buffer length given by the host against what is needed.
pub fn check_len(what: &str, len: usize, needed: usize) -> Result<(), String> {
    if len < needed {
        Err(format!("{what} holds {len} floats, {needed} needed"))
    } else {
        Ok(())
    }
}

/// Declares a sampler plugin: exports [`DECLARATION_SYMBOL`] for a type that
/// implements [`Sampler`]. The crate must be built as a `cdylib`.
#[macro_export]
macro_rules! declare_sampler {
    ($ty:ty, name = $name:literal, description = $description:literal) => {
        const _: () = {
            use $crate::{ErrorBuf, PluginDeclaration, SamplerVTable, Status};

            unsafe extern "C" fn sample(
                seeds: *const u64,
                n_seeds: usize,
                dim: usize,
                out: *mut f32,
                out_len: usize,
                err: *mut ErrorBuf,
            ) -> Status {
                $crate::guard(err, || {
                    let needed = n_seeds
                        .checked_mul(dim)
                        .ok_or_else(|| "n_seeds * dim overflows".to_string())?;
                    $crate::check_len("output buffer", out_len, needed)?;
                    if seeds.is_null() || out.is_null() {
                        return Err("null buffer".to_string());
                    }
                    let seeds = std::slice::from_raw_parts(seeds, n_seeds);
                    let out = std::slice::from_raw_parts_mut(out, needed);
                    <$ty as $crate::Sampler>::sample(seeds, dim, out)
                })
            }

            unsafe extern "C" fn path(
                a: *const f32,
                b: *const f32,
                dim: usize,
                steps: usize,
                out: *mut f32,
                out_len: usize,
                err: *mut ErrorBuf,
            ) -> Status {
                $crate::guard(err, || {
                    let needed = steps
                        .checked_mul(dim)
                        .ok_or_else(|| "steps * dim overflows".to_string())?;
                    $crate::check_len("output buffer", out_len, needed)?;
                    if a.is_null() || b.is_null() || out.is_null() {
                        return Err("null buffer".to_string());
                    }
                    let a = std::slice::from_raw_parts(a, dim);
                    let b = std::slice::from_raw_parts(b, dim);
                    let out = std::slice::from_raw_parts_mut(out, needed);
                    <$ty as $crate::Sampler>::path(a, b, steps, out)
                        .unwrap_or_else(|| Err("this sampler has no path".to_string()))
                })
            }

            unsafe extern "C" fn configure(
                key: *const u8,
                key_len: usize,
                value: *const u8,
                value_len: usize,
                err: *mut ErrorBuf,
            ) -> Status {
                $crate::guard(err, || {
                    let key = $crate::str_arg(key, key_len)?;
                    let value = $crate::str_arg(value, value_len)?;
                    <$ty as $crate::Sampler>::configure(key, value)
                })
            }

            static VTABLE: SamplerVTable = SamplerVTable {
                configure: Some(configure),
                sample,
                path: if <$ty as $crate::Sampler>::HAS_PATH {
                    Some(path)
                } else {
                    None
                },
            };

            static DECLARATION: PluginDeclaration = PluginDeclaration {
                abi_version: $crate::ABI_VERSION,
                kind: $crate::PluginKind::Sampler as u32,
                name: concat!($name, "\0").as_ptr().cast(),
                version: concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast(),
                description: concat!($description, "\0").as_ptr().cast(),
                sampler: &VTABLE,
                dataset: std::ptr::null(),
                style_encoder: std::ptr::null(),
            };

            #[no_mangle]
            pub extern "C" fn gantry_plugin_declaration() -> *const PluginDeclaration {
                &DECLARATION
            }
        };
    };
}

/// An open dataset, owned by the plugin; the host only passes it back.
pub type DatasetHandle = *mut std::ffi::c_void;

/// Counts of an open dataset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DatasetInfo {
    pub samples: usize,
    pub classes: u32,
    /// 1 if samples carry pixels, 0 for caption-only sets.
    pub has_images: u32,
    /// Captions over all samples.
    pub captions: usize,
    /// Samples whose class is held out for zero-shot tests.
    pub held_out_samples: usize,
}

/// One sample as the plugin lends it: every pointer stays valid until the
/// next call on the same handle. Strings are UTF-8, not NUL-terminated.
#[repr(C)]
pub struct SampleView {
    pub width: u32,
    pub height: u32,
    /// RGB, row-major, `width * height * 3` bytes; null for no image.
    pub pixels: *const u8,
    pub pixels_len: usize,
    /// The captions, one per line.
    pub captions: *const u8,
    pub captions_len: usize,
    pub class: u32,
    /// Ground truth, `key=value` lines (empty when the set has none).
    pub attributes: *const u8,
    pub attributes_len: usize,
    /// An identifier of the sample (its file name, say).
    pub name: *const u8,
    pub name_len: usize,
}

/// Function table of a dataset-loader plugin. A handle is used by one thread
/// at a time.
#[repr(C)]
pub struct DatasetVTable {
    /// Opens `path` with `options` (`key=value` lines). On success writes a
    /// handle that the host later passes to `close`.
    pub open: unsafe extern "C" fn(
        path: *const u8,
        path_len: usize,
        options: *const u8,
        options_len: usize,
        handle: *mut DatasetHandle,
        err: *mut ErrorBuf,
    ) -> Status,
    pub info: unsafe extern "C" fn(
        handle: DatasetHandle,
        out: *mut DatasetInfo,
        err: *mut ErrorBuf,
    ) -> Status,
    /// Writes the name of class `class` into `name` and whether it is held
    /// out for zero-shot tests into `held_out` (0 or 1).
    pub class_info: unsafe extern "C" fn(
        handle: DatasetHandle,
        class: u32,
        name: *mut ErrorBuf,
        held_out: *mut u32,
        err: *mut ErrorBuf,
    ) -> Status,
    /// Lends sample `index`; see [`SampleView`].
    pub get: unsafe extern "C" fn(
        handle: DatasetHandle,
        index: usize,
        out: *mut SampleView,
        err: *mut ErrorBuf,
    ) -> Status,
    /// Problems found in the data (one per call, `index` < count); returns
    /// the count.
    pub problems:
        unsafe extern "C" fn(handle: DatasetHandle, index: usize, text: *mut ErrorBuf) -> usize,
    pub close: unsafe extern "C" fn(handle: DatasetHandle),
}

/// A sample as a dataset plugin builds it (plugin side).
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub width: u32,
    pub height: u32,
    /// RGB bytes; empty for a caption-only set.
    pub pixels: Vec<u8>,
    pub captions: Vec<String>,
    pub class: u32,
    pub attributes: Vec<(String, String)>,
    pub name: String,
}

/// A class as a dataset plugin describes it.
#[derive(Clone, Debug)]
pub struct ClassInfo {
    pub name: String,
    pub held_out: bool,
}

/// `key=value` options given to `open`.
#[derive(Clone, Debug, Default)]
pub struct Options(pub Vec<(String, String)>);

impl Options {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("option '{line}' is not key=value"))?;
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
        Ok(Self(out))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A typed option with a default; a value that does not parse is an error.
    pub fn parsed<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("option {key}={v} is not valid")),
        }
    }

    /// Fails on any key not in `known`, so typos are caught.
    pub fn check_known(&self, known: &[&str]) -> Result<(), String> {
        for (k, _) in &self.0 {
            if !known.contains(&k.as_str()) {
                return Err(format!(
                    "unknown option '{k}' (known: {})",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// What a dataset-loader plugin implements (plugin side).
pub trait DatasetLoader: Sized {
    fn open(path: &str, options: &Options) -> Result<Self, String>;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn classes(&self) -> &[ClassInfo];
    fn has_images(&self) -> bool;
    fn get(&mut self, index: usize) -> Result<Sample, String>;
    /// The class of sample `index`, without loading its image.
    fn class_of(&self, index: usize) -> u32;
    /// The number of captions of sample `index`, without loading its image.
    fn caption_count(&self, index: usize) -> usize;
    /// Problems found in the data, one line each, naming the file.
    fn problems(&self) -> &[String];
}

/// The state behind a dataset handle: the loader and the sample last lent.
pub struct DatasetState<L> {
    pub loader: L,
    pub current: Sample,
    pub captions: String,
    pub attributes: String,
}

/// Reads a (ptr, len) UTF-8 string coming from the host.
///
/// # Safety
/// `ptr` must be valid for `len` bytes (or null with `len` 0).
pub unsafe fn str_arg<'a>(ptr: *const u8, len: usize) -> Result<&'a str, String> {
    if len == 0 {
        return Ok("");
    }
    if ptr.is_null() {
        return Err("null string".to_string());
    }
    std::str::from_utf8(std::slice::from_raw_parts(ptr, len))
        .map_err(|_| "string is not UTF-8".to_string())
}

/// Declares a dataset-loader plugin for a type that implements
/// [`DatasetLoader`]. The crate must be built as a `cdylib`.
#[macro_export]
macro_rules! declare_dataset_loader {
    ($ty:ty, name = $name:literal, description = $description:literal) => {
        const _: () = {
            use $crate::{
                DatasetHandle, DatasetInfo, DatasetLoader, DatasetState, DatasetVTable, ErrorBuf,
                PluginDeclaration, SampleView, Status,
            };
            type State = DatasetState<$ty>;

            unsafe extern "C" fn open(
                path: *const u8,
                path_len: usize,
                options: *const u8,
                options_len: usize,
                handle: *mut DatasetHandle,
                err: *mut ErrorBuf,
            ) -> Status {
                $crate::guard(err, || {
                    let path = $crate::str_arg(path, path_len)?;
                    let options = $crate::Options::parse($crate::str_arg(options, options_len)?)?;
                    let loader = <$ty as DatasetLoader>::open(path, &options)?;
                    let state = Box::new(State {
                        loader,
                        current: Default::default(),
                        captions: String::new(),
                        attributes: String::new(),
                    });
                    if handle.is_null() {
                        return Err("null handle".to_string());
                    }
                    *handle = Box::into_raw(state).cast();
                    Ok(())
                })
            }

            unsafe extern "C" fn info(
                handle: DatasetHandle,
                out: *mut DatasetInfo,
                err: *mut ErrorBuf,
            ) -> Status {
                $crate::guard(err, || {
                    let state = (handle as *mut State).as_ref().ok_or("null handle")?;
                    let out = out.as_mut().ok_or("null output")?;
                    let loader = &state.loader;
                    let classes = loader.classes();
                    let n = loader.len();
                    *out = DatasetInfo {
                        samples: n,
                        classes: classes.len() as u32,
                        has_images: loader.has_images() as u32,
                        captions: (0..n).map(|i| loader.caption_count(i)).sum(),
                        held_out_samples: (0..n)
                            .filter(|&i| {
                                classes
                                    .get(loader.class_of(i) as usize)
                                    .is_some_and(|c| c.held_out)
                            })
                            .count(),
                    };
                    Ok(())
                })
            }

            unsafe extern "C" fn class_info(
                handle: DatasetHandle,
                class: u32,
                name: *mut ErrorBuf,
                held_out: *mut u32,
                err: *mut ErrorBuf,
            ) -> Status {
                $crate::guard(err, || {
                    let state = (handle as *mut State).as_ref().ok_or("null handle")?;
                    let info = state
                        .loader
                        .classes()
                        .get(class as usize)
                        .ok_or_else(|| format!("no class {class}"))?;
                    name.as_mut().ok_or("null name buffer")?.write(&info.name);
                    *held_out.as_mut().ok_or("null output")? = info.held_out as u32;
                    Ok(())
                })
            }

            unsafe extern "C" fn get(
                handle: DatasetHandle,
                index: usize,
                out: *mut SampleView,
                err: *mut ErrorBuf,
            ) -> Status {
                $crate::guard(err, || {
                    let state = (handle as *mut State).as_mut().ok_or("null handle")?;
                    let out = out.as_mut().ok_or("null output")?;
                    if index >= state.loader.len() {
                        return Err(format!(
                            "index {index} out of range ({} samples)",
                            state.loader.len()
                        ));
                    }
                    state.current = state.loader.get(index)?;
                    let s = &state.current;
                    if !s.pixels.is_empty() && s.pixels.len() != (s.width * s.height * 3) as usize {
                        return Err(format!(
                            "sample {index}: pixel buffer does not match {}x{}",
                            s.width, s.height
                        ));
                    }
                    state.captions = s.captions.join("\n");
                    state.attributes = s
                        .attributes
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("\n");
                    *out = SampleView {
                        width: s.width,
                        height: s.height,
                        pixels: if s.pixels.is_empty() {
                            std::ptr::null()
                        } else {
                            s.pixels.as_ptr()
                        },
                        pixels_len: s.pixels.len(),
                        captions: state.captions.as_ptr(),
                        captions_len: state.captions.len(),
                        class: s.class,
                        attributes: state.attributes.as_ptr(),
                        attributes_len: state.attributes.len(),
                        name: s.name.as_ptr(),
                        name_len: s.name.len(),
                    };
                    Ok(())
                })
            }

            unsafe extern "C" fn problems(
                handle: DatasetHandle,
                index: usize,
                text: *mut ErrorBuf,
            ) -> usize {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let Some(state) = (handle as *mut State).as_ref() else {
                        return 0;
                    };
                    let problems = state.loader.problems();
                    if let (Some(p), Some(text)) = (problems.get(index), text.as_mut()) {
                        text.write(p);
                    }
                    problems.len()
                }));
                result.unwrap_or(0)
            }

            unsafe extern "C" fn close(handle: DatasetHandle) {
                if !handle.is_null() {
                    let _ = std::panic::catch_unwind(|| drop(Box::from_raw(handle as *mut State)));
                }
            }

            static VTABLE: DatasetVTable = DatasetVTable {
                open,
                info,
                class_info,
                get,
                problems,
                close,
            };

            static DECLARATION: PluginDeclaration = PluginDeclaration {
                abi_version: $crate::ABI_VERSION,
                kind: $crate::PluginKind::DatasetLoader as u32,
                name: concat!($name, "\0").as_ptr().cast(),
                version: concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast(),
                description: concat!($description, "\0").as_ptr().cast(),
                sampler: std::ptr::null(),
                dataset: &VTABLE,
                style_encoder: std::ptr::null(),
            };

            #[no_mangle]
            pub extern "C" fn gantry_plugin_declaration() -> *const PluginDeclaration {
                &DECLARATION
            }
        };
    };
}

/// What the host lends a style encoder while it encodes one image: the
/// generator as callbacks, so that a plugin can invert G without linking
/// libtorch. `context` is the host's; pass it back unchanged.
#[repr(C)]
pub struct StyleHost {
    pub context: *mut std::ffi::c_void,
    /// Size of z.
    pub nz: usize,
    /// The host's learned style encoder S(x) of the target image: `nz` floats.
    pub learned: unsafe extern "C" fn(
        context: *mut std::ffi::c_void,
        out: *mut f32,
        out_len: usize,
        err: *mut ErrorBuf,
    ) -> Status,
    /// Reconstruction loss mean((G(z, t) − x)²) against the target image x
    /// (t is fixed by the host), and its gradient with respect to z.
    pub reconstruction: unsafe extern "C" fn(
        context: *mut std::ffi::c_void,
        z: *const f32,
        nz: usize,
        loss: *mut f32,
        grad: *mut f32,
        err: *mut ErrorBuf,
    ) -> Status,
    /// G(z, t) as 64x64 RGB bytes (64 * 64 * 3).
    pub generate: unsafe extern "C" fn(
        context: *mut std::ffi::c_void,
        z: *const f32,
        nz: usize,
        out: *mut u8,
        out_len: usize,
        err: *mut ErrorBuf,
    ) -> Status,
}

/// Function table of a style-encoder plugin.
#[repr(C)]
pub struct StyleEncoderVTable {
    /// Optional options, as for samplers.
    pub configure: Option<
        unsafe extern "C" fn(
            key: *const u8,
            key_len: usize,
            value: *const u8,
            value_len: usize,
            err: *mut ErrorBuf,
        ) -> Status,
    >,
    /// Encodes the target image (RGB, `width` x `height`) into z (`out`, `nz` floats).
    pub encode: unsafe extern "C" fn(
        host: *const StyleHost,
        pixels: *const u8,
        width: u32,
        height: u32,
        out: *mut f32,
        out_len: usize,
        err: *mut ErrorBuf,
    ) -> Status,
}

/// The host's callbacks, safely (plugin side).
pub struct Host<'a>(pub &'a StyleHost);

fn host_call(f: impl FnOnce(*mut ErrorBuf) -> Status) -> Result<(), String> {
    let mut message = vec![0u8; 512];
    let mut err = ErrorBuf {
        ptr: message.as_mut_ptr(),
        cap: message.len(),
        len: 0,
    };
    match f(&mut err) {
        Status::Ok => Ok(()),
        _ => Err(format!(
            "host: {}",
            String::from_utf8_lossy(&message[..err.len])
        )),
    }
}

impl Host<'_> {
    pub fn nz(&self) -> usize {
        self.0.nz
    }

    /// S(x) of the target image, from the model's learned style encoder.
    pub fn learned(&self) -> Result<Vec<f32>, String> {
        let mut out = vec![0.0; self.0.nz];
        host_call(|err| unsafe {
            (self.0.learned)(self.0.context, out.as_mut_ptr(), out.len(), err)
        })?;
        Ok(out)
    }

    /// The reconstruction loss at z and its gradient.
    pub fn reconstruction(&self, z: &[f32]) -> Result<(f32, Vec<f32>), String> {
        let mut loss = 0.0f32;
        let mut grad = vec![0.0; z.len()];
        host_call(|err| unsafe {
            (self.0.reconstruction)(
                self.0.context,
                z.as_ptr(),
                z.len(),
                &mut loss,
                grad.as_mut_ptr(),
                err,
            )
        })?;
        Ok((loss, grad))
    }

    /// G(z, t) as 64x64 RGB bytes.
    pub fn generate(&self, z: &[f32]) -> Result<Vec<u8>, String> {
        let mut out = vec![0u8; 64 * 64 * 3];
        host_call(|err| unsafe {
            (self.0.generate)(
                self.0.context,
                z.as_ptr(),
                z.len(),
                out.as_mut_ptr(),
                out.len(),
                err,
            )
        })?;
        Ok(out)
    }
}

/// What a style-encoder plugin implements (plugin side).
pub trait StyleEncoder {
    /// Writes z (`out`, host.nz() floats) for the target image.
    fn encode(
        host: &Host,
        pixels: &[u8],
        width: u32,
        height: u32,
        out: &mut [f32],
    ) -> Result<(), String>;

    fn configure(key: &str, value: &str) -> Result<(), String> {
        Err(format!(
            "this style encoder has no option '{key}' (value {value})"
        ))
    }
}

/// Declares a style-encoder plugin for a type implementing [`StyleEncoder`].
#[macro_export]
macro_rules! declare_style_encoder {
    ($ty:ty, name = $name:literal, description = $description:literal) => {
        const _: () = {
            use $crate::{ErrorBuf, PluginDeclaration, Status, StyleEncoderVTable, StyleHost};

            unsafe extern "C" fn configure(
                key: *const u8,
                key_len: usize,
                value: *const u8,
                value_len: usize,
                err: *mut ErrorBuf,
            ) -> Status {
                $crate::guard(err, || {
                    let key = $crate::str_arg(key, key_len)?;
                    let value = $crate::str_arg(value, value_len)?;
                    <$ty as $crate::StyleEncoder>::configure(key, value)
                })
            }

            unsafe extern "C" fn encode(
                host: *const StyleHost,
                pixels: *const u8,
                width: u32,
                height: u32,
                out: *mut f32,
                out_len: usize,
                err: *mut ErrorBuf,
            ) -> Status {
                $crate::guard(err, || {
                    let host = host.as_ref().ok_or("null host")?;
                    $crate::check_len("output buffer", out_len, host.nz)?;
                    let n = (width as usize) * (height as usize) * 3;
                    if pixels.is_null() || out.is_null() {
                        return Err("null buffer".to_string());
                    }
                    let pixels = std::slice::from_raw_parts(pixels, n);
                    let out = std::slice::from_raw_parts_mut(out, host.nz);
                    <$ty as $crate::StyleEncoder>::encode(
                        &$crate::Host(host),
                        pixels,
                        width,
                        height,
                        out,
                    )
                })
            }

            static VTABLE: StyleEncoderVTable = StyleEncoderVTable {
                configure: Some(configure),
                encode,
            };

            static DECLARATION: PluginDeclaration = PluginDeclaration {
                abi_version: $crate::ABI_VERSION,
                kind: $crate::PluginKind::StyleEncoder as u32,
                name: concat!($name, "\0").as_ptr().cast(),
                version: concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast(),
                description: concat!($description, "\0").as_ptr().cast(),
                sampler: std::ptr::null(),
                dataset: std::ptr::null(),
                style_encoder: &VTABLE,
            };

            #[no_mangle]
            pub extern "C" fn gantry_plugin_declaration() -> *const PluginDeclaration {
                &DECLARATION
            }
        };
    };
}
