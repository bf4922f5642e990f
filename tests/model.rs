//! The networks' sizes against the paper, and the caption encoder against
//! real human-written captions.

mod common;
use gantry::model::{ModelConfig, TextEncoder, Upsampling};
use gantry::text;
use gantry::weights::Model;
use tch::Device;

#[test]
fn reed_preset_matches_the_reference_parameter_counts() {
    let model = Model::new(
        "reed",
        &ModelConfig::preset("reed").unwrap(),
        Device::Cpu,
        0,
    )
    .unwrap();
    let counts: std::collections::HashMap<_, _> = model.parameter_counts().into_iter().collect();
    // The same architecture in PyTorch: G 18,905,472 and D 4,030,080.
    assert_eq!(counts["generator"], 18_905_472);
    assert_eq!(counts["discriminator"], 4_030_080);
    assert_eq!(TextEncoder::time_steps(), 18);
}

#[test]
fn initialisation_follows_the_paper() {
    let model = Model::new(
        "reed",
        &ModelConfig::preset("reed").unwrap(),
        Device::Cpu,
        0,
    )
    .unwrap();
    let vars = model.generator.vs.variables();
    let conv = &vars["generator.up8.weight"];
    let std = conv.std(true).double_value(&[]);
    assert!((std - 0.02).abs() < 0.001, "conv std {std}");
    let gamma = &vars["generator.up8_bn.weight"];
    assert!((gamma.mean(tch::Kind::Float).double_value(&[]) - 1.0).abs() < 0.01);
    let beta = &vars["generator.up8_bn.bias"];
    assert_eq!(beta.abs().sum(tch::Kind::Float).double_value(&[]), 0.0);
    assert!(!vars
        .keys()
        .any(|k| k.starts_with("generator.up") && k.ends_with("up8.bias")));
}

#[test]
fn every_real_cub_caption_encodes() {
    let shared = require_shared!();
    let root = shared.join("fixtures/cub_text_c10_sample");
    let mut files = 0;
    let mut captions = 0;
    for class in std::fs::read_dir(&root).unwrap().flatten() {
        if !class.path().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(class.path()).unwrap().flatten() {
            let text = std::fs::read_to_string(file.path()).unwrap();
            files += 1;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let encoded = text::encode(line)
                    .unwrap_or_else(|e| panic!("{}: {line:?}: {e}", file.path().display()));
                assert!(!encoded.slots.is_empty());
                captions += 1;
            }
        }
    }
    assert_eq!(files, 400);
    assert!(captions >= 3900, "{captions} captions");
}

#[test]
fn a_model_folder_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let config = ModelConfig::preset("tiny").unwrap();
    let mut model = Model::new("t", &config, Device::Cpu, 5).unwrap();
    model.save(dir.path(), false).unwrap();
    let loaded = Model::load(dir.path(), Device::Cpu).unwrap();
    for (name, var) in model.generator.vs.variables() {
        let other = &loaded.generator.vs.variables()[&name];
        assert!(var.equal(other), "{name} differs after save and load");
    }
    // f16 for shipping loads back to f32 within half precision.
    let half_dir = dir.path().join("half");
    model.save(&half_dir, true).unwrap();
    let half = Model::load(&half_dir, Device::Cpu).unwrap();
    let a = &model.generator.vs.variables()["generator.up4.weight"];
    let b = &half.generator.vs.variables()["generator.up4.weight"];
    assert_eq!(b.kind(), tch::Kind::Float);
    assert!(a.allclose(b, 1e-3, 1e-4, false));
}

