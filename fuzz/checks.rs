//! The properties the fuzz targets check, one function per parser of outside
//! input, each taking the fuzzer's bytes. Shared by `fuzz/fuzz_targets/*`
//! (cargo-fuzz, `scripts/fuzz.sh`) and `tests/fuzz_corpus.rs`, which runs
//! every committed seed and regression input through them in CI.
//!
//! The session-level checks run in a temporary home with a tiny untrained
//! model, which is also the working directory, so whatever a fuzzed command
//! writes stays there.
#![allow(dead_code)]

use gantry::config::{Paths, Resolved};
use gantry::dataset::Dataset;
use gantry::imageio::{encode_png, png_metadata, write_png, Image};
use gantry::model::ModelConfig;
use gantry::plugin_manager::parse_manifest;
use gantry::session::words::{common_prefix, nearest, quote, split, split_marked};
use gantry::session::Session;
use gantry::text::{
    encode, one_hot, unknown_words, vocabulary, words, ALPHABET_SIZE, MAX_CAPTION_CHARS,
};
use gantry::weights::{parse_card, safetensors_header, Model};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();

/// The fuzzing home: `data/models/tiny` and the working directory `work/`.
pub fn home() -> &'static Path {
    HOME.get_or_init(|| {
        tch::set_num_threads(1);
        let dir = tempfile::tempdir().expect("temp dir");
        let models = dir.path().join("data/models/tiny");
        let mut model = Model::new(
            "tiny",
            &ModelConfig::preset("tiny").expect("tiny preset"),
            tch::Device::Cpu,
            0,
        )
        .expect("tiny model");
        model.save(&models, false).expect("saving the tiny model");
        std::fs::create_dir_all(dir.path().join("work")).expect("work dir");
        // The plugins built beside gantry (`cargo build --release --workspace`),
        // as if installed: samplers, style encoders and dataset loaders.
        let plugins = dir.path().join("data/plugins");
        std::fs::create_dir_all(&plugins).expect("plugin dir");
        let built = repository().join("target/release");
        for entry in std::fs::read_dir(&built).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("libgantry_") && name.ends_with(".so") {
                std::os::unix::fs::symlink(entry.path(), plugins.join(&name)).expect("link");
            }
        }
        std::env::set_current_dir(dir.path().join("work")).expect("cd");
        dir
    })
    .path()
}

/// The repository's root: the crate this file is compiled into is either
/// gantry itself (tests) or `fuzz/`.
fn repository() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if dir.ends_with("fuzz") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// The plugins of the fuzzing home.
pub fn registry() -> gantry::host::Registry {
    gantry::host::Registry::discover(&[home().join("data/plugins")])
}

pub fn work_dir() -> PathBuf {
    home().join("work")
}

/// A fresh session on the tiny model, one picture per caption.
pub fn new_session() -> Session {
    let home = home();
    let paths = Paths {
        config_dir: home.join("config"),
        data_dir: home.join("data"),
    };
    let mut resolved =
        Resolved::from_parts(None, &paths.user_config_file(), &[]).expect("default config");
    resolved.values.model = "tiny".into();
    resolved.values.device = "cpu".into();
    resolved.values.n = 1;
    resolved.values.output_dir = home.join("work/out");
    Session::open(paths, resolved.values).expect("session on the tiny model")
}

/// Lines a fuzzed session may run: not plugin installs (they start cargo) or
/// removals, and nothing that reads a device file (which may never end).
pub fn allowed(line: &str) -> bool {
    let t = line.trim_start().trim_start_matches(':').trim_start();
    !(t.starts_with("plugin") || line.contains("/dev") || line.contains("/proc"))
}

/// `key=value` lines of `text`, as PNG metadata.
pub fn pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The REPL's word splitter: never panics, and what `quote` writes `split`
/// reads back as the same words.
pub fn line(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let _ = split_marked(line);
    let Ok(words) = split(line) else { return };
    let joined = words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
    assert_eq!(split(&joined).as_ref(), Ok(&words), "{joined:?}");
    let _ = common_prefix(&words);
    let _ = nearest(line, gantry::session::commands::names());
}

/// Caption encoding: never panics; every character is either encoded or
/// counted as dropped; the one-hot layout has one 1 per known character.
pub fn caption(data: &[u8]) {
    let Ok(caption) = std::str::from_utf8(data) else {
        return;
    };
    match encode(caption) {
        Err(_) => assert!(caption.trim().is_empty()),
        Ok(e) => {
            let chars = caption.trim().to_lowercase().chars().count();
            assert_eq!(e.slots.len() + e.dropped_chars, chars);
            assert!(e.slots.len() <= MAX_CAPTION_CHARS);
            let known = e.slots.iter().flatten().count();
            let hot = one_hot(std::slice::from_ref(&e));
            assert_eq!(hot.len(), ALPHABET_SIZE * MAX_CAPTION_CHARS);
            assert_eq!(hot.iter().filter(|&&x| x == 1.0).count(), known);
            let _ = e.warnings();
        }
    }
    let _ = words(caption);
    // Every word of a caption is in a vocabulary made from it, or was left
    // out as a misspelling one edit from a far more common word.
    let vocab = vocabulary([caption, "a red flower"], 1);
    for w in unknown_words(caption, &vocab) {
        assert!(
            vocab
                .iter()
                .any(|v| strsim::damerau_levenshtein(&w, v) == 1),
            "{w:?} of {caption:?} left out of {vocab:?}"
        );
    }
}

/// The REPL's language, as a script: each line of the input runs in a fresh
/// session on a tiny model. Whatever the lines, nothing panics (errors are
/// fine: they are what a user sees).
pub fn session(data: &[u8]) {
    let Ok(script) = std::str::from_utf8(data) else {
        return;
    };
    if script.len() > 2000 {
        return;
    }
    let mut session = new_session();
    for line in script.lines().take(12) {
        if !allowed(line) {
            continue;
        }
        if let Ok(gantry::session::Outcome::Quit) = session.execute(line) {
            break;
        }
    }
}

