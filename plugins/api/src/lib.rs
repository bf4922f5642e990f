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
    pub sampler: *const SamplerVTable,
}

// The declaration is immutable static data.
unsafe impl Sync for PluginDeclaration {}
unsafe impl Sync for SamplerVTable {}

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
}

/// Runs a plugin-side body, turning errors and panics into a [`Status`].
/// Used by the code that [`declare_sampler!`] generates.
///
/// # Safety
/// `err` must be null or point to a valid [`ErrorBuf`].
pub unsafe fn guard(err: *mut ErrorBuf, body: impl FnOnce() -> Result<(), String>) -> Status {
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

            static VTABLE: SamplerVTable = SamplerVTable {
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
            };

            #[no_mangle]
            pub extern "C" fn gantry_plugin_declaration() -> *const PluginDeclaration {
                &DECLARATION
            }
        };
    };
}