#[test]
fn truncated_safetensors_is_reported_with_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let model = Model::new("t", &ModelConfig::preset("tiny").unwrap(), Device::Cpu, 5).unwrap();
    let path = dir.path().join("g.safetensors");
    gantry::weights::save_var_store(&model.generator.vs, &path, false).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let err = format!(
        "{:#}",
        gantry::weights::load_var_store(&model.generator.vs, &path).unwrap_err()
    );
    assert!(err.contains("g.safetensors: truncated at byte"), "{err}");
    std::fs::write(&path, &bytes[..4]).unwrap();
    let err = format!(
        "{:#}",
        gantry::weights::load_var_store(&model.generator.vs, &path).unwrap_err()
    );
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn text_standardisation_round_trips_through_the_card_and_shapes_what_g_reads() {
    use gantry::model::Conditioning;
    let dir = tempfile::tempdir().unwrap();
    let config = ModelConfig::preset("tiny").unwrap();
    let e = config.generator.embedding_dim;
    let mut model = Model::new("t", &config, Device::Cpu, 5).unwrap();
    // A tiny-scale embedding, as the joint embedding gives: mean 0.02,
    // spread 0.01 per dimension.
    let captions = tch::Tensor::randn([200, 4, e], (tch::Kind::Float, Device::Cpu)) * 0.01 + 0.02;
    let stats = Conditioning::standardised_from(&captions).unwrap();
    let Conditioning::Standardised { mean, std } = &stats else {
        panic!("not standardised");
    };
    assert!(mean.iter().all(|m| (m - 0.02).abs() < 0.005), "{mean:?}");
    assert!(std.iter().all(|s| (s - 0.01).abs() < 0.003), "{std:?}");
    let z = tch::Tensor::randn([3, 100], (tch::Kind::Float, Device::Cpu));
    let text = captions.get(0).narrow(0, 0, 3);
    let raw_images = model.generator.net.forward_t(&z, &text, false);
    model.set_conditioning(stats.clone()).unwrap();
    let images = model.generator.net.forward_t(&z, &text, false);
    assert!(
        !images.allclose(&raw_images, 1e-4, 1e-4, false),
        "conditioning changed nothing"
    );

    model.save(dir.path(), false).unwrap();
    let card = std::fs::read_to_string(dir.path().join("model.json")).unwrap();
    assert!(card.contains("\"standardised\""), "{card}");
    let loaded = Model::load(dir.path(), Device::Cpu).unwrap();
    assert_eq!(loaded.card.architecture.conditioning, stats);
    let again = loaded.generator.net.forward_t(&z, &text, false);
    assert!(
        again.allclose(&images, 1e-6, 1e-6, false),
        "G reads text differently after loading"
    );

    // A raw model's card says nothing about conditioning (older cards load as raw).
    let raw_dir = dir.path().join("raw");
    Model::new("r", &config, Device::Cpu, 5)
        .unwrap()
        .save(&raw_dir, false)
        .unwrap();
    let raw_card = std::fs::read_to_string(raw_dir.join("model.json")).unwrap();
    assert!(!raw_card.contains("conditioning"), "{raw_card}");

    // Statistics that do not fit the embedding, or a zero spread, are refused.
    let short = Conditioning::Standardised {
        mean: vec![0.0; 3],
        std: vec![1.0; 3],
    };
    let err = format!("{:#}", model.set_conditioning(short).unwrap_err());
    assert!(err.contains(&format!("{e}-d embedding")), "{err}");
    let card = card.replacen("\"std\": [\n", "\"std\": [\n        0.0,\n", 1);
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
        if f.path().extension().is_some_and(|x| x == "safetensors") {
            std::fs::copy(f.path(), broken.join(f.file_name())).unwrap();
        }
    }
    std::fs::write(broken.join("model.json"), card).unwrap();
    let err = format!("{:#}", Model::load(&broken, Device::Cpu).unwrap_err());
    assert!(err.contains("standardisation"), "{err}");
}

#[test]
fn the_text_projections_start_as_torch7_and_pytorch_start_them() {
    let model = Model::new(
        "reed",
        &ModelConfig::preset("reed").unwrap(),
        Device::Cpu,
        0,
    )
    .unwrap();
    for (vs, name) in [
        (&model.generator.vs, "generator.text_projection.weight"),
        (
            &model.discriminator.vs,
            "discriminator.text_projection.weight",
        ),
    ] {
        let w = &vs.variables()[name];
        let bound = 1.0 / (w.size()[1] as f64).sqrt();
        let max = w.abs().max().double_value(&[]);
        assert!(
            max <= bound && max > 0.9 * bound,
            "{name}: max {max}, bound {bound}"
        );
    }
}

#[test]
fn a_card_with_absurd_sizes_is_refused_before_anything_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new("t", &ModelConfig::preset("tiny").unwrap(), Device::Cpu, 5).unwrap();
    model.save(dir.path(), false).unwrap();
    let path = dir.path().join("model.json");
    let mut card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    card["architecture"]["generator"]["ngf"] = 100_000_000.into();
    std::fs::write(&path, card.to_string()).unwrap();
    let err = format!("{:#}", Model::load(dir.path(), Device::Cpu).unwrap_err());
    assert!(
        err.contains("model.json") && err.contains("generator.ngf is 100000000"),
        "{err}"
    );
}

#[test]
fn a_folder_with_only_the_text_side_loads_for_training_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new("t", &ModelConfig::preset("tiny").unwrap(), Device::Cpu, 5).unwrap();
    model.save(dir.path(), true).unwrap();
    let path = dir.path().join("model.json");
    let mut card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for net in ["generator", "discriminator", "style_encoder"] {
        card["files"].as_object_mut().unwrap().remove(net);
        std::fs::remove_file(dir.path().join(format!("{net}.safetensors"))).unwrap();
    }
    std::fs::write(&path, card.to_string()).unwrap();
    let err = format!("{:#}", Model::load(dir.path(), Device::Cpu).unwrap_err());
    assert!(err.contains("lists no file for the generator"), "{err}");
    let text_side = Model::load_text_side(dir.path(), Device::Cpu).unwrap();
    let a = &model.text_encoder.vs.variables()["text_encoder.projection.weight"];
    let b = &text_side.text_encoder.vs.variables()["text_encoder.projection.weight"];
    assert!(a.allclose(b, 1e-3, 1e-4, false));
}

use gantry::model::folded::levels_apart;

