//! The `gantry` binary as a user runs it.

mod common;
use common::Sandbox;

#[test]
fn generate_twice_gives_byte_identical_pngs() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let a = sandbox.ok(&[
        "generate",
        "a red flower",
        "--seed",
        "7",
        "-m",
        "m",
        "-o",
        "a",
    ]);
    let b = sandbox.ok(&[
        "generate",
        "a red flower",
        "--seed",
        "7",
        "-m",
        "m",
        "-o",
        "b",
    ]);
    let files_a: Vec<&str> = a.lines().collect();
    assert_eq!(files_a.len(), 4, "default n is 4: {a}");
    assert_eq!(b.lines().count(), 4);
    for (fa, fb) in a.lines().zip(b.lines()) {
        let bytes_a = std::fs::read(sandbox.path().join(fa)).unwrap();
        let bytes_b = std::fs::read(sandbox.path().join(fb)).unwrap();
        assert!(bytes_a.len() > 100);
        assert_eq!(bytes_a, bytes_b, "{fa} and {fb} differ");
    }
    // Another seed gives other pixels.
    let c = sandbox.ok(&[
        "generate",
        "a red flower",
        "--seed",
        "8",
        "-n",
        "1",
        "-m",
        "m",
        "-o",
        "c",
    ]);
    let first_a = std::fs::read(sandbox.path().join(files_a[0])).unwrap();
    let first_c = std::fs::read(sandbox.path().join(c.trim())).unwrap();
    assert_ne!(first_a, first_c);
}

#[test]
fn pngs_carry_their_provenance() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let out = sandbox.ok(&[
        "generate",
        "a white flower",
        "--seed",
        "3",
        "-n",
        "1",
        "-m",
        "m",
        "-o",
        "o",
    ]);
    let meta = gantry::imageio::read_png_metadata(&sandbox.path().join(out.trim())).unwrap();
    let get = |k: &str| {
        meta.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("caption").as_deref(), Some("a white flower"));
    assert_eq!(get("seed").as_deref(), Some("3"));
    assert_eq!(get("model").as_deref(), Some("m"));
    assert_eq!(get("sampler").as_deref(), Some("gaussian"));
    assert!(get("Software").unwrap().starts_with("gantry "));
}

#[test]
fn captions_that_are_empty_long_or_unicode() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let err = sandbox.fails(&["generate", "   ", "-m", "m", "-o", "o"]);
    assert!(err.contains("caption is empty"), "{err}");

    let long = "a flower with many long thin purple petals ".repeat(8);
    let out = sandbox.run(&["generate", &long, "-n", "1", "-m", "m", "-o", "o"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("longer than 201 characters"), "{stderr}");

    let out = sandbox.run(&[
        "generate",
        "une fleur 🌸 très rouge",
        "-n",
        "1",
        "-m",
        "m",
        "-o",
        "o",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("outside the model's alphabet"), "{stderr}");
}

#[test]
fn model_info_prints_parameter_counts_and_card() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let info = sandbox.ok(&["model", "info", "m"]);
    for network in [
        "text_encoder",
        "image_encoder",
        "generator",
        "discriminator",
        "style_encoder",
    ] {
        assert!(info.contains(network), "{info}");
    }
    assert!(info.contains("preset tiny"), "{info}");
    assert!(info.contains("trained: false"), "{info}");
    // The summary, not the whole card; --json gives the card.
    assert!(info.lines().count() < 30, "{info}");
    let card = sandbox.ok(&["model", "info", "m", "--json"]);
    assert!(card.contains("\"preset\": \"tiny\""), "{card}");
    serde_json::from_str::<serde_json::Value>(&card).expect("--json prints the card as JSON");
}

#[test]
fn unknown_model_preset_and_device_are_clear_errors() {
    let sandbox = Sandbox::new();
    let err = sandbox.fails(&["generate", "a flower", "-m", "nope"]);
    assert!(err.contains("model 'nope' not found"), "{err}");
    // The models it offers are models: not the probes beside them in weights/.
    assert!(err.contains("procedural-flowers"), "{err}");
    assert!(
        !err.contains("probe") && !err.contains("classifier"),
        "{err}"
    );
    let err = sandbox.fails(&["model", "init", "x", "--preset", "huge"]);
    assert!(err.contains("unknown preset 'huge'"), "{err}");
    sandbox.tiny_model("m");
    let err = sandbox.fails(&["generate", "a flower", "-m", "m", "--device", "tpu"]);
    assert!(err.contains("unknown device 'tpu'"), "{err}");
    let err = sandbox.fails(&["model", "init", "m", "--preset", "tiny"]);
    assert!(err.contains("already exists"), "{err}");
}

