//! Dataset loaders: samples (image, captions, attributes) of a dataset
//! opened from a path and options. Implement [`DatasetLoader`] and call
//! [`declare_dataset_loader!`](crate::declare_dataset_loader).
use crate::{ErrorBuf, Status};

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
