//! Dataset loaders through the plugin host, as training and `gantry dataset`
//! use them.

mod common;
use common::Sandbox;
use gantry::dataset::{Dataset, DatasetSpec};
use gantry::host::{self, Registry};
use gantry::training_set::{OnError, Rng, TrainingSet};
use tch::{Device, Kind, Tensor};

fn registry() -> Registry {
    Registry::discover(&host::search_dirs(std::path::Path::new("/nonexistent")))
}

fn open(spec: &str, options: &[(&str, &str)]) -> anyhow::Result<Dataset> {
    let options: Vec<(String, String)> = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Dataset::open(&registry(), &spec.parse::<DatasetSpec>()?, &options)
}

#[test]
fn oxford102_has_the_published_counts_at_either_size() {
    let shared = require_shared!();
    let spec = format!("reed:{}", shared.join("datasets/oxford102").display());
    for size in ["76", "144"] {
        let mut set = open(&spec, &[("size", size)]).unwrap();
        assert_eq!(set.len, 8189);
        assert_eq!(set.captions, 81_890);
        assert_eq!(set.classes.len(), 102);
        assert_eq!(set.classes.iter().filter(|c| c.held_out).count(), 20);
        assert!(
            set.problems.is_empty(),
            "{:?}",
            &set.problems[..3.min(set.problems.len())]
        );
        let sample = set.get(0).unwrap();
        let image = sample.image.unwrap();
        assert_eq!(image.width.to_string(), size);
        assert_eq!(sample.captions.len(), 10);
    }
}

#[test]
fn the_cub_caption_fixtures_read_as_a_caption_only_set() {
    let shared = require_shared!();
    let spec = format!(
        "reed:{}",
        shared.join("fixtures/cub_text_c10_sample").display()
    );
    let mut set = open(&spec, &[]).unwrap();
    assert_eq!(set.len, 400);
    assert_eq!(set.captions, 4000);
    assert_eq!(set.classes.len(), 20);
    assert!(!set.has_images);
    let sample = set.get(399).unwrap();
    assert!(sample.image.is_none());
    assert_eq!(sample.captions.len(), 10);
    assert!(set.classes[0].name.starts_with("001."));
}

#[test]
fn procedural_flowers_through_the_plugin_are_deterministic_with_ground_truth() {
    let mut a = open("procedural-flowers", &[("count", "50"), ("seed", "4")]).unwrap();
    let mut b = open("procedural-flowers", &[("count", "50"), ("seed", "4")]).unwrap();
    let mut c = open("procedural-flowers", &[("count", "50"), ("seed", "5")]).unwrap();
    assert_eq!(a.len, 50);
    assert_eq!(a.classes.len(), 24);
    for i in [0, 17, 49] {
        let (sa, sb, sc) = (a.get(i).unwrap(), b.get(i).unwrap(), c.get(i).unwrap());
        assert_eq!(sa.image, sb.image);
        assert_eq!(sa.captions, sb.captions);
        assert_ne!(sa.image, sc.image);
        for key in [
            "petal_colour",
            "petal_shape",
            "petal_count",
            "centre_colour",
            "background",
            "position",
        ] {
            assert!(
                sa.attributes.contains_key(key),
                "{key} missing: {:?}",
                sa.attributes
            );
        }
        let class = &a.classes[sa.class as usize].name;
        assert_eq!(
            class,
            &format!(
                "{} {}",
                sa.attributes["petal_colour"], sa.attributes["petal_shape"]
            )
        );
    }
    assert!(a.get(50).is_err());
    let err = format!(
        "{:#}",
        open("procedural-flowers", &[("colour", "red")])
            .err()
            .unwrap()
    );
    assert!(err.contains("unknown option 'colour'"), "{err}");
}

#[test]
fn unknown_loaders_and_bad_specs_are_clear_errors() {
    let err = format!("{:#}", open("coco:/x", &[]).err().unwrap());
    assert!(
        err.contains("no dataset loader named 'coco'") && err.contains("reed"),
        "{err}"
    );
    assert!(":x".parse::<DatasetSpec>().is_err());
    let err = format!("{:#}", open("reed:/nonexistent/folder", &[]).err().unwrap());
    assert!(err.contains("no such folder"), "{err}");
}

