//! Training on tiny presets: the GAN-INT-CLS step does what paper.md §4 says,
//! resuming is exact, and a killed run leaves a checkpoint that loads.

mod common;
use common::Sandbox;
use gantry::dataset::Dataset;
use gantry::host::{self, Registry};
use gantry::model::ModelConfig;
use gantry::train::gan::{
    GanConfig, GanTrainer, StepTrace, Variant, WrongImages, FRESH_ADAM_WARMUP,
};
use gantry::train::optim::Optimizer;
use gantry::train::text_encoder::{symmetric_hinge, JointConfig, JointTrainer, Matching};
use gantry::training_set::{OnError, Rng, TrainingSet};
use gantry::weights::Model;
use tch::{Device, Kind, Tensor};

fn flowers(count: usize) -> TrainingSet {
    let registry = Registry::discover(&host::search_dirs(std::path::Path::new("/nonexistent")));
    let options = vec![("count".to_string(), count.to_string())];
    let mut dataset =
        Dataset::open(&registry, &"procedural-flowers".parse().unwrap(), &options).unwrap();
    TrainingSet::load(&mut dataset, None, OnError::Stop, &mut |_, _| {}).unwrap()
}

fn tiny_model() -> Model {
    Model::new(
        "tiny",
        &ModelConfig::preset("tiny").unwrap(),
        Device::Cpu,
        3,
    )
    .unwrap()
}

fn snapshot(vs: &tch::nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn embeddings(model: &Model, set: &TrainingSet) -> Tensor {
    gantry::train::embed_captions(
        &model.text_encoder.net,
        set,
        10,
        Device::Cpu,
        &mut |_, _| {},
    )
    .unwrap()
}

#[test]
fn wrong_images_come_from_other_classes_or_any_other_image() {
    let set = flowers(400);
    let train = set.split(false);
    let batch = &train[..64];
    let mut same_class = 0;
    for wrong in [WrongImages::Class, WrongImages::Image] {
        let model = tiny_model();
        let e = embeddings(&model, &set);
        let config = GanConfig {
            wrong,
            ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
        };
        let mut trainer = GanTrainer::new(model, config, &set, e).unwrap();
        for _ in 0..10 {
            let picked = trainer.wrong_images(batch);
            for (&i, &j) in batch.iter().zip(&picked) {
                assert_ne!(i, j, "an image is never its own wrong image");
                assert!(train.contains(&j), "wrong images are training images");
                if set.classes[i] == set.classes[j] {
                    assert_eq!(
                        wrong,
                        WrongImages::Image,
                        "class mode drew image {j} of {i}'s class"
                    );
                    same_class += 1;
                }
            }
        }
    }
    // Image mode draws from all training images: with 19 training classes
    // about 1 in 19 of the 640 draws shares the class, so D also sees wrong
    // images that differ only in centre colour or petal count.
    assert!(
        same_class > 5,
        "image mode never drew from the same class ({same_class})"
    );
}

/// The content attributes (colour, shape, count, centre) in which two
/// images differ.
fn differing_content(set: &TrainingSet, i: usize, j: usize) -> Vec<&'static str> {
    [
        "petal_colour",
        "petal_shape",
        "petal_count",
        "centre_colour",
    ]
    .into_iter()
    .filter(|a| set.attributes[i][*a] != set.attributes[j][*a])
    .collect()
}

#[test]
fn sibling_wrong_images_differ_in_one_content_attribute_of_each_kind() {
    let set = flowers(400);
    let train = set.split(false);
    let model = tiny_model();
    let e = embeddings(&model, &set);
    let config = GanConfig {
        wrong: WrongImages::Sibling,
        ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
    };
    let mut trainer = GanTrainer::new(model, config, &set, e).unwrap();
    let mut by_attribute = std::collections::BTreeMap::new();
    let mut draws = 0;
    for start in (0..640).step_by(64) {
        let batch: Vec<usize> = (start..start + 64)
            .map(|k| train[k % train.len()])
            .collect();
        for (k, (&i, j)) in batch.iter().zip(trainer.wrong_images(&batch)).enumerate() {
            assert!(train.contains(&j), "wrong images are training images");
            assert_ne!(i, j);
            let differ = differing_content(&set, i, j);
            if k % 2 == 0 {
                assert_eq!(differ.len(), 1, "the even places are siblings");
            }
            // An image with no sibling among 400 renders gets any other.
            if differ.len() == 1 {
                *by_attribute.entry(differ[0]).or_insert(0) += 1;
            }
            draws += 1;
        }
    }
    // Half are siblings (the even places), half any other image (which
    // differs in one attribute alone about one time in ten).
    let siblings: usize = by_attribute.values().sum();
    assert!(
        siblings * 100 >= draws * 45 && siblings * 100 <= draws * 65,
        "{siblings} of {draws} wrong images were siblings"
    );
    // Each attribute is the one that differs about a quarter of the time.
    for attribute in [
        "petal_colour",
        "petal_shape",
        "petal_count",
        "centre_colour",
    ] {
        let n = by_attribute.get(attribute).copied().unwrap_or(0);
        assert!(
            n * 8 >= siblings,
            "{attribute} differed in {n} of {siblings} siblings: {by_attribute:?}"
        );
    }
}

/// `d_rejects` reads how much D's verdict depends on each attribute a
/// caption states: a D whose text path is cut rejects nothing.
#[test]
fn d_rejects_reads_what_d_checks_against_the_text() {
    let set = flowers(300);
    let model = tiny_model();
    let train = set.split(false);
    let fresh = gantry::eval::d_rejects(&model, &set, &train, 0).unwrap();
    let labels: Vec<&str> = fresh.iter().map(|r| r.label).collect();
    assert_eq!(labels, ["colour", "shape", "count", "centre"]);
    // A fresh D reads its text input at random: a changed caption moves it.
    assert!(
        fresh.iter().all(|r| r.drop() != 0.0),
        "{:?}",
        fresh.iter().map(|r| r.drop()).collect::<Vec<_>>()
    );
    tch::no_grad(|| {
        for (name, mut v) in model.discriminator.vs.variables() {
            if name.ends_with("text_projection.weight") {
                let _ = v.zero_();
            }
        }
    });
    for r in gantry::eval::d_rejects(&model, &set, &train, 0).unwrap() {
        assert!((0.0..=1.0).contains(&r.right), "{}", r.right);
        assert!(
            r.drop().abs() < 1e-6,
            "{}: D without its text changed by {}",
            r.label,
            r.drop()
        );
    }
}

#[test]
fn sibling_wrong_images_are_refused_without_content_attributes() {
    let mut set = flowers(200);
    for attributes in &mut set.attributes {
        attributes.clear();
    }
    let model = tiny_model();
    let e = embeddings(&model, &set);
    let config = GanConfig {
        wrong: WrongImages::Sibling,
        ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
    };
    let err = GanTrainer::new(model, config, &set, e)
        .err()
        .expect("refused");
    let message = format!("{err:#}");
    assert!(
        message.contains("--wrong sibling") && message.contains("content attributes"),
        "{message}"
    );
}

#[test]
fn gan_int_cls_step_feeds_the_networks_as_the_paper_says() {
    let set = flowers(400);
    let model = tiny_model();
    let e = embeddings(&model, &set);
    let config = GanConfig {
        steps: Some(3),
        ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
    };
    let mut trainer = GanTrainer::new(model, config, &set, e).unwrap();
    let g_before = snapshot(&trainer.model.generator.vs);
    let d_before = snapshot(&trainer.model.discriminator.vs);
    for _ in 0..3 {
        let losses = trainer.gan_step().unwrap().read().unwrap();
        for key in ["d_loss", "g_loss", "d_real", "d_wrong", "d_fake"] {
            assert!(losses[key].is_finite(), "{key} = {}", losses[key]);
        }
    }
    assert_eq!(
        trainer.last_trace,
        Some(StepTrace {
            generator_batch: 96,
            interpolated: 32,
            discriminator_inputs: vec![
                ("real", "right", 64),
                ("wrong", "right", 64),
                ("fake", "right", 64)
            ],
            generator_scored: vec![("right", 64), ("interpolated", 32)],
        })
    );
    // Weights moved (BN running statistics aside, every trainable tensor).
    let changed = |before: &[(String, Tensor)], vs: &tch::nn::VarStore| {
        let now = vs.variables();
        before.iter().filter(|(n, t)| !t.equal(&now[n])).count()
    };
    assert!(changed(&g_before, &trainer.model.generator.vs) > g_before.len() / 2);
    assert!(changed(&d_before, &trainer.model.discriminator.vs) > d_before.len() / 2);
    // The text encoder is frozen during GAN training.
    let te = snapshot(&trainer.model.text_encoder.vs);
    trainer.gan_step().unwrap();
    assert_eq!(changed(&te, &trainer.model.text_encoder.vs), 0);
}

#[test]
fn label_smoothing_and_instance_noise_change_what_d_sees_and_default_to_the_paper() {
    let set = flowers(400);
    // Same weights (copied: other tests seed libtorch's global generator
    // concurrently), data and seed; the first step's losses.
    let base = tiny_model();
    let e = embeddings(&base, &set);
    let first_step = |real_label: f64, instance_noise: f64| {
        let mut model = tiny_model();
        model.generator.vs.copy(&base.generator.vs).unwrap();
        model.discriminator.vs.copy(&base.discriminator.vs).unwrap();
        let e = e.copy();
        let config = GanConfig {
            steps: Some(1),
            real_label,
            instance_noise,
            ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
        };
        let mut trainer = GanTrainer::new(model, config, &set, e).unwrap();
        trainer.gan_step().unwrap().read().unwrap()
    };
    let paper = first_step(1.0, 0.0);
    assert_eq!(paper, first_step(1.0, 0.0), "a step is deterministic");
    // The real label is D's target for real pairs: D's scores agree, its loss
    // does not.
    let smoothed = first_step(0.9, 0.0);
    assert_eq!(paper["d_real"], smoothed["d_real"]);
    assert!(
        (paper["d_loss"] - smoothed["d_loss"]).abs() > 1e-4,
        "{} vs {}",
        paper["d_loss"],
        smoothed["d_loss"]
    );
    // Instance noise changes the images D scores.
    let noisy = first_step(1.0, 0.5);
    for key in ["d_real", "d_wrong", "d_fake"] {
        assert_ne!(paper[key], noisy[key], "{key}");
    }

    // Out of range: refused with the reason.
    for (real_label, instance_noise, reason) in [
        (0.4, 0.0, "real label"),
        (1.2, 0.0, "real label"),
        (f64::NAN, 0.0, "real label"),
        (1.0, -0.1, "instance noise"),
        (1.0, f64::NAN, "instance noise"),
    ] {
        let config = GanConfig {
            real_label,
            instance_noise,
            ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
        };
        let err = GanTrainer::new(tiny_model(), config, &set, e.copy())
            .err()
            .unwrap();
        assert!(err.to_string().contains(reason), "{err}");
    }

    // A checkpoint written before the options existed resumes as the paper.
    let mut old = serde_json::to_value(GanConfig::paper(Variant::GanIntCls, "x")).unwrap();
    old.as_object_mut().unwrap().remove("real_label");
    old.as_object_mut().unwrap().remove("instance_noise");
    let read: GanConfig = serde_json::from_value(old).unwrap();
    assert_eq!((read.real_label, read.instance_noise), (1.0, 0.0));
}

