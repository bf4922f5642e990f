//! The full-screen REPL: crossterm events in, ratatui frames out. The
//! session runs each line on a worker thread so that the screen stays live
//! and Ctrl-C can cancel the job between chunks.

mod app;
mod view;

use anyhow::{Context, Result};
use app::{Action, App, Busy};
use crossterm::event::{self, Event, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use gantry::imageio::Image;
use gantry::session::commands;
use gantry::session::words::common_prefix;
use gantry::session::{Body, Outcome, Session};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Size;
use ratatui::Terminal;
use ratatui_image::picker::Picker;
use ratatui_image::Resize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use view::{picture_cells, Images};

/// How long typing must pause before the live preview redraws.
const LIVE_PAUSE: Duration = Duration::from_millis(350);

type Job = JoinHandle<(Session, Result<Outcome>)>;

/// The running job: its thread, its progress, and its cancel flag.
type Running = (
    Job,
    gantry::session::Progress,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
);

/// Runs `line` on the session in a worker thread; the session goes with it
/// and comes back when the job ends.
fn start_job(mut s: Session, line: String, app: &mut App, previewed: &mut String) -> Running {
    let progress = s.progress.clone();
    progress.done.store(0, Ordering::SeqCst);
    progress.total.store(0, Ordering::SeqCst);
    let cancel = s.cancel.clone();
    app.busy = Some(Busy {
        line: line.clone(),
        started: Instant::now(),
        done: 0,
        total: 0,
    });
    app.preview = None;
    previewed.clear();
    let handle = std::thread::spawn(move || {
        let outcome = s.execute(&line);
        (s, outcome)
    });
    (handle, progress, cancel)
}

/// What the notice says of lines typed while a job runs.
fn queued_notice(queued: usize) -> String {
    let lines = if queued == 1 {
        "1 line".to_string()
    } else {
        format!("{queued} lines")
    };
    format!("queued {lines}: they run in turn after this job (Ctrl-C cancels it and drops them)")
}

/// Restores the terminal however the REPL ends (error or panic included).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = disable_raw_mode();
        let _ = execute!(
            std::io::stdout(),
            LeaveAlternateScreen,
            crossterm::cursor::Show
        );
    }
}

fn history_file(session: &Session) -> PathBuf {
    session.paths.data_dir.join("history")
}

fn load_history(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Writes an entered line to the history file (as it is entered: a line
/// typed ahead of a running job is kept even where Ctrl-C drops it).
fn append_history(path: &Path, line: &str) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{}", line.replace('\n', " "));
    }
}

fn protocol(
    picker: &Picker,
    image: &Image,
    zoom: u16,
) -> Option<ratatui_image::protocol::Protocol> {
    let rgb = image::RgbImage::from_raw(image.width, image.height, image.rgb.clone())?;
    let (cols, rows) = picture_cells(zoom);
    picker
        .new_protocol(
            image::DynamicImage::ImageRgb8(rgb),
            Size::new(cols, rows),
            Resize::Scale(None),
        )
        .ok()
}

/// Copies the session's transcript into the app and makes image protocols
/// for pictures not seen yet.
fn sync(app: &mut App, session: &Session, images: &mut Images, picker: &Picker) {
    // The transcript only grows (or is cleared): copy the new entries, not
    // all of them, and let go of the pixels the session wrote out of memory.
    if session.entries.len() < app.transcript.len() {
        app.transcript = session.entries.clone();
    } else {
        for (mine, theirs) in app.transcript.iter_mut().zip(&session.entries) {
            if let (Body::Pictures(a), Body::Pictures(b)) = (&mut mine.body, &theirs.body) {
                for (pa, pb) in a.iter_mut().zip(b) {
                    if pa.is_resident() && !pb.is_resident() {
                        *pa = pb.clone();
                    }
                }
            }
        }
        let known = app.transcript.len();
        app.transcript
            .extend(session.entries[known..].iter().cloned());
    }
    app.status = session.status();
    // Another picture size: every protocol is made again at the new size.
    if images.zoom != session.zoom {
        images.by_id.clear();
        images.zoom = session.zoom;
    }
    // Pictures the session wrote out of memory lose their protocols too, so
    // that a long session stays flat here as well.
    let mut resident = std::collections::HashSet::new();
    for entry in &session.entries {
        if let Body::Pictures(pictures) = &entry.body {
            for p in pictures.iter().filter(|p| p.is_resident()) {
                resident.insert(p.id.as_str());
                if !images.by_id.contains_key(&p.id) {
                    if let Some(proto) = protocol(picker, &p.image, session.zoom) {
                        images.by_id.insert(p.id.clone(), proto);
                    }
                }
            }
        }
    }
    images
        .by_id
        .retain(|id, _| id == "preview" || resident.contains(id.as_str()));
}