#[test]
fn training_batches_are_cropped_flipped_and_scaled() {
    let mut set = open("procedural-flowers", &[("count", "40")]).unwrap();
    let data = TrainingSet::load(&mut set, None, OnError::Stop, &mut |_, _| {}).unwrap();
    assert_eq!(data.len(), 40);
    assert_eq!(data.images.size(), vec![40, 3, 64, 64]);
    let (train, test) = (data.split(false), data.split(true));
    assert_eq!(train.len() + test.len(), 40);
    let mut rng = Rng(1);
    let batch = data.image_batch(&[0, 1, 2], true, &mut rng);
    assert_eq!(batch.size(), vec![3, 3, 64, 64]);
    assert!(batch.max().double_value(&[]) <= 1.0 && batch.min().double_value(&[]) >= -1.0);
    // Without augmentation a 64x64 set comes back exactly.
    let plain = data.image_batch(&[5], false, &mut rng);
    let back = gantry::imageio::images_from_tensor(&plain).unwrap();
    assert_eq!(back[0].rgb, set.get(5).unwrap().image.unwrap().rgb);
    // Over many draws, some images are flipped.
    let flipped = (0..20).any(|_| {
        let b = data.image_batch(&[5], true, &mut rng);
        !b.equal(&plain)
    });
    assert!(flipped);
}

#[test]
fn a_crop_is_the_stored_image_cut_at_the_drawn_offset_and_maybe_mirrored() {
    // 76 x 76 images whose every pixel value says where it is.
    let n = 6;
    let images = Tensor::arange(n * 3 * 76 * 76, (Kind::Int64, Device::Cpu))
        .remainder(251)
        .to_kind(Kind::Uint8)
        .view([n, 3, 76, 76]);
    let data = TrainingSet {
        spec: "synthetic".into(),
        images: images.shallow_clone(),
        captions: vec![vec!["a flower".into()]; n as usize],
        classes: vec![0; n as usize],
        class_info: vec![],
        attributes: vec![Default::default(); n as usize],
        names: (0..n).map(|i| i.to_string()).collect(),
        problems: vec![],
    };
    let picks = [4usize, 1, 4, 0, 5];
    let mut rng = Rng(7);
    let mut expected_rng = rng;
    let batch = data.image_batch(&picks, true, &mut rng);
    let mut flips = 0;
    for (k, &i) in picks.iter().enumerate() {
        let dx = expected_rng.below(13) as i64;
        let dy = expected_rng.below(13) as i64;
        let flip = expected_rng.below(2) == 1;
        flips += flip as usize;
        let crop = images.get(i as i64).narrow(1, dy, 64).narrow(2, dx, 64);
        let crop = if flip { crop.flip([2]) } else { crop };
        let want = crop.to_kind(Kind::Float) / 127.5 - 1.0;
        assert!(batch.get(k as i64).equal(&want), "image {k} (index {i})");
    }
    assert!(flips > 0 && flips < picks.len(), "{flips} flips");
    // Without augmentation: the centre crop, and no random numbers drawn.
    let before = rng;
    let centre = data.image_batch(&[2], false, &mut rng);
    let want = images
        .get(2)
        .narrow(1, 6, 64)
        .narrow(2, 6, 64)
        .to_kind(Kind::Float)
        / 127.5
        - 1.0;
    assert!(centre.get(0).equal(&want));
    assert_eq!(rng.0, before.0);
}

#[test]
fn photos_are_stored_at_76_and_cropped_to_64() {
    let shared = require_shared!();
    let spec = format!("reed:{}", shared.join("datasets/oxford102").display());
    let mut set = open(&spec, &[("size", "144")]).unwrap();
    let data = TrainingSet::load(&mut set, Some(30), OnError::Stop, &mut |_, _| {}).unwrap();
    assert_eq!(data.images.size(), vec![30, 3, 76, 76]);
    let batch = data.image_batch(&[0, 29], true, &mut Rng(0));
    assert_eq!(batch.size(), vec![2, 3, 64, 64]);
}