#[test]
fn ablations_drop_the_parts_paper_md_names() {
    let set = flowers(200);
    let cases = [
        (Variant::Gan, 64, 0, vec!["real", "fake"]),
        (Variant::GanCls, 64, 0, vec!["real", "wrong", "fake"]),
        (Variant::GanInt, 96, 32, vec!["real", "fake"]),
    ];
    for (variant, g_batch, interpolated, d_images) in cases {
        let model = tiny_model();
        let e = embeddings(&model, &set);
        let mut trainer = GanTrainer::new(model, GanConfig::paper(variant, "p"), &set, e).unwrap();
        let losses = trainer.gan_step().unwrap();
        let trace = trainer.last_trace.clone().unwrap();
        assert_eq!(trace.generator_batch, g_batch, "{variant:?}");
        assert_eq!(trace.interpolated, interpolated, "{variant:?}");
        let images: Vec<&str> = trace.discriminator_inputs.iter().map(|d| d.0).collect();
        assert_eq!(images, d_images, "{variant:?}");
        assert_eq!(losses.contains("d_wrong"), variant.cls());
    }
}

#[test]
fn symmetric_hinge_matches_the_formula() {
    // F = [[3, 1], [2.5, 1]]: diagonal 3 and 1.
    let f = Tensor::from_slice(&[3.0f32, 1.0, 2.5, 1.0]).view([2, 2]);
    // i=0, j=1: max(0, 1 + F[0,1] - F[0,0]) + max(0, 1 + F[1,0] - F[0,0]) = 0 + 0.5
    // i=1, j=0: max(0, 1 + F[1,0] - F[1,1]) + max(0, 1 + F[0,1] - F[1,1]) = 2.5 + 1
    let loss = symmetric_hinge(&f).double_value(&[]);
    assert!((loss - 4.0 / 4.0).abs() < 1e-6, "{loss}");
}

/// Adam and RMSprop written out per element in f64, for the optimizer tests.
fn reference_updates(rule: &str, lr: f64, grads: &[Vec<f64>], start: &[f64]) -> Vec<f64> {
    let mut p = start.to_vec();
    let (mut m, mut v) = (vec![0.0; p.len()], vec![0.0; p.len()]);
    for (t, g) in grads.iter().enumerate() {
        let t = (t + 1) as i32;
        for k in 0..p.len() {
            if rule == "adam" {
                let (b1, b2, eps) = (0.5, 0.999, 1e-8);
                m[k] = b1 * m[k] + (1.0 - b1) * g[k];
                v[k] = b2 * v[k] + (1.0 - b2) * g[k] * g[k];
                let denominator = (v[k] / (1.0 - b2.powi(t))).sqrt() + eps;
                p[k] -= lr / (1.0 - b1.powi(t)) * m[k] / denominator;
            } else {
                let (alpha, eps) = (0.99, 1e-8);
                v[k] = alpha * v[k] + (1.0 - alpha) * g[k] * g[k];
                p[k] -= lr * g[k] / (v[k].sqrt() + eps);
            }
        }
    }
    p
}

#[test]
fn optimizers_update_every_parameter_as_the_formulas_say() {
    // With an idle parameter (no gradient) the update goes tensor by tensor
    // and must leave it alone; without one it goes as one flat tensor.
    for (rule, idle) in [
        ("adam", false),
        ("adam", true),
        ("rmsprop", false),
        ("rmsprop", true),
    ] {
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let a = vs.root().var("a", &[2, 3], tch::nn::Init::Const(0.5));
        let b = vs.root().var("b", &[4], tch::nn::Init::Const(-1.0));
        let c = idle.then(|| vs.root().var("c", &[3], tch::nn::Init::Const(2.0)));
        let mut opt = if rule == "adam" {
            Optimizer::adam(&vs, 0.01, 0.5)
        } else {
            Optimizer::rmsprop(&vs, 0.01)
        };
        // Loss Σ c·p² with a different weight per element: gradients 2·c·p.
        let ca = Tensor::arange(6, (Kind::Float, Device::Cpu)).view([2, 3]) + 1.0;
        let cb = Tensor::arange(4, (Kind::Float, Device::Cpu)) * -0.5 + 3.0;
        let flat = |a: &Tensor, b: &Tensor| -> Vec<f64> {
            let v: Vec<f32> = Vec::try_from(Tensor::cat(&[a.view([-1]), b.view([-1])], 0)).unwrap();
            v.into_iter().map(f64::from).collect()
        };
        let start = flat(&a, &b);
        let mut grads = Vec::new();
        for _ in 0..3 {
            opt.zero_grad();
            ((&a * &a * &ca).sum(Kind::Float) + (&b * &b * &cb).sum(Kind::Float)).backward();
            grads.push(flat(&a.grad(), &b.grad()));
            opt.step();
        }
        let expected = reference_updates(rule, 0.01, &grads, &start);
        for (got, want) in flat(&a, &b).iter().zip(&expected) {
            assert!((got - want).abs() < 1e-5, "{rule}: {got} vs {want}");
        }
        if let Some(c) = c {
            assert!(c.equal(&Tensor::full([3], 2.0, (Kind::Float, Device::Cpu))));
        }
        // The saved state is per parameter and loads back into a fresh one.
        let state: std::collections::HashMap<String, Tensor> = opt.state("o").into_iter().collect();
        assert_eq!(state["o.first.a"].size(), vec![2, 3]);
        assert_eq!(state["o.second.b"].size(), vec![4]);
        let mut again = Optimizer::rmsprop(&vs, 0.01);
        again.load_state(&state, "o", 3, false).unwrap();
        for (k, t) in again.state("o") {
            assert!(t.equal(&state[&k]), "{rule}: {k} did not load back");
        }
    }
}

#[test]
fn joint_embedding_training_lowers_its_loss() {
    let set = flowers(600);
    for matching in [Matching::Class, Matching::Image] {
        let config = JointConfig {
            steps: Some(60),
            lr: 2e-3,
            matching,
            batch_classes: 24,
            ..JointConfig::paper("procedural-flowers")
        };
        let mut trainer = JointTrainer::new(tiny_model(), config, &set).unwrap();
        let first: f64 = (0..5)
            .map(|_| trainer.joint_step().unwrap().read().unwrap()["loss"])
            .sum::<f64>()
            / 5.0;
        for _ in 0..50 {
            trainer.joint_step().unwrap();
        }
        let last: f64 = (0..5)
            .map(|_| trainer.joint_step().unwrap().read().unwrap()["loss"])
            .sum::<f64>()
            / 5.0;
        assert!(
            last < first,
            "{matching:?}: loss went from {first} to {last}"
        );
    }
}

#[test]
fn joint_batches_are_one_per_class_or_distinct_images() {
    let set = flowers(600);
    let train: std::collections::HashSet<usize> = set.split(false).into_iter().collect();
    let classes = set.class_count(false);
    let by = |matching| {
        let config = JointConfig {
            matching,
            batch_classes: 40,
            ..JointConfig::paper("procedural-flowers")
        };
        JointTrainer::new(tiny_model(), config, &set).unwrap()
    };
    // Class matching: at most one pair per training class.
    let mut trainer = by(Matching::Class);
    assert_eq!(trainer.config.batch_classes, classes);
    let batch = trainer.batch_images();
    let seen: std::collections::HashSet<u32> = batch.iter().map(|&i| set.classes[i]).collect();
    assert_eq!(seen.len(), classes);
    // Image matching: 40 distinct training images, more than there are classes.
    let mut trainer = by(Matching::Image);
    assert!(40 > classes);
    for _ in 0..20 {
        let batch = trainer.batch_images();
        assert_eq!(batch.len(), 40);
        let distinct: std::collections::HashSet<usize> = batch.iter().copied().collect();
        assert_eq!(distinct.len(), 40, "{batch:?}");
        assert!(
            batch.iter().all(|i| train.contains(i)),
            "held-out image drawn"
        );
    }
}

#[test]
fn hard_negative_batches_pair_images_that_differ_in_one_attribute() {
    let set = flowers(3000);
    let train: std::collections::HashSet<usize> = set.split(false).into_iter().collect();
    let content = |i: usize| -> Vec<String> {
        [
            "petal_colour",
            "petal_shape",
            "petal_count",
            "centre_colour",
        ]
        .iter()
        .map(|a| set.attributes[i][*a].clone())
        .collect()
    };
    let config = JointConfig {
        matching: Matching::Image,
        hard_negatives: true,
        batch_classes: 40,
        ..JointConfig::paper("procedural-flowers")
    };
    let mut trainer = JointTrainer::new(tiny_model(), config.clone(), &set).unwrap();
    let mut differing = std::collections::BTreeMap::new();
    for _ in 0..20 {
        let batch = trainer.batch_images();
        assert_eq!(batch.len(), 40);
        let distinct: std::collections::HashSet<usize> = batch.iter().copied().collect();
        assert_eq!(distinct.len(), 40, "{batch:?}");
        assert!(
            batch.iter().all(|i| train.contains(i)),
            "held-out image drawn"
        );
        // The second half: each image's sibling in the first half differs in
        // exactly one content attribute.
        for (a, b) in batch[..20].iter().zip(&batch[20..]) {
            let (ca, cb) = (content(*a), content(*b));
            let diff: Vec<usize> = (0..4).filter(|&k| ca[k] != cb[k]).collect();
            assert_eq!(diff.len(), 1, "{ca:?} vs {cb:?}");
            *differing.entry(diff[0]).or_insert(0) += 1;
        }
    }
    // Every attribute gets its turn, the petal count included.
    assert_eq!(differing.len(), 4, "{differing:?}");
    // Only where the data has attributes and images are matched.
    let err = JointTrainer::new(
        tiny_model(),
        JointConfig {
            matching: Matching::Class,
            ..config
        },
        &set,
    )
    .err()
    .unwrap();
    assert!(format!("{err:#}").contains("--match image"), "{err:#}");
}

