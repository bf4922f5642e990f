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
