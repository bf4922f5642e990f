//! The session behind the REPL and scripts: the command table, pictures and
//! their ids, replay, saving, and errors that never end the session.

mod common;
use common::Sandbox;
use gantry::session::{commands, Body, Outcome, Session};

fn session(sandbox: &Sandbox) -> Session {
    sandbox.tiny_model("m");
    reopen(sandbox)
}

/// Another session on the sandbox's model `m` (a fresh transcript).
fn reopen(sandbox: &Sandbox) -> Session {
    sandbox.session("m")
}

fn pictures(s: &Session, outcome: Outcome) -> Vec<gantry::session::Picture> {
    let Outcome::Entry(i) = outcome else {
        panic!("{outcome:?}")
    };
    match &s.entries[i].body {
        Body::Pictures(p) => p.clone(),
        other => panic!("{other:?}"),
    }
}

fn text(s: &Session, outcome: Outcome) -> String {
    let Outcome::Entry(i) = outcome else {
        panic!("{outcome:?}")
    };
    match &s.entries[i].body {
        Body::Text(t) => t.clone(),
        other => panic!("{other:?}"),
    }
}

fn pics(s: &mut Session, line: &str) -> Vec<gantry::session::Picture> {
    let out = s.execute(line).unwrap();
    pictures(s, out)
}

fn say(s: &mut Session, line: &str) -> String {
    let out = s.execute(line).unwrap();
    text(s, out)
}

#[test]
fn captions_and_rows_get_ids() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    let out = s.execute("a red flower").unwrap();
    let p = pictures(&s, out);
    assert_eq!(
        p.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["#1.1", "#1.2", "#1.3", "#1.4"]
    );
    let out = s
        .execute(r#":interp "a red flower" "a blue flower" 6"#)
        .unwrap();
    assert_eq!(pictures(&s, out).len(), 6);
    let out = s
        .execute(":style #1.2 \"a white flower\" \"a pink flower\"")
        .unwrap();
    let p = pictures(&s, out);
    assert_eq!(p[1].id, "#3.2");
    assert!(s.picture("#2.6").is_some() && s.picture("#2.7").is_none());
    s.execute(":n 2").unwrap();
    let out = s.execute(":interp-z \"a flower\" 3").unwrap();
    assert_eq!(pictures(&s, out).len(), 3);
    assert_eq!(pics(&mut s, "a flower").len(), 2);
}

#[test]
fn errors_are_one_line_and_the_session_goes_on() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    let cases = [
        (":intrep", "did you mean :interp?"),
        (":zzzzzz", "unknown command :zzzzzz"),
        (r#":interp "a red"#, "unclosed quote"),
        (r#":interp "a red"#, "usage: :interp"),
        (":interp onlyone", "usage: :interp"),
        (":n 0", "usage: :n"),
        (":n many", "usage: :n"),
        (":seed x", "usage: :seed"),
        (":style missing.png \"a\"", "missing.png: no such file"),
        (":style #9.9 \"a\"", "no picture #9.9"),
        (":model nope", "model 'nope' not found"),
        (":sampler nope", "no sampler named 'nope'"),
        (":encoder nope", "no style encoder named 'nope'"),
        (":save", "nothing to save yet"),
        (":replay nothing.png", "nothing.png"),
        ("   ", "nothing to do"),
    ];
    for (line, expected) in cases {
        let err = format!("{:#}", s.execute(line).unwrap_err());
        assert!(err.contains(expected), "{line}: {err}");
        assert!(!err.contains('\n'), "{line}: error is not one line: {err}");
    }
    // Still alive and drawing.
    assert_eq!(pics(&mut s, "a flower").len(), 4);
}

#[test]
fn help_comes_from_the_command_table() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    let help = say(&mut s, ":help");
    for c in commands::COMMANDS {
        assert!(help.contains(c.usage), "help misses {}", c.name);
    }
    let one = say(&mut s, ":help interp");
    assert!(one.contains(":interp \"caption a\" \"caption b\" [steps]") && one.contains("also :i"));
    // Every product.md command is in the table.
    for name in [
        "help", "interp", "interp-z", "style", "seed", "n", "model", "sampler", "encoder", "save",
        "source", "replay", "plugins", "history", "clear", "quit", "live", "classify", "score",
    ] {
        assert!(commands::find(name).is_some(), ":{name} missing");
    }
}

