//! Faults from outside: a disk that fills while gantry writes pictures or a
//! checkpoint. Each leaves no partial file, loses no earlier file, and says
//! which path could not be written. The disk is a small tmpfs, which needs
//! root: elsewhere these tests say so and skip.

mod common;
use common::Sandbox;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A tmpfs of `kib` KiB, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(kib: u64) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("skipping: cannot mount a small tmpfs here (needs root), so no full disk to test against");
            return None;
        }
        Some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk, leaving about `leave` bytes free.
    fn fill(&self, leave: u64) {
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        let mut written = 0u64;
        while file.write_all(&chunk).is_ok() {
            written += chunk.len() as u64;
        }
        drop(file);
        let len = written.saturating_sub(leave);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&filler)
            .unwrap()
            .set_len(len)
            .unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Files in `dir` whose names hold ".tmp": what a failed write must not leave.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".tmp"))
        })
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn script(sandbox: &Sandbox, name: &str, text: &str, out: &Path) -> Output {
    let file = sandbox.path().join(name);
    std::fs::write(&file, text).unwrap();
    sandbox
        .gantry()
        .args(["run", "--paths", "-m", "tiny", "-o"])
        .arg(out)
        .arg(&file)
        .output()
        .unwrap()
}

#[test]
fn a_full_disk_while_writing_pictures_keeps_the_earlier_ones_and_names_the_path() {
    let Some(disk) = SmallDisk::mount(512) else {
        return;
    };
    let sandbox = Sandbox::new();
    sandbox.tiny_model("tiny");
    let out = disk.path().join("out");
    let saved = disk.path().join("saved");
    let first = script(
        &sandbox,
        "first.txt",
        &format!("a red flower\n:save #1.1 {}\n", saved.display()),
        &out,
    );
    assert!(first.status.success(), "{}", stderr(&first));
    let picture = out.join("gantry-1-1.png");
    let kept = std::fs::read(&picture).unwrap();
    let kept_saved = std::fs::read(saved.join("gantry-1-1.png")).unwrap();

    disk.fill(1024);
    // The same names again, over a full disk: the script's own output...
    let second = script(&sandbox, "second.txt", "a blue flower\n", &out);
    assert!(!second.status.success());
    let err = stderr(&second);
    assert!(err.contains(&picture.display().to_string()), "{err}");
    assert!(err.contains("No space left"), "{err}");
    // ... and `:save` onto the full disk (the script's own output elsewhere).
    let third = script(
        &sandbox,
        "third.txt",
        &format!("a blue flower\n:save #1.1 {}\n", saved.display()),
        &sandbox.path().join("out"),
    );
    assert!(!third.status.success());
    let err = stderr(&third);
    let saved_picture = saved.join("gantry-1-1.png").display().to_string();
    assert!(err.contains(&saved_picture), "{err}");
    assert!(err.contains("No space left"), "{err}");
    assert_eq!(
        std::fs::read(&picture).unwrap(),
        kept,
        "the earlier picture is intact"
    );
    assert_eq!(
        std::fs::read(saved.join("gantry-1-1.png")).unwrap(),
        kept_saved
    );
    assert!(temporaries(&out).is_empty(), "{:?}", temporaries(&out));
    assert!(temporaries(&saved).is_empty(), "{:?}", temporaries(&saved));
}

