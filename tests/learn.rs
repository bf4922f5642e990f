//! The learning-curve benchmark (`gantry bench learn`) on the tiny preset:
//! its lines, its determinism, and the PyTorch side read back in the same
//! format. The real curves come from the bench command, never from a test.

mod common;
use common::Sandbox;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn probe() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("weights/probe")
        .display()
        .to_string()
}

/// The `learn step=...` lines of stdout, each as its key=value fields.
fn lines(stdout: &str) -> Vec<BTreeMap<String, String>> {
    stdout
        .lines()
        .filter(|l| l.starts_with("learn "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("{kv} in {l}"));
                    (k.to_string(), v.to_string())
                })
                .collect()
        })
        .collect()
}

fn percent_pair(v: &str) -> (f64, f64) {
    let (a, b) = v.split_once('/').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

fn learn(sandbox: &Sandbox, extra: &[&str]) -> String {
    let mut args = vec![
        "bench",
        "learn",
        "--preset",
        "tiny",
        "--text-encoder",
        "te",
        "--steps",
        "4",
        "--every",
        "2",
        "--count",
        "300",
        "--eval-count",
        "100",
    ];
    let probe = probe();
    args.extend(["--probe", probe.as_str()]);
    args.extend(extra);
    let out = sandbox
        .gantry()
        .env("GANTRY_THREADS", "1")
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_curve(points: &[BTreeMap<String, String>], steps: &[&str]) {
    assert_eq!(points.len(), steps.len(), "{points:?}");
    for (p, step) in points.iter().zip(steps) {
        assert_eq!(p["step"], *step);
        for attribute in ["colour", "shape", "count", "centre"] {
            let (train, held) = percent_pair(&p[attribute]);
            assert!((0.0..=100.0).contains(&train) && (0.0..=100.0).contains(&held));
            // The same captions in sentence forms no grammar has (gantry's
            // lines, with a text encoder).
            for form in ["phrased", "crosscheck"] {
                if let Some(phrased) = p.get(&format!("{form}_{attribute}")) {
                    let (train, held) = percent_pair(phrased);
                    assert!((0.0..=100.0).contains(&train) && (0.0..=100.0).contains(&held));
                }
            }
        }
        for key in ["d_real", "d_wrong", "d_fake"] {
            let v: f64 = p[key].parse().unwrap();
            assert!((0.0..=1.0).contains(&v), "{key} = {v}");
        }
        for grid in ["checker", "grid4", "grid8", "grid16"] {
            let drawn: f64 = p[grid].parse().unwrap();
            let real: f64 = p[&format!("{grid}_real")].parse().unwrap();
            assert!(drawn > 0.0 && real > 0.0, "{grid} = {drawn}, real {real}");
        }
        // How varied each caption's pictures are under z, as the data's
        // (gantry's lines; another program's draw one picture per caption).
        for style in ["background", "position"] {
            if let Some(fraction) = p.get(&format!("diverse_{style}")) {
                let fraction: f64 = fraction.parse().unwrap();
                assert!((0.0..=1.5).contains(&fraction), "{style}: {fraction}");
            }
        }
        // What D checks per attribute, a difference of two of its scores
        // (gantry's lines, with a text encoder).
        for attribute in ["colour", "shape", "count", "centre"] {
            if let Some(drop) = p.get(&format!("d_rejects_{attribute}")) {
                let drop: f64 = drop.parse().unwrap();
                assert!((-1.0..=1.0).contains(&drop), "{attribute}: {drop}");
            }
        }
    }
}

/// `--g-ema`: every line also reads G's moving average (its weights
/// averaged, its batch-norm statistics its own), and training is as without
/// it.
#[test]
fn with_g_ema_each_line_also_reads_the_average_and_training_is_unchanged() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    let plain = lines(&learn(&sandbox, &[]));
    let averaged = lines(&learn(&sandbox, &["--g-ema", "0.9"]));
    assert_eq!(plain.len(), 2);
    assert_eq!(averaged.len(), 2);
    for (p, a) in plain.iter().zip(&averaged) {
        for key in ["colour", "shape", "count", "centre", "d_real", "d_fake"] {
            assert_eq!(p[key], a[key], "{key}: training changed");
        }
        for attribute in ["colour", "shape", "count", "centre"] {
            let average = format!("average_{attribute}");
            assert!(!p.contains_key(&average), "{p:?}");
            for key in [average, format!("average_phrased_{attribute}")] {
                let (train, held) = percent_pair(&a[&key]);
                assert!((0.0..=100.0).contains(&train) && (0.0..=100.0).contains(&held));
            }
        }
    }
}

#[test]
fn bench_learn_prints_a_deterministic_line_at_each_step() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    let first = lines(&learn(&sandbox, &["--conditioning", "standardised"]));
    assert_curve(&first, &["2", "4"]);
    assert!(
        first
            .iter()
            .all(|p| p.contains_key("diverse_background") && p.contains_key("diverse_position")),
        "{first:?}"
    );
    assert!(
        first.iter().all(|p| p.contains_key("d_rejects_centre")),
        "{first:?}"
    );
    assert!(
        first
            .iter()
            .all(|p| p.contains_key("phrased_colour") && p.contains_key("crosscheck_shape")),
        "{first:?}"
    );
    // Same seed, same curve (the seconds aside).
    let again = lines(&learn(&sandbox, &["--conditioning", "standardised"]));
    let without_time = |p: &[BTreeMap<String, String>]| {
        p.iter()
            .map(|m| {
                let mut m = m.clone();
                m.remove("s");
                m
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(without_time(&first), without_time(&again));
    // The paper's raw φ(t) and the one-hot reference run the same way; raw
    // trains another G than standardised.
    let raw = lines(&learn(&sandbox, &["--conditioning", "raw"]));
    assert_curve(&raw, &["2", "4"]);
    assert_ne!(raw[1]["d_fake"], first[1]["d_fake"]);
    let one_hot = lines(&learn(
        &sandbox,
        &["--conditioning", "one-hot", "--samples", "pics"],
    ));
    assert_curve(&one_hot, &["2", "4"]);
    // Without a text encoder there are no captions to change or rephrase.
    assert!(!one_hot[0].contains_key("d_rejects_colour"));
    assert!(!one_hot[0].contains_key("phrased_colour"));
    assert!(!one_hot[0].contains_key("crosscheck_colour"));
    // One caption per image instead of the paper's mean of four: G and D
    // read other texts, so the run takes other steps.
    let single = lines(&learn(
        &sandbox,
        &["--conditioning", "raw", "--captions-averaged", "1"],
    ));
    assert_curve(&single, &["2", "4"]);
    assert_ne!(without_time(&raw), without_time(&single));
    // --samples: each line's first pictures as a sheet to look at, and the
    // first caption's under sixteen z.
    for name in ["00002", "00004", "00002-z", "00004-z"] {
        let sheet = image::open(sandbox.path().join(format!("pics/step-{name}.png")))
            .unwrap_or_else(|e| panic!("step {name}: {e}"));
        // Two rows of eight 64x64 pictures, doubled, with their captions.
        assert!(
            sheet.width() >= 8 * 128 && sheet.height() >= 2 * 128,
            "{name}"
        );
    }
    // With the matching loss each line says how well θ reads G's pictures
    // as their texts, and G learns otherwise than raw's.
    assert!(!raw[0].contains_key("match"));
    let matched = lines(&learn(&sandbox, &["--match-loss", "1"]));
    assert_curve(&matched, &["2", "4"]);
    for p in &matched {
        let m: f64 = p["match"].parse().unwrap();
        assert!(m.is_finite() && m > 0.0, "{p:?}");
    }
    let mut pictures = matched.clone();
    for p in &mut pictures {
        p.remove("match");
    }
    assert_ne!(without_time(&raw), without_time(&pictures));
}

fn python() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    python.exists().then_some(python)
}

/// Runs bench/pytorch_learn.py on an export, then `bench learn-score` on
/// what it drew: (the script's stdout, learn-score's stdout).
fn pytorch_then_score(python: &Path, sandbox: &Sandbox, export: &Path) -> (String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/pytorch_learn.py");
    let trained = std::process::Command::new(python)
        .arg(script)
        .arg(export)
        .args(["--threads", "1"])
        .output()
        .unwrap();
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    let probe = probe();
    let scored = sandbox.ok(&[
        "bench",
        "learn-score",
        export.to_str().unwrap(),
        "--probe",
        &probe,
    ]);
    (
        String::from_utf8_lossy(&trained.stdout).into_owned(),
        scored,
    )
}

#[test]
fn pytorch_trains_on_the_exported_inputs_and_its_curve_reads_like_gantrys() {
    let Some(python) = python() else {
        eprintln!("SKIPPED: no .venv/bin/python with torch (./dev.sh sets it up)");
        return;
    };
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    let export = sandbox.path().join("export");
    let out = learn(
        &sandbox,
        &[
            "--conditioning",
            "standardised",
            "--wrong",
            "sibling",
            "--export",
            export.to_str().unwrap(),
        ],
    );
    assert!(out.contains("pytorch_learn.py"), "{out}");
    // PyTorch draws sibling wrong images from each render's content
    // (colour, shape, count, centre as ranks among their values).
    let content = std::fs::read(export.join("content.u32")).unwrap();
    assert_eq!(content.len(), 300 * 4 * 4);
    let ranks: Vec<u32> = content
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for (a, most) in [8, 3, 6, 4].into_iter().enumerate() {
        let seen: std::collections::BTreeSet<u32> =
            ranks.iter().skip(a).step_by(4).copied().collect();
        assert_eq!(seen, (0..most).collect(), "attribute {a} ranks");
    }
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(export.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["learn"]["text"], "standardised");
    assert_eq!(meta["train_images"], 300);
    // The exported embeddings are what G reads: standardised, so each
    // dimension has mean ~0 and spread ~1 over the training captions.
    let bytes = std::fs::read(export.join("embeddings.f32")).unwrap();
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let rms = (values.iter().map(|v| (v * v) as f64).sum::<f64>() / values.len() as f64).sqrt();
    assert!((0.5..1.5).contains(&rms), "exported text RMS {rms}");

    let (trained, scored) = pytorch_then_score(&python, &sandbox, &export);
    assert!(trained.contains("wrong images: sibling"), "{trained}");
    let theirs = lines(&scored);
    assert_curve(&theirs, &["2", "4"]);
    // PyTorch drew each of the first captions under the exported z too.
    assert!(
        theirs
            .iter()
            .all(|p| p.contains_key("diverse_background") && p.contains_key("diverse_position")),
        "{scored}"
    );
}

/// `lockstep key=value ...` lines of stdout.
fn lockstep_lines(stdout: &str) -> Vec<BTreeMap<String, String>> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("lockstep "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn pytorch_in_lockstep_takes_the_same_steps_as_gantry() {
    let sandbox = Sandbox::new();
    in_lockstep(&sandbox, &[]);
}

/// The matching term too: PyTorch's G loss adds W times its own hinge over
/// the exported image encoder's reading of G's pictures, and the two runs'
/// losses (G's includes the term) agree step by step (other classes' texts
/// as the negatives here; every other picture's below).
#[test]
fn pytorch_in_lockstep_takes_the_matching_term_as_gantry() {
    let sandbox = Sandbox::new();
    if let Some(export) = in_lockstep(&sandbox, &["--match-loss", "4"]) {
        matching_terms_agree(&export);
    }
}

/// G's matching term at each step of a lockstep export agrees between
/// gantry and PyTorch.
fn matching_terms_agree(export: &Path) {
    let matched = |file: &str| -> Vec<f64> {
        std::fs::read_to_string(export.join(file))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["g_match"]
                    .as_f64()
                    .unwrap()
            })
            .collect()
    };
    let (ours, theirs) = (
        matched("steps.gantry.jsonl"),
        matched("steps.pytorch.jsonl"),
    );
    assert_eq!(ours.len(), 4);
    for (a, b) in ours.iter().zip(&theirs) {
        assert!(
            *a > 0.0 && (a - b).abs() <= 1e-4 * a.abs(),
            "{ours:?} {theirs:?}"
        );
    }
}

/// Every doubling of G as a resize-convolution (`--upsampling resize`, with
/// D's real and wrong pairs in one batch and its joint layer normalised over
/// each pair, and `bilinear`, with D reading the
/// batch's spread and judging the three kinds of pair in one batch):
/// PyTorch's layers do what gantry's do, and the two runs take the same
/// steps.
#[test]
fn pytorch_in_lockstep_draws_with_the_resize_layers_as_gantry() {
    let sandbox = Sandbox::new();
    in_lockstep(
        &sandbox,
        &[
            "--upsampling",
            "resize",
            "--d-batches",
            "real-wrong",
            "--d-joint-norm",
            "pair",
        ],
    );
    // Bilinear with D reading the batch's spread, D's pairs in one batch,
    // G's matching term ranking every other picture's text and G's
    // mode-seeking term, one caption per image and noise on G's text: the
    // options all at once. The tiny set's batches hold pairs of one class,
    // which the paper's negatives leave out, so PyTorch agrees only if it
    // takes them too.
    let sandbox = Sandbox::new();
    let extra = [
        "--upsampling",
        "bilinear",
        "--minibatch-std",
        "--d-batches",
        "joint",
        "--match-loss",
        "4",
        "--match-negatives",
        "image",
        "--mode-seeking",
        "1",
        "--captions-averaged",
        "1",
        "--text-noise",
        "1",
    ];
    if let Some(export) = in_lockstep(&sandbox, &extra) {
        matching_terms_agree(&export);
    }
}

/// Noise on G's text along the directions in which a picture's captions
/// differ: PyTorch takes the same square root of their covariance and draws
/// the same noisy text from the tape's noise, step by step. (With
/// standardised text gantry adds the noise before G scales it and PyTorch
/// after, equal to f32 rounding, which Adam amplifies past this test's
/// 1e-4 within steps; `tests/training.rs` checks that mapping itself.)
#[test]
fn pytorch_in_lockstep_draws_text_noise_along_phrasings_as_gantry() {
    text_noise_in_lockstep(&Sandbox::new(), "phrasings");
}

/// The same along statements: PyTorch reads which captions state the same
/// (`caption_groups.u32`) and pools their covariance as gantry does.
#[test]
fn pytorch_in_lockstep_draws_text_noise_along_statements_as_gantry() {
    let sandbox = Sandbox::new();
    if let Some(export) = text_noise_in_lockstep(&sandbox, "statements") {
        assert!(export.join("caption_groups.u32").exists());
    }
}

/// [`in_lockstep`] with `--text-noise 1 --text-noise-along ALONG` (raw text).
fn text_noise_in_lockstep(sandbox: &Sandbox, along: &str) -> Option<PathBuf> {
    let extra = [
        "--conditioning",
        "raw",
        "--text-noise",
        "1",
        "--text-noise-along",
        along,
    ];
    in_lockstep(sandbox, &extra)
}

/// Trains gantry and PyTorch in lockstep in `sandbox` with `extra`
/// arguments and checks that they take the same steps; returns the export
/// folder (None where PyTorch is missing).
fn in_lockstep(sandbox: &Sandbox, extra: &[&str]) -> Option<PathBuf> {
    let Some(python) = python() else {
        eprintln!("SKIPPED: no .venv/bin/python with torch (./dev.sh sets it up)");
        return None;
    };
    sandbox.tiny_model("te");
    let export = sandbox.path().join("lockstep");
    let ours = learn(
        sandbox,
        &[&["--export", export.to_str().unwrap(), "--lockstep"], extra].concat(),
    );
    // gantry trained here too, and wrote where it started and every step.
    let ours = lines(&ours);
    assert_curve(&ours, &["2", "4"]);
    for file in [
        "init_generator.safetensors",
        "init_discriminator.safetensors",
        "tape.bin",
        "steps.gantry.jsonl",
    ] {
        assert!(export.join(file).exists(), "{file}");
    }
    let (stdout, scored) = pytorch_then_score(&python, sandbox, &export);
    assert!(stdout.contains("lockstep"), "{stdout}");
    // Same start, same draws, the same library underneath: the two runs'
    // losses agree step by step (a wrong loss weight, detach or init shows
    // at step 1 as a drift of percents) ...
    let drift = lockstep_lines(&scored);
    eprintln!("{scored}");
    assert_eq!(drift.len(), 3, "{scored}");
    assert_eq!(drift[0]["step"], "1");
    for line in &drift {
        let d: f64 = line["drift"].parse().unwrap();
        assert!(d < 1e-4, "{scored}");
    }
    // ... and so do their curves, read by the same probe from the same pixels.
    let theirs = lines(&scored);
    assert_curve(&theirs, &["2", "4"]);
    for (a, b) in ours.iter().zip(&theirs) {
        for attribute in ["colour", "shape", "count", "centre"] {
            let ((a1, a2), (b1, b2)) = (percent_pair(&a[attribute]), percent_pair(&b[attribute]));
            assert!(
                (a1 - b1).abs() <= 3.0 && (a2 - b2).abs() <= 3.0,
                "{attribute}: gantry {a:?} pytorch {b:?}"
            );
        }
        for style in ["diverse_background", "diverse_position"] {
            let (x, y): (f64, f64) = (a[style].parse().unwrap(), b[style].parse().unwrap());
            assert!((x - y).abs() <= 0.1, "{style}: gantry {a:?} pytorch {b:?}");
        }
    }
    Some(export)
}

#[test]
fn bench_learn_refuses_what_it_cannot_run() {
    let sandbox = Sandbox::new();
    for (args, expected) in [
        (
            &["--conditioning", "loud"][..],
            "raw, standardised, one-hot",
        ),
        (&["--lockstep"], "--export"),
        (
            &["--match-loss", "1", "--conditioning", "one-hot"],
            "one-hot",
        ),
        (&["--match-loss=-1"], "0 or more"),
        (&["--match-negatives", "image"], "needs --match-loss"),
        (&["--mode-seeking=-1"], "0 or more"),
        (&["--captions-averaged", "0"], "1..=10"),
        (&["--text-noise", "5"], "between 0 and 4"),
        (&["--reworded", "2"], "between 0 and 1"),
        (&["--reworded", "1", "--conditioning", "one-hot"], "one-hot"),
        (
            &["--reworded", "1", "--export", "x"],
            "no reworded captions",
        ),
        (&["--phrasing-consistency=-1"], "0 or more"),
        (
            &["--phrasing-consistency", "1", "--conditioning", "one-hot"],
            "one-hot",
        ),
        (
            &["--phrasing-consistency", "1", "--export", "x"],
            "no reworded captions",
        ),
        (
            &["--mode-seeking", "1", "--reuse-fakes"],
            "needs fresh noise",
        ),
        (
            &[
                "--match-loss",
                "1",
                "--conditioning",
                "standardised",
                "--export",
                "x",
            ],
            "needs raw conditioning",
        ),
    ] {
        let err = sandbox.fails(&[&["bench", "learn"][..], args].concat());
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let err = sandbox.fails(&["bench", "learn-score", "nowhere"]);
    assert!(err.contains("nowhere/meta.json"), "{err}");
}