#[test]
fn the_attribute_loss_learns_every_attribute_and_resumes_with_its_reads() {
    use gantry::train::Trainer;
    let set = flowers(600);
    let config = JointConfig {
        steps: Some(200),
        lr: 2e-3,
        matching: Matching::Image,
        batch_classes: 24,
        attribute_loss: 1.0,
        word_dropout: 0.1,
        ..JointConfig::paper("procedural-flowers")
    };
    let mut trainer = JointTrainer::new(tiny_model(), config.clone(), &set).unwrap();
    let mean_of = |trainer: &mut JointTrainer, n: usize| {
        (0..n)
            .map(|_| trainer.joint_step().unwrap().read().unwrap()["attribute_loss"])
            .sum::<f64>()
            / n as f64
    };
    let first = mean_of(&mut trainer, 5);
    for _ in 0..40 {
        trainer.joint_step().unwrap();
    }
    let last = mean_of(&mut trainer, 5);
    assert!(
        last < first * 0.9,
        "attribute loss went from {first} to {last}"
    );

    // The reads and their optimizer state are in the checkpoint: a resumed
    // run takes the step the original takes.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    trainer.save_checkpoint(&path, 0.0).unwrap();
    let mut resumed = JointTrainer::new(tiny_model(), config.clone(), &set).unwrap();
    resumed.resume(&path).unwrap();
    let a = trainer.joint_step().unwrap().read().unwrap();
    let b = resumed.joint_step().unwrap().read().unwrap();
    for key in ["attribute_loss", "loss"] {
        assert!(
            (a[key] - b[key]).abs() < 1e-6,
            "{key}: {} vs {}",
            a[key],
            b[key]
        );
    }

    // Data whose samples carry no attributes is refused with a reason, and
    // so are weights and dropouts that mean nothing.
    let (synthetic, _) = gantry::bench::synthetic_set(64, 32, Device::Cpu);
    let err = JointTrainer::new(tiny_model(), config.clone(), &synthetic)
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("attribute loss"), "{err:#}");
    for bad in [
        JointConfig {
            attribute_loss: -1.0,
            ..config.clone()
        },
        JointConfig {
            word_dropout: 1.0,
            ..config.clone()
        },
        JointConfig {
            lr_decay: 0.0,
            ..config.clone()
        },
        JointConfig {
            lr_decay: 1.5,
            ..config.clone()
        },
    ] {
        assert!(JointTrainer::new(tiny_model(), bad, &set).is_err());
    }
}

/// The learning rate falls by `lr_decay` per pass over the training images,
/// so a run on four times the renders keeps a per-step schedule with 0.98^4.
#[test]
fn the_text_encoder_learning_rate_falls_by_its_decay_per_epoch() {
    use gantry::train::Trainer;
    let set = flowers(600);
    let config = JointConfig {
        lr: 1e-3,
        lr_decay: 0.5,
        matching: Matching::Image,
        batch_classes: 24,
        ..JointConfig::paper("procedural-flowers")
    };
    let mut trainer = JointTrainer::new(tiny_model(), config, &set).unwrap();
    let per_epoch = trainer.steps_per_epoch();
    let mut lrs = Vec::new();
    for _ in 0..2 * per_epoch + 1 {
        lrs.push(trainer.joint_step().unwrap().read().unwrap()["lr"]);
    }
    let at = |step: u64| lrs[step as usize];
    assert_eq!(at(0), 1e-3);
    assert_eq!(at(per_epoch - 1), 1e-3);
    assert!((at(per_epoch) - 5e-4).abs() < 1e-12, "{lrs:?}");
    assert!((at(2 * per_epoch) - 2.5e-4).abs() < 1e-12, "{lrs:?}");
}

/// Runs `gantry train ...` in the sandbox with one CPU thread (so that
/// reductions add up in the same order every time).
fn train(sandbox: &Sandbox, args: &[&str]) -> std::process::Output {
    sandbox
        .gantry()
        .env("GANTRY_THREADS", "1")
        .arg("train")
        .args(args)
        .output()
        .unwrap()
}

fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const GAN_ARGS: [&str; 12] = [
    "gan",
    "--text-encoder",
    "te",
    "--preset",
    "tiny",
    "--opt",
    "count=200",
    "--batch",
    "8",
    "--checkpoint-every",
    "1",
    "--steps",
];

/// The trainable tensors of one network file of a model folder (batch-norm
/// running statistics move even at lr 0, so they are left out).
fn trainable(dir: &std::path::Path, file: &str) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = Tensor::read_safetensors(dir.join(file))
        .unwrap()
        .into_iter()
        .filter(|(n, _)| !n.contains("running_") && !n.contains("num_batches"))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn same_tensors(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((na, ta), (nb, tb))| {
            na == nb && ta.to_kind(Kind::Float).equal(&tb.to_kind(Kind::Float))
        })
}

#[test]
fn init_from_starts_each_trainer_from_the_given_weights() {
    let sandbox = Sandbox::new();
    let te_dir = sandbox.tiny_model("te");
    // At lr 0, one step leaves the weights where --init-from put them (the
    // seed differs from the model's, so a fresh initialisation would not).
    let encoders = [
        "text-encoder",
        "--preset",
        "tiny",
        "--opt",
        "count=200",
        "--steps",
        "1",
        "--lr",
        "0",
        "--match",
        "image",
        "--init-from",
        "te",
        "--seed",
        "9",
    ];
    assert_ok(&train(
        &sandbox,
        &[&encoders[..], &["--run", "enc"]].concat(),
    ));
    for file in ["text_encoder.safetensors", "image_encoder.safetensors"] {
        let got = trainable(&sandbox.path().join("enc/model"), file);
        assert!(same_tensors(&got, &trainable(&te_dir, file)), "{file}");
    }
    // Without it, the same run starts elsewhere.
    let fresh = [&encoders[..11], &encoders[13..], &["--run", "fresh"]].concat();
    assert_ok(&train(&sandbox, &fresh));
    let got = trainable(
        &sandbox.path().join("fresh/model"),
        "text_encoder.safetensors",
    );
    assert!(!same_tensors(
        &got,
        &trainable(&te_dir, "text_encoder.safetensors")
    ));

    let gan = [
        &GAN_ARGS[..],
        &[
            "1",
            "--lr",
            "0",
            "--init-from",
            "te",
            "--seed",
            "9",
            "--run",
            "g",
        ],
    ]
    .concat();
    assert_ok(&train(&sandbox, &gan));
    for file in ["generator.safetensors", "discriminator.safetensors"] {
        let got = trainable(&sandbox.path().join("g/model"), file);
        assert!(same_tensors(&got, &trainable(&te_dir, file)), "{file}");
    }

    // Another architecture is refused with the reason, and nothing is written.
    let out = train(
        &sandbox,
        &[
            &encoders[..2],
            &["small"],
            &encoders[3..],
            &["--run", "bad"],
        ]
        .concat(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not preset small"), "{err}");
    assert!(!sandbox.path().join("bad/model").exists());
}

/// `--minibatch-std` (D reads the batch's spread) and `--d-joint-norm pair`
/// (D's joint layer normalised over each pair): the card and `model info`
/// say so, D's joint layer reads one channel more and is followed by a
/// layer norm instead of a batch norm, and a continuation must ask for the
/// same of each.
#[test]
fn d_layer_choices_are_kept_in_the_card_and_continued_only_as_themselves() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    let choices = ["--minibatch-std", "--d-joint-norm", "pair"];
    let gan = [&GAN_ARGS[..], &["2"], &choices[..]].concat();
    assert_ok(&train(&sandbox, &[&gan[..], &["--run", "m"]].concat()));
    let card: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.path().join("m/model/model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(card["architecture"]["discriminator"]["minibatch_std"], true);
    assert_eq!(card["architecture"]["discriminator"]["joint_norm"], "pair");
    let d = trainable(&sandbox.path().join("m/model"), "discriminator.safetensors");
    let joint = d
        .iter()
        .find(|(n, _)| n.contains("joint.weight"))
        .expect("D's joint layer");
    // tiny: ndf 8, so 8 · 8 features, the spread, and nt = 16 text channels.
    assert_eq!(joint.1.size(), vec![64, 64 + 1 + 16, 1, 1]);
    let norms: Vec<&str> = d
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.contains("joint_"))
        .collect();
    assert!(
        norms.iter().all(|n| n.contains("joint_ln")) && norms.len() == 2,
        "{norms:?}"
    );
    let info = sandbox.ok(&["model", "info", "m/model"]);
    assert!(info.contains("D reads the batch's spread"), "{info}");
    assert!(info.contains("over each pair"), "{info}");

    // Each choice left out in turn is refused, naming it; nothing is written.
    for (left_out, asked) in [(0, "pass --minibatch-std"), (1, "pass --d-joint-norm pair")] {
        let kept: Vec<&str> = if left_out == 0 {
            choices[1..].to_vec()
        } else {
            choices[..1].to_vec()
        };
        let without = [
            &GAN_ARGS[..],
            &["3", "--init-from", "m/model", "--run", "p"],
            &kept[..],
        ]
        .concat();
        let out = train(&sandbox, &without);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(asked), "{err}");
        assert!(!sandbox.path().join("p/model").exists());
    }
    let with = [&gan[..], &["--init-from", "m/model", "--run", "q"]].concat();
    assert_ok(&train(&sandbox, &with));
}

/// `--upsampling resize` gives G resize-convolutions at every doubling: the
/// card says so, the model draws, and a continuation must ask for the same.
#[test]
fn a_resize_layer_is_kept_in_the_card_and_continued_only_as_itself() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    let gan = [&GAN_ARGS[..], &["2", "--upsampling", "resize"]].concat();
    assert_ok(&train(&sandbox, &[&gan[..], &["--run", "r"]].concat()));
    let card: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.path().join("r/model/model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        card["architecture"]["generator"]["upsampling"], "resize",
        "{card}"
    );
    let weights = trainable(&sandbox.path().join("r/model"), "generator.safetensors");
    let layer = |name: &str| {
        let (_, w) = weights
            .iter()
            .find(|(n, _)| n.contains(name))
            .unwrap_or_else(|| panic!("a {name} layer"));
        w.size()
    };
    assert_eq!(layer("to_rgb"), vec![3, 16, 3, 3], "3x3 from ngf maps");
    assert_eq!(layer("up32."), vec![16, 32, 3, 3], "3x3 from 2 ngf maps");
    let out = sandbox
        .gantry()
        .args([
            "generate",
            "a red flower",
            "-m",
            "r/model",
            "-n",
            "2",
            "-o",
            "pics",
        ])
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(sandbox.path().join("pics").read_dir().unwrap().count() >= 2);
    let info = sandbox.ok(&["model", "info", "r/model"]);
    assert!(
        info.contains("G's upsampling: nearest-neighbour upsampling + 3x3 convolution at every"),
        "{info}"
    );

    // Continued with the paper's layer, it is refused with the way out.
    let paper = [
        &GAN_ARGS[..],
        &["4", "--init-from", "r/model", "--run", "p"],
    ]
    .concat();
    let out = train(&sandbox, &paper);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--upsampling resize"), "{err}");
    assert!(!sandbox.path().join("p/model").exists());
    let same = [
        &GAN_ARGS[..],
        &[
            "4",
            "--upsampling",
            "resize",
            "--init-from",
            "r/model",
            "--run",
            "q",
        ],
    ]
    .concat();
    assert_ok(&train(&sandbox, &same));
}

