//! `gantry plugin list|install|remove|new` (and the hidden probe install runs).

use anyhow::{Context, Result};
use clap::Subcommand;
use gantry::env::Env;
use gantry::host::{self};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Every plugin found: kind, version, where it came from, status
    List,
    /// Build (a crate folder) or take (a library), probe it in a child process, install it
    Install {
        /// A plugin crate folder or a built .so/.dylib
        path: PathBuf,
    },
    /// Remove an installed plugin
    Remove { name: String },
    /// Write a new sampler plugin crate, ready for `plugin install` (it builds
    /// wherever it is written: the plugin API comes with it)
    New {
        /// The plugin's name (lowercase letters, digits, '-')
        name: String,
        /// The folder to write it in
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Load a library and describe it as JSON (what install runs in a child process)
    #[command(hide = true)]
    Probe { path: PathBuf },
}

pub fn command(env: &Env, command: PluginCommand) -> Result<()> {
    use gantry::plugin_manager;
    let dir = env.paths.plugin_dir();
    match command {
        PluginCommand::List => {
            if host::plugins_disabled() {
                println!("plugins are turned off ({} is set)", host::DISABLE_ENV);
                return Ok(());
            }
            println!(
                "{:<20} {:<15} {:<8} {:<10} source",
                "name", "kind", "version", "status"
            );
            for row in plugin_manager::list(&dir) {
                println!(
                    "{:<20} {:<15} {:<8} {:<10} {}",
                    row.name, row.kind, row.version, row.status, row.source
                );
            }
            println!(
                "(searched {})",
                host::describe_dirs(&host::search_dirs(&dir))
            );
            Ok(())
        }
        PluginCommand::Install { path } => {
            let exe =
                std::env::current_exe().context("finding the gantry executable to probe with")?;
            if path.is_dir() {
                eprintln!(
                    "building the plugin crate in {} with cargo (release)...",
                    path.display()
                );
            }
            let m = plugin_manager::install(&dir, &path, &exe)?;
            println!(
                "installed {} {} ({}, ABI {}) into {}",
                m.name,
                m.version,
                m.kind,
                m.abi,
                dir.display()
            );
            if let Some(shipped) = plugin_manager::replaces(&dir, &m.name) {
                println!(
                    "note: it replaces the {} built with gantry ({}); `gantry plugin remove {}` brings that one back",
                    m.name,
                    shipped.display(),
                    m.name
                );
            }
            Ok(())
        }
        PluginCommand::Remove { name } => {
            let m = plugin_manager::remove(&dir, &name)?;
            println!("removed {} {}", m.name, m.version);
            Ok(())
        }
        PluginCommand::New { name, dir: into } => {
            let root = plugin_manager::new_plugin(&into, &name)?;
            println!(
                "wrote {} (a sampler: edit src/lib.rs); install it with\n  gantry plugin install {}",
                root.display(),
                root.display()
            );
            Ok(())
        }
        PluginCommand::Probe { path } => {
            let probed = plugin_manager::probe_here(&path)?;
            println!("{}", serde_json::to_string(&probed)?);
            Ok(())
        }
    }
}