#[test]
fn folded_generator_draws_the_pixels_of_the_network_it_folds() {
    use gantry::model::Conditioning;
    use tch::{Kind, Tensor};
    tch::manual_seed(3);
    // A fresh G whose batch norms hold statistics far from (0, 1) and whose
    // text is standardised: every part of the folding matters.
    let config = ModelConfig::preset("tiny").unwrap();
    let e = config.generator.embedding_dim;
    let perturbed = |config: &ModelConfig| {
        let mut fresh = Model::new("f", config, Device::Cpu, 9).unwrap();
        tch::no_grad(|| {
            for (name, mut t) in fresh.generator.vs.variables() {
                let n = t.size()[0];
                let values = if name.ends_with("running_var") {
                    Tensor::rand([n], (Kind::Float, Device::Cpu)) * 1.5 + 0.5
                } else if name.ends_with("running_mean") || name.ends_with("_bn.bias") {
                    Tensor::randn([n], (Kind::Float, Device::Cpu)) * 0.5
                } else if name.ends_with("_bn.weight") {
                    Tensor::rand([n], (Kind::Float, Device::Cpu)) + 0.5
                } else if t.dim() == 4 {
                    // DCGAN's N(0, 0.02) barely passes a signal untrained.
                    &t * 8.0
                } else {
                    continue;
                };
                t.copy_(&values);
            }
        });
        let stats = Conditioning::Standardised {
            mean: (0..e).map(|i| 0.01 * (i % 7) as f32).collect(),
            std: (0..e).map(|i| 0.02 + 0.01 * (i % 5) as f32).collect(),
        };
        fresh.set_conditioning(stats).unwrap();
        fresh
    };
    let fresh_text = || Tensor::randn([64, e], (Kind::Float, Device::Cpu)) * 0.02;
    let mut cases = vec![("fresh, standardised", perturbed(&config), fresh_text())];
    // The last layer, or every doubling, as a nearest-neighbour (or
    // bilinear) upsampling and a 3x3 convolution (with its batch norm folded in).
    for (what, upsampling) in [
        ("fresh, resize-last", Upsampling::ResizeLast),
        ("fresh, resize", Upsampling::Resize),
        ("fresh, bilinear", Upsampling::Bilinear),
    ] {
        let mut resize = config.clone();
        resize.generator.upsampling = upsampling;
        cases.push((what, perturbed(&resize), fresh_text()));
    }
    // The shipped model, on real captions.
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/procedural-flowers");
    let model = Model::load(&shipped, Device::Cpu).unwrap();
    let captions: Vec<String> = (0..64)
        .map(|i| {
            format!(
                "a flower with {} round red petals and a yellow centre",
                3 + i % 6
            )
        })
        .collect();
    let text = gantry::eval::embed(&model, &captions).unwrap();
    cases.push(("shipped procedural-flowers", model, text));

    for (what, model, text) in cases {
        let g = &model.generator.net;
        let z = Tensor::randn([64, g.config.nz], (Kind::Float, Device::Cpu));
        let unfolded = tch::no_grad(|| g.forward_t(&z, &text, false));
        let folded = g.folded();
        let drawn: Vec<Tensor> = folded.draw_chunks(&z, &text, 24).collect();
        let drawn = Tensor::cat(&drawn, 0);
        assert_eq!(drawn.size(), unfolded.size(), "{what}");
        let apart = levels_apart(&drawn, &unfolded);
        assert!(apart <= 1.0, "{what}: folded G is {apart:.3} levels off");
        // Not the same by accident: the pictures vary with z.
        let spread = levels_apart(&unfolded.get(0), &unfolded.get(1));
        eprintln!("{what}: {apart:.4} levels apart; two z {spread:.1} apart");
        assert!(spread > 10.0, "{what}");

        // A lower precision draws in f32's place only within the bound it
        // is given (on a GPU: half, within one level). Here bfloat16, which
        // the CPU has, keeps 8 bits of mantissa: far more than one level off.
        let calibration = (z.narrow(0, 0, 16), text.narrow(0, 0, 16));
        let (kept, levels) =
            g.folded()
                .in_precision(Kind::BFloat16, &calibration.0, &calibration.1, 1.0);
        assert!(levels > 1.0, "{what}: bfloat16 {levels} levels off");
        assert_eq!(kept.kind(), Kind::Float, "{what}");
        let again: Vec<Tensor> = kept.draw_chunks(&z, &text, 64).collect();
        assert!(
            levels_apart(&again[0], &drawn) < 1e-3,
            "{what}: the f32 G changed"
        );
        let (lower, measured) =
            g.folded()
                .in_precision(Kind::BFloat16, &calibration.0, &calibration.1, levels);
        assert_eq!(lower.kind(), Kind::BFloat16, "{what}");
        assert_eq!(measured, levels, "{what}");
        let low: Vec<Tensor> = lower
            .draw_chunks(&calibration.0, &calibration.1, 16)
            .collect();
        assert_eq!(low[0].kind(), Kind::Float, "pixels come back in f32");
        let off = levels_apart(&low[0], &drawn.narrow(0, 0, 16));
        assert!(off <= levels + 1e-3, "{what}: {off} vs {levels}");
    }
}