/// `model init --upsampling` makes a model whose card, `model info` and
/// drawing all have the layer asked for.
#[test]
fn model_init_makes_the_upsampling_asked_for() {
    let sandbox = Sandbox::new();
    let said = sandbox.ok(&[
        "model",
        "init",
        "b",
        "--preset",
        "tiny",
        "--upsampling",
        "bilinear",
    ]);
    assert!(said.contains("upsampling bilinear"), "{said}");
    let card = std::fs::read_to_string(sandbox.path().join("data/models/b/model.json")).unwrap();
    let card: serde_json::Value = serde_json::from_str(&card).unwrap();
    assert_eq!(card["architecture"]["generator"]["upsampling"], "bilinear");
    let info = sandbox.ok(&["model", "info", "b"]);
    assert!(
        info.contains("G's upsampling: bilinear upsampling"),
        "{info}"
    );
    let drawn = sandbox.ok(&[
        "generate",
        "a red flower",
        "-m",
        "b",
        "-n",
        "1",
        "-o",
        "out",
    ]);
    let file = drawn.lines().next().expect("one picture listed");
    assert!(sandbox.path().join(file).is_file(), "{drawn}");
    let err = sandbox.fails(&["model", "init", "c", "--upsampling", "cubic"]);
    assert!(err.contains("cubic") && err.contains("bilinear"), "{err}");
}

#[test]
fn damaged_weights_are_errors_naming_the_file() {
    let sandbox = Sandbox::new();
    let dir = sandbox.tiny_model("m");
    let generator = dir.join("generator.safetensors");
    let bytes = std::fs::read(&generator).unwrap();

    // Truncated.
    std::fs::write(&generator, &bytes[..bytes.len() / 2]).unwrap();
    let err = sandbox.fails(&["generate", "a flower", "-m", "m"]);
    assert!(
        err.contains("generator.safetensors") && err.contains("truncated"),
        "{err}"
    );

    // Missing.
    std::fs::remove_file(&generator).unwrap();
    let err = sandbox.fails(&["generate", "a flower", "-m", "m"]);
    assert!(err.contains("generator.safetensors: missing"), "{err}");

    // Same length, other bytes.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    std::fs::write(&generator, &flipped).unwrap();
    let err = sandbox.fails(&["generate", "a flower", "-m", "m"]);
    assert!(err.contains("generator.safetensors: checksum"), "{err}");
}

#[test]
fn weights_of_another_shape_are_errors_naming_the_tensor() {
    let sandbox = Sandbox::new();
    let dir = sandbox.tiny_model("m");
    // The card now says ngf 32 while the file holds ngf 16 weights.
    let card_path = dir.join("model.json");
    let mut card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&card_path).unwrap()).unwrap();
    card["architecture"]["generator"]["ngf"] = serde_json::json!(32);
    std::fs::write(&card_path, serde_json::to_string(&card).unwrap()).unwrap();
    let err = sandbox.fails(&["generate", "a flower", "-m", "m"]);
    assert!(
        err.contains("generator.safetensors: tensor 'generator."),
        "{err}"
    );
    assert!(err.contains("has shape"), "{err}");
}

#[test]
fn config_shows_each_value_and_its_source() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.path().join("config")).unwrap();
    std::fs::write(sandbox.path().join("config/config.toml"), "n = 6\n").unwrap();
    let out = sandbox
        .gantry()
        .env("GANTRY_SEED", "11")
        .arg("config")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("n = 6") && text.contains("config.toml"),
        "{text}"
    );
    assert!(
        text.contains("seed = 11") && text.contains("env GANTRY_SEED"),
        "{text}"
    );
    assert!(text.contains("device = \"cpu\""), "{text}");
    assert!(
        text.contains("sampler = \"gaussian\"") && text.contains("# default"),
        "{text}"
    );
    let out = sandbox
        .gantry()
        .args(["--device", "auto", "config"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("command line"));
}