#[test]
fn completion_knows_commands_ids_models_and_paths() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    s.execute("a red flower").unwrap();
    assert_eq!(
        commands::complete(&s, ":inte"),
        vec![":interp", ":interp-z"]
    );
    assert!(commands::complete(&s, ":style #1.").contains(&":style #1.3".to_string()));
    assert!(commands::complete(&s, ":model ").contains(&":model m".to_string()));
    assert_eq!(
        commands::complete(&s, ":live o"),
        vec![":live on", ":live off"]
    );
    assert!(commands::complete(&s, ":sampler ").contains(&":sampler gaussian".to_string()));
    assert!(commands::complete(&s, "a caption").is_empty());
}

#[test]
fn saved_pngs_replay_bit_for_bit() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    s.execute(":seed 11").unwrap();
    let originals = pics(&mut s, "a yellow flower with thin petals");
    let saved = say(&mut s, ":save");
    assert!(saved.contains("wrote 4 file(s)"), "{saved}");
    s.execute(":seed 99").unwrap();
    let file = sandbox.path().join("out/gantry-1-3.png");
    let replayed = pics(&mut s, &format!(":replay {}", file.display()));
    assert_eq!(
        replayed[0].image, originals[2].image,
        "replay must remake the picture exactly"
    );
    assert_eq!(replayed[0].label, "replayed");
    assert!(s.entries.last().unwrap().warnings.is_empty());

    // A picture is "replayed" only when its pixels are the file's. Otherwise
    // the warning says why not: other weights of a model of the same name
    // (trained on since, or replaced), an older gantry that did not record
    // them, or, with the same weights, other arithmetic or an edited file.
    use gantry::imageio::{read_png_metadata, read_png_pixels, write_png};
    let meta = read_png_metadata(&file).unwrap();
    let pixels = read_png_pixels(&file).unwrap();
    let mut edited = pixels.clone();
    edited.rgb[7] = if edited.rgb[7] < 128 {
        edited.rgb[7] + 3
    } else {
        edited.rgb[7] - 3
    };
    let one_value = format!(
        "1 of its {} colour values differ by up to 3 levels",
        pixels.rgb.len()
    );
    let fingerprint = &meta.iter().find(|(k, _)| k == "model_weights").unwrap().1;
    assert_eq!(fingerprint.len(), 16, "{meta:?}");
    for (what, weights, pixels, label, says) in [
        (
            "other weights",
            Some("00000000deadbeef"),
            &edited,
            "remade: the model changed",
            "not the same picture",
        ),
        (
            "no record",
            None,
            &edited,
            "remade",
            "does not record which weights",
        ),
        (
            "same weights, other pixels",
            Some(fingerprint.as_str()),
            &edited,
            "remade: the pixels differ",
            one_value.as_str(),
        ),
        // The same pixels are the same picture, whatever the file says.
        ("no record, same pixels", None, &pixels, "replayed", ""),
    ] {
        let other: Vec<(String, String)> = meta
            .iter()
            .filter(|(k, _)| k != "model_weights")
            .cloned()
            .chain(weights.map(|w| ("model_weights".to_string(), w.to_string())))
            .collect();
        let moved = sandbox.path().join("other.png");
        write_png(&moved, pixels, &other).unwrap();
        let remade = pics(&mut s, &format!(":replay {}", moved.display()));
        assert_eq!(remade[0].label, label, "{what}");
        let warnings = &s.entries.last().unwrap().warnings;
        if says.is_empty() {
            assert!(warnings.is_empty(), "{what}: {warnings:?}");
        } else {
            assert!(
                warnings.iter().any(|w| w.contains(says)),
                "{what}: {warnings:?}"
            );
        }
    }

    // Rows replay too.
    let row = pics(&mut s, r#":interp "a red flower" "a blue flower" 4"#);
    s.execute(&format!(
        ":save {} {}",
        row[1].id,
        sandbox.path().join("rows").display()
    ))
    .unwrap();
    let file = sandbox.path().join(format!(
        "rows/gantry-{}.png",
        row[1].id.trim_start_matches('#').replace('.', "-")
    ));
    let replayed = pics(&mut s, &format!(":replay {}", file.display()));
    assert_eq!(replayed[0].image, row[1].image);

    // An interpolation row as an animated GIF.
    let entry = row[0]
        .id
        .trim_start_matches('#')
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let gif = say(&mut s, &format!(":save #{entry} --gif"));
    let path = gif.trim_start_matches("wrote ");
    let decoded = image::open(path).unwrap();
    assert_eq!(decoded.width(), 128);
}

