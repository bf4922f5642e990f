//! The full-screen REPL driven for real through tmux: type, see ids appear,
//! make mistakes, and the REPL is still there after each.

mod common;
use common::Sandbox;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    name: String,
}

impl Tmux {
    fn start(sandbox: &Sandbox, args: &str) -> Option<Self> {
        Self::start_with(sandbox, "", args)
    }

    /// `env` is `KEY=VALUE ...` set for gantry only.
    fn start_with(sandbox: &Sandbox, env: &str, args: &str) -> Option<Self> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("SKIPPED: tmux is not installed");
            return None;
        }
        // tmux reads '.' and ':' in a target as window/pane separators.
        let tag: String = sandbox
            .path()
            .file_name()?
            .to_string_lossy()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let name = format!("gantry-test-{}-{tag}", std::process::id());
        let command = format!(
            "cd {dir} && {env} GANTRY_DATA_DIR={dir}/data GANTRY_CONFIG_DIR={dir}/config GANTRY_DEVICE=cpu {bin} {args}; sleep 30",
            dir = sandbox.path().display(),
            bin = env!("CARGO_BIN_EXE_gantry"),
        );
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "120",
                "-y",
                "45",
                &command,
            ])
            .status()
            .ok()?
            .success();
        assert!(ok, "tmux new-session failed");
        Some(Self { name })
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        assert!(Command::new("tmux").args(&args).status().unwrap().success());
    }

    /// Types a line and presses Enter.
    fn line(&self, text: &str) {
        self.send(&["-l", text]);
        self.send(&["Enter"]);
    }

    /// Waits until the screen contains `text`.
    fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "waited for {text:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The REPL is alive: its status line and prompt are on screen.
    fn alive(&self) {
        let screen = self.wait_for("› ");
        assert!(screen.contains("sampler gaussian"), "{screen}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

#[test]
fn repl_end_to_end_in_a_real_terminal() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let Some(t) = Tmux::start(&sandbox, "-m m") else {
        return;
    };
    t.wait_for("model m");

    t.line("a red flower with round petals");
    let screen = t.wait_for("#1.4");
    assert!(screen.contains("#1.1 seed 0"), "{screen}");
    // Pictures are drawn as cells (half-blocks inside tmux).
    assert!(screen.contains('▀') || screen.contains('▄'), "{screen}");
    t.alive();

    t.line(r#":interp "a red flower" "a blue flower" 5"#);
    let screen = t.wait_for("#2.5");
    assert!(!screen.contains("#2.6"), "a row of exactly 5: {screen}");
    t.alive();

    t.line(r#":style #1.1 "a white flower""#);
    t.wait_for("#3.1");
    t.alive();

    t.line(":intrep");
    t.wait_for("did you mean :interp?");
    t.alive();

    t.line(r#":interp "a red flower"#);
    let screen = t.wait_for("unclosed quote");
    assert!(screen.contains("usage: :interp"), "{screen}");
    t.alive();

    // Tab completes a command; Up recalls history.
    t.send(&["-l", ":he"]);
    t.send(&["Tab"]);
    t.wait_for("› :help");
    t.send(&["C-u"]);
    t.send(&["Up"]);
    t.wait_for(r#"› :interp "a red flower"#);
    t.send(&["C-u"]);

    // Live preview: the picture of the text so far appears after a pause.
    t.line(":live on");
    t.wait_for("live preview on");
    t.send(&["-l", "a yellow flower"]);
    t.wait_for("live: a yellow flower");
    t.send(&["C-u"]);
    t.alive();

    t.line(":quit");
    let start = Instant::now();
    while t.screen().contains("sampler gaussian") && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The history was kept for the next run.
    let history = std::fs::read_to_string(sandbox.path().join("data/history")).unwrap();
    assert!(
        history.contains("a red flower with round petals") && history.contains(":quit"),
        "{history}"
    );
}

/// Ctrl-C during a long job (an `optimize` style transfer of 10,000 steps,
/// through a plugin) cuts it short, says "cancelled" once, clears the
/// "cancelling..." notice, and gives the prompt back for the next caption.
#[test]
fn ctrl_c_cuts_a_plugin_style_transfer_short() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let Some(t) = Tmux::start(&sandbox, "-m m") else {
        return;
    };
    t.wait_for("model m");
    t.line("a red flower");
    t.wait_for("#1.1");
    t.line(":encoder optimize steps=10000");
    t.wait_for("encoder optimize");
    t.line(r#":style #1.1 "a blue flower""#);
    t.wait_for("Ctrl-C cancels");
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    t.send(&["C-c"]);
    let screen = loop {
        let screen = t.screen();
        if screen.contains("error: cancelled") && !screen.contains("Ctrl-C cancels") {
            break screen;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not cancelled:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!(
        "Ctrl-C to the prompt during an optimize :style: {} ms",
        start.elapsed().as_millis()
    );
    assert!(!screen.contains("#2.1"), "the job was cut short: {screen}");
    assert_eq!(screen.matches("cancelled").count(), 1, "{screen}");
    assert!(!screen.contains("cancelling..."), "{screen}");
    t.line(":encoder learned");
    t.line("a blue flower");
    t.wait_for("#2.1");
    t.alive();
}

/// The terminal closing under the REPL (tmux killed: SIGHUP, then a tty that
/// reads nothing but hang-ups) ends the process; it never lingers.
#[test]
fn the_repl_exits_when_its_terminal_goes_away() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let Some(t) = Tmux::start(&sandbox, "-m m") else {
        return;
    };
    t.wait_for("model m");
    let marker = sandbox.path().display().to_string();
    let running = || {
        Command::new("pgrep")
            .args(["-f", &format!("GANTRY_DATA_DIR={marker}/data")])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false)
            || std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
                std::fs::read_to_string(e.path().join("environ"))
                    .map(|env| env.contains(&format!("GANTRY_DATA_DIR={marker}/data")))
                    .unwrap_or(false)
                    && std::fs::read_to_string(e.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "gantry")
            })
    };
    assert!(running(), "the REPL is running");
    drop(t);
    let start = Instant::now();
    while running() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the REPL outlived its terminal"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Ctrl-C during a 64-step :interp cuts the row short. The device is made
/// slow for the test (GANTRY_FAILPOINT=slow-draw: 150 ms more a chunk of 32
/// pictures), as a large model on a CPU would be.
#[test]
fn ctrl_c_cuts_an_interpolation_row_short() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let Some(t) = Tmux::start_with(&sandbox, "GANTRY_FAILPOINT=slow-draw", "-m m") else {
        return;
    };
    t.wait_for("model m");
    t.line(r#":interp "a red flower" "a blue flower" 64"#);
    t.wait_for("Ctrl-C cancels");
    let start = Instant::now();
    t.send(&["C-c"]);
    let screen = loop {
        let screen = t.screen();
        if screen.contains("error: cancelled") && !screen.contains("Ctrl-C cancels") {
            break screen;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not cancelled:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!(
        "Ctrl-C to the prompt during a 64-step :interp: {} ms",
        start.elapsed().as_millis()
    );
    assert!(!screen.contains("#1.1"), "the row was cut short: {screen}");
    t.line("a red flower");
    t.wait_for("#1.1");
    t.alive();
}

/// A line typed while a job runs is not lost: it waits its turn and runs
/// when the job ends; Ctrl-C cancels the job and drops what was typed
/// ahead. (A slow device again, so that the lines arrive mid-job.)
#[test]
fn lines_typed_during_a_job_run_after_it() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let Some(t) = Tmux::start_with(&sandbox, "GANTRY_FAILPOINT=slow-draw", "-m m") else {
        return;
    };
    t.wait_for("model m");
    t.line(r#":interp "a red flower" "a blue flower" 64"#);
    t.wait_for("Ctrl-C cancels");
    t.line("a white flower");
    t.wait_for("queued 1 line");
    let screen = t.wait_for("#2.1");
    assert!(screen.contains("› a white flower"), "{screen}");
    // Ctrl-C: the job and the queue both stop.
    t.line(r#":interp "a red flower" "a blue flower" 64"#);
    t.wait_for("Ctrl-C cancels");
    t.line("a black flower");
    t.wait_for("queued 1 line");
    t.send(&["C-c"]);
    t.wait_for("error: cancelled");
    std::thread::sleep(Duration::from_millis(1500));
    let screen = t.screen();
    assert!(!screen.contains("› a black flower"), "{screen}");
    // The dropped line is kept in the history file, for Up in a later session.
    let history = std::fs::read_to_string(sandbox.path().join("data/history")).unwrap();
    assert!(history.contains("a black flower"), "{history}");
    t.alive();
}

/// The first PNG in `dir` (a `:save` of one picture).
fn saved_png(dir: &std::path::Path) -> std::path::PathBuf {
    let start = Instant::now();
    loop {
        if let Some(path) = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "png"))
        {
            return path;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nothing saved in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pixels(path: &std::path::Path) -> Vec<u8> {
    gantry::imageio::read_png_pixels(path).unwrap().rgb
}

/// `:replay` keeps its word in the real REPL: a `truncated psi=0.5` picture
/// replayed after `:sampler truncated psi=0.9` has the original pixels, and a
/// `:style` picture replayed in a new REPL (its source `#id` gone) too.
#[test]
fn replay_remakes_the_same_pixels_in_the_repl() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let dir = |name: &str| sandbox.path().join(name);
    {
        let Some(t) = Tmux::start(&sandbox, "-m m") else {
            return;
        };
        t.wait_for("model m");
        t.line(":sampler truncated psi=0.5");
        t.wait_for("truncated");
        t.line("a red flower");
        t.wait_for("#1.1");
        t.line(&format!(":save #1.2 {}", dir("psi").display()));
        t.wait_for("wrote");
        t.line(r#":style #1.1 "a blue flower""#);
        t.wait_for("#2.1");
        t.line(&format!(":save #2.1 {}", dir("styled").display()));
        saved_png(&dir("styled"));
        t.line(":sampler truncated psi=0.9");
        t.line(&format!(":replay {}", saved_png(&dir("psi")).display()));
        t.wait_for("#3.1");
        t.line(&format!(":save #3.1 {}", dir("psi-again").display()));
        assert_eq!(
            pixels(&saved_png(&dir("psi-again"))),
            pixels(&saved_png(&dir("psi"))),
            "replayed under psi=0.9, remade with psi=0.5"
        );
        t.line(":quit");
    }
    // A new REPL: #1.1 is no picture of its transcript.
    let Some(t) = Tmux::start(&sandbox, "-m m") else {
        return;
    };
    t.wait_for("model m");
    t.line(&format!(":replay {}", saved_png(&dir("styled")).display()));
    t.wait_for("#1.1");
    t.line(&format!(":save #1.1 {}", dir("styled-again").display()));
    assert_eq!(
        pixels(&saved_png(&dir("styled-again"))),
        pixels(&saved_png(&dir("styled")))
    );
    t.alive();
}
