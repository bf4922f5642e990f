//! The plugin host against real libraries: the shipped sampler and
//! deliberately faulty ones. A bad plugin is a clear error; nothing crashes.

mod common;
use common::{built_library, Sandbox};
use gantry::host::{self, Registry, Sampler};
use gantry_plugin_api::PluginKind;

#[test]
fn shipped_gaussian_sampler_loads_and_matches_its_own_code() {
    let plugin = host::load(&built_library("gantry_sampler_gaussian")).unwrap();
    assert_eq!(plugin.name, "gaussian");
    assert_eq!(plugin.kind, PluginKind::Sampler);
    let z = plugin.sample(&[5, 6], 100).unwrap();
    let mut expected = vec![0.0; 100];
    gantry_plugin_api::random::standard_normal(6, &mut expected);
    assert_eq!(&z[100..], &expected[..]);
    // No path of its own: the host falls back to a straight line.
    let a = vec![0.0; 3];
    let b = vec![1.0; 3];
    assert_eq!(plugin.path(&a, &b, 3).unwrap(), None);
    let line = Sampler::Plugin(plugin).path(&a, &b, 3).unwrap();
    assert_eq!(line, vec![0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0]);
}

/// All fault modes in one test: the fixture reads GANTRY_FAULT, which is
/// process-wide, so these must not run in parallel with each other.
#[test]
fn faulty_plugins_give_clear_errors() {
    let path = built_library("faulty_plugin");
    let load_with = |fault: &str| {
        std::env::set_var("GANTRY_FAULT", fault);
        host::load(&path)
    };
    let message = |r: anyhow::Result<Vec<f32>>| format!("{:#}", r.unwrap_err());

    let err = format!("{:#}", load_with("wrong-abi").err().unwrap());
    assert!(
        err.contains("built for plugin ABI 42") && err.contains("rebuild"),
        "{err}"
    );
    let err = format!("{:#}", load_with("null-name").err().unwrap());
    assert!(err.contains("no name"), "{err}");
    let err = format!("{:#}", load_with("bad-kind").err().unwrap());
    assert!(err.contains("unknown plugin kind 99"), "{err}");

    let plugin = load_with("").unwrap();
    assert_eq!(plugin.sample(&[1], 4).unwrap(), vec![0.25; 4]);

    std::env::set_var("GANTRY_FAULT", "panic");
    let err = message(plugin.sample(&[1], 4));
    assert!(
        err.contains("panicked: the faulty plugin panics on purpose"),
        "{err}"
    );
    // The host, and the plugin, still work after the panic.
    std::env::set_var("GANTRY_FAULT", "");
    assert!(plugin.sample(&[1], 4).is_ok());

    std::env::set_var("GANTRY_FAULT", "nan");
    let err = message(plugin.sample(&[1], 4));
    assert!(err.contains("non-finite value at index 0"), "{err}");

    std::env::set_var("GANTRY_FAULT", "short");
    let err = message(plugin.sample(&[1, 2], 4));
    assert!(err.contains("non-finite value at index 4 of 8"), "{err}");

    std::env::set_var("GANTRY_FAULT", "error");
    let err = message(plugin.sample(&[1], 4));
    assert!(
        err.contains("sample failed: the faulty plugin reports an error"),
        "{err}"
    );
    std::env::remove_var("GANTRY_FAULT");
}

#[test]
fn libraries_that_are_not_plugins_are_refused() {
    let err = format!(
        "{:#}",
        host::load(&built_library("not_a_plugin")).err().unwrap()
    );
    assert!(
        err.contains("not a gantry plugin (no `gantry_plugin_declaration` symbol)"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("libgarbage.so");
    std::fs::write(&garbage, "this is text, not ELF").unwrap();
    let err = format!("{:#}", host::load(&garbage).err().unwrap());
    assert!(err.contains("libgarbage.so: cannot load"), "{err}");
}

#[test]
fn discovery_skips_broken_plugins_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        built_library("not_a_plugin"),
        dir.path().join("libnot_a_plugin.so"),
    )
    .unwrap();
    std::fs::write(dir.path().join("libgarbage.so"), "junk").unwrap();
    let registry = Registry::discover(&host::search_dirs(dir.path()));
    assert_eq!(registry.broken.len(), 2, "{:?}", registry.broken);
    assert!(registry.find(PluginKind::Sampler, "gaussian").is_some());
}

#[test]
fn the_program_goes_on_past_a_broken_plugin() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let plugin_dir = sandbox.path().join("data/plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::fs::copy(
        built_library("not_a_plugin"),
        plugin_dir.join("libnot_a_plugin.so"),
    )
    .unwrap();
    std::fs::copy(
        built_library("faulty_plugin"),
        plugin_dir.join("libfaulty_plugin.so"),
    )
    .unwrap();

    let out = sandbox
        .gantry()
        .args(["generate", "a flower", "-n", "1", "-m", "m", "-o", "o"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plugin skipped") && stderr.contains("not a gantry plugin"),
        "{stderr}"
    );

    // Choosing the panicking sampler fails that command with a clear message.
    let out = sandbox
        .gantry()
        .env("GANTRY_FAULT", "panic")
        .args([
            "generate",
            "a flower",
            "-n",
            "1",
            "-m",
            "m",
            "--sampler",
            "faulty",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plugin 'faulty': sample panicked"),
        "{stderr}"
    );

    // With plugins off, none is loaded and the built-in Gaussian is used.
    let out = sandbox
        .gantry()
        .env("GANTRY_NO_PLUGINS", "1")
        .arg("plugins")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("turned off"));
}

/// A manifest is outside input: one naming a library outside the plugin
/// folder (`../victim`) is refused by `plugin remove`, which deletes nothing.
#[test]
fn plugin_remove_never_deletes_outside_the_plugin_folder() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep me").unwrap();
    let manifest = r#"{"name":"evil","kind":"sampler","version":"1","abi":1,"sha256":"0","source":"x","file":"../victim"}"#;
    std::fs::write(plugins.join("evil.json"), manifest).unwrap();
    let err = gantry::plugin_manager::remove(&plugins, "evil").unwrap_err();
    assert!(
        format!("{err:#}").contains("not a file name in the plugin folder"),
        "{err:#}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert!(plugins.join("evil.json").exists(), "nothing is removed");
    assert!(gantry::plugin_manager::installed(&plugins).is_empty());
}