#[test]
fn plugin_path_and_builtin_sampler_draw_the_same_pixels() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let listed = sandbox.ok(&["plugins"]);
    assert!(
        listed.contains("gaussian") && listed.contains("libgantry_sampler_gaussian"),
        "{listed}"
    );
    let via_plugin = sandbox.ok(&["generate", "a blue flower", "-n", "2", "-m", "m", "-o", "p"]);
    let out = sandbox
        .gantry()
        .env("GANTRY_NO_PLUGINS", "1")
        .args(["generate", "a blue flower", "-n", "2", "-m", "m", "-o", "q"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let builtin = String::from_utf8_lossy(&out.stdout).into_owned();
    for (a, b) in via_plugin.lines().zip(builtin.lines()) {
        assert_eq!(
            std::fs::read(sandbox.path().join(a)).unwrap(),
            std::fs::read(sandbox.path().join(b)).unwrap()
        );
    }
    let err = sandbox.fails(&["generate", "a flower", "-m", "m", "--sampler", "nope"]);
    assert!(err.contains("no sampler named 'nope'"), "{err}");
}

#[test]
fn bench_generate_prints_one_machine_readable_line() {
    let sandbox = Sandbox::new();
    let bench = |extra: &[&str]| {
        let mut args = vec!["bench", "generate", "--preset", "tiny", "--batch", "2"];
        args.extend(["--repeats", "3", "--warmup", "1"]);
        args.extend(extra);
        sandbox.ok(&args)
    };
    let out = bench(&[]);
    let line = out.trim();
    let value: f64 = line
        .strip_prefix("ms_per_batch=")
        .unwrap_or_else(|| panic!("unexpected output {line}"))
        .parse()
        .unwrap();
    assert!(value > 0.0);
    // --check: the folded G that draws is within one 8-bit level of G.
    let out = bench(&["--check"]);
    let levels: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("folded_levels_apart="))
        .unwrap_or_else(|| panic!("no check in {out}"))
        .parse()
        .unwrap();
    assert!(levels <= 1.0, "{out}");
}