/// Trains `args` for its --steps straight into `{name}-straight`, and in
/// two invocations (--stop-after `half`, then --resume) into `{name}-halves`;
/// asserts that `files` of the two model folders are byte-identical.
fn resumes_exactly(sandbox: &Sandbox, args: &[&str], name: &str, half: &str, files: &[&str]) {
    let (straight, halves) = (format!("{name}-straight"), format!("{name}-halves"));
    assert_ok(&train(sandbox, &[args, &["--run", &straight]].concat()));
    let out = train(
        sandbox,
        &[args, &["--run", &halves, "--stop-after", half]].concat(),
    );
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped early"));
    assert_ok(&train(
        sandbox,
        &[args, &["--run", &halves, "--resume"]].concat(),
    ));
    for file in files {
        let read = |run: &str| std::fs::read(sandbox.path().join(run).join("model").join(file));
        assert!(
            read(&straight).unwrap() == read(&halves).unwrap(),
            "{name}: {file} differs between straight and resumed training"
        );
    }
}

/// `train gan --g-ema`: training is as without it (D the same), the model
/// written draws with G's moving average, the checkpoint keeps the trained G
/// beside the average, and a stopped run resumes to the same average.
#[test]
fn g_ema_writes_the_average_keeps_training_and_resumes() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    assert_ok(&train(
        &sandbox,
        &[&GAN_ARGS[..], &["3", "--run", "plain"]].concat(),
    ));
    let ema = [&GAN_ARGS[..], &["3", "--g-ema", "0.5"]].concat();
    let files = ["generator.safetensors", "discriminator.safetensors"];
    resumes_exactly(&sandbox, &ema, "ema", "2", &files);
    let model = |run: &str| sandbox.path().join(run).join("model");
    assert!(same_tensors(
        &trainable(&model("plain"), "discriminator.safetensors"),
        &trainable(&model("ema-straight"), "discriminator.safetensors")
    ));
    let trained = trainable(&model("plain"), "generator.safetensors");
    let written = trainable(&model("ema-straight"), "generator.safetensors");
    assert!(
        !same_tensors(&trained, &written),
        "the model holds G itself"
    );
    let checkpoint: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(sandbox.path().join("ema-straight/checkpoint.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    for ((name, g), (_, average)) in trained.iter().zip(&written) {
        assert!(checkpoint[&format!("generator/{name}")].equal(g), "{name}");
        assert!(
            checkpoint[&format!("generator_average/{name}")].equal(average),
            "{name}"
        );
    }
    let card = std::fs::read_to_string(model("ema-straight").join("model.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&card).unwrap();
    assert_eq!(parsed["training"]["g_ema"].as_f64(), Some(0.5), "{card}");
    assert!(card.contains("exponential moving average"), "{card}");
    // A run may take the average up when it resumes: it starts at G then.
    let late = [&GAN_ARGS[..], &["3", "--run", "late"]].concat();
    assert_ok(&train(
        &sandbox,
        &[&late[..], &["--stop-after", "2"]].concat(),
    ));
    assert_ok(&train(
        &sandbox,
        &[&late[..], &["--resume", "--g-ema", "0.5"]].concat(),
    ));
    assert!(same_tensors(
        &trainable(&model("plain"), "discriminator.safetensors"),
        &trainable(&model("late"), "discriminator.safetensors")
    ));
    let late_g = trainable(&model("late"), "generator.safetensors");
    assert!(!same_tensors(&trained, &late_g) && !same_tensors(&written, &late_g));
    // A run that goes on from a folder holding an average goes on from the
    // average, and says so (at lr 0 one step leaves G there).
    let out = train(
        &sandbox,
        &[
            &GAN_ARGS[..],
            &["1", "--lr", "0", "--init-from", "ema-straight/model"],
            &["--restart-schedule", "--run", "on"],
        ]
        .concat(),
    );
    assert_ok(&out);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("G goes on from the average"), "{said}");
    assert!(same_tensors(
        &written,
        &trainable(&model("on"), "generator.safetensors")
    ));
    // A decay of 1 would never move: refused before any data is read.
    let out = train(
        &sandbox,
        &[&GAN_ARGS[..], &["3", "--g-ema", "1", "--run", "never"]].concat(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--g-ema is a decay in [0, 1)"));
}

#[test]
fn resuming_gives_the_same_weights_as_training_straight() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    let gan = [&GAN_ARGS[..], &["6"]].concat();
    let files = ["generator.safetensors", "discriminator.safetensors"];
    resumes_exactly(&sandbox, &gan, "gan", "3", &files);
    let log = |run: &str| std::fs::read_to_string(sandbox.path().join(run).join("losses.jsonl"));
    assert_eq!(
        log("gan-halves").unwrap(),
        log("gan-straight").unwrap(),
        "the loss log continues as if never stopped"
    );
    assert!(sandbox.path().join("gan-halves/losses.png").exists());

    // A continuation of that model with fresh Adam (--init-from takes up its
    // schedule at step 6) warms its optimizers up over their own updates,
    // which the checkpoint keeps: resumed, it warms up from where it stopped.
    let continued = [&GAN_ARGS[..], &["10", "--init-from", "gan-straight/model"]].concat();
    resumes_exactly(&sandbox, &continued, "continued", "2", &files);
    assert_eq!(
        log("continued-halves").unwrap(),
        log("continued-straight").unwrap()
    );

    // The text encoder resumes exactly too.
    let te = [
        "text-encoder",
        "--preset",
        "tiny",
        "--opt",
        "count=200",
        "--checkpoint-every",
        "1",
        "--steps",
        "4",
    ];
    resumes_exactly(&sandbox, &te, "te", "2", &["text_encoder.safetensors"]);

    // And the style encoder, on the G trained above.
    let style = [
        "style-encoder",
        "--model",
        "gan-straight/model",
        "--opt",
        "count=200",
        "--batch",
        "8",
        "--checkpoint-every",
        "1",
        "--steps",
        "4",
    ];
    resumes_exactly(
        &sandbox,
        &style,
        "style",
        "2",
        &["style_encoder.safetensors"],
    );
}

#[test]
fn a_packed_checkpoint_is_a_third_of_the_size_and_continues_the_run() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    let gan = [&GAN_ARGS[..], &["6"]].concat();
    assert_ok(&train(
        &sandbox,
        &[&gan[..], &["--run", "straight"]].concat(),
    ));
    let out = train(
        &sandbox,
        &[&gan[..], &["--run", "halves", "--stop-after", "3"]].concat(),
    );
    assert_ok(&out);

    let out = train(&sandbox, &["pack", "--run", "halves", "packed.safetensors"]);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("(step 3)"));
    let size = |p: &str| std::fs::metadata(sandbox.path().join(p)).unwrap().len();
    let (full, packed) = (
        size("halves/checkpoint.safetensors"),
        size("packed.safetensors"),
    );
    assert!(packed * 3 < full + full / 10, "{packed} of {full} bytes");
    // Networks f16, second moments bf16 (the range of f32), no first moments.
    let tensors = Tensor::read_safetensors(sandbox.path().join("packed.safetensors")).unwrap();
    assert!(tensors.iter().all(|(n, _)| !n.contains(".first.")));
    for (name, t) in &tensors {
        if name.contains('/') {
            assert_eq!(t.kind(), Kind::Half, "{name}");
        } else if name.contains(".second.") {
            assert_eq!(t.kind(), Kind::BFloat16, "{name}");
        }
    }

    // In a run folder as its checkpoint, --resume takes the run up after step 3
    // and ends near straight training: zeroed first moments and f16 weights
    // move it by a few Adam steps' worth (lr 2e-4 each), far less than the
    // 0.02-wide initialisation a fresh start would bring.
    std::fs::create_dir_all(sandbox.path().join("continued")).unwrap();
    std::fs::copy(
        sandbox.path().join("packed.safetensors"),
        sandbox.path().join("continued/checkpoint.safetensors"),
    )
    .unwrap();
    assert_ok(&train(
        &sandbox,
        &[&gan[..], &["--run", "continued", "--resume"]].concat(),
    ));
    let log = std::fs::read_to_string(sandbox.path().join("continued/losses.jsonl")).unwrap();
    let steps: Vec<u64> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(steps.iter().all(|&s| s > 3) && steps.contains(&6), "{log}");
    let file = "generator.safetensors";
    let g = |run: &str| trainable(&sandbox.path().join(run).join("model"), file);
    let mut largest = 0f64;
    for ((name, a), (_, b)) in g("continued").iter().zip(&g("straight")) {
        let d = (a.to_kind(Kind::Float) - b.to_kind(Kind::Float))
            .abs()
            .max()
            .double_value(&[]);
        assert!(d < 3e-3, "{name} moved {d} from straight training");
        largest = largest.max(d);
    }
    assert!(
        largest > 0.0,
        "the packed checkpoint is rounded, not the same"
    );
}

