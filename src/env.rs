//! The environment every front end works in: where things are ([`Paths`]),
//! the resolved configuration, the plugins found (discovered once), and the
//! opening of what a command needs from them: a model, a sampler, a runtime,
//! a dataset, a session. What a user should hear about (a plugin skipped, a
//! model not trained yet) comes back as values ([`Env::warnings`],
//! [`untrained_note`]); the front end decides how to say it.

use crate::config::{Config, Paths, Resolved};
use crate::dataset::{Dataset, DatasetSpec};
use crate::host::{self, Registry, Sampler};
use crate::runtime::{parse_device, Runtime};
use crate::session::Session;
use crate::weights::{find_model, Model};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::sync::OnceLock;
use tch::Device;

pub struct Env {
    pub paths: Paths,
    /// The configuration and where each value came from.
    pub config: Resolved,
    registry: OnceLock<Registry>,
    warned: std::sync::atomic::AtomicBool,
}

impl Env {
    pub fn new(paths: Paths, config: Resolved) -> Self {
        Self {
            paths,
            config,
            registry: OnceLock::new(),
            warned: Default::default(),
        }
    }

    /// The paths from the environment and the configuration from defaults,
    /// the user's file and `GANTRY_*` variables.
    pub fn load() -> Result<Self> {
        let paths = Paths::from_env();
        let config = Resolved::load(&paths)?;
        Ok(Self::new(paths, config))
    }

    /// The configured values.
    pub fn settings(&self) -> &Config {
        &self.config.values
    }

    /// Sets a value given on the command line (`gantry config` says so).
    pub fn set_from_command_line(&mut self, key: &str, set: impl FnOnce(&mut Config)) {
        set(&mut self.config.values);
        self.config.set_from_command_line(key);
    }

    pub fn device(&self) -> Result<Device> {
        parse_device(&self.settings().device)
    }

    /// The plugins in the search path, discovered on first use.
    pub fn registry(&self) -> &Registry {
        self.registry.get_or_init(|| self.paths.discover_plugins())
    }

    /// What the user should know about the environment: plugins that could
    /// not be loaded.
    pub fn warnings(&self) -> Vec<String> {
        self.registry()
            .broken
            .iter()
            .map(|b| format!("plugin skipped: {}", b.error))
            .collect()
    }

    /// [`Self::warnings`] the first time, nothing after (so a front end that
    /// opens several things says each once).
    pub fn take_warnings(&self) -> Vec<String> {
        if self.warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
            Vec::new()
        } else {
            self.warnings()
        }
    }

    /// A model folder: a name under the search folders, or a path.
    pub fn find_model(&self, name: &str) -> Result<PathBuf> {
        self.paths.find_model(name)
    }

    /// The model `name` on the configured device.
    pub fn load_model(&self, name: &str) -> Result<Model> {
        Model::load(&self.find_model(name)?, self.device()?)
    }

    /// The configured sampler.
    pub fn sampler(&self) -> Result<Sampler> {
        Sampler::select(self.registry(), &self.settings().sampler)
    }

    /// The configured model with the configured sampler.
    pub fn runtime(&self) -> Result<Runtime> {
        let model = self.load_model(&self.settings().model)?;
        Ok(Runtime::new(model, self.sampler()?))
    }

    /// A dataset: `KIND` or `KIND:PATH`, with its loader's `KEY=VALUE` options.
    pub fn dataset(&self, spec: &str, options: &[String]) -> Result<Dataset> {
        let spec: DatasetSpec = spec.parse()?;
        Dataset::open(self.registry(), &spec, &parse_options(options)?)
    }

    /// A REPL session on the configured model.
    pub fn session(&self) -> Result<Session> {
        Session::open_with(
            self.paths.clone(),
            self.settings().clone(),
            self.registry().clone(),
        )
    }
}

/// Where models and plugins are looked for: every lookup goes through here.
impl Paths {
    /// Folders searched for a model by name, in order.
    pub fn model_dirs(&self) -> Vec<PathBuf> {
        crate::model_search_dirs(self)
    }

    /// A model folder: a name under [`Self::model_dirs`], or a path.
    pub fn find_model(&self, name: &str) -> Result<PathBuf> {
        find_model(name, &self.model_dirs())
    }

    /// The plugins in the plugin search path, loaded and checked.
    pub fn discover_plugins(&self) -> Registry {
        Registry::discover(&host::search_dirs(&self.plugin_dir()))
    }
}

/// The note for a model that has not been trained, if it has not.
pub fn untrained_note(model: &Model) -> Option<String> {
    (!model.card.trained).then(|| {
        format!(
            "model '{}' is untrained (random weights): images will be noise until it is trained",
            model.card.name
        )
    })
}

/// `KEY=VALUE` loader options.
pub fn parse_options(options: &[String]) -> Result<Vec<(String, String)>> {
    options
        .iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => bail!("--opt {o}: expected KEY=VALUE"),
        })
        .collect()
}
