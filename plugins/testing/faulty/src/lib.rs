//! A deliberately broken sampler plugin for the host's tests. Its name has no
//! `libgantry_` prefix, so it is never picked up from the build folder; tests
//! load it by path. `GANTRY_FAULT` chooses the fault:
//! `wrong-abi`, `null-name`, `bad-kind`, `panic`, `nan`, `short`, `error`,
//! or nothing for a well-behaved sampler.

use gantry_plugin_api::{
    guard, ErrorBuf, PluginDeclaration, PluginKind, SamplerVTable, Status, ABI_VERSION,
};

fn fault() -> String {
    std::env::var("GANTRY_FAULT").unwrap_or_default()
}

unsafe extern "C" fn sample(
    seeds: *const u64,
    n_seeds: usize,
    dim: usize,
    out: *mut f32,
    out_len: usize,
    err: *mut ErrorBuf,
) -> Status {
    let _ = seeds;
    guard(err, || {
        let out = std::slice::from_raw_parts_mut(out, out_len.min(n_seeds * dim));
        match fault().as_str() {
            "panic" => panic!("the faulty plugin panics on purpose"),
            "nan" => out.fill(f32::NAN),
            // Writes only half of what was asked.
            "short" => {
                let half = out.len() / 2;
                out[..half].fill(0.5)
            }
            "error" => return Err("the faulty plugin reports an error".to_string()),
            _ => out.fill(0.25),
        }
        Ok(())
    })
}

static VTABLE: SamplerVTable = SamplerVTable {
    configure: None,
    sample,
    path: None,
};

static GOOD: PluginDeclaration = GOOD_FIELDS;

static WRONG_ABI: PluginDeclaration = PluginDeclaration {
    abi_version: ABI_VERSION + 41,
    ..GOOD_FIELDS
};

static NULL_NAME: PluginDeclaration = PluginDeclaration {
    name: std::ptr::null(),
    ..GOOD_FIELDS
};

static BAD_KIND: PluginDeclaration = PluginDeclaration {
    kind: 99,
    ..GOOD_FIELDS
};

const GOOD_FIELDS: PluginDeclaration = PluginDeclaration {
    abi_version: ABI_VERSION,
    kind: PluginKind::Sampler as u32,
    name: c"faulty".as_ptr(),
    version: c"0.0.0".as_ptr(),
    description: c"misbehaves on request".as_ptr(),
    sampler: &VTABLE,
    dataset: std::ptr::null(),
    style_encoder: std::ptr::null(),
};

#[no_mangle]
pub extern "C" fn gantry_plugin_declaration() -> *const PluginDeclaration {
    match fault().as_str() {
        "wrong-abi" => &WRONG_ABI,
        "null-name" => &NULL_NAME,
        "bad-kind" => &BAD_KIND,
        _ => &GOOD,
    }
}
