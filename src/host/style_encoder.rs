//! Style-encoder plugins: z for a photo, found with the host's callbacks
//! (the learned encoder S, G's reconstruction loss and its gradient, G's
//! picture of a z).

use super::{call, check_output, Plugin};
use crate::imageio::{images_from_tensor, tensor_from_images, Image};
use crate::runtime::{Runtime, INVERSION_CAPTION};
use anyhow::{anyhow, bail, Result};
use gantry_plugin_api::{PluginKind, StyleEncoderVTable, StyleHost};
use tch::{Device, Kind, Tensor};

impl Plugin {
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
}

/// z ([1, nz], on the runtime's device) for the style of `image`, by `plugin`.
pub fn style_code(runtime: &Runtime, plugin: &Plugin, image: &Image) -> Result<Tensor> {
    let target = tensor_from_images(std::slice::from_ref(image))?.to_device(runtime.device);
    let (text, _) = runtime.embed(&[INVERSION_CAPTION])?;
    let context = StyleContext {
        runtime,
        target,
        text,
    };
    let nz = runtime.nz();
    let host = StyleHost {
        context: &context as *const StyleContext as *mut std::ffi::c_void,
        nz,
        learned: learned_callback,
        reconstruction: reconstruction_callback,
        generate: generate_callback,
    };
    let z = plugin.encode_style(&host, image)?;
    Ok(Tensor::from_slice(&z)
        .view([1, nz as i64])
        .to_device(runtime.device))
}

/// What the host callbacks of a style-encoder plugin work on.
struct StyleContext<'a> {
    runtime: &'a Runtime,
    /// [1, 3, 64, 64] in [-1, 1] on the model's device.
    target: Tensor,
    /// [1, E].
    text: Tensor,
}

fn write_error(err: *mut gantry_plugin_api::ErrorBuf, message: &str) {
    // SAFETY: the plugin passes the buffer it received from the API crate's helper.
    if let Some(err) = unsafe { err.as_mut() } {
        unsafe { err.write(message) };
    }
}

/// Runs a callback body, turning errors and panics (tch panics on bad
/// shapes) into a status the plugin can read.
fn host_guard(
    err: *mut gantry_plugin_api::ErrorBuf,
    body: impl FnOnce() -> Result<()>,
) -> gantry_plugin_api::Status {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => gantry_plugin_api::Status::Ok,
        Ok(Err(e)) => {
            write_error(err, &format!("{e:#}"));
            gantry_plugin_api::Status::Error
        }
        Err(_) => {
            write_error(err, "the host panicked in a callback");
            gantry_plugin_api::Status::Panic
        }
    }
}

/// The host's context behind a callback's pointer, once Ctrl-C has been
/// checked: Ctrl-C reaches a plugin through its next call to the host.
///
/// # Safety
/// `context` is null or the `StyleContext` that [`style_code`] lent.
unsafe fn context_of<'a>(context: *mut std::ffi::c_void) -> Result<&'a StyleContext<'a>> {
    let ctx = (context as *const StyleContext)
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("null context"))?;
    ctx.runtime.check_cancel()?;
    Ok(ctx)
}

unsafe extern "C" fn learned_callback(
    context: *mut std::ffi::c_void,
    out: *mut f32,
    out_len: usize,
    err: *mut gantry_plugin_api::ErrorBuf,
) -> gantry_plugin_api::Status {
    host_guard(err, || {
        let ctx = context_of(context)?;
        let s = tch::no_grad(|| {
            ctx.runtime
                .model()
                .style_encoder
                .net
                .forward_t(&ctx.target, false)
        });
        let s = Vec::<f32>::try_from(s.view([-1]).to_device(Device::Cpu))?;
        if out.is_null() || out_len < s.len() {
            bail!("output buffer holds {out_len} floats, {} needed", s.len());
        }
        std::slice::from_raw_parts_mut(out, s.len()).copy_from_slice(&s);
        Ok(())
    })
}

unsafe extern "C" fn reconstruction_callback(
    context: *mut std::ffi::c_void,
    z: *const f32,
    nz: usize,
    loss: *mut f32,
    grad: *mut f32,
    err: *mut gantry_plugin_api::ErrorBuf,
) -> gantry_plugin_api::Status {
    host_guard(err, || {
        let ctx = context_of(context)?;
        let expected = ctx.runtime.model().card.architecture.generator.nz as usize;
        if z.is_null() || grad.is_null() || loss.is_null() || nz != expected {
            bail!("z must be {expected} floats (got {nz})");
        }
        let values = std::slice::from_raw_parts(z, nz);
        let z = Tensor::from_slice(values)
            .view([1, nz as i64])
            .to_device(ctx.runtime.device)
            .set_requires_grad(true);
        let image = ctx
            .runtime
            .model()
            .generator
            .net
            .forward_t(&z, &ctx.text, false);
        let l = (image - &ctx.target).square().mean(Kind::Float);
        // Gradients for z only: G's own parameters collect nothing.
        let grads = Tensor::f_run_backward(&[&l], &[&z], false, false)?;
        let g = Vec::<f32>::try_from(grads[0].view([-1]).to_device(Device::Cpu))?;
        std::slice::from_raw_parts_mut(grad, nz).copy_from_slice(&g);
        *loss = l.double_value(&[]) as f32;
        Ok(())
    })
}

unsafe extern "C" fn generate_callback(
    context: *mut std::ffi::c_void,
    z: *const f32,
    nz: usize,
    out: *mut u8,
    out_len: usize,
    err: *mut gantry_plugin_api::ErrorBuf,
) -> gantry_plugin_api::Status {
    host_guard(err, || {
        let ctx = context_of(context)?;
        let expected = ctx.runtime.model().card.architecture.generator.nz as usize;
        if z.is_null() || out.is_null() || nz != expected || out_len < 64 * 64 * 3 {
            bail!("z must be {expected} floats and the output 64*64*3 bytes");
        }
        let z = Tensor::from_slice(std::slice::from_raw_parts(z, nz))
            .view([1, nz as i64])
            .to_device(ctx.runtime.device);
        let image = tch::no_grad(|| {
            ctx.runtime
                .model()
                .generator
                .net
                .forward_t(&z, &ctx.text, false)
        });
        let rgb = &images_from_tensor(&image)?[0].rgb;
        std::slice::from_raw_parts_mut(out, rgb.len()).copy_from_slice(rgb);
        Ok(())
    })
}
