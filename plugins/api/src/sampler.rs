//! Samplers: z for a list of seeds (and optionally options and a path
//! between two z). Implement [`Sampler`] and call [`declare_sampler!`](crate::declare_sampler).
use crate::{ErrorBuf, Status};

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