#[test]
fn source_runs_scripts_and_reports_file_and_line() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    let script = sandbox.path().join("s.gantry");
    std::fs::write(
        &script,
        "# a comment\n:n 1\na red flower\n\n:bogus\na blue flower\n",
    )
    .unwrap();
    let err = format!(
        "{:#}",
        s.execute(&format!(":source {}", script.display()))
            .unwrap_err()
    );
    assert!(err.contains("s.gantry:5: unknown command :bogus"), "{err}");
    assert_eq!(s.n, 1);
}

#[test]
fn a_script_that_sources_itself_is_refused_once_with_its_loop() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    let a = sandbox.path().join("a.gantry");
    let b = sandbox.path().join("b.gantry");
    std::fs::write(&a, format!(":n 2\n:source {}\n", b.display())).unwrap();
    std::fs::write(&b, format!(":source {}\n", a.display())).unwrap();
    let err = format!(
        "{:#}",
        s.execute(&format!(":source {}", a.display())).unwrap_err()
    );
    assert!(err.contains("a script sources itself"), "{err}");
    assert!(
        err.contains("a.gantry -> ") && err.contains("b.gantry -> "),
        "{err}"
    );
    // Where the loop closed: a.gantry:2, b.gantry:1, once each.
    assert_eq!(err.matches("a.gantry:2:").count(), 1, "{err}");
    assert_eq!(err.matches("b.gantry:1:").count(), 1, "{err}");
    // The session is not left inside the scripts: a good one runs after.
    std::fs::write(&b, ":n 3\n").unwrap();
    s.execute(&format!(":source {}", b.display())).unwrap();
    assert_eq!(s.n, 3);
}

#[test]
fn classify_and_score_rank_with_the_joint_embedding() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    s.execute("a red flower").unwrap();
    let scored = say(&mut s, ":score #1.1 \"a red flower\" \"a blue flower\"");
    assert!(
        scored.contains("1.") && scored.contains("2.") && scored.contains("a blue flower"),
        "{scored}"
    );
    // An untrained model names no dataset: a clear error, not a crash.
    let err = format!("{:#}", s.execute(":classify #1.1").unwrap_err());
    assert!(err.contains("names no dataset"), "{err}");
}

#[test]
fn shipped_model_classifies_with_its_dataset_classes() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    s.execute(":model procedural-flowers").unwrap();
    s.execute("a red flower with round petals").unwrap();
    let ranked = say(&mut s, ":classify #1.1");
    assert!(ranked.contains("1. "), "{ranked}");
    assert!(
        [" round", " thin", " pointed"]
            .iter()
            .any(|shape| ranked.contains(shape)),
        "{ranked}"
    );
}

#[test]
fn a_cancelled_job_stops_between_chunks_with_a_clear_message() {
    let sandbox = Sandbox::new();
    let s = session(&sandbox);
    s.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = format!("{:#}", s.generate_batch("a red flower", 64, 0).unwrap_err());
    assert_eq!(err, "cancelled");
    s.cancel.store(false, std::sync::atomic::Ordering::SeqCst);
    // Chunking never changes pixels: 64 in chunks equal the first 8 alone.
    let (all, _) = s.generate_batch("a red flower", 16, 0).unwrap();
    let (first, _) = s.generate_batch("a red flower", 8, 0).unwrap();
    assert_eq!(all[..8], first[..]);
}

