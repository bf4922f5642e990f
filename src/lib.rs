//! gantry: the text-to-image GAN of Reed et al. (ICML 2016) on libtorch.
//!
//! This library holds everything but the terminal: the networks
//! ([`model`]), caption encoding ([`text`]), model folders ([`weights`]),
//! the plugin host ([`host`]), and the operations front ends call
//! ([`runtime`]). The CLI (and later the REPL) are thin layers over it.

pub mod bench;
pub mod config;
pub mod env;
pub mod eval;
pub mod host;
pub mod imageio;
pub mod learn;
pub mod model;
pub mod plugin_manager;
/// Datasets, read through the dataset-loader plugins ([`host::dataset`]).
pub use host::dataset;
pub mod probe;
pub mod provenance;
pub mod runtime;
pub mod session;
pub mod sheet;
pub mod text;
pub mod train;
pub mod training_set;
pub mod weights;

/// Folders searched for a model by name, in order: `./weights`, the
/// `weights/` shipped beside the source this binary was built from, and the
/// user's data dir `models/`.
pub fn model_search_dirs(paths: &config::Paths) -> Vec<std::path::PathBuf> {
    let mut dirs = vec![std::path::PathBuf::from("weights")];
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights");
    if !dirs.contains(&shipped) {
        dirs.push(shipped);
    }
    dirs.push(paths.models_dir());
    dirs
}