/// PNG provenance: reading the text chunks of any bytes never panics, and
/// metadata written by gantry reads back as written.
pub fn png(data: &[u8]) {
    let _ = png_metadata(Cursor::new(data), "fuzz");
    let meta = pairs(&String::from_utf8_lossy(data));
    let image = Image {
        width: 1,
        height: 1,
        rgb: vec![1, 2, 3],
    };
    if let Ok(bytes) = encode_png(&image, &meta) {
        let latin1 = |s: &str| s.chars().all(|c| (c as u32) < 256);
        let (mut plain, wide): (Vec<_>, Vec<_>) =
            meta.iter().cloned().partition(|(_, v)| latin1(v));
        plain.extend(wide);
        assert_eq!(png_metadata(Cursor::new(&bytes), "fuzz").unwrap(), plain);
    }
}

/// `:replay` of a PNG whose provenance is anything (`key=value` lines of the
/// input as its text chunks): an error or a picture, never a panic.
pub fn replay(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.len() > 2000 {
        return;
    }
    let mut session = new_session();
    let meta = pairs(text);
    if meta.iter().any(|(_, v)| !allowed(v)) {
        return;
    }
    let image = Image {
        width: 64,
        height: 64,
        rgb: vec![0; 64 * 64 * 3],
    };
    let path = work_dir().join("replayed.png");
    if write_png(&path, &image, &meta).is_ok() {
        let _ = session.execute(&format!(":replay {}", path.display()));
    }
}

/// Model folders: `model.json` text and safetensors headers. Never a panic;
/// a card gantry accepts, written back, is accepted again with the same
/// architecture.
pub fn model_card(data: &[u8]) {
    let _ = safetensors_header(data, data.len() as u64);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(card) = parse_card(text, "fuzz") {
        let written = serde_json::to_string(&card).unwrap();
        let again = parse_card(&written, "fuzz").expect("a card gantry wrote reads back");
        let sizes = |c: &gantry::weights::ModelCard| {
            let a = &c.architecture;
            (
                a.text_encoder.clone(),
                a.image_encoder.clone(),
                a.generator.clone(),
                a.discriminator.clone(),
                a.style_encoder.clone(),
            )
        };
        assert_eq!(sizes(&again), sizes(&card));
    }
}

/// The configuration: any `config.toml` text, and `GANTRY_*` variables from
/// the same text's `KEY=VALUE` lines. Never a panic; a configuration gantry
/// accepts, written as TOML, reads back the same.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("/fuzz/config.toml");
    if let Ok(r) = Resolved::from_parts(Some(text), file, &[]) {
        let written = toml::to_string(&r.values).unwrap();
        let again =
            Resolved::from_parts(Some(&written), file, &[]).expect("written config reads back");
        assert_eq!(again.values, r.values);
        let _ = r.describe();
    }
    let env: Vec<(String, String)> = pairs(text)
        .into_iter()
        .map(|(k, v)| (format!("GANTRY_{}", k.to_uppercase()), v))
        .collect();
    if let Ok(r) = Resolved::from_parts(None, file, &env) {
        let _ = r.describe();
    }
}

/// Dataset inputs: Reed's layout (class lists and caption files) and an image
/// folder's `metadata.jsonl`, with loader options, read through the plugin
/// host as `gantry train` reads them. The input is cut at lines `##` into:
/// allclasses.txt, trainvalclasses.txt, testclasses.txt, two caption files,
/// metadata.jsonl, and the options (KEY=VALUE lines). Opening and reading
/// every sample never panics.
pub fn dataset(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.len() > 4000 {
        return;
    }
    let registry = registry();
    let parts: Vec<&str> = text.split("\n##\n").collect();
    let part = |k: usize| parts.get(k).copied().unwrap_or("");
    let Ok(dir) = tempfile::tempdir() else { return };
    let root = dir.path();
    let write = |rel: &str, body: &[u8]| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    };
    // 4x4 pixels, two images of two classes.
    let png = gantry::imageio::encode_png(
        &gantry::imageio::Image {
            width: 4,
            height: 4,
            rgb: vec![200; 48],
        },
        &[],
    )
    .unwrap();
    write("allclasses.txt", part(0).as_bytes());
    write("trainvalclasses.txt", part(1).as_bytes());
    write("testclasses.txt", part(2).as_bytes());
    write("text_c10/class_a/image_a.txt", part(3).as_bytes());
    write("text_c10/class_b/image_b.txt", part(4).as_bytes());
    write("jpg76/image_a.png", &png);
    write("jpg76/image_b.png", &png);
    write("metadata.jsonl", part(5).as_bytes());
    write("a.png", &png);
    let options = pairs(part(6));
    for kind in ["reed", "imagefolder"] {
        let Ok(spec) = format!("{kind}:{}", root.display()).parse() else {
            continue;
        };
        if let Ok(mut dataset) = Dataset::open(&registry, &spec, &options) {
            for i in 0..dataset.len.min(16) {
                let _ = dataset.get(i);
            }
        }
    }
}

/// Plugin manifests: never a panic; an accepted manifest names a library in
/// the plugin folder and reads back the same when written.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = parse_manifest(text, "fuzz") {
        assert!(!m.file.contains('/') && m.file != "..", "{}", m.file);
        let again = parse_manifest(&serde_json::to_string(&m).unwrap(), "fuzz").unwrap();
        assert_eq!(
            serde_json::to_value(&again).unwrap(),
            serde_json::to_value(&m).unwrap()
        );
    }
}