#[test]
fn bench_train_times_the_step_and_says_where_its_time_goes() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .gantry()
        .args(["--device", "cpu", "bench", "train", "--preset", "tiny"])
        .args(["--batch", "4", "--steps", "2", "--warmup", "1", "--phases"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let rate: f64 = stdout
        .trim()
        .strip_prefix("images_per_s=")
        .unwrap_or_else(|| panic!("unexpected output {stdout}"))
        .parse()
        .unwrap();
    assert!(rate > 0.0);
    // Every phase of the step, each with its milliseconds, and their sum.
    let ms = |phase: &str| -> f64 {
        let line = stderr
            .lines()
            .find(|l| l.trim_start_matches(['#', ' ']).starts_with(phase))
            .unwrap_or_else(|| panic!("no {phase} in {stderr}"));
        line[phase.len() + line.find(phase).unwrap()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let phases = [
        "batch",
        "G forward",
        "D forward (real, wrong, fake)",
        "D backward",
        "D Adam",
        "D forward (G's images)",
        "G backward (through D)",
        "G Adam",
    ];
    let sum: f64 = phases.iter().map(|p| ms(p)).sum();
    assert!(sum > 0.0, "{stderr}");
    assert!((ms("all phases") - sum).abs() < 0.05, "{stderr}");
}

#[test]
fn interpolations_and_style_transfer_write_rows() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let out = sandbox.ok(&[
        "interp",
        "a red flower",
        "a blue flower",
        "--steps",
        "5",
        "-m",
        "m",
        "-o",
        "i",
        "--sheet",
        "row.png",
    ]);
    assert_eq!(out.lines().count(), 6, "{out}");
    let meta =
        gantry::imageio::read_png_metadata(&sandbox.path().join(out.lines().next().unwrap()))
            .unwrap();
    assert!(
        meta.contains(&(
            "command".to_string(),
            ":interp \"a red flower\" \"a blue flower\" 5".to_string()
        )),
        "{meta:?}"
    );
    // The sheet is many pictures: :replay says so rather than remaking one.
    std::fs::write(
        sandbox.path().join("replay.gantry"),
        format!(":replay {}\n", sandbox.path().join("row.png").display()),
    )
    .unwrap();
    let err = sandbox.fails(&["run", "replay.gantry", "-m", "m", "-o", "r"]);
    assert!(err.contains("is a contact sheet of 5 pictures"), "{err}");
    let out = sandbox.ok(&[
        "interp-z",
        "a white flower",
        "--steps",
        "3",
        "-m",
        "m",
        "-o",
        "z",
    ]);
    assert_eq!(out.lines().count(), 3);
    let err = sandbox.fails(&["interp", "a", "b", "--steps", "1", "-m", "m"]);
    assert!(err.contains("steps must be between 2 and 64"), "{err}");

    let exported = sandbox.ok(&[
        "dataset",
        "export",
        "procedural-flowers",
        "--count",
        "1",
        "-o",
        "real",
    ]);
    let photo = exported.trim();
    let err = sandbox.fails(&[
        "dataset",
        "export",
        "procedural-flowers",
        "--opt",
        "count=10",
        "--start",
        "10",
        "-o",
        "past",
    ]);
    assert!(err.contains("--start 10 is past the end"), "{err}");
    let out = sandbox.ok(&[
        "style",
        photo,
        "a red flower",
        "a blue flower",
        "-m",
        "m",
        "-o",
        "s",
    ]);
    assert_eq!(out.lines().count(), 3, "the source and two captions: {out}");
    let err = sandbox.fails(&["style", "missing.png", "a red flower", "-m", "m"]);
    assert!(err.contains("missing.png: no such file"), "{err}");
    std::fs::write(sandbox.path().join("notes.txt"), "hello").unwrap();
    let err = sandbox.fails(&["style", "notes.txt", "a red flower", "-m", "m"]);
    assert!(err.contains("notes.txt: not a readable image"), "{err}");
}

#[test]
fn eval_prints_the_table_and_writes_the_card() {
    let sandbox = Sandbox::new();
    let dir = sandbox.tiny_model("m");
    let probe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/probe");
    let out = sandbox.ok(&[
        "eval",
        "m",
        "--count",
        "64",
        "--queries",
        "20",
        "--probe",
        probe.to_str().unwrap(),
    ]);
    for metric in [
        "content_colour_train",
        "style_kept",
        "style_kept_same_z",
        "style_kept_generated",
        "interp_endpoints",
        "diversity",
        "diversity_position",
        "style_auc",
        "r_precision_generated",
        "checkerboard_generated",
        "checkerboard_real",
        "grid4_generated",
        "grid4_real",
        "grid8_generated",
        "grid8_real",
        "grid16_generated",
        "grid16_real",
        "d_rejects_colour",
        "d_rejects_centre",
        "phrasing_form1_colour_train",
        "phrasing_form6_shape_train",
        "crosscheck_content_colour_train",
        "crosscheck_content_shape_held_out",
    ] {
        assert!(out.contains(metric), "{metric} missing from\n{out}");
    }
    // The unseen forms split the phrased captions between them: the rate
    // over all of them lies between the forms' own.
    for attribute in ["colour", "shape"] {
        let all = metric_value(&out, &format!("phrasing_content_{attribute}_train"));
        let forms: Vec<f64> = (1..=6)
            .map(|k| metric_value(&out, &format!("phrasing_form{k}_{attribute}_train")))
            .collect();
        let (low, high) = forms
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        assert!(
            low - 0.051 <= all && all <= high + 0.051,
            "{attribute}: {all} outside {forms:?}"
        );
    }
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
    assert!(card["metrics"]["eval: procedural-flowers"]["content_colour_train"].is_number());
    // The weights still load after the card was rewritten.
    sandbox.ok(&["generate", "a flower", "-n", "1", "-m", "m", "-o", "o"]);
}

/// The value of `metric` in `gantry eval`'s table ("87.5%" reads 87.5).
fn metric_value(out: &str, metric: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(metric))
        .unwrap_or_else(|| panic!("{metric} missing from\n{out}"));
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap()
}

/// A folder with only the text side (the committed
/// `state/procedural-text-encoder`) is measured by what its embedding reads,
/// on the fresh evaluation renders or, with `--opt seed=0`, on the renders
/// training uses, each in a table of its own in the card.
#[test]
fn eval_of_a_text_encoder_reads_its_embedding() {
    let sandbox = Sandbox::new();
    let state =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("state/procedural-text-encoder");
    let dir = sandbox.path().join("te");
    std::fs::create_dir(&dir).unwrap();
    for f in std::fs::read_dir(&state).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    let fresh = sandbox.ok(&["eval", "te", "--count", "64"]);
    let training = sandbox.ok(&["eval", "te", "--count", "64", "--opt", "seed=0"]);
    for out in [&fresh, &training] {
        // The committed encoder reads colour and centre far above chance
        // (12% and 25%); a broken read would sit at chance.
        assert!(metric_value(out, "embedding_reads_colour") > 80.0, "{out}");
        assert!(metric_value(out, "embedding_reads_centre") > 80.0, "{out}");
        assert!(
            metric_value(out, "phrasing_embedding_reads_colour") > 70.0,
            "{out}"
        );
        assert!(!out.contains("content_colour"), "no G, no pictures: {out}");
    }
    assert!(fresh.contains("64 real images"), "{fresh}");
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
    let metrics = &card["metrics"];
    assert!(metrics["eval: procedural-flowers"]["embedding_reads_count"].is_number());
    assert!(metrics["eval: procedural-flowers seed=0"]["embedding_reads_count"].is_number());
    // Other data cannot measure a text encoder without G: said, not panicked.
    let err = sandbox.fails(&["eval", "te", "--dataset", "imagefolder:te"]);
    assert!(err.contains("holds only a text encoder"), "{err}");
    // Style transfer needs G: refused before anything is measured.
    let err = sandbox.fails(&["eval", "te", "--encoder", "optimize"]);
    assert!(
        err.contains("--encoder") && err.contains("only a text encoder"),
        "{err}"
    );
}

/// A captioned folder of "photos": four classes, each a colour with a
/// random patch of another, 25 images each.
fn colour_photos(sandbox: &Sandbox) -> String {
    let dir = sandbox.path().join("photos");
    std::fs::create_dir_all(&dir).unwrap();
    let colours = [
        ("red", [200u8, 30, 30]),
        ("green", [30, 180, 40]),
        ("blue", [30, 40, 200]),
        ("yellow", [220, 210, 40]),
    ];
    let mut metadata = String::new();
    let mut state = 7u64;
    let mut next = |n: u32| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % n as u64) as u32
    };
    for (name, rgb) in colours {
        for k in 0..25 {
            let (x0, y0, side) = (next(40), next(40), 8 + next(16));
            let image = image::RgbImage::from_fn(64, 64, |x, y| {
                let inside = (x0..x0 + side).contains(&x) && (y0..y0 + side).contains(&y);
                let shade = next(30) as u8;
                image::Rgb(if inside {
                    [shade, 120, 255 - shade]
                } else {
                    [
                        rgb[0].saturating_sub(shade),
                        rgb[1].saturating_sub(shade),
                        rgb[2],
                    ]
                })
            });
            let file = format!("{name}_{k}.png");
            image.save(dir.join(&file)).unwrap();
            metadata += &format!(
                "{{\"file_name\": \"{file}\", \"text\": \"a {name} flower\", \"class\": \"{name}\"}}\n"
            );
        }
    }
    std::fs::write(dir.join("metadata.jsonl"), metadata).unwrap();
    "imagefolder:photos".to_string()
}

