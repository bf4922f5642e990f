//! Style encoders: z for a photo, with the host's generator lent as
//! callbacks ([`StyleHost`]). Implement [`StyleEncoder`] and call
//! [`declare_style_encoder!`](crate::declare_style_encoder).
use crate::{ErrorBuf, Status};

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
