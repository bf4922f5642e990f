//! Installing plugins as a user does: copy the template, rename it, install
//! it, see it, use it, remove it; and refusing what is not a plugin.

mod common;
use common::{built_library, Sandbox};

/// Copies plugins/template into `dest` as a plugin called `name`.
fn copy_template(dest: &std::path::Path, name: &str) {
    let template = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/template");
    std::fs::create_dir_all(dest.join("src")).unwrap();
    let api = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/api");
    let manifest = std::fs::read_to_string(template.join("Cargo.toml"))
        .unwrap()
        .replace("name = \"my-sampler\"", &format!("name = \"{name}\""))
        .replace(
            "path = \"../api\"",
            &format!("path = \"{}\"", api.display()),
        );
    std::fs::write(dest.join("Cargo.toml"), manifest).unwrap();
    let source = std::fs::read_to_string(template.join("src/lib.rs"))
        .unwrap()
        .replace("name = \"my-sampler\"", &format!("name = \"{name}\""));
    std::fs::write(dest.join("src/lib.rs"), source).unwrap();
}

#[test]
fn the_template_installs_lists_works_and_removes() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let crate_dir = sandbox.path().join("my-flower-sampler");
    copy_template(&crate_dir, "my-flower-sampler");

    let installed = sandbox.run(&["plugin", "install", crate_dir.to_str().unwrap()]);
    assert!(installed.status.success());
    let out = String::from_utf8_lossy(&installed.stdout);
    assert!(
        out.contains("installed my-flower-sampler 0.1.0 (sampler"),
        "{out}"
    );
    // A plugin with a name of its own replaces nothing.
    assert!(!out.contains("replaces"), "{out}");
    // Building a crate says so before cargo starts.
    let err = String::from_utf8_lossy(&installed.stderr);
    assert!(err.contains("building the plugin crate"), "{err}");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.path().join("data/plugins/my-flower-sampler.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["kind"], "sampler");
    assert_eq!(manifest["sha256"].as_str().unwrap().len(), 64);

    let list = sandbox.ok(&["plugin", "list"]);
    let row = list
        .lines()
        .find(|l| l.starts_with("my-flower-sampler"))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        row.contains("sampler") && row.contains("ok") && row.contains("installed from"),
        "{row}"
    );

    // Used from the command line and from a script, with an option.
    sandbox.ok(&[
        "generate",
        "a flower",
        "-n",
        "1",
        "-m",
        "m",
        "--sampler",
        "my-flower-sampler",
        "-o",
        "a",
    ]);
    std::fs::write(
        sandbox.path().join("s.gantry"),
        ":sampler my-flower-sampler scale=0.5\n:n 1\na red flower\n",
    )
    .unwrap();
    let out = sandbox.ok(&["run", "s.gantry", "-m", "m", "-o", "b"]);
    assert!(out.contains("sampler my-flower-sampler scale=0.5"), "{out}");
    let png = out.lines().find(|l| l.ends_with(".png")).unwrap();
    let meta = gantry::imageio::read_png_metadata(&sandbox.path().join(png)).unwrap();
    assert!(meta.contains(&("sampler".to_string(), "my-flower-sampler".to_string())));

    let out = sandbox.ok(&["plugin", "remove", "my-flower-sampler"]);
    assert!(out.contains("removed my-flower-sampler"), "{out}");
    assert!(!sandbox
        .ok(&["plugin", "list"])
        .contains("my-flower-sampler"));
    let err = sandbox.fails(&[
        "generate",
        "a flower",
        "-m",
        "m",
        "--sampler",
        "my-flower-sampler",
    ]);
    assert!(
        err.contains("no sampler named 'my-flower-sampler'"),
        "{err}"
    );
    let err = sandbox.fails(&["plugin", "remove", "my-flower-sampler"]);
    assert!(
        err.contains("no installed plugin named 'my-flower-sampler'"),
        "{err}"
    );
}