#[test]
fn a_run_folder_is_not_overwritten_and_resume_needs_a_checkpoint() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    let args = [&GAN_ARGS[..], &["2", "--run", "r"]].concat();
    assert_ok(&train(&sandbox, &args));
    let out = train(&sandbox, &args);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds a run"));
    let out = train(
        &sandbox,
        &[&GAN_ARGS[..], &["2", "--run", "empty", "--resume"]].concat(),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no checkpoint to resume from"));
    let out = train(
        &sandbox,
        &[
            &GAN_ARGS[..],
            &["2", "--run", "r", "--resume", "--variant", "gan"],
        ]
        .concat(),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("checkpoint is of another run"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_loss_going_non_finite_stops_the_run_before_it_reaches_a_checkpoint() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    // An absurd learning rate blows the weights up within a step or two.
    let args = [&GAN_ARGS[..], &["30", "--lr", "1e30", "--run", "r"]].concat();
    let out = train(&sandbox, &args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a loss became non-finite"), "{err}");
    let checkpoint = sandbox.path().join("r/checkpoint.safetensors");
    for (name, t) in Tensor::read_safetensors(&checkpoint).unwrap() {
        if t.kind() == Kind::Float {
            assert!(
                bool::try_from(t.isfinite().all()).unwrap(),
                "{name} in the checkpoint is not finite"
            );
        }
    }
}

#[test]
fn sigkill_at_any_point_leaves_a_checkpoint_that_loads() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    for (k, delay_ms) in [0u64, 90, 230, 410, 650].into_iter().enumerate() {
        let run = format!("killed{k}");
        let args = [&GAN_ARGS[..], &["100000", "--run", &run]].concat();
        let mut child = sandbox
            .gantry()
            .env("GANTRY_THREADS", "1")
            .arg("train")
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let checkpoint = sandbox.path().join(&run).join("checkpoint.safetensors");
        let started = std::time::Instant::now();
        while !checkpoint.exists() && started.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let resumed = [
            &GAN_ARGS[..],
            &["100000", "--run", &run, "--resume", "--stop-after", "1"],
        ]
        .concat();
        assert_ok(&train(&sandbox, &resumed));
    }
}

#[test]
fn ctrl_c_writes_a_checkpoint_and_exits_cleanly() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    let args = [&GAN_ARGS[..], &["100000", "--run", "interrupted"]].concat();
    let child = sandbox
        .gantry()
        .env("GANTRY_THREADS", "1")
        .arg("train")
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = sandbox.path().join("interrupted/checkpoint.safetensors");
    let started = std::time::Instant::now();
    while !checkpoint.exists() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: sending SIGINT to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("interrupted: writing a checkpoint"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped early"));
    assert!(sandbox
        .path()
        .join("interrupted/model/generator.safetensors")
        .exists());
    let resumed = [
        &GAN_ARGS[..],
        &[
            "100000",
            "--run",
            "interrupted",
            "--resume",
            "--stop-after",
            "1",
        ],
    ]
    .concat();
    assert_ok(&train(&sandbox, &resumed));
}

#[test]
fn a_continued_run_takes_up_the_schedule_where_the_model_left_it() {
    // ~320 training images at batch 64: 5 steps an epoch, lr halved every
    // epoch, so 12 steps cross two halvings.
    let set = flowers(400);
    let config = GanConfig {
        steps: Some(12),
        lr_halve_every_epochs: 1,
        ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
    };
    let rates = |trainer: &mut GanTrainer, n: usize| -> Vec<f64> {
        (0..n)
            .map(|_| trainer.gan_step().unwrap().read().unwrap()["lr"])
            .collect()
    };
    let model = tiny_model();
    let e = embeddings(&model, &set);
    let mut straight = GanTrainer::new(model, config.clone(), &set, e.shallow_clone()).unwrap();
    let uninterrupted = rates(&mut straight, 12);
    assert!(
        uninterrupted[11] < uninterrupted[0] / 2.0,
        "{uninterrupted:?}"
    );

    let mut first = GanTrainer::new(tiny_model(), config.clone(), &set, e.shallow_clone()).unwrap();
    let mut chunked = rates(&mut first, 7);
    let schedule = first.schedule();
    assert_eq!(schedule.step, 7);
    let mut second =
        GanTrainer::new(tiny_model(), config.clone(), &set, e.shallow_clone()).unwrap();
    second.continue_schedule(&schedule).unwrap();
    chunked.extend(rates(&mut second, 5));
    // The schedule's rate, ramped up while the fresh optimizers warm up.
    for (k, (got, scheduled)) in chunked.iter().zip(&uninterrupted).enumerate() {
        let warmup = if k < 7 {
            1.0
        } else {
            (k - 7 + 1) as f64 / FRESH_ADAM_WARMUP as f64
        };
        assert!(
            (got - scheduled * warmup).abs() <= 1e-15,
            "step {k}: lr {got}, schedule {scheduled} x warm-up {warmup}"
        );
    }

    // Another schedule is refused with the reason, not silently restarted.
    let other = GanConfig { lr: 1e-4, ..config };
    let mut third = GanTrainer::new(tiny_model(), other, &set, e).unwrap();
    let err = format!("{:#}", third.continue_schedule(&schedule).unwrap_err());
    assert!(err.contains("halved every"), "{err}");
}

/// `--mode-seeking W` compares G's two pictures of each text, so it is
/// refused without fresh noise (before any data is read, nothing written)
/// and, with it, kept in the card's training details.
#[test]
fn mode_seeking_needs_fresh_noise_and_the_text_options_are_kept_in_the_card() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    let gan = [
        &GAN_ARGS[..],
        &[
            "2",
            "--mode-seeking",
            "1",
            "--captions-averaged",
            "1",
            "--text-noise",
            "0.5",
            "--text-noise-along",
            "phrasings",
            "--reworded",
            "0.5",
            "--phrasing-consistency",
            "2",
        ],
    ]
    .concat();
    let out = train(&sandbox, &[&gan[..], &["--run", "stale"]].concat());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs fresh noise"), "{err}");
    assert!(!sandbox.path().join("stale").exists());

    assert_ok(&train(
        &sandbox,
        &[&gan[..], &["--fresh-noise", "--run", "m"]].concat(),
    ));
    let card: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.path().join("m/model/model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        card["training"]["mode_seeking"].as_f64(),
        Some(1.0),
        "{card}"
    );
    assert_eq!(
        card["training"]["captions_averaged"].as_u64(),
        Some(1),
        "{card}"
    );
    assert_eq!(card["training"]["text_noise"].as_f64(), Some(0.5), "{card}");
    assert_eq!(
        card["training"]["text_noise_along"].as_str(),
        Some("phrasings"),
        "{card}"
    );
    assert_eq!(card["training"]["reworded"].as_f64(), Some(0.5), "{card}");
    assert_eq!(
        card["training"]["phrasing_consistency"].as_f64(),
        Some(2.0),
        "{card}"
    );
}

#[test]
fn g_and_d_read_each_image_as_the_mean_of_captions_averaged_of_its_captions() {
    let set = flowers(200);
    let source = tiny_model();
    let e = embeddings(&source, &set);
    let per_image = e.size()[1] as usize;
    for k in [1, 4] {
        let config = GanConfig {
            steps: Some(1),
            captions_averaged: k,
            ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
        };
        let mut trainer = GanTrainer::new(tiny_model(), config, &set, e.shallow_clone()).unwrap();
        let draws = trainer.draw_step();
        for (row, &i) in draws.picks.iter().zip(&draws.batch) {
            assert_eq!(row.len(), k, "image {i}: {row:?}");
            let mut distinct = row.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), k, "a caption picked twice: {row:?}");
            assert!(row.iter().all(|&c| c < per_image));
        }
        // With one caption, an image's text is exactly that caption's φ(t).
        let text = gantry::train::mean_of_picks(&e, &draws.batch, &draws.picks);
        if k == 1 {
            for (n, (&i, row)) in draws.batch.iter().zip(&draws.picks).enumerate() {
                let own = e.get(i as i64).get(row[0] as i64);
                assert!(text.get(n as i64).allclose(&own, 0.0, 0.0, false));
            }
        }
        trainer.step_with(&draws).unwrap();
    }
}

/// A tiny model whose text encoder, G and D start as `source`'s, so that trials compare
/// (other tests seed libtorch's global generator concurrently).
fn with_g_and_d_of(source: &Model) -> Model {
    let mut model = tiny_model();
    model.text_encoder.vs.copy(&source.text_encoder.vs).unwrap();
    model.generator.vs.copy(&source.generator.vs).unwrap();
    model
        .discriminator
        .vs
        .copy(&source.discriminator.vs)
        .unwrap();
    model
}

