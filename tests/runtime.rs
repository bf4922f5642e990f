//! The library operations the front ends call, on a tiny random model.

mod common;
use gantry::host::Sampler;
use gantry::imageio::{load_photo, Image};
use gantry::model::ModelConfig;
use gantry::runtime::Runtime;
use gantry::weights::Model;
use tch::Device;

fn tiny_runtime() -> Runtime {
    let model = Model::new(
        "tiny",
        &ModelConfig::preset("tiny").unwrap(),
        Device::Cpu,
        1,
    )
    .unwrap();
    Runtime::new(model, Sampler::BuiltinGaussian)
}

/// Largest per-channel difference between two images.
fn max_diff(a: &Image, b: &Image) -> u8 {
    a.rgb
        .iter()
        .zip(&b.rgb)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap()
}

#[test]
fn generate_is_deterministic_and_each_image_is_its_own_seed() {
    let rt = tiny_runtime();
    let a = rt.generate("a yellow flower", 3, 10).unwrap();
    let b = rt.generate("a yellow flower", 3, 10).unwrap();
    assert_eq!(a.images, b.images);
    assert_eq!(a.seeds, vec![10, 11, 12]);
    assert!(a
        .images
        .iter()
        .all(|i| i.width == 64 && i.height == 64 && i.rgb.len() == 64 * 64 * 3));
    assert_ne!(a.images[0], a.images[1]);
    // Image 2 of the batch is the image of seed 12 alone (up to batch-size
    // dependent float rounding in the convolutions).
    let single = rt.generate("a yellow flower", 1, 12).unwrap();
    assert!(max_diff(&single.images[0], &a.images[2]) <= 1);
}

#[test]
fn sentence_interpolation_keeps_z_and_ends_at_both_captions() {
    let rt = tiny_runtime();
    let row = rt
        .interpolate_text("a red flower", "a blue flower", 5, 3)
        .unwrap();
    assert_eq!(row.images.len(), 5);
    let start = rt.generate("a red flower", 1, 3).unwrap();
    let end = rt.generate("a blue flower", 1, 3).unwrap();
    assert!(max_diff(&row.images[0], &start.images[0]) <= 1);
    assert!(max_diff(&row.images[4], &end.images[0]) <= 1);
    assert!(rt.interpolate_text("a", "b", 1, 0).is_err());
}

#[test]
fn noise_interpolation_keeps_the_caption_and_moves_between_seeds() {
    let rt = tiny_runtime();
    let row = rt.interpolate_noise("a white flower", 4, 20).unwrap();
    assert_eq!(row.images.len(), 4);
    let ends = rt.generate("a white flower", 2, 20).unwrap();
    assert!(max_diff(&row.images[0], &ends.images[0]) <= 1);
    assert!(max_diff(&row.images[3], &ends.images[1]) <= 1);
}

#[test]
fn style_transfer_takes_a_photo_and_a_caption() {
    let rt = tiny_runtime();
    let generated = rt.generate("a pink flower", 1, 0).unwrap();
    let out = rt
        .style_transfer(&generated.images[0], "an orange flower")
        .unwrap();
    assert_eq!(out.images.len(), 1);
    let wrong_size = Image {
        width: 2,
        height: 2,
        rgb: vec![0; 12],
    };
    assert!(rt.style_transfer(&wrong_size, "a flower").is_err());
}

#[test]
fn style_transfer_reads_real_photos_of_any_size() {
    let shared = require_shared!();
    let photos = shared.join("datasets/oxford102/jpg144");
    let first = std::fs::read_dir(&photos)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "jpg"))
        .expect("a photo in jpg144");
    let photo = load_photo(&first).unwrap();
    assert_eq!((photo.width, photo.height), (64, 64));
    let out = tiny_runtime()
        .style_transfer(&photo, "a purple flower")
        .unwrap();
    assert_eq!(out.images.len(), 1);
}

#[test]
fn embeddings_have_the_configured_size_and_depend_on_the_text() {
    let rt = tiny_runtime();
    let (e, warnings) = rt.embed(&["a red flower", "a blue flower"]).unwrap();
    assert_eq!(e.size(), vec![2, 64]);
    assert!(warnings.is_empty());
    let diff = (e.get(0) - e.get(1))
        .abs()
        .sum(tch::Kind::Float)
        .double_value(&[]);
    assert!(diff > 0.0);
    assert!(rt.embed(&[""]).is_err());
}
