//! The REPL in a real graphics terminal: xterm as a VT340 (sixel) under Xvfb,
//! typed into with xdotool, photographed with xwd. The pictures must be drawn
//! with sixel, not half-blocks: sixel draws the 64x64 picture square on
//! screen, while half-blocks fill 32x16 cells of the 6x13 font, 192x208
//! pixels. Skips with a message where Xvfb, xterm, xdotool or xwd is missing
//! (`.ci/run` installs them).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::Sandbox;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An XWD screenshot (24-bit ZPixmap, 32 bits a pixel) as rows of RGB.
fn screenshot(display: &str) -> Option<(usize, usize, Vec<[u8; 3]>)> {
    let out = Command::new("xwd")
        .args(["-root", "-silent", "-display", display])
        .output()
        .ok()?;
    let d = out.stdout;
    let word = |i: usize| u32::from_be_bytes(d[4 * i..4 * i + 4].try_into().unwrap()) as usize;
    if d.len() < 100 {
        return None;
    }
    let (header, width, height) = (word(0), word(4), word(5));
    let (byte_order, bits, line) = (word(7), word(11), word(12));
    let ncolors = word(19);
    if bits != 32 {
        return None;
    }
    let start = header + ncolors * 12;
    let mut pixels = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let p = start + y * line + 4 * x;
            let px = d.get(p..p + 4)?;
            pixels.push(if byte_order == 0 {
                [px[2], px[1], px[0]]
            } else {
                [px[1], px[2], px[3]]
            });
        }
    }
    Some((width, height, pixels))
}

/// The first picture's size on screen in pixels: the longest run of
/// coloured (not white, not black) pixels down the column `x`, and across at
/// its middle row. A 64x64 picture in sixel is square on screen; in
/// half-blocks it takes 32x16 cells of 6x13 pixels, 192x208.
fn first_picture(width: usize, height: usize, pixels: &[[u8; 3]], x: usize) -> (usize, usize) {
    let coloured = |x: usize, y: usize| {
        let p = pixels[y * width + x];
        p != [255, 255, 255] && p != [0, 0, 0]
    };
    let (mut best, mut best_end, mut run) = (0, 0, 0);
    for y in 0..height {
        run = if coloured(x, y) { run + 1 } else { 0 };
        if run > best {
            (best, best_end) = (run, y);
        }
    }
    let middle = best_end.saturating_sub(best / 2);
    let (mut across, mut run) = (0, 0);
    for x in 0..width {
        run = if coloured(x, middle) { run + 1 } else { 0 };
        across = across.max(run);
    }
    (across, best)
}

#[test]
fn pictures_are_drawn_with_sixel_in_a_sixel_terminal() {
    for tool in ["Xvfb", "xterm", "xdotool", "xwd"] {
        if !have(tool) {
            eprintln!(
                "SKIPPED: {tool} is not installed (apt-get install xvfb xterm xdotool x11-apps)"
            );
            return;
        }
    }
    // The measure tells the two apart: half-blocks forced, then the protocol
    // the REPL finds by asking the terminal.
    let (w, h) = photograph(Some("halfblocks"));
    assert!(h >= w + 12, "half-blocks: {w}x{h} pixels, taller than wide");
    let (w, h) = photograph(None);
    eprintln!("the first picture on screen: {w}x{h} pixels");
    assert!(
        w >= 150 && w.abs_diff(h) <= 4,
        "{w}x{h} pixels: not a square picture drawn with sixel"
    );
}