/// A class probe learns the classes of captioned photos from 80% of each
/// class and is measured on the rest; `gantry eval` on that data then
/// reports realism with it: the classification accuracy score of generated
/// pictures beside the photos', and the Fréchet distances.
#[test]
fn a_class_probe_measures_realism() {
    let sandbox = Sandbox::new();
    let photos = colour_photos(&sandbox);
    let out = sandbox.ok(&[
        "probe",
        "train",
        "--dataset",
        &photos,
        "--steps",
        "60",
        "--batch",
        "16",
        "-o",
        "cls",
    ]);
    let top1 = |out: &str| -> f64 {
        let line = out
            .lines()
            .find(|l| l.contains("top-1"))
            .unwrap_or_else(|| panic!("no top-1 in\n{out}"));
        line.rsplit(' ')
            .next()
            .unwrap()
            .trim_end_matches('%')
            .parse()
            .unwrap()
    };
    // Four colours are easy: the held-out fifth is read far above chance (25%).
    assert!(top1(&out) >= 90.0, "{out}");
    let out = sandbox.ok(&["probe", "eval", "--dir", "cls", "--dataset", &photos]);
    assert!(top1(&out) >= 90.0, "{out}");
    let err = sandbox.fails(&["probe", "eval", "--dir", "cls"]);
    assert!(err.contains("is a class probe"), "{err}");

    sandbox.tiny_model("m");
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "m",
            "--dataset",
            &photos,
            "--queries",
            "10",
            "--dry-run",
        ];
        args.extend_from_slice(extra);
        sandbox.run(&args)
    };
    let out = eval(&["--classifier", "cls"]);
    assert!(out.status.success(), "{out:?}");
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = |name: &str| metric_value(&out, name);
    assert!(value("realism_real_top1_train") >= 90.0, "{out}");
    assert!(value("realism_real_top5_train") >= value("realism_real_top1_train"));
    // An untrained G draws nothing like these photos: further from them than
    // photos are from each other.
    assert!(
        value("realism_frechet_generated") > value("realism_frechet_real"),
        "{out}"
    );
    // The checkerboard measure, of the pictures beside the photos'.
    assert!(value("checkerboard_generated") > 0.0 && value("checkerboard_real") > 0.0);
    let out = eval(&["--classifier", "nowhere"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no class probe there"));
}

/// Without --dataset, `probe train` is the attribute probe on renders: six
/// heads, measured on other renders, written where -o says.
#[test]
fn the_attribute_probe_trains_on_renders() {
    let sandbox = Sandbox::new();
    let out = sandbox.ok(&[
        "probe",
        "train",
        "--count",
        "200",
        "--eval-count",
        "100",
        "--steps",
        "20",
        "--batch",
        "16",
        "-o",
        "ap",
    ]);
    for attribute in ["petal_colour", "petal_count", "centre_colour", "position"] {
        assert!(out.contains(attribute), "{attribute} missing from\n{out}");
    }
    let card: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.path().join("ap/model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(card["kind"], "attribute-probe");
    assert_eq!(card["heads"].as_array().unwrap().len(), 6);
    let out = sandbox.ok(&["probe", "eval", "--dir", "ap", "--count", "100"]);
    assert!(out.contains("petal_shape"), "{out}");
    // Given photos, it is refused before they are read (the folder does not
    // exist: reading it first would fail on that instead).
    let err = sandbox.fails(&[
        "probe",
        "eval",
        "--dir",
        "ap",
        "--dataset",
        "imagefolder:no-such-folder",
    ]);
    assert!(err.contains("is an attribute probe"), "{err}");
    // Likewise a class probe asked of procedural flowers, before training.
    let err = sandbox.fails(&[
        "probe",
        "train",
        "--dataset",
        "procedural-flowers",
        "--opt",
        "count=64",
        "--steps",
        "1",
        "-o",
        "cls",
    ]);
    assert!(err.contains("has procedural attributes"), "{err}");
    assert!(!err.contains("trained on"), "{err}");
    assert!(!sandbox.path().join("cls").exists());
}

#[test]
fn a_word_the_model_never_saw_is_named_when_it_is_typed() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let out = sandbox.ok(&[
        "model",
        "vocabulary",
        "m",
        "--dataset",
        "procedural-flowers",
        "--opt",
        "count=300",
        "--opt",
        "grammar=classic",
    ]);
    assert!(out.contains("words from 3000 captions"), "{out}");
    let generate = |caption: &str| {
        let out = sandbox.run(&["generate", caption, "-m", "m", "-n", "1", "-o", "out"]);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = generate("a green flower with five round petals");
    assert!(
        err.contains("never occurs in this model's training captions") && err.contains("green"),
        "{err}"
    );
    assert!(!err.contains("round"), "{err}");
    let err = generate("a green flower with five round gimme petals");
    assert!(
        err.contains("these words never occur in this model's training captions")
            && err.contains("green, gimme"),
        "{err}"
    );
    let err = generate("a red flower with five round petals");
    assert!(!err.contains("never occur"), "{err}");
}

#[test]
// The child is reaped by wait4 below, which also gives its own peak memory.
#[allow(clippy::zombie_processes)]
fn generating_4096_pictures_keeps_memory_bounded() {
    use std::io::Read;
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let mut child = sandbox
        .gantry()
        .args([
            "generate",
            "a red flower",
            "-m",
            "m",
            "-n",
            "4096",
            "-o",
            "many",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    // This child's own peak resident memory (other tests' children are not
    // counted): G draws in chunks, so it stays under 1 GiB.
    let mut status = 0;
    // SAFETY: wait4 fills the status and the struct it is given; the child
    // is not waited for elsewhere.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status}"
    );
    assert_eq!(out.lines().count(), 4096);
    let peak_kib = usage.ru_maxrss;
    assert!(peak_kib < 1024 * 1024, "peak {peak_kib} KiB");
}

/// `model info` of a folder that holds the text side only (between
/// trainings) describes it instead of failing on the missing generator.
#[test]
fn model_info_describes_a_text_side_only_folder() {
    let sandbox = Sandbox::new();
    let state =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("state/procedural-text-encoder");
    let out = sandbox.ok(&["model", "info", state.to_str().unwrap()]);
    assert!(out.contains("the text side only"), "{out}");
    assert!(
        out.contains("text_encoder") && !out.contains("generator") && !out.contains("G's"),
        "{out}"
    );
}