#[test]
fn install_refuses_what_is_not_a_working_plugin() {
    let sandbox = Sandbox::new();
    let err = sandbox.fails(&[
        "plugin",
        "install",
        built_library("not_a_plugin").to_str().unwrap(),
    ]);
    assert!(err.contains("not a gantry plugin"), "{err}");
    let out = sandbox
        .gantry()
        .env("GANTRY_FAULT", "wrong-abi")
        .args([
            "plugin",
            "install",
            built_library("faulty_plugin").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("built for plugin ABI 42"));
    let err = sandbox.fails(&["plugin", "install", "no/such/thing"]);
    assert!(err.contains("no such file or folder"), "{err}");
    // Nothing was installed.
    assert!(
        !sandbox.path().join("data/plugins").exists()
            || std::fs::read_dir(sandbox.path().join("data/plugins"))
                .unwrap()
                .count()
                == 0
    );
}

#[test]
fn shipped_samplers_truncate_and_slerp() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    std::fs::write(
        sandbox.path().join("s.gantry"),
        ":sampler truncated psi=0.5\n:n 2\na red flower\n:sampler slerp\n:interp-z \"a red flower\" 4\n:sampler truncated psi=0\n",
    )
    .unwrap();
    let out = sandbox.run(&["run", "s.gantry", "-m", "m", "-o", "o"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(".png")).count(),
        6,
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("s.gantry:6:") && stderr.contains("psi must be between"),
        "{stderr}"
    );
}

#[test]
fn a_faulty_sampler_in_a_session_is_an_error_line_and_the_session_goes_on() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let plugin_dir = sandbox.path().join("data/plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::fs::copy(
        built_library("faulty_plugin"),
        plugin_dir.join("libfaulty_plugin.so"),
    )
    .unwrap();
    for (fault, expected) in [
        ("panic", "sample panicked"),
        ("nan", "non-finite value"),
        ("short", "non-finite value at index"),
    ] {
        std::fs::write(
            sandbox.path().join("s.gantry"),
            ":sampler faulty\na red flower\n",
        )
        .unwrap();
        let out = sandbox
            .gantry()
            .env("GANTRY_FAULT", fault)
            .args(["run", "s.gantry", "-m", "m", "-o", "o"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{fault}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("s.gantry:2: plugin 'faulty'") && stderr.contains(expected),
            "{fault}: {stderr}"
        );
    }
}

#[test]
fn a_plugin_with_the_name_of_a_shipped_one_says_it_replaces_it() {
    let sandbox = Sandbox::new();
    let library = built_library("gantry_sampler_gaussian");
    let out = sandbox.ok(&["plugin", "install", library.to_str().unwrap()]);
    assert!(
        out.contains("replaces the gaussian built with gantry"),
        "{out}"
    );
    let list = sandbox.ok(&["plugin", "list"]);
    let row = list
        .lines()
        .find(|l| l.starts_with("gaussian") && l.contains("installed from"))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(row.contains("replaces the one built with gantry"), "{row}");
}

/// `gantry plugin new` writes a crate that builds where it is written (the
/// plugin API comes with it), outside this repository; it installs and draws.
#[test]
fn plugin_new_writes_a_crate_that_installs_and_draws_anywhere() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let elsewhere = tempfile::tempdir().unwrap();
    assert!(!elsewhere.path().starts_with(env!("CARGO_MANIFEST_DIR")));
    let out = sandbox.ok(&[
        "plugin",
        "new",
        "lilac-sampler",
        elsewhere.path().to_str().unwrap(),
    ]);
    let crate_dir = elsewhere.path().join("lilac-sampler");
    assert!(out.contains("gantry plugin install"), "{out}");
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(!manifest.contains(env!("CARGO_MANIFEST_DIR")), "{manifest}");
    assert!(crate_dir.join("gantry-plugin-api/src/lib.rs").exists());

    let installed = sandbox.ok(&["plugin", "install", crate_dir.to_str().unwrap()]);
    assert!(
        installed.contains("installed lilac-sampler 0.1.0 (sampler"),
        "{installed}"
    );
    let drawn = sandbox.ok(&[
        "generate",
        "a flower",
        "-n",
        "1",
        "-m",
        "m",
        "--sampler",
        "lilac-sampler",
        "-o",
        "lilac",
    ]);
    assert!(drawn.contains(".png"), "{drawn}");
    // Its PNG records the sampler that drew it.
    let png = std::fs::read_dir(sandbox.path().join("lilac"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let meta = gantry::imageio::read_png_metadata(&png).unwrap();
    assert!(meta.contains(&("sampler".to_string(), "lilac-sampler".to_string())));

    // A name that is not one, or a folder that exists, is refused.
    let err = sandbox.fails(&[
        "plugin",
        "new",
        "Bad Name",
        elsewhere.path().to_str().unwrap(),
    ]);
    assert!(err.contains("is not a plugin name"), "{err}");
    let err = sandbox.fails(&[
        "plugin",
        "new",
        "lilac-sampler",
        elsewhere.path().to_str().unwrap(),
    ]);
    assert!(err.contains("already exists"), "{err}");
}
