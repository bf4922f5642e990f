//! The models in weights/ load, draw, and carry their measurements.

use std::path::Path;

fn weights() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/weights"))
}

#[test]
fn shipped_models_load_and_draw() {
    for name in ["procedural-flowers", "oxford102"] {
        let dir = weights().join(name);
        let model = gantry::weights::Model::load(&dir, tch::Device::Cpu)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(model.card.trained, "{name} is marked untrained");
        assert!(
            model.card.files.values().all(|f| f.dtype == "f16"),
            "{name} should ship as f16"
        );
        let eval_key = model.card.metrics.keys().find(|k| k.starts_with("eval: "));
        assert!(eval_key.is_some(), "{name}: card has no evaluation");
        let runtime = gantry::runtime::Runtime::new(model, gantry::host::Sampler::BuiltinGaussian);
        let out = runtime
            .generate("a red flower with round petals", 2, 0)
            .unwrap();
        assert_eq!(out.images.len(), 2);
        // Not a constant image.
        let px = &out.images[0].rgb;
        assert!(px.iter().any(|&v| v != px[0]), "{name} drew a flat image");
    }
}

#[test]
fn the_probe_reads_every_attribute_at_98_percent() {
    let probe =
        gantry::probe::LoadedProbe::load(&weights().join("probe"), tch::Device::Cpu).unwrap();
    for attribute in gantry::probe::PROBED {
        let accuracy = probe.card.accuracy[attribute];
        assert!(accuracy >= 0.98, "{attribute}: {accuracy}");
    }
}

/// A lent GPU gets the working tree (every tracked file) plus what is carried
/// (the binary and its plugins, 2 MiB as scripts/device-pack.sh packs them),
/// 64 MiB in all: weights committed past 61 MiB would leave no GPU window
/// able to start.
#[test]
fn the_tracked_files_leave_room_to_carry_the_binary_to_a_gpu() {
    let root = env!("CARGO_MANIFEST_DIR");
    let listed = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success());
    let Some(listed) = listed else {
        eprintln!("skipped: {root} is not a git checkout (or git is missing)");
        return;
    };
    let mut files: Vec<(u64, String)> = listed
        .stdout
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .filter_map(|p| {
            let size = std::fs::metadata(Path::new(root).join(&p)).ok()?.len();
            Some((size, p))
        })
        .collect();
    let total: u64 = files.iter().map(|(s, _)| s).sum();
    files.sort();
    let largest: Vec<String> = files
        .iter()
        .rev()
        .take(5)
        .map(|(s, p)| format!("{p} {:.1} MiB", *s as f64 / 1048576.0))
        .collect();
    assert!(
        total <= 61 << 20,
        "tracked files take {:.1} MiB, over 61: largest {largest:?}",
        total as f64 / 1048576.0
    );
}