#[test]
fn cli_dataset_info_and_preview() {
    let sandbox = Sandbox::new();
    let info = sandbox.ok(&[
        "dataset",
        "info",
        "procedural-flowers",
        "--opt",
        "count=100",
    ]);
    assert!(info.contains("images    100"), "{info}");
    assert!(info.contains("captions  1000"), "{info}");
    assert!(info.contains("classes   24 (19 train / 5 test)"), "{info}");
    let out = sandbox.ok(&[
        "dataset",
        "preview",
        "procedural-flowers",
        "-o",
        "g.png",
        "--count",
        "6",
        "--columns",
        "3",
    ]);
    assert_eq!(out.trim(), "g.png");
    let decoded = image::open(sandbox.path().join("g.png")).unwrap();
    assert_eq!(decoded.width(), 3 * (64 * 3 + 8));
    let err = sandbox.fails(&["dataset", "info", "procedural-flowers", "--opt", "count"]);
    assert!(err.contains("expected KEY=VALUE"), "{err}");
}

#[test]
fn cli_reports_problems_by_file() {
    let sandbox = Sandbox::new();
    let root = sandbox.path().join("set");
    std::fs::create_dir_all(root.join("text_c10/a")).unwrap();
    std::fs::create_dir_all(root.join("images")).unwrap();
    for i in 0..3 {
        let lines: Vec<String> = (0..10).map(|k| format!("a flower {k}")).collect();
        std::fs::write(
            root.join(format!("text_c10/a/img{i}.txt")),
            lines.join("\n"),
        )
        .unwrap();
        image::RgbImage::new(8, 8)
            .save(root.join(format!("images/img{i}.png")))
            .unwrap();
    }
    std::fs::write(root.join("text_c10/a/img1.txt"), "too short").unwrap();
    let spec = format!("reed:{}", root.display());
    let info = sandbox.ok(&["dataset", "info", &spec]);
    assert!(
        info.contains("images    2") && info.contains("problems  1"),
        "{info}"
    );
    assert!(info.contains("img1.txt: 1 captions, 10 expected"), "{info}");
    let err = sandbox.fails(&["dataset", "info", &spec, "--opt", "on_error=stop"]);
    assert!(err.contains("img1.txt"), "{err}");
}

#[test]
fn held_out_phrasings_never_appear_in_the_training_captions() {
    use gantry::eval::{phrased_caption_in, CROSS_CHECK_PHRASINGS, HELD_OUT_PHRASINGS};
    let sets = [&HELD_OUT_PHRASINGS[..], &CROSS_CHECK_PHRASINGS[..]];
    for grammar in ["rich", "classic"] {
        let mut set = open(
            "procedural-flowers",
            &[("count", "4000"), ("grammar", grammar)],
        )
        .unwrap();
        let set = TrainingSet::load(&mut set, None, OnError::Stop, &mut |_, _| {}).unwrap();
        let mut seen = 0;
        for (captions, attributes) in set.captions.iter().zip(&set.attributes) {
            for caption in captions {
                let caption = caption.to_lowercase();
                for (template, markers) in sets.concat() {
                    for marker in markers {
                        assert!(
                            !caption.contains(marker),
                            "{grammar} caption {caption:?} uses '{marker}' of the held-out form {template:?}"
                        );
                    }
                }
                seen += 1;
            }
            for forms in sets {
                for k in 0..forms.len() {
                    let phrased = phrased_caption_in(forms, attributes, k).unwrap();
                    assert!(!captions.contains(&phrased), "{phrased}");
                }
            }
        }
        assert_eq!(seen, 40_000);
    }
    // Each held-out phrasing states all four attributes.
    let mut a = std::collections::BTreeMap::new();
    for (k, v) in [
        ("petal_colour", "turquoise"),
        ("petal_shape", "pointed"),
        ("petal_count", "7"),
        ("centre_colour", "brown"),
    ] {
        a.insert(k.to_string(), v.to_string());
    }
    for forms in sets {
        for (k, (_, markers)) in forms.iter().enumerate() {
            let c = phrased_caption_in(forms, &a, k).unwrap();
            for word in ["turquoise", "pointed", "brown"] {
                assert!(c.contains(word), "{c}");
            }
            assert!(c.contains("seven") || c.contains('7'), "{c}");
            // A form's caption carries its own markers.
            for marker in *markers {
                assert!(c.contains(marker), "{c} lacks its marker '{marker}'");
            }
        }
    }
}
