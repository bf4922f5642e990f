//! Makes the `gantry` binary find libtorch on its own and really use CUDA.
//!
//! torch-sys exports the directory of the libtorch it linked as
//! `DEP_TCH_LIBTORCH_LIB` (its `links` key is "tch"). We bake that directory
//! into the binary's run path so it starts without LD_LIBRARY_PATH, and we link
//! libtorch_cuda with `--no-as-needed`: nothing references its symbols
//! directly, so the linker would otherwise drop it and `Cuda::is_available()`
//! would be false even on a GPU machine.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    let cuda = std::path::Path::new(&lib_dir).join("libtorch_cuda.so");
    if cuda.exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