/// Runs the REPL in xterm (a VT340) under Xvfb, draws a caption, and returns
/// the first picture's size on screen once the pictures are there.
fn photograph(graphics: Option<&str>) -> (usize, usize) {
    let sandbox = Sandbox::new();
    // A display number no other X server holds.
    let number = (50 + std::process::id() % 200..1000)
        .find(|n| !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists())
        .unwrap();
    let display = format!(":{number}");
    let _xvfb = Killed(
        Command::new("Xvfb")
            .args([&display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Ready when a client can ask it its size (under a loaded CI machine this
    // can take seconds).
    let start = Instant::now();
    while !Command::new("xdotool")
        .env("DISPLAY", &display)
        .arg("getdisplaygeometry")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Xvfb did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let repo = env!("CARGO_MANIFEST_DIR");
    let command = format!(
        "cd {repo} && {forced} GANTRY_DATA_DIR={dir}/data GANTRY_CONFIG_DIR={dir}/config GANTRY_DEVICE=cpu {bin} -m procedural-flowers",
        dir = sandbox.path().display(),
        bin = env!("CARGO_BIN_EXE_gantry"),
        forced = graphics.map_or(String::new(), |g| format!("GANTRY_GRAPHICS={g}")),
    );
    let xterm_log = sandbox.path().join("xterm.log");
    let start_xterm = || {
        Killed(
            Command::new("xterm")
                .env("DISPLAY", &display)
                .args([
                    "-ti",
                    "vt340",
                    "-xrm",
                    "XTerm*decTerminalID: vt340",
                    "-xrm",
                    "XTerm*numColorRegisters: 256",
                    "-fn",
                    "6x13",
                    "-geometry",
                    "120x40+0+0",
                    "-e",
                    "sh",
                    "-c",
                    &command,
                ])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&xterm_log).unwrap())
                .spawn()
                .unwrap(),
        )
    };
    let mut xterm = start_xterm();
    let mut starts = 1;
    let xdotool = |args: &[&str]| {
        Command::new("xdotool")
            .env("DISPLAY", &display)
            .args(args)
            .stderr(Stdio::null())
            .output()
            .unwrap()
    };
    // The window, then focus on it (there is no window manager).
    let start = Instant::now();
    let window = loop {
        let out = xdotool(&["search", "--class", "xterm"]);
        let id = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(str::to_string);
        if let Some(id) = id {
            break id;
        }
        // An xterm that exited says why; one still starting on a loaded
        // machine gets time.
        // Under load xterm now and then exits at once (status 1, seen in CI):
        // start it again, twice at most, then say what it printed.
        if let Ok(Some(status)) = xterm.0.try_wait() {
            let said = std::fs::read_to_string(&xterm_log).unwrap_or_default();
            assert!(
                starts < 3,
                "xterm exited before its window appeared, {starts} times: {status}: {said}"
            );
            eprintln!(
                "xterm exited at start ({status}: {}); starting it again",
                said.trim()
            );
            xterm = start_xterm();
            starts += 1;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no xterm window after 90 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // The REPL starts and asks the terminal what it can draw; on a loaded
    // machine that takes a while, and keys typed before it reads them are
    // lost: type the caption again until pictures appear.
    std::thread::sleep(Duration::from_secs(2));
    let start = Instant::now();
    let mut typed = None::<Instant>;
    loop {
        if typed.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            xdotool(&["windowfocus", &window]);
            xdotool(&["type", "--delay", "10", "a red flower with round petals"]);
            xdotool(&["key", "Return"]);
            typed = Some(Instant::now());
        }
        if let Some((w, h, pixels)) = screenshot(&display) {
            let (across, down) = first_picture(w, h, &pixels, 60);
            if across >= 150 && down >= 150 {
                // Drawn completely? Take it again a moment later.
                std::thread::sleep(Duration::from_millis(500));
                if let Some((w, h, pixels)) = screenshot(&display) {
                    write_png(&sandbox.path().join("screen.png"), w, h, &pixels);
                    return first_picture(w, h, &pixels, 60);
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no pictures on the screen"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Keeps the screenshot beside the test's other files (for a person to see).
fn write_png(path: &Path, width: usize, height: usize, pixels: &[[u8; 3]]) {
    let image = gantry::imageio::Image {
        width: width as u32,
        height: height as u32,
        rgb: pixels.iter().flatten().copied().collect(),
    };
    let _ = gantry::imageio::write_png(path, &image, &[]);
}