#[test]
fn a_full_disk_at_a_checkpoint_keeps_the_previous_one_and_the_run_resumes() {
    let Some(disk) = SmallDisk::mount(16384) else {
        return;
    };
    let sandbox = Sandbox::new();
    sandbox.tiny_model("te");
    let run = disk.path().join("run");
    let train = |extra: &[&str]| {
        sandbox
            .gantry()
            .env("GANTRY_THREADS", "1")
            .args([
                "train",
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
                "3",
                "--run",
            ])
            .arg(&run)
            .args(extra)
            .output()
            .unwrap()
    };
    let stop_after_one = train(&["--stop-after", "1"]);
    assert!(
        stop_after_one.status.success(),
        "{}",
        stderr(&stop_after_one)
    );
    let checkpoint = run.join("checkpoint.safetensors");
    let before = std::fs::read(&checkpoint).unwrap();

    // Room for the loss log, not for a second checkpoint beside the first.
    disk.fill(before.len() as u64 / 2);
    let full = train(&["--resume"]);
    assert!(!full.status.success());
    let err = stderr(&full);
    assert!(err.contains("No space left"), "{err}");
    assert!(err.contains(&run.display().to_string()), "{err}");
    assert_eq!(
        std::fs::read(&checkpoint).unwrap(),
        before,
        "the checkpoint is intact"
    );
    assert!(temporaries(&run).is_empty(), "{:?}", temporaries(&run));

    // With room again, the run resumes from that checkpoint and finishes.
    std::fs::remove_file(disk.path().join("filler")).unwrap();
    let resumed = train(&["--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(run.join("model/generator.safetensors").exists());
}

/// SIGTERM or SIGHUP while a script draws: the script stops between
/// pictures, says so, and every PNG written is whole (no partial file).
#[test]
fn sigterm_and_sighup_stop_a_script_between_whole_pictures() {
    for signal in [libc::SIGTERM, libc::SIGHUP] {
        let sandbox = Sandbox::new();
        sandbox.tiny_model("tiny");
        let lines: String = (0..5000).map(|k| format!("a flower {k}\n")).collect();
        let file = sandbox.path().join("long.txt");
        std::fs::write(&file, lines).unwrap();
        let out = sandbox.path().join("out");
        let child = sandbox
            .gantry()
            .env("GANTRY_THREADS", "1")
            .args(["run", "--paths", "-m", "tiny", "-o"])
            .arg(&out)
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while std::fs::read_dir(&out).map_or(0, |d| d.count()) < 20
            && started.elapsed().as_secs() < 60
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // SAFETY: signalling our own child process.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        let result = child.wait_with_output().unwrap();
        assert_eq!(result.status.code(), Some(130), "{}", stderr(&result));
        assert!(
            stderr(&result).contains("interrupted"),
            "{}",
            stderr(&result)
        );
        assert!(temporaries(&out).is_empty(), "{:?}", temporaries(&out));
        let written: Vec<PathBuf> = std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(written.len() >= 20 && written.len() < 4 * 5000);
        for path in written {
            gantry::imageio::read_png_pixels(&path)
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        }
    }
}

/// The model folder deleted while a session runs: the loaded model goes on
/// drawing, and loading it again is a clear error that leaves the session
/// usable.
#[test]
fn a_model_folder_deleted_under_a_session_is_an_error_not_a_crash() {
    let sandbox = Sandbox::new();
    let folder = sandbox.tiny_model("gone");
    let mut session = sandbox.session("gone");
    std::fs::remove_dir_all(&folder).unwrap();
    assert!(session.execute("a red flower").is_ok());
    let err = session.execute(":model gone").unwrap_err();
    assert!(format!("{err:#}").contains("gone"), "{err:#}");
    assert!(session.execute("a blue flower").is_ok(), "still usable");
}

/// A plugin library deleted after the session loaded it: the mapped code
/// stays, so the sampler goes on working.
#[test]
fn a_plugin_library_removed_after_loading_keeps_working() {
    let sandbox = Sandbox::new();
    sandbox.tiny_model("m");
    let plugins = sandbox.path().join("data/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let copy = plugins.join("libgantry_sampler_truncated.so");
    std::fs::copy(common::built_library("gantry_sampler_truncated"), &copy).unwrap();
    let mut session = sandbox.session("m");
    session.execute(":sampler truncated psi=0.5").unwrap();
    let before = session.execute("a red flower").unwrap();
    std::fs::remove_file(&copy).unwrap();
    let after = session.execute("a red flower").unwrap();
    let pixels = |o: gantry::session::Outcome| match o {
        gantry::session::Outcome::Entry(i) => match &session.entries[i].body {
            gantry::session::Body::Pictures(p) => p[0].image.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(pixels(before), pixels(after));
}
