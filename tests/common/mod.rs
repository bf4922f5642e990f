//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `../shared` beside the project, if this checkout has it.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    dir.is_dir().then_some(dir)
}

/// Skips a test (with a message saying why) when ../shared is absent.
#[macro_export]
macro_rules! require_shared {
    () => {
        match common::shared_dir() {
            Some(dir) => dir,
            None => {
                eprintln!(
                    "SKIPPED: ../shared is absent (it holds the datasets and fixtures; CI has it)"
                );
                return;
            }
        }
    };
}

/// The build folder of the running test (target/<profile>), where the
/// workspace's plugin libraries are.
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf()
}

/// A library built by the workspace, e.g. `libfaulty_plugin.so`.
pub fn built_library(stem: &str) -> PathBuf {
    let path = build_dir().join(format!("lib{stem}.so"));
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo build --release --workspace)",
        path.display()
    );
    path
}

/// A sandbox with its own config and data dirs, so tests never touch the
/// user's files or each other's.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn gantry(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gantry"));
        cmd.current_dir(self.path())
            .env("GANTRY_DATA_DIR", self.path().join("data"))
            .env("GANTRY_CONFIG_DIR", self.path().join("config"))
            .env("GANTRY_DEVICE", "cpu")
            .env_remove("GANTRY_NO_PLUGINS")
            .env_remove("GANTRY_MODEL")
            .env_remove("GANTRY_N")
            .env_remove("GANTRY_SEED")
            .env_remove("GANTRY_SAMPLER");
        cmd
    }

    /// Runs gantry with `args` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.gantry().args(args).output().expect("running gantry")
    }

    /// Runs gantry and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "gantry {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs gantry and asserts failure, returning stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "gantry {args:?} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Makes an untrained `tiny` model called `name` in the sandbox data dir.
    pub fn tiny_model(&self, name: &str) -> PathBuf {
        self.ok(&["model", "init", name, "--preset", "tiny"]);
        self.path().join("data/models").join(name)
    }

    /// A REPL session (the library's, no screen) on the sandbox's model
    /// `model`, on the CPU.
    #[allow(dead_code)]
    pub fn session(&self, model: &str) -> gantry::session::Session {
        let paths = gantry::config::Paths {
            config_dir: self.path().join("config"),
            data_dir: self.path().join("data"),
        };
        let mut config = gantry::config::Resolved::load_from(&paths.user_config_file(), &[])
            .unwrap()
            .values;
        config.model = model.into();
        config.device = "cpu".into();
        config.output_dir = self.path().join("out");
        gantry::session::Session::open(paths, config).unwrap()
    }
}