#[test]
fn the_optimizing_style_encoder_plugin_inverts_g_through_the_host() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    s.execute("a red flower").unwrap();
    let err = format!("{:#}", s.execute(":encoder optimize steps=0").unwrap_err());
    assert!(err.contains("steps must be 1 to 10000"), "{err}");
    say(&mut s, ":encoder optimize steps=5 lr=0.1");
    assert_eq!(s.status().encoder, "optimize");
    let styled = pics(&mut s, ":style #1.1 \"a blue flower\"");
    assert_eq!(styled.len(), 1);
    assert!(styled[0]
        .metadata
        .contains(&("style_encoder".to_string(), "optimize".to_string())));
    // The inversion really lowers the reconstruction loss against the learned start.
    let source = s.picture("#1.1").unwrap().image.clone();
    let learned = s
        .runtime
        .style_code(&source, &gantry::runtime::StyleEncoderChoice::Learned)
        .unwrap();
    let optimized = s
        .runtime
        .style_code(&source, &s.style_encoder.clone())
        .unwrap();
    let loss = |z: &tch::Tensor| {
        let (text, _) = s
            .runtime
            .embed(&[gantry::runtime::INVERSION_CAPTION])
            .unwrap();
        let x = gantry::imageio::tensor_from_images(std::slice::from_ref(&source)).unwrap();
        let g = tch::no_grad(|| s.runtime.model().generator.net.forward_t(z, &text, false));
        (g - x).square().mean(tch::Kind::Float).double_value(&[])
    };
    assert!(
        loss(&optimized) <= loss(&learned),
        "optimisation should not make the reconstruction worse"
    );
    let err = format!("{:#}", s.execute(":encoder nope").unwrap_err());
    assert!(err.contains("available: learned, optimize"), "{err}");
    say(&mut s, ":encoder learned");
}

#[test]
fn a_panicking_sampler_plugin_is_an_error_entry_and_the_session_goes_on() {
    let sandbox = Sandbox::new();
    let plugin_dir = sandbox.path().join("data/plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::fs::copy(
        common::built_library("faulty_plugin"),
        plugin_dir.join("libfaulty_plugin.so"),
    )
    .unwrap();
    let mut s = session(&sandbox);
    say(&mut s, ":sampler faulty");
    // The fixture panics when GANTRY_FAULT=panic; only this test sets it.
    std::env::set_var("GANTRY_FAULT", "panic");
    let err = format!("{:#}", s.execute("a red flower").unwrap_err());
    std::env::remove_var("GANTRY_FAULT");
    assert!(err.contains("plugin 'faulty': sample panicked"), "{err}");
    assert!(matches!(s.entries.last().unwrap().body, Body::Error(_)));
    say(&mut s, ":sampler gaussian");
    assert_eq!(pics(&mut s, "a red flower").len(), 4);
}

