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

pub mod dataset;
pub mod random;
pub mod sampler;
pub mod style_encoder;

pub use dataset::*;
pub use sampler::*;
pub use style_encoder::*;

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
