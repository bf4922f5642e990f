//! Every input committed for the fuzz targets (`fuzz/seeds/<target>/`, and the
//! inputs of crashes fixed, `fuzz/regressions/<target>/`) runs through the
//! target's checks here, so CI keeps them passing without a fuzzer.
//! (`scripts/fuzz.sh` does the fuzzing itself, on the nightly toolchain.)

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for folder in ["seeds", "regressions"] {
        let dir = root.join(folder).join(target);
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            out.push((entry.path().display().to_string(), bytes));
        }
    }
    out.sort();
    out
}

fn run(target: &str, check: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no committed inputs for {target}");
    for (name, bytes) in inputs {
        eprintln!("{name}");
        check(&bytes);
    }
}

#[test]
fn parsers_of_text_hold_their_properties_on_the_committed_inputs() {
    run("line", checks::line);
    run("caption", checks::caption);
    run("png", checks::png);
    run("model_card", checks::model_card);
    run("config", checks::config);
    run("manifest", checks::manifest);
}

#[test]
fn sessions_replays_and_datasets_survive_the_committed_inputs() {
    run("session", checks::session);
    run("replay", checks::replay);
    run("dataset", checks::dataset);
}
