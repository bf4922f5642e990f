//! Configuration: `config/default.toml` (built in), then the user's file,
//! then `GANTRY_*` environment variables; each value remembers where it came from.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The built-in defaults, the same text as `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub model: String,
    pub device: String,
    pub n: u32,
    pub seed: u64,
    pub sampler: String,
    pub style_encoder: String,
    pub output_dir: PathBuf,
    pub threads: u32,
    /// How large the REPL draws pictures: 1 is 16x8 cells, 2 is 32x16, ...
    pub zoom: u32,
}

/// Where a configuration value was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    UserFile(PathBuf),
    Env(String),
    CommandLine,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::UserFile(p) => write!(f, "{}", p.display()),
            Source::Env(var) => write!(f, "env {var}"),
            Source::CommandLine => write!(f, "command line"),
        }
    }
}

/// The effective configuration and the source of every key.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The values in force.
    pub values: Config,
    pub sources: BTreeMap<String, Source>,
    pub user_file: PathBuf,
}

/// The folders gantry reads and writes outside the project.
#[derive(Clone, Debug)]
pub struct Paths {
    /// Holds `config.toml`. GANTRY_CONFIG_DIR overrides.
    pub config_dir: PathBuf,
    /// Holds `history`, `plugins/` and `models/`. GANTRY_DATA_DIR overrides.
    pub data_dir: PathBuf,
}

impl Paths {
    pub fn from_env() -> Self {
        let dirs = directories::ProjectDirs::from("", "", "gantry");
        let fallback = std::env::temp_dir().join("gantry");
        let config_dir = std::env::var_os("GANTRY_CONFIG_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs.as_ref().map(|d| d.config_dir().to_path_buf()))
            .unwrap_or_else(|| fallback.join("config"));
        let data_dir = std::env::var_os("GANTRY_DATA_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs.as_ref().map(|d| d.data_dir().to_path_buf()))
            .unwrap_or_else(|| fallback.join("data"));
        Self {
            config_dir,
            data_dir,
        }
    }

    pub fn user_config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }

    pub fn plugin_dir(&self) -> PathBuf {
        self.data_dir.join("plugins")
    }

    pub fn models_dir(&self) -> PathBuf {
        self.data_dir.join("models")
    }
}

impl Resolved {
    /// Defaults, then the user's file (if it exists), then the environment.
    pub fn load(paths: &Paths) -> Result<Self> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(&paths.user_config_file(), &env)
    }

    pub fn load_from(user_file: &Path, env: &[(String, String)]) -> Result<Self> {
        let text = if user_file.exists() {
            Some(
                std::fs::read_to_string(user_file)
                    .with_context(|| format!("reading {}", user_file.display()))?,
            )
        } else {
            None
        };
        Self::from_parts(text.as_deref(), user_file, env)
    }

    /// The defaults, then the text of the user's file (read from `user_file`,
    /// if there is one), then `GANTRY_*` variables of `env`.
    pub fn from_parts(
        user_text: Option<&str>,
        user_file: &Path,
        env: &[(String, String)],
    ) -> Result<Self> {
        let mut table: toml::Table = DEFAULT_TOML.parse().context("built-in default.toml")?;
        let mut sources: BTreeMap<String, Source> =
            table.keys().map(|k| (k.clone(), Source::Default)).collect();

        if let Some(text) = user_text {
            let user: toml::Table = text
                .parse()
                .with_context(|| format!("{}: not valid TOML", user_file.display()))?;
            for (key, value) in user {
                if !table.contains_key(&key) {
                    bail!(
                        "{}: unknown key '{key}' (known: {})",
                        user_file.display(),
                        known_keys(&table)
                    );
                }
                sources.insert(key.clone(), Source::UserFile(user_file.to_path_buf()));
                table.insert(key, value);
            }
        }

        for (var, raw) in env {
            let Some(key) = var.strip_prefix("GANTRY_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            // Only configuration keys: GANTRY_DATA_DIR and friends are paths, not settings.
            let Some(default) = table.get(&key) else {
                continue;
            };
            let value = env_value(raw, default)
                .with_context(|| format!("environment variable {var}={raw}"))?;
            sources.insert(key.clone(), Source::Env(var.clone()));
            table.insert(key, value);
        }

        let config: Config = toml::Value::Table(table)
            .try_into()
            .context("the merged configuration is invalid")?;
        Ok(Self {
            values: config,
            sources,
            user_file: user_file.to_path_buf(),
        })
    }

    /// Records that a command-line flag set `key`.
    pub fn set_from_command_line(&mut self, key: &str) {
        self.sources.insert(key.to_string(), Source::CommandLine);
    }

    /// `key = value    # source` lines, for `gantry config`.
    pub fn describe(&self) -> Result<String> {
        let table = toml::Table::try_from(&self.values)?;
        let mut lines = Vec::new();
        for (key, value) in &table {
            let source = self.sources.get(key).cloned().unwrap_or(Source::Default);
            lines.push(format!("{:<28} # {source}", format!("{key} = {value}")));
        }
        Ok(lines.join("\n"))
    }
}

fn known_keys(table: &toml::Table) -> String {
    table.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// Reads an environment value as the type of the default it replaces.
fn env_value(raw: &str, default: &toml::Value) -> Result<toml::Value> {
    Ok(match default {
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("expected a whole number"))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(
            raw.trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("expected true or false"))?,
        ),
        _ => toml::Value::String(raw.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_user_file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "n = 8\nsampler = \"mine\"\n").unwrap();
        let env = vec![
            ("GANTRY_N".to_string(), "2".to_string()),
            ("GANTRY_DATA_DIR".to_string(), "/x".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let r = Resolved::load_from(&file, &env).unwrap();
        assert_eq!(r.values.n, 2);
        assert_eq!(r.values.sampler, "mine");
        assert_eq!(r.values.device, "auto");
        assert_eq!(r.sources["n"], Source::Env("GANTRY_N".into()));
        assert_eq!(r.sources["sampler"], Source::UserFile(file.clone()));
        assert_eq!(r.sources["device"], Source::Default);
        let text = r.describe().unwrap();
        assert!(text.contains("n = 2"), "{text}");
        assert!(text.contains("env GANTRY_N"), "{text}");
    }

    #[test]
    fn unknown_key_and_bad_values_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "nn = 8\n").unwrap();
        let err = format!("{:#}", Resolved::load_from(&file, &[]).unwrap_err());
        assert!(err.contains("unknown key 'nn'"), "{err}");

        std::fs::write(&file, "n = \"four\"\n").unwrap();
        let err = format!("{:#}", Resolved::load_from(&file, &[]).unwrap_err());
        assert!(err.contains("invalid"), "{err}");

        let env = vec![("GANTRY_SEED".to_string(), "abc".to_string())];
        let missing = dir.path().join("none.toml");
        let err = format!("{:#}", Resolved::load_from(&missing, &env).unwrap_err());
        assert!(err.contains("GANTRY_SEED=abc"), "{err}");
    }
}
