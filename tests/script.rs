//! `gantry run`: the REPL's language from a file or stdin.

mod common;
use common::Sandbox;
use std::io::Write;

#[test]
fn a_script_writes_pngs_and_stops_at_the_first_error_with_file_and_line() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    std::fs::write(
        sandbox.path().join("ok.gantry"),
        "# two images\n:n 2\na red flower\n:interp \"a\" \"b\" 3\n",
    )
    .unwrap();
    let out = sandbox.ok(&["run", "ok.gantry", "-m", "m", "-o", "pngs"]);
    let paths: Vec<&str> = out.lines().filter(|l| l.ends_with(".png")).collect();
    assert_eq!(paths.len(), 5, "{out}");
    assert!(paths.iter().all(|p| sandbox.path().join(p).exists()));

    std::fs::write(
        sandbox.path().join("bad.gantry"),
        "a red flower\n\n:intrep \"a\" \"b\"\na blue flower\n",
    )
    .unwrap();
    let run = sandbox.run(&["run", "bad.gantry", "-m", "m", "-o", "bad"]);
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("bad.gantry:3: unknown command :intrep; did you mean :interp?"),
        "{stderr}"
    );
    // The line after the error did not run.
    let written = std::fs::read_dir(sandbox.path().join("bad"))
        .unwrap()
        .count();
    assert_eq!(written, 4);
}

#[test]
fn stdin_scripts_and_a_non_terminal_prompt() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    for args in [vec!["run", "-", "-m", "m", "-o", "a"], vec!["-m", "m"]] {
        let mut child = sandbox
            .gantry()
            .args(&args)
            .env("GANTRY_OUTPUT_DIR", sandbox.path().join("b"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b":n 1\na white flower\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.ends_with(".png"))
                .count(),
            1,
            "{args:?}"
        );
    }
}

#[test]
fn all_4000_real_cub_captions_run_to_the_end() {
    let shared = require_shared!();
    let sandbox = Sandbox::new();
    let mut script = String::from(":n 1\n");
    let mut count = 0;
    let root = shared.join("fixtures/cub_text_c10_sample");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|c| c.path().is_dir())
        .flat_map(|c| {
            std::fs::read_dir(c.path())
                .unwrap()
                .flatten()
                .map(|f| f.path())
        })
        .collect();
    files.sort();
    for file in files {
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(':') {
                continue;
            }
            script.push_str(line);
            script.push('\n');
            count += 1;
        }
    }
    assert!(count >= 3990, "{count}");
    std::fs::write(sandbox.path().join("cub.gantry"), script).unwrap();
    let out = sandbox.run(&["run", "cub.gantry", "-m", "procedural-flowers", "-o", "cub"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pngs = std::fs::read_dir(sandbox.path().join("cub"))
        .unwrap()
        .count();
    assert_eq!(pngs, count, "one PNG per caption");
}