#[test]
fn text_noise_moves_what_g_draws_from_and_not_what_d_judges_against() {
    let set = flowers(400);
    let source = tiny_model();
    let e = embeddings(&source, &set);
    let run = |text_noise: f64| {
        let model = with_g_and_d_of(&source);
        let config = GanConfig {
            steps: Some(1),
            fresh_noise_for_g: true,
            text_noise,
            ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
        };
        let mut trainer = GanTrainer::new(model, config, &set, e.shallow_clone()).unwrap();
        let draws = trainer.draw_step();
        // One row of noise per picture G draws: the B texts and the B/2
        // interpolations.
        let rows = draws.text_noise.as_ref().map(|n| n.size());
        let losses = trainer.step_with(&draws).unwrap().read().unwrap();
        (rows, losses)
    };
    let (none, clean) = run(0.0);
    let (rows, noisy) = run(1.0);
    assert_eq!(none, None);
    assert_eq!(rows, Some(vec![96, e.size()[2]]));
    // The same batch, z and real pairs...
    assert_eq!(clean["d_real"], noisy["d_real"]);
    // ...but G's pictures are drawn from texts near the captions'.
    assert_ne!(clean["d_fake"], noisy["d_fake"]);
    let err = match GanTrainer::new(
        tiny_model(),
        GanConfig {
            text_noise: f64::NAN,
            ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
        },
        &set,
        e.shallow_clone(),
    ) {
        Ok(_) => panic!("a NaN spread was taken"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("--text-noise"), "{err}");
}

/// `--reworded`: G reads the batch's captions reworded (a share of them;
/// all here) while D judges its pictures against the captions as written:
/// the same real pairs, other pictures; a share outside [0, 1] is refused.
#[test]
fn reworded_captions_move_what_g_reads_and_not_what_d_judges_against() {
    let set = flowers(400);
    let source = tiny_model();
    let e = embeddings(&source, &set);
    let run = |reworded: f64| {
        let model = with_g_and_d_of(&source);
        let config = GanConfig {
            steps: Some(1),
            reworded,
            ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
        };
        let mut trainer = GanTrainer::new(model, config, &set, e.shallow_clone()).unwrap();
        let draws = trainer.draw_step();
        let which = draws.reworded.clone();
        let losses = trainer.step_with(&draws).unwrap().read().unwrap();
        (which, losses)
    };
    let (none, written) = run(0.0);
    let (which, reworded) = run(1.0);
    assert_eq!(none, None);
    assert_eq!(which, Some(vec![true; 64]));
    assert_eq!(written["d_real"], reworded["d_real"]);
    assert_ne!(written["d_fake"], reworded["d_fake"]);
    let (which, _) = run(0.5);
    let read = which.expect("a share drawn").iter().filter(|&&r| r).count();
    assert!((16..=48).contains(&read), "{read} of 64 read reworded");
    for share in [-0.1, 1.5, f64::NAN] {
        let err = match GanTrainer::new(
            tiny_model(),
            GanConfig {
                reworded: share,
                ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
            },
            &set,
            e.shallow_clone(),
        ) {
            Ok(_) => panic!("a share of {share} was taken"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("--reworded"), "{err}");
    }
}

/// `--phrasing-consistency`: G is asked for the same picture of a caption
/// as written and reworded (same z). Trained with the term, G's two pictures
/// of the training captions lie closer together than trained without it
/// (drawn as a user's are, in eval mode); D's real pairs are the same; a
/// negative or NaN weight is refused.
#[test]
fn phrasing_consistency_draws_a_caption_alike_however_it_is_worded() {
    const STEPS: u64 = 30;
    let set = flowers(400);
    let source = tiny_model();
    let e = embeddings(&source, &set);
    let paper = GanConfig::paper(Variant::GanIntCls, "procedural-flowers");
    let reworded = gantry::train::gan::reworded_embeddings(&source, &set, 10, paper.seed).unwrap();
    let train = |weight: f64| {
        let config = GanConfig {
            steps: Some(STEPS),
            phrasing_consistency: weight,
            ..paper.clone()
        };
        // G made to lean on its text from the start (an untrained G hardly
        // reads it), so that there is a difference to keep or take away.
        let model = with_g_and_d_of(&source);
        for (name, mut weight) in model.generator.vs.variables() {
            if name.ends_with("text_projection.weight") {
                tch::no_grad(|| {
                    let _ = weight.f_mul_scalar_(30.0).unwrap();
                });
            }
        }
        let mut trainer = GanTrainer::new(model, config, &set, e.shallow_clone()).unwrap();
        let first = trainer.gan_step().unwrap().read().unwrap();
        for _ in 1..STEPS {
            trainer.gan_step().unwrap();
        }
        // G's pictures of each image's first caption as written and
        // reworded, under one z each.
        let g = &trainer.model.generator.net;
        let n = 64;
        let written = e.select(1, 0).narrow(0, 0, n);
        let other = reworded.select(1, 0).narrow(0, 0, n);
        tch::manual_seed(7);
        let z = Tensor::randn(
            [n, trainer.model.card.architecture.generator.nz],
            (tch::Kind::Float, Device::Cpu),
        );
        let apart = tch::no_grad(|| {
            (g.forward_t(&z, &written, false) - g.forward_t(&z, &other, false))
                .abs()
                .mean(tch::Kind::Float)
                .double_value(&[])
        });
        (first, apart)
    };
    let (plain, plain_apart) = train(0.0);
    let (asked, asked_apart) = train(50.0);
    assert!(!plain.contains_key("g_phrasing"), "{plain:?}");
    assert!(asked["g_phrasing"] > 0.0, "{asked:?}");
    assert_eq!(plain["d_real"], asked["d_real"]);
    assert!(
        asked_apart < plain_apart * 0.8,
        "the two wordings' pictures {asked_apart} apart with the term, {plain_apart} without"
    );
    for weight in [-1.0, f64::NAN] {
        let err = match GanTrainer::new(
            tiny_model(),
            GanConfig {
                phrasing_consistency: weight,
                ..paper.clone()
            },
            &set,
            e.shallow_clone(),
        ) {
            Ok(_) => panic!("a weight of {weight} was taken"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("--phrasing-consistency"), "{err}");
    }
}

/// `--text-noise-along phrasings` moves G's text only where one picture's
/// captions differ from each other: the noise's covariance (its root
/// squared) is that of the training pictures' captions about their means,
/// in the space G reads, and where every caption of a picture is alike G
/// draws from the clean text.
#[test]
fn text_noise_along_phrasings_follows_how_a_pictures_captions_differ() {
    use gantry::model::conditioning::Conditioning;
    use gantry::train::gan::{text_spread, NoiseAlong};
    let set = flowers(400);
    let source = tiny_model();
    let e = embeddings(&source, &set);
    let train = set.split(false);
    let size = e.size();
    let (k, dim) = (size[1], size[2]);
    let index = Tensor::from_slice(&train.iter().map(|&i| i as i64).collect::<Vec<_>>());
    let own = e.index_select(0, &index).to_kind(Kind::Double);
    let deviations = (&own - own.mean_dim(1, true, Kind::Double)).reshape([-1, dim]);
    let covariance =
        deviations.transpose(0, 1).mm(&deviations) / (train.len() as i64 * (k - 1)) as f64;
    let close = |noise_covariance: &Tensor, want: &Tensor| {
        let worst = (noise_covariance - want).abs().max().double_value(&[]);
        let scale = want.abs().max().double_value(&[]);
        assert!(scale > 0.0);
        assert!(worst < 1e-4 * scale, "off by {worst} of {scale}");
    };
    let root = text_spread(&e, &train, NoiseAlong::Phrasings, &Conditioning::Raw, None)
        .unwrap()
        .to_kind(Kind::Double);
    assert_eq!(root.size(), vec![dim, dim]);
    close(&root.transpose(0, 1).mm(&root), &covariance);
    // Standardised text: the noise G reads after scaling has the covariance
    // of the scaled captions.
    let standardised = Conditioning::standardised_from(&e.index_select(0, &index)).unwrap();
    let Conditioning::Standardised { std, .. } = &standardised else {
        unreachable!()
    };
    let inv_std = Tensor::from_slice(std).to_kind(Kind::Double).reciprocal();
    let scaled = text_spread(&e, &train, NoiseAlong::Phrasings, &standardised, None)
        .unwrap()
        .to_kind(Kind::Double)
        * inv_std.unsqueeze(0);
    close(
        &scaled.transpose(0, 1).mm(&scaled),
        &(&covariance * inv_std.unsqueeze(0) * inv_std.unsqueeze(1)),
    );

    // Every caption of a picture alike: no phrasing to move along.
    let run = |e: &Tensor, text_noise: f64| {
        let config = GanConfig {
            steps: Some(1),
            fresh_noise_for_g: true,
            text_noise,
            text_noise_along: NoiseAlong::Phrasings,
            ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
        };
        let mut trainer =
            GanTrainer::new(with_g_and_d_of(&source), config, &set, e.shallow_clone()).unwrap();
        let draws = trainer.draw_step();
        trainer.step_with(&draws).unwrap().read().unwrap()
    };
    let alike = e.mean_dim(1, true, Kind::Float).expand_as(&e).contiguous();
    assert_eq!(run(&alike, 0.0)["d_fake"], run(&alike, 2.0)["d_fake"]);
    assert_ne!(run(&e, 0.0)["d_fake"], run(&e, 2.0)["d_fake"]);
}

/// `--text-noise-along statements` pools, over the training pictures, how
/// each caption differs from the captions of its picture that state the
/// same attributes (the dataset says which): a caption alone in what it
/// states adds nothing. Checked against the covariance summed group by
/// group; a dataset that does not say what its captions state is refused.
#[test]
fn text_noise_along_statements_pools_captions_that_state_the_same() {
    use gantry::model::conditioning::Conditioning;
    use gantry::train::gan::{caption_groups, text_spread, NoiseAlong};
    let set = flowers(300);
    let source = tiny_model();
    let e = embeddings(&source, &set);
    let train = set.split(false);
    let groups = caption_groups(&set).unwrap();
    let dim = e.size()[2];
    let mut sum = Tensor::zeros([dim, dim], (Kind::Double, tch::Device::Cpu));
    let mut freedom = 0i64;
    for &i in &train {
        let states: Vec<&str> = set.attributes[i]["caption_states"].split(',').collect();
        let numbers = Vec::<i64>::try_from(groups.get(i as i64)).unwrap();
        let mut kinds = states.clone();
        kinds.sort();
        kinds.dedup();
        for kind in kinds {
            let members: Vec<i64> = (0..states.len() as i64)
                .filter(|&c| states[c as usize] == kind)
                .collect();
            // The numbers group exactly the captions whose statements match.
            let number = numbers[members[0] as usize];
            for (c, n) in numbers.iter().enumerate() {
                assert_eq!(*n == number, states[c] == kind);
            }
            let x = e
                .get(i as i64)
                .index_select(0, &Tensor::from_slice(&members))
                .to_kind(Kind::Double);
            let d = &x - x.mean_dim(0, true, Kind::Double);
            sum += d.transpose(0, 1).mm(&d);
            freedom += members.len() as i64 - 1;
        }
    }
    assert!(
        freedom > train.len() as i64,
        "few captions state the same: {freedom}"
    );
    let want = sum / freedom as f64;
    let root = text_spread(
        &e,
        &train,
        NoiseAlong::Statements,
        &Conditioning::Raw,
        Some(&groups),
    )
    .unwrap()
    .to_kind(Kind::Double);
    let got = root.transpose(0, 1).mm(&root);
    let worst = (&got - &want).abs().max().double_value(&[]);
    let scale = want.abs().max().double_value(&[]);
    assert!(worst < 1e-4 * scale, "off by {worst} of {scale}");
    // Narrower than along all phrasings: what captions leave out is not in it.
    let all = text_spread(&e, &train, NoiseAlong::Phrasings, &Conditioning::Raw, None)
        .unwrap()
        .to_kind(Kind::Double);
    let trace = |r: &Tensor| r.transpose(0, 1).mm(r).trace().double_value(&[]);
    assert!(
        trace(&root) < trace(&all),
        "{} vs {}",
        trace(&root),
        trace(&all)
    );

    // A dataset that does not say what its captions state: refused by name.
    let mut silent = flowers(50);
    for a in &mut silent.attributes {
        a.remove("caption_states");
    }
    let err = format!("{:#}", caption_groups(&silent).unwrap_err());
    assert!(err.contains("says what each caption states"), "{err}");
}

#[test]
fn fresh_noise_for_g_draws_d_its_own_fakes() {
    let set = flowers(400);
    let source = tiny_model();
    let e = embeddings(&source, &set);
    let run = |fresh: bool| {
        let model = with_g_and_d_of(&source);
        let config = GanConfig {
            steps: Some(1),
            fresh_noise_for_g: fresh,
            ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
        };
        let mut trainer = GanTrainer::new(model, config, &set, e.shallow_clone()).unwrap();
        trainer.gan_step().unwrap().read().unwrap()
    };
    let (reused, reused_again, fresh) = (run(false), run(false), run(true));
    // Deterministic, and the same real batch and text either way...
    assert_eq!(reused["d_fake"], reused_again["d_fake"]);
    assert_eq!(reused["d_real"], fresh["d_real"]);
    // ...but D's fakes are drawn with their own z.
    assert_ne!(reused["d_fake"], fresh["d_fake"]);
}

/// Words a changed caption may lose and still state all it did.
const SMALL: [&str; 14] = [
    "a", "an", "the", "with", "and", "of", "is", "are", "has", "this", "its", "that", "it", "there",
];

/// `out`, a caption changed from `caption`, uses no marker of a held-out
/// sentence form that `caption` did not already have.
fn assert_no_held_out_marker_gained(caption: &str, out: &str) {
    use gantry::eval::{CROSS_CHECK_PHRASINGS, HELD_OUT_PHRASINGS};
    for (template, markers) in [HELD_OUT_PHRASINGS, CROSS_CHECK_PHRASINGS].concat() {
        for marker in markers {
            assert!(
                !out.contains(marker) || caption.contains(marker),
                "{out:?} uses '{marker}' of the held-out form {template:?}"
            );
        }
    }
}

/// The lowercased words of `caption` split at white space and at any of
/// `separators` (a lone "-", a join, is no word).
fn words_split_at(caption: &str, separators: &str) -> Vec<String> {
    caption
        .split(|ch: char| ch.is_whitespace() || separators.contains(ch))
        .filter(|w| !w.is_empty() && *w != "-")
        .map(str::to_lowercase)
        .collect()
}

/// What changing `caption` into `out` gained (its words not in `caption`)
/// and how many small words it left out; a lost word that states something
/// fails the test.
fn words_changed(caption: &str, out: &str, separators: &str) -> (Vec<String>, usize) {
    let mut gained = words_split_at(out, separators);
    let mut dropped = 0;
    for w in words_split_at(caption, separators) {
        match gained.iter().position(|r| *r == w) {
            Some(at) => {
                gained.remove(at);
            }
            None if SMALL.contains(&w.as_str()) => dropped += 1,
            None => panic!("{caption:?} -> {out:?} lost '{w}'"),
        }
    }
    (gained, dropped)
}

/// `text-distil --perturb`: a caption keeps every word that states
/// something (only small words such as "a" and "the" may go), gains one to
/// three words of chat, and none of the words it gains belongs to a sentence
/// form held out for evaluation.
#[test]
fn perturbing_keeps_what_a_caption_states_and_no_held_out_word_leaks_in() {
    use gantry::eval::{CROSS_CHECK_PHRASINGS, HELD_OUT_PHRASINGS};
    use gantry::train::distil::perturb;
    let set = flowers(300);
    let held_out: std::collections::BTreeSet<String> = [HELD_OUT_PHRASINGS, CROSS_CHECK_PHRASINGS]
        .concat()
        .iter()
        .flat_map(|(template, _)| {
            template
                .split(|ch: char| !(ch.is_alphanumeric() || ch == '\'' || ch == '-' || ch == '='))
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let (mut changed, mut dropped) = (0, 0);
    let mut rng = Rng(5);
    for caption in set.captions.iter().flatten() {
        let out = perturb(caption, &mut rng);
        changed += (out != *caption) as usize;
        let (rest, left_out) = words_changed(caption, &out, ",;:./");
        dropped += left_out;
        // What is left is the chat put in: one to three items (some are
        // two words), none of them a word of a held-out form.
        assert!((1..=6).contains(&rest.len()), "{caption:?} -> {out:?}");
        for w in &rest {
            assert!(
                !held_out.contains(w),
                "{out:?} gained '{w}', a word of a held-out form"
            );
        }
        assert_no_held_out_marker_gained(caption, &out);
    }
    assert_eq!(changed, set.captions.iter().flatten().count());
    assert!(dropped > 0, "no small word ever left out");
}

/// `text-distil --made-up`: the words put in are made up (none is a word
/// of a caption or of a sentence form held out for evaluation, nor contains
/// one of three letters or more, so none states an attribute or brings in a
/// held-out marker), and they are many (a text encoder meets thousands of
/// words it never saw, not a few it learns by heart); a caption perturbed
/// with them keeps every word that states something.
#[test]
fn made_up_words_are_no_known_or_held_out_word_and_many() {
    use gantry::eval::{CROSS_CHECK_PHRASINGS, HELD_OUT_PHRASINGS};
    use gantry::train::distil::{perturb_with, MadeUpWords};
    let set = flowers(300);
    let forms = [HELD_OUT_PHRASINGS, CROSS_CHECK_PHRASINGS].concat();
    let known: std::collections::BTreeSet<String> = set
        .captions
        .iter()
        .flatten()
        .map(String::as_str)
        .chain(forms.iter().map(|(form, _)| *form))
        .flat_map(|text| text.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let made_up = MadeUpWords::avoiding(known.iter().map(String::as_str));
    let mut rng = Rng(11);
    let drawn: std::collections::BTreeSet<String> =
        (0..3000).map(|_| made_up.draw(&mut rng)).collect();
    assert!(drawn.len() > 1500, "only {} different words", drawn.len());
    for word in &drawn {
        assert!(word.chars().all(|c| c.is_ascii_lowercase()), "{word:?}");
        for k in &known {
            assert!(
                word != k && (k.len() < 3 || !word.contains(k.as_str())),
                "made-up {word:?} is or holds the known word {k:?}"
            );
        }
    }
    for caption in set.captions.iter().flatten().take(200) {
        let out = perturb_with(caption, &mut rng, &mut |rng| made_up.draw(rng));
        let (gained, _) = words_changed(caption, &out, ",;:./");
        assert!((1..=3).contains(&gained.len()), "{caption:?} -> {out:?}");
        assert_no_held_out_marker_gained(caption, &out);
    }
}

/// `text-distil --terse`: a caption written as a list keeps every word that
/// states something, in its order, gains none, and joins them with symbols
/// that no held-out sentence form is marked by.
#[test]
fn a_terse_list_keeps_what_a_caption_states_in_order_and_gains_nothing() {
    use gantry::train::distil::terse;
    let set = flowers(300);
    let words = |c: &str| words_split_at(c, ",;:./|+");
    let mut rng = Rng(7);
    let (mut joined_tight, mut total) = (0, 0);
    for caption in set.captions.iter().flatten() {
        let out = terse(caption, &mut rng);
        let kept: Vec<String> = words(caption)
            .into_iter()
            .filter(|w| !SMALL.contains(&w.as_str()))
            .collect();
        assert_eq!(words(&out), kept, "{caption:?} -> {out:?}");
        assert!(!out.contains("  ") && out.trim() == out, "{out:?}");
        assert_no_held_out_marker_gained(caption, &out);
        total += 1;
        joined_tight += out.split(' ').any(|w| w.contains([',', ';', '/', '+'])) as usize;
    }
    assert!(
        joined_tight * 4 > total,
        "only {joined_tight} of {total} lists join words without a space"
    );
}

/// `--reworded`: the caption G reads keeps every word of the caption as
/// written that states something (small words may go, chat and fillers come
/// in), and gains no marker of a held-out sentence form; rewording varies
/// captions (most change, and in more than one way).
#[test]
fn a_reworded_caption_states_all_its_caption_did_and_no_held_out_form() {
    use gantry::train::distil::reword;
    let set = flowers(300);
    let mut rng = Rng(11);
    let mut forms = std::collections::BTreeSet::new();
    for caption in set.captions.iter().flatten() {
        let out = reword(caption, &mut rng);
        let (gained, dropped) = words_changed(caption, &out, ",;:./|+-");
        assert_no_held_out_marker_gained(caption, &out);
        // Whether it left small words out and whether it gained any.
        forms.insert((dropped > 0, gained.is_empty()));
    }
    assert!(forms.len() >= 3, "rewording takes too few forms: {forms:?}");
}

/// `text-distil --rephrase`: a caption keeps every word it had (clauses
/// reordered, a filler or two put in) and never gains a word of a sentence
/// form held out for evaluation.
#[test]
fn rephrasing_keeps_what_a_caption_states_and_no_held_out_form_leaks_in() {
    use gantry::train::distil::rephrase;
    let set = flowers(300);
    let words = |c: &str| -> Vec<String> {
        let mut w: Vec<String> = c
            .split(|ch: char| ch.is_whitespace() || ",;:.".contains(ch))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        w.sort();
        w
    };
    let mut rng = Rng(11);
    for caption in set.captions.iter().flatten() {
        let out = rephrase(caption, &mut rng);
        let (mut before, after) = (words(caption), words(&out));
        assert!(
            (before.len() + 1..=before.len() + 2).contains(&after.len()),
            "{caption:?} -> {out:?}"
        );
        // Every word is still there, as often.
        let mut rest = after.clone();
        for w in before.drain(..) {
            let at = rest
                .iter()
                .position(|r| *r == w)
                .unwrap_or_else(|| panic!("{caption:?} -> {out:?} lost '{w}'"));
            rest.remove(at);
        }
        assert_no_held_out_marker_gained(caption, &out);
    }
    // The clauses come out in every order.
    let caption = "a red flower, five round petals; a yellow centre";
    let orders: std::collections::BTreeSet<Vec<usize>> = (0..200)
        .map(|_| {
            let out = rephrase(caption, &mut rng);
            let mut at: Vec<(usize, usize)> = ["red", "five", "yellow"]
                .iter()
                .enumerate()
                .map(|(k, w)| (out.find(w).unwrap(), k))
                .collect();
            at.sort();
            at.into_iter().map(|(_, k)| k).collect()
        })
        .collect();
    assert_eq!(orders.len(), 6, "{orders:?}");
}

#[test]
fn text_distil_teaches_new_phrasings_and_keeps_g_d_and_s() {
    let sandbox = Sandbox::new();
    let teacher = sandbox.tiny_model("te");
    let args = [
        "text-distil",
        "--model",
        "te",
        "--opt",
        "count=200",
        "--opt",
        "grammar=rich",
        "--teacher-opt",
        "count=200",
        "--teacher-opt",
        "grammar=classic",
        "--batch",
        "16",
        "--lr",
        "1e-3",
        "--checkpoint-every",
        "1",
        "--steps",
    ];
    let out = train(&sandbox, &[&args[..], &["40", "--run", "taught"]].concat());
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // "... variance 1.234 -> 0.567": the new phrasings of held-out images move
    // towards their targets.
    let line = stdout
        .lines()
        .find(|l| l.starts_with("new phrasings"))
        .unwrap_or_else(|| panic!("no report line in {stdout}"));
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 2, "{line}");
    assert!(numbers[1] < numbers[0], "{line}");

    let taught = sandbox.path().join("taught/model");
    for file in [
        "generator.safetensors",
        "discriminator.safetensors",
        "style_encoder.safetensors",
        "image_encoder.safetensors",
    ] {
        assert!(
            same_tensors(&trainable(&teacher, file), &trainable(&taught, file)),
            "{file} changed"
        );
    }
    assert!(!same_tensors(
        &trainable(&teacher, "text_encoder.safetensors"),
        &trainable(&taught, "text_encoder.safetensors")
    ));
    let card = std::fs::read_to_string(taught.join("model.json")).unwrap();
    assert!(card.contains("text_distil_steps"), "{card}");
    assert!(card.contains("grammar=classic (kept)"), "{card}");
    // It says it finished under its own name: a card gathers stages, and
    // the distillation's finishing says nothing of G's.
    let parsed: serde_json::Value = serde_json::from_str(&card).unwrap();
    assert_eq!(parsed["training"]["text_distil_complete"], true, "{card}");
    assert!(parsed["training"].get("complete").is_none(), "{card}");

    // It resumes exactly, like every trainer.
    resumes_exactly(
        &sandbox,
        &[&args[..], &["4"]].concat(),
        "distil",
        "2",
        &["text_encoder.safetensors"],
    );

    // The same captions on both sides teach nothing: refused, nothing written.
    let same_captions = [
        "text-distil",
        "--model",
        "te",
        "--opt",
        "count=200",
        "--teacher-opt",
        "count=200",
    ];
    let out = train(&sandbox, &[&same_captions[..], &["--run", "same"]].concat());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--teacher-opt"), "{err}");
    assert!(!sandbox.path().join("same/model").exists());
    // ...unless every caption goes to its image's mean (--own-captions 0),
    // here rephrased and perturbed too.
    assert_ok(&train(
        &sandbox,
        &[
            &same_captions[..],
            &[
                "--own-captions",
                "0",
                "--rephrase",
                "1",
                "--perturb",
                "0.5",
                "--batch",
                "16",
                "--steps",
                "2",
                "--run",
                "means",
            ],
        ]
        .concat(),
    ));
    let card: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.path().join("means/model/model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(card["training"]["text_distil_rephrase"].as_f64(), Some(1.0));
    assert_eq!(card["training"]["text_distil_perturb"].as_f64(), Some(0.5));
    // ...or the student reads them changed for the teacher's φ of each as
    // written (every caption its own target here).
    assert_ok(&train(
        &sandbox,
        &[
            &same_captions[..],
            &[
                "--own-captions",
                "1",
                "--perturb",
                "1",
                "--terse",
                "0.5",
                "--made-up",
                "0.5",
                "--g-weight",
                "0.5",
                "--batch",
                "16",
                "--steps",
                "2",
                "--run",
                "own",
            ],
        ]
        .concat(),
    ));
    let own = std::fs::read_to_string(sandbox.path().join("own/model/model.json")).unwrap();
    assert!(
        own.contains("50% of them perturbed")
            && own.contains("50% of them written as terse lists")
            && own.contains("words of chat put in (50% of them made up)")
            && own.contains("50% of the loss measured as G reads φ")
            && own.contains("as written"),
        "{own}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&own).unwrap();
    assert_eq!(parsed["training"]["text_distil_terse"].as_f64(), Some(0.5));
    assert_eq!(
        parsed["training"]["text_distil_made_up"].as_f64(),
        Some(0.5)
    );
    assert_eq!(
        parsed["training"]["text_distil_g_weight"].as_f64(),
        Some(0.5)
    );
    // G is read through, never taught.
    assert!(same_tensors(
        &trainable(&teacher, "generator.safetensors"),
        &trainable(&sandbox.path().join("own/model"), "generator.safetensors")
    ));
    // Shares outside [0, 1], and lists with nothing perturbed, are refused.
    for (bad, says) in [
        (
            &["--g-weight", "1.5", "--perturb", "1"][..],
            "G reads φ must be in [0, 1]",
        ),
        (
            &["--terse", "0.5", "--rephrase", "1"][..],
            "pass --perturb too",
        ),
        (
            &["--made-up", "0.5", "--rephrase", "1"][..],
            "pass --perturb too",
        ),
        (
            &["--made-up", "1.5", "--perturb", "1"][..],
            "made-up words must be in [0, 1]",
        ),
    ] {
        let out = train(
            &sandbox,
            &[
                &same_captions[..],
                &["--own-captions", "1", "--steps", "1", "--run", "refused"][..],
                bad,
            ]
            .concat(),
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
    assert_eq!(
        card["training"]["text_distil_own_captions"].as_f64(),
        Some(0.0)
    );
}

/// `train text-encoder --init-from` takes a folder that holds only the text
/// side (the committed `state/procedural-text-encoder`), as `train gan
/// --text-encoder` does.
#[test]
fn a_text_encoder_run_starts_from_a_text_side_only_folder() {
    let sandbox = Sandbox::new();
    let state =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("state/procedural-text-encoder");
    let out = train(
        &sandbox,
        &[
            "text-encoder",
            "--preset",
            "small",
            "--match",
            "image",
            "--batch-classes",
            "8",
            "--init-from",
            state.to_str().unwrap(),
            "--opt",
            "count=100",
            "--steps",
            "1",
            "--run",
            "te",
        ],
    );
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("starting the encoders from"));
    assert!(sandbox
        .path()
        .join("te/model/text_encoder.safetensors")
        .exists());
    // The run's model holds G as initialised: `gantry eval` measures its
    // embedding, not pictures of an untrained G.
    let out = sandbox.ok(&["eval", "te/model", "--count", "64", "--dry-run"]);
    assert!(out.contains("embedding_reads_colour"), "{out}");
    assert!(!out.contains("content_colour"), "{out}");
}

#[test]
fn the_matching_loss_pulls_g_towards_its_text_through_a_frozen_image_encoder() {
    let set = flowers(400);
    let source = tiny_model();
    // An untrained text encoder says nearly the same for every caption; the
    // test needs texts that differ: one random embedding per class.
    let e = {
        let k = embeddings(&source, &set).size();
        let classes =
            Tensor::from_slice(&set.classes.iter().map(|&c| c as i64).collect::<Vec<_>>());
        let n_classes = set.classes.iter().max().map_or(1, |&c| c as i64 + 1);
        let per_class = Tensor::randn([n_classes, k[2]], (Kind::Float, Device::Cpu));
        (per_class * 30.0)
            .index_select(0, &classes)
            .unsqueeze(1)
            .expand([k[0], k[1], k[2]], true)
            .contiguous()
    };
    let trainer = |match_loss: f64, steps: u64| {
        let mut model = tiny_model();
        for (to, from) in [
            (&mut model.generator.vs, &source.generator.vs),
            (&mut model.discriminator.vs, &source.discriminator.vs),
            (&mut model.text_encoder.vs, &source.text_encoder.vs),
            (&mut model.image_encoder.vs, &source.image_encoder.vs),
        ] {
            to.copy(from).unwrap();
        }
        let config = GanConfig {
            steps: Some(steps),
            lr: 1e-3,
            match_loss,
            ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
        };
        GanTrainer::new(model, config, &set, e.shallow_clone()).unwrap()
    };
    // One step: D's update is the paper's either way; only G's differs.
    let mut plain = trainer(0.0, 1);
    let mut matched = trainer(1.0, 1);
    let theta = snapshot(&matched.model.image_encoder.vs);
    let a = plain.gan_step().unwrap().read().unwrap();
    let b = matched.gan_step().unwrap().read().unwrap();
    assert_eq!(a["d_real"], b["d_real"]);
    assert_eq!(a["d_fake"], b["d_fake"]);
    assert!(!a.contains_key("g_match"));
    assert!(b["g_match"] > 0.0, "{b:?}");
    let moved = |x: &GanTrainer, y: &GanTrainer| {
        snapshot(&x.model.generator.vs)
            .iter()
            .zip(snapshot(&y.model.generator.vs))
            .any(|((_, p), (_, q))| !p.equal(&q))
    };
    assert!(moved(&plain, &matched), "the matching term did not reach G");
    // θ is a fixed judge: not trained by G's loss.
    for ((name, before), (_, after)) in theta.iter().zip(snapshot(&matched.model.image_encoder.vs))
    {
        assert!(before.equal(&after), "{name} moved");
    }
    // With the term weighted up, G learns to draw what θ reads as its text:
    // the matching loss falls well below where it started.
    let mut pulled = trainer(20.0, 30);
    let first = pulled.gan_step().unwrap().read().unwrap()["g_match"];
    let mut last = Vec::new();
    for _ in 1..30 {
        last.push(pulled.gan_step().unwrap().read().unwrap()["g_match"]);
    }
    let late = last[last.len() - 5..].iter().sum::<f64>() / 5.0;
    eprintln!("matching loss {first:.3} at the first step, {late:.3} over the last five");
    assert!(late < 0.5 * first, "matching loss {first} -> {late}");
    // A negative weight is refused.
    let config = GanConfig {
        match_loss: -1.0,
        ..GanConfig::paper(Variant::GanIntCls, "procedural-flowers")
    };
    let err = GanTrainer::new(tiny_model(), config, &set, e.shallow_clone())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("matching loss"), "{err}");
}

#[test]
fn train_gan_match_loss_is_logged_and_recorded_in_the_card() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    let out = train(
        &sandbox,
        &[
            &GAN_ARGS[..],
            &[
                "2",
                "--match-loss",
                "2",
                "--match-negatives",
                "image",
                "--run",
                "matched",
            ],
        ]
        .concat(),
    );
    assert_ok(&out);
    let run = sandbox.path().join("matched");
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("model/model.json")).unwrap())
            .unwrap();
    assert_eq!(card["training"]["match_loss"], 2.0);
    assert_eq!(card["training"]["match_negatives"], "image");
    let log = std::fs::read_to_string(run.join("losses.jsonl")).unwrap();
    assert!(log.contains("\"g_match\""), "{log}");
    let out = train(
        &sandbox,
        &[
            &GAN_ARGS[..],
            &["2", "--match-loss=-1", "--run", "negative"],
        ]
        .concat(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--match-loss must be 0 or more"),
        "{err}"
    );
    assert!(
        !sandbox.path().join("negative").exists(),
        "a refused run leaves no folder"
    );
    // Negatives for a term that is off are refused, not ignored.
    let out = train(
        &sandbox,
        &[
            &GAN_ARGS[..],
            &["2", "--match-negatives", "image", "--run", "unmatched"],
        ]
        .concat(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("needs --match-loss"),
        "{err}"
    );
}

#[test]
fn diversity_reads_the_data_as_varied_and_one_picture_per_caption_as_collapsed() {
    let set = flowers(256);
    let probe = gantry::probe::LoadedProbe::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/probe"),
        Device::Cpu,
    )
    .unwrap();
    let per = gantry::eval::procedural::PICTURES_PER_CAPTION;
    let renders = |indices: Vec<usize>| set.image_batch(&indices, false, &mut Rng(0));
    let measure = |pictures_of: &dyn Fn(usize) -> Tensor| {
        gantry::eval::diversity(&set, &probe, ["background", "position"], 4, pictures_of).unwrap()
    };
    // A "G" that draws the data itself, another render for every z, is as
    // varied as the data.
    let data = measure(&|c| renders((0..per).map(|k| (c * per + k) % set.len()).collect()));
    assert!(data.iter().all(|&f| f > 0.85 && f < 1.2), "{data:?}");
    // One that draws one picture per caption whatever z is has collapsed.
    let collapsed = measure(&|c| renders(vec![c; per]));
    assert_eq!(collapsed, [0.0, 0.0]);
    // Between them: two pictures per caption.
    let two = measure(&|c| renders((0..per).map(|k| c * 2 + k % 2).collect()));
    assert!(two.iter().all(|&f| f < 0.6), "{two:?}");
}