#[test]
fn a_caption_typed_without_quotes_is_refused_with_the_quoted_command() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    pics(&mut s, "a red flower");
    let err = format!("{:#}", s.execute(":style #1.1 a white flower").unwrap_err());
    assert!(
        err.contains(r#":style #1.1 "a white flower""#) && err.contains("needs quotes"),
        "{err}"
    );
    let err = format!("{:#}", s.execute(":save all /etc/passwd").unwrap_err());
    assert!(err.contains("/etc/passwd: not a directory"), "{err}");
    let err = format!("{:#}", s.execute(":score #1.1 a red flower").unwrap_err());
    assert!(err.contains(r#":score #1.1 "a red flower""#), "{err}");
    // Quoted captions, one caption of one word, or one-word captions each
    // quoted, are what they say.
    assert_eq!(pics(&mut s, ":style #1.1 \"a white flower\"").len(), 1);
    assert_eq!(pics(&mut s, ":style #1.1 white").len(), 1);
    assert_eq!(pics(&mut s, ":style #1.1 \"white\" \"pink\"").len(), 2);
}

#[test]
fn a_panicking_job_is_an_error_entry_and_the_session_and_model_go_on() {
    // GANTRY_FAILPOINT makes the host panic inside the job, where a failing
    // libtorch call would. Set for this test binary's process only: no other
    // test here draws a line containing the marker.
    std::env::set_var("GANTRY_FAILPOINT", "job-panic");
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    let before = pics(&mut s, "a red flower");
    let err = format!("{:#}", s.execute("a red flower __panic__").unwrap_err());
    assert!(
        err.contains("internal error") && err.contains("session goes on") && !err.contains('\n'),
        "{err}"
    );
    assert!(matches!(
        s.entries.last().map(|e| &e.body),
        Some(Body::Error(_))
    ));
    // libtorch running out of memory says so, with what to do.
    let err = format!("{:#}", s.execute("a red flower __oom__").unwrap_err());
    assert!(
        err.contains("out of memory") && err.contains("try fewer pictures at once (:n"),
        "{err}"
    );
    // Same model, same pixels after the panic.
    s.execute(":seed 0").unwrap();
    let after = pics(&mut s, "a red flower");
    assert_eq!(before[0].image.rgb, after[0].image.rgb);
}

#[test]
fn replay_remakes_with_the_sampler_options_it_was_made_with_or_says_why_not() {
    // The only test in this binary that configures the truncated sampler
    // (its options live in the plugin for the life of the process).
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    let save = |s: &mut Session, id: &str, name: &str| {
        let dir = sandbox.path().join(name);
        s.execute(&format!(":save {id} {}", dir.display())).unwrap();
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        file.display().to_string()
    };
    s.execute(":sampler truncated").unwrap();
    let defaults = pics(&mut s, "a red flower");
    let made_with_defaults = save(&mut s, &defaults[1].id, "defaults");
    s.execute(":sampler truncated psi=0.5").unwrap();
    let half = pics(&mut s, "a red flower");
    let made_with_half = save(&mut s, &half[1].id, "half");
    let meta = gantry::imageio::read_png_metadata(std::path::Path::new(&made_with_half)).unwrap();
    assert!(meta.contains(&("sampler_options".to_string(), "psi=0.5".to_string())));

    // Under another psi, and under another sampler, the picture comes back.
    s.execute(":sampler truncated psi=0.9").unwrap();
    let replayed = pics(&mut s, &format!(":replay {made_with_half}"));
    assert_eq!(replayed[0].image, half[1].image);
    s.execute(":sampler gaussian").unwrap();
    let replayed = pics(&mut s, &format!(":replay {made_with_half}"));
    assert_eq!(replayed[0].image, half[1].image);
    // ...and the session's own sampler and options are as they were.
    let now = pics(&mut s, "a red flower");
    assert_eq!(s.status().sampler, "gaussian");
    assert_ne!(now[1].image, half[1].image);

    // psi was never set when this one was made; the plugin cannot unset it.
    let err = format!(
        "{:#}",
        s.execute(&format!(":replay {made_with_defaults}"))
            .unwrap_err()
    );
    assert!(
        err.contains("without the option psi") && err.contains("new session"),
        "{err}"
    );
}

#[test]
fn a_frame_of_gantry_interp_replays_as_that_frame() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    let out = sandbox.ok(&[
        "interp",
        "a red flower",
        "a blue flower",
        "--steps",
        "6",
        "--seed",
        "3",
        "-m",
        "m",
        "-o",
        "frames",
    ]);
    let frame5 = out.lines().find(|l| l.ends_with("-05.png")).unwrap();
    let path = sandbox.path().join(frame5);
    let drawn = image::open(&path).unwrap().to_rgb8().into_raw();
    let replayed = pics(&mut s, &format!(":replay {}", path.display()));
    assert_eq!(
        replayed[0].image.rgb, drawn,
        "frame 5 must replay as frame 5"
    );
}

/// A long session keeps a bounded number of pictures in memory: older rows go
/// to PNGs and come back whole when a command needs them.
#[test]
fn older_pictures_leave_memory_and_come_back_intact() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    say(&mut s, ":n 8");
    let first = pics(&mut s, "a red flower");
    let per_row: usize = first.iter().map(|p| p.image.rgb.len()).sum();
    let rows = gantry::session::RESIDENT_PICTURE_BYTES / per_row + 20;
    for k in 0..rows {
        pics(&mut s, &format!("a flower number {k}"));
    }
    let resident: usize = s
        .entries
        .iter()
        .filter_map(|e| match &e.body {
            Body::Pictures(p) => Some(p),
            _ => None,
        })
        .flatten()
        .map(|p| p.image.rgb.len())
        .sum();
    assert!(
        resident <= gantry::session::RESIDENT_PICTURE_BYTES,
        "{resident} bytes of pixels in memory"
    );
    let early = s.picture("#1.3").unwrap().clone();
    assert!(!early.is_resident(), "the first row left memory");
    assert_eq!(
        s.image(&early).unwrap(),
        first[2].image,
        "and comes back whole"
    );
    assert!(s
        .picture(&format!("#{}.1", rows + 1))
        .unwrap()
        .is_resident());

    // Commands that use it see the original picture: :save writes the same
    // pixels and provenance as the picture had.
    let dir = sandbox.path().join("saved");
    say(&mut s, &format!(":save #1.3 {}", dir.display()));
    let path = dir.join("gantry-1-3.png");
    assert_eq!(
        gantry::imageio::read_png_pixels(&path).unwrap(),
        first[2].image
    );
    assert_eq!(
        gantry::imageio::read_png_metadata(&path).unwrap(),
        first[2].metadata
    );
    let styled = pics(&mut s, ":style #1.3 \"a blue flower\"");
    assert_eq!(styled.len(), 1);
}

