//! A shared library that is not a gantry plugin (no declaration symbol).

#[no_mangle]
pub extern "C" fn not_a_plugin_answer() -> i32 {
    42
}