/// Runs the REPL until :quit or Ctrl-D.
pub fn run(session: Session) -> Result<()> {
    enable_raw_mode().context("the terminal refused raw mode")?;
    let _guard = TerminalGuard;
    // A job's panic becomes its error line in the transcript (the session
    // catches it); printed to the terminal it would be drawn over the screen.
    // The UI thread's own panics still print, after the guard above has
    // restored the terminal.
    let ui_thread = std::thread::current().id();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == ui_thread {
            default_hook(info);
        }
    }));
    execute!(std::io::stdout(), EnterAlternateScreen).context("entering the alternate screen")?;
    // Query the terminal's graphics support after entering the alternate
    // screen and before reading events (it times out on terminals that do
    // not answer); half-blocks work everywhere.
    // Inside tmux (which passes no graphics through by default), or with
    // GANTRY_GRAPHICS=halfblocks, skip the query: a terminal that never
    // answers leaves the query's reader blocked on stdin, eating keystrokes.
    let in_tmux = std::env::var_os("TMUX").is_some();
    let picker = match std::env::var("GANTRY_GRAPHICS").as_deref() {
        Ok("halfblocks") => Picker::halfblocks(),
        _ if in_tmux => Picker::halfblocks(),
        _ => Picker::from_query_stdio().unwrap_or_else(|_| Picker::halfblocks()),
    };
    // The query toggles raw mode itself; make sure it is on for us.
    enable_raw_mode().context("the terminal refused raw mode")?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;

    let history = history_file(&session);
    let mut app = App {
        history: load_history(&history),
        ..Default::default()
    };
    let mut images = Images::default();
    sync(&mut app, &session, &mut images, &picker);
    let mut session = Some(session);
    let mut job: Option<Running> = None;
    // Lines entered while a job runs: typed ahead, they run in turn.
    let mut queued = std::collections::VecDeque::<String>::new();
    let mut previewed = String::new();
    // SIGTERM or SIGHUP (a closed terminal, a `kill`): stop the job between
    // chunks and leave, restoring the terminal (in raw mode Ctrl-C is a key,
    // not a signal). Pictures are only ever written whole.
    let terminate = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (flag, cancel) = (
        terminate.clone(),
        session.as_ref().map(|s| s.cancel.clone()),
    );
    let _ = ctrlc::set_handler(move || {
        flag.store(true, Ordering::SeqCst);
        if let Some(cancel) = &cancel {
            cancel.store(true, Ordering::SeqCst);
        }
        // The loop leaves within a tick; if it cannot (a terminal gone from
        // under it keeps the event reader spinning), leave from here, as the
        // signal's default would have.
        std::thread::sleep(Duration::from_secs(1));
        let _ = disable_raw_mode();
        let _ = execute!(std::io::stdout(), LeaveAlternateScreen);
        std::process::exit(143);
    });

    loop {
        if terminate.load(Ordering::SeqCst) {
            if let Some((handle, _, cancel)) = job.take() {
                cancel.store(true, Ordering::SeqCst);
                let _ = handle.join();
            }
            return Ok(());
        }
        // A finished job gives the session back.
        if job.as_ref().is_some_and(|(j, _, _)| j.is_finished()) {
            if let Some((handle, _, _)) = job.take() {
                match handle.join() {
                    Ok((s, outcome)) => {
                        if let Ok(Outcome::Quit) = outcome {
                            return Ok(());
                        }
                        if let Ok(Outcome::Cleared) = outcome {
                            images.by_id.retain(|id, _| id == "preview");
                        }
                        sync(&mut app, &s, &mut images, &picker);
                        session = Some(s);
                        if app.notice.as_deref() == Some("cancelling...") {
                            app.notice = None;
                        }
                    }
                    Err(_) => anyhow::bail!("the worker thread panicked"),
                }
                app.busy = None;
            }
        }
        // The next line typed ahead, once the session is back.
        if job.is_none() && session.is_some() {
            if let Some(line) = queued.pop_front() {
                if let Some(s) = session.take() {
                    app.notice = (!queued.is_empty()).then(|| queued_notice(queued.len()));
                    job = Some(start_job(s, line, &mut app, &mut previewed));
                }
            }
        }
        if let (Some((_, progress, _)), Some(busy)) = (&job, &mut app.busy) {
            busy.done = progress.done.load(Ordering::SeqCst);
            busy.total = progress.total.load(Ordering::SeqCst);
        }
        // The live preview, after a pause in typing.
        if let Some(s) = &session {
            let text = app.input.trim().to_string();
            let paused = app.last_key.is_some_and(|t| t.elapsed() >= LIVE_PAUSE);
            if s.live && paused && !text.is_empty() && !text.starts_with(':') && text != previewed {
                previewed = text.clone();
                if let Ok(image) = s.preview(&text) {
                    if let Some(proto) = protocol(&picker, &image, s.zoom) {
                        images.by_id.insert("preview".into(), proto);
                        app.preview = Some(text);
                    }
                }
            }
            if !s.live {
                app.preview = None;
            }
        }

        terminal.draw(|f| view::draw(f, &app, &images))?;

        if !event::poll(Duration::from_millis(50))? {
            continue;
        }
        match event::read()? {
            Event::Key(key) if key.kind != KeyEventKind::Release => match app.on_key(key) {
                Action::Nothing => {}
                Action::Quit => {
                    if let Some((_, _, cancel)) = &job {
                        cancel.store(true, Ordering::SeqCst);
                    }
                    return Ok(());
                }
                Action::Cancel => {
                    if let Some((_, _, cancel)) = &job {
                        cancel.store(true, Ordering::SeqCst);
                        app.notice = Some("cancelling...".into());
                        // Ctrl-C stops what was asked for, not just its
                        // first line; the dropped lines are in the history
                        // (Up recalls them, here and in the next session).
                        queued.clear();
                    }
                }
                Action::Complete => match &session {
                    Some(s) => {
                        let candidates = commands::complete(s, &app.input);
                        match candidates.len() {
                            0 => app.notice = Some("no completions".into()),
                            1 => {
                                let mut c = candidates[0].clone();
                                if !c.ends_with('/') {
                                    c.push(' ');
                                }
                                app.replace_input(c);
                                app.notice = None;
                            }
                            _ => {
                                let prefix = common_prefix(&candidates);
                                if prefix.chars().count() > app.input.chars().count() {
                                    app.replace_input(prefix);
                                }
                                let shown: Vec<String> = candidates
                                    .iter()
                                    .map(|c| c.rsplit(' ').next().unwrap_or(c).to_string())
                                    .take(12)
                                    .collect();
                                app.notice = Some(shown.join("  "));
                            }
                        }
                    }
                    None => app.notice = Some("busy: Ctrl-C cancels the running job".into()),
                },
                Action::Execute(line) => {
                    append_history(&history, &line);
                    match session.take() {
                        Some(s) => job = Some(start_job(s, line, &mut app, &mut previewed)),
                        None => {
                            queued.push_back(line);
                            app.notice = Some(queued_notice(queued.len()));
                        }
                    }
                }
            },
            Event::Resize(_, _) => terminal.autoresize()?,
            _ => {}
        }
    }
}