#[test]
fn zoom_sets_the_picture_size_within_its_range() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    assert_eq!(s.status().zoom, 2, "the config's default");
    assert!(say(&mut s, ":zoom 3").contains("48x24 cells"));
    assert_eq!(s.status().zoom, 3);
    for bad in [":zoom 0", ":zoom 5", ":zoom big", ":zoom"] {
        let err = format!("{:#}", s.execute(bad).unwrap_err());
        assert!(err.contains("usage: :zoom 1|2|3|4"), "{bad}: {err}");
    }
    assert_eq!(s.status().zoom, 3, "a refused value changes nothing");
}

/// A style transfer PNG remakes in a fresh session, where its source picture
/// (a `#id` of the old transcript) does not exist: the PNG records the style
/// code itself. A PNG asking for a batch gantry never makes is refused at once.
#[test]
fn style_pictures_replay_in_a_fresh_session_and_huge_batches_are_refused() {
    let sandbox = Sandbox::new();
    let mut first = session(&sandbox);
    pics(&mut first, "a red flower");
    let styled = pics(
        &mut first,
        ":style #1.2 \"a white flower\" \"a blue flower\"",
    );
    let dir = sandbox.path().join("styled");
    say(
        &mut first,
        &format!(":save {} {}", styled[1].id, dir.display()),
    );
    let png = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let meta = gantry::imageio::read_png_metadata(&png).unwrap();
    assert!(meta
        .iter()
        .any(|(k, v)| k == "style_code" && v.len() == 800));
    assert!(meta.iter().any(|(k, _)| k == "style_source_sha256"));
    drop(first);

    let mut fresh = reopen(&sandbox);
    let replayed = pics(&mut fresh, &format!(":replay {}", png.display()));
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].image, styled[1].image, "the same pixels");
    assert_eq!(replayed[0].label, "replayed");

    // A crafted batch of 10^8 pictures is an error, not an hour of work.
    let huge = sandbox.path().join("huge.png");
    let image = gantry::imageio::Image {
        width: 1,
        height: 1,
        rgb: vec![0; 3],
    };
    gantry::imageio::write_png(
        &huge,
        &image,
        &[
            ("command".into(), "a red flower".into()),
            ("batch".into(), "n=100000000 first_seed=0 index=5".into()),
        ],
    )
    .unwrap();
    let err = format!(
        "{:#}",
        fresh
            .execute(&format!(":replay {}", huge.display()))
            .unwrap_err()
    );
    assert!(err.contains("not a batch gantry makes"), "{err}");
}

/// Ctrl-C reaches every long job: a row of G (an :interp), a style encoder
/// plugin through its next call to the host, and building :classify's class
/// vectors; each stops with "cancelled" and the session goes on.
#[test]
fn cancellation_reaches_rows_plugins_and_classify() {
    let sandbox = Sandbox::new();
    let mut s = session(&sandbox);
    pics(&mut s, "a red flower");
    let cancelled = |s: &mut Session, line: &str| {
        let flag = s.cancel.clone();
        // The flag as Ctrl-C sets it while the job runs: from another thread,
        // here before the job's first check.
        let setter = std::thread::spawn(move || {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        setter.join().unwrap();
        // execute() clears the flag as a job starts, so go below it.
        let err = match line.strip_prefix(':') {
            Some(rest) => commands::run(s, rest).err(),
            None => s.caption(line).err(),
        };
        s.cancel.store(false, std::sync::atomic::Ordering::SeqCst);
        format!(
            "{:#}",
            err.unwrap_or_else(|| panic!("{line} was not cancelled"))
        )
    };
    assert_eq!(cancelled(&mut s, ":interp \"a\" \"b\" 64"), "cancelled");
    say(&mut s, ":encoder optimize steps=10000");
    let err = cancelled(&mut s, ":style #1.1 \"a blue flower\"");
    assert!(err.contains("cancelled"), "{err}");
    say(&mut s, ":encoder learned");
    // (:classify needs a model whose card names its dataset: the shipped one.)
    say(&mut s, ":model procedural-flowers");
    let err = cancelled(&mut s, ":classify #1.1");
    assert!(err.contains("cancelled"), "{err}");
    // And the session goes on.
    assert_eq!(pics(&mut s, ":style #1.1 \"a blue flower\"").len(), 1);
}
