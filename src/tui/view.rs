//! Drawing the REPL: a pure function of the state (and the cache of image
//! protocols), which is what makes the snapshot tests possible.
//!
//! Layout, top to bottom: the transcript (newest at the bottom), a notice
//! line, the status line, the input line.

use super::app::App;
use gantry::session::{Body, Entry};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use ratatui_image::protocol::Protocol;
use std::collections::HashMap;

/// Cells one picture takes: 16 columns by 8 rows (a 64x64 image at the
/// usual 1:2 cell shape).
pub const PICTURE_COLS: u16 = 16;
pub const PICTURE_ROWS: u16 = 8;

/// Terminal images by picture id, made once when a picture arrives.
#[derive(Default)]
pub struct Images {
    pub by_id: HashMap<String, Protocol>,
}

/// A piece of the transcript with a known height.
enum Block<'a> {
    Text(Line<'a>),
    /// A row of pictures: (id, label) and their protocols by id.
    Pictures(Vec<(&'a str, &'a str)>),
}

impl Block<'_> {
    fn height(&self) -> u16 {
        match self {
            Block::Text(_) => 1,
            Block::Pictures(_) => PICTURE_ROWS + 1,
        }
    }
}

fn entry_blocks(entry: &Entry, width: u16) -> Vec<Block<'_>> {
    let mut blocks = vec![Block::Text(Line::from(vec![
        Span::styled("› ", Style::default().fg(Color::Cyan)),
        Span::styled(
            entry.input.as_str(),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!("  {:.0} ms", entry.elapsed_ms),
            Style::default().fg(Color::DarkGray),
        ),
    ]))];
    match &entry.body {
        Body::Pictures(pictures) => {
            let per_row = ((width + 1) / (PICTURE_COLS + 1)).max(1) as usize;
            for row in pictures.chunks(per_row) {
                blocks.push(Block::Pictures(
                    row.iter()
                        .map(|p| (p.id.as_str(), p.label.as_str()))
                        .collect(),
                ));
            }
        }
        Body::Text(text) => {
            for line in text.lines() {
                blocks.push(Block::Text(Line::from(line.to_string())));
            }
        }
        Body::Error(message) => {
            blocks.push(Block::Text(Line::styled(
                format!("error: {message}"),
                Style::default().fg(Color::Red),
            )));
        }
    }
    for w in &entry.warnings {
        blocks.push(Block::Text(Line::styled(
            format!("warning: {w}"),
            Style::default().fg(Color::Yellow),
        )));
    }
    blocks.push(Block::Text(Line::from("")));
    blocks
}

fn draw_pictures(frame: &mut Frame, area: Rect, row: &[(&str, &str)], images: &Images) {
    for (k, (id, label)) in row.iter().enumerate() {
        let x = area.x + k as u16 * (PICTURE_COLS + 1);
        if x + PICTURE_COLS > area.x + area.width {
            break;
        }
        let picture = Rect::new(x, area.y, PICTURE_COLS, PICTURE_ROWS);
        match images.by_id.get(*id) {
            Some(protocol) => frame.render_widget(ratatui_image::Image::new(protocol), picture),
            None => frame.render_widget(
                Paragraph::new("(kept on disk: :save it)")
                    .wrap(ratatui::widgets::Wrap { trim: true }),
                picture,
            ),
        }
        let caption = format!("{id} {label}");
        let caption: String = caption.chars().take(PICTURE_COLS as usize).collect();
        frame.render_widget(
            Paragraph::new(Line::styled(caption, Style::default().fg(Color::Gray))),
            Rect::new(x, area.y + PICTURE_ROWS, PICTURE_COLS, 1),
        );
    }
}

/// Lays the transcript out from the bottom up, `scroll` lines above the end.
fn draw_transcript(frame: &mut Frame, area: Rect, app: &App, images: &Images) {
    let mut blocks: Vec<Block> = Vec::new();
    if app.transcript.is_empty() {
        for line in [
            "gantry: type a caption and press Enter to draw it.",
            ":help lists the commands; Tab completes; Up/Down and Ctrl-R search the history.",
        ] {
            blocks.push(Block::Text(Line::styled(
                line,
                Style::default().fg(Color::DarkGray),
            )));
        }
    }
    for entry in &app.transcript {
        blocks.extend(entry_blocks(entry, area.width));
    }
    // Skip `scroll` lines from the bottom, then fill upwards.
    let mut skip = app.scroll;
    let mut bottom = area.y + area.height;
    for block in blocks.iter().rev() {
        let h = block.height();
        if skip >= h {
            skip -= h;
            continue;
        }
        skip = 0;
        if bottom < area.y + h {
            break;
        }
        let rect = Rect::new(area.x, bottom - h, area.width, h);
        match block {
            Block::Text(line) => frame.render_widget(Paragraph::new(line.clone()), rect),
            Block::Pictures(row) => draw_pictures(frame, rect, row, images),
        }
        bottom -= h;
    }
}

fn status_line(app: &App) -> Line<'static> {
    let s = &app.status;
    let mut parts = vec![
        format!("model {}", s.model),
        s.device.clone(),
        format!("seed {}", s.seed),
        format!("n {}", s.n),
        format!("sampler {}", s.sampler),
        format!("encoder {}", s.encoder),
    ];
    if let Some(ms) = s.last_latency_ms {
        parts.push(format!("last {ms:.0} ms"));
    }
    if s.live {
        parts.push("live".into());
    }
    // A running job shows first, so narrow terminals still see it.
    let mut spans = Vec::new();
    if let Some(busy) = &app.busy {
        let progress = if busy.total > 0 {
            format!(" {}/{}", busy.done, busy.total)
        } else {
            String::new()
        };
        spans.push(Span::styled(
            format!(
                " {}{progress} ({:.1} s) Ctrl-C cancels ",
                busy.line.chars().take(24).collect::<String>(),
                busy.started.elapsed().as_secs_f64()
            ),
            Style::default().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    spans.push(Span::styled(
        format!(" {} ", parts.join(" · ")),
        Style::default().fg(Color::Black).bg(Color::Gray),
    ));
    Line::from(spans)
}

/// Draws the whole screen. Returns where the cursor goes.
pub fn draw(frame: &mut Frame, app: &App, images: &Images) {
    let preview_rows = if app.preview.is_some() {
        PICTURE_ROWS
    } else {
        0
    };
    let [transcript, preview, notice, status, input] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(preview_rows),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_transcript(frame, transcript, app, images);
    if let Some(text) = &app.preview {
        if let Some(protocol) = images.by_id.get("preview") {
            frame.render_widget(
                ratatui_image::Image::new(protocol),
                Rect::new(preview.x, preview.y, PICTURE_COLS, PICTURE_ROWS),
            );
        }
        let label = Rect::new(
            preview.x + PICTURE_COLS + 1,
            preview.y,
            preview.width.saturating_sub(PICTURE_COLS + 1),
            1,
        );
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!("live: {text}"),
                Style::default().fg(Color::DarkGray),
            )),
            label,
        );
    }
    if let Some(text) = &app.notice {
        frame.render_widget(
            Paragraph::new(Line::styled(
                text.clone(),
                Style::default().fg(Color::Yellow),
            )),
            notice,
        );
    }
    frame.render_widget(Paragraph::new(status_line(app)), status);
    let (prompt, text, cursor) = match &app.search {
        Some(search) => {
            let found = search
                .found
                .map(|i| app.history[i].clone())
                .unwrap_or_default();
            let prompt = format!("(search)`{}': ", search.query);
            let cursor = prompt.chars().count();
            (prompt, found, cursor)
        }
        None => ("› ".to_string(), app.input.clone(), 2 + app.cursor),
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(prompt, Style::default().fg(Color::Cyan)),
            Span::raw(text),
        ])),
        input,
    );
    let x =
        (input.x as usize + cursor).min((input.x + input.width).saturating_sub(1) as usize) as u16;
    frame.set_cursor_position((x, input.y));
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry::imageio::Image;
    use gantry::session::{Picture, Status};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn picture(id: &str, shade: u8) -> Picture {
        Picture {
            id: id.to_string(),
            image: Image {
                width: 64,
                height: 64,
                rgb: vec![shade; 64 * 64 * 3],
            },
            label: "seed 0".to_string(),
            metadata: Vec::new(),
            spilled: None,
        }
    }

    fn app() -> App {
        App {
            transcript: vec![
                Entry {
                    number: 1,
                    input: "a red flower".into(),
                    body: Body::Pictures(vec![picture("#1.1", 200), picture("#1.2", 60)]),
                    warnings: vec![],
                    elapsed_ms: 42.0,
                },
                Entry {
                    number: 2,
                    input: ":intrep".into(),
                    body: Body::Error(
                        "unknown command :intrep; did you mean :interp? (:help lists them all)"
                            .into(),
                    ),
                    warnings: vec![],
                    elapsed_ms: 0.0,
                },
            ],
            input: ":sty".into(),
            cursor: 4,
            status: Status {
                model: "procedural-flowers".into(),
                device: "cpu".into(),
                seed: "0".into(),
                n: 2,
                sampler: "gaussian".into(),
                encoder: "learned".into(),
                last_latency_ms: Some(42.0),
                live: false,
            },
            ..Default::default()
        }
    }

    fn images(app: &App) -> Images {
        let picker = ratatui_image::picker::Picker::halfblocks();
        let mut images = Images::default();
        for entry in &app.transcript {
            if let Body::Pictures(pictures) = &entry.body {
                for p in pictures {
                    let rgb = image::RgbImage::from_raw(64, 64, p.image.rgb.clone()).unwrap();
                    let protocol = picker
                        .new_protocol(
                            image::DynamicImage::ImageRgb8(rgb),
                            ratatui::layout::Size::new(PICTURE_COLS, PICTURE_ROWS),
                            ratatui_image::Resize::Scale(None),
                        )
                        .unwrap();
                    images.by_id.insert(p.id.clone(), protocol);
                }
            }
        }
        images
    }

    fn render(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        let images = images(app);
        terminal.draw(|f| draw(f, app, &images)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Compares with `src/tui/snapshots/NAME.txt`; UPDATE_SNAPSHOTS=1 rewrites it.
    fn snapshot(name: &str, text: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/tui/snapshots")
            .join(format!("{name}.txt"));
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() || !path.exists() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text, expected,
            "snapshot {name} changed (UPDATE_SNAPSHOTS=1 to accept)"
        );
    }

    #[test]
    fn layout_snapshot() {
        let text = render(&app(), 60, 16);
        // The parts a user relies on, whatever the snapshot says.
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[15].starts_with("› :sty"), "{text}");
        assert!(
            lines[14].contains("model procedural-flowers") && lines[14].contains("seed 0"),
            "{text}"
        );
        assert!(
            text.contains("#1.1 seed 0") && text.contains("#1.2 seed 0"),
            "{text}"
        );
        assert!(text.contains("did you mean :interp?"), "{text}");
        snapshot("layout", &text);
    }

    #[test]
    fn narrow_terminals_wrap_picture_rows_and_resize_redraws() {
        let wide = render(&app(), 60, 24);
        let narrow = render(&app(), 20, 24);
        assert!(wide
            .lines()
            .any(|l| l.contains("#1.1") && l.contains("#1.2")));
        assert!(!narrow
            .lines()
            .any(|l| l.contains("#1.1") && l.contains("#1.2")));
        assert!(narrow.contains("#1.2"), "{narrow}");
        snapshot("narrow", &narrow);
    }

    #[test]
    fn busy_and_search_states_show() {
        let mut a = app();
        a.busy = Some(super::super::app::Busy {
            line: "x".into(),
            started: std::time::Instant::now(),
            done: 3,
            total: 8,
        });
        a.search = Some(super::super::app::Search {
            query: "red".into(),
            found: None,
        });
        let text = render(&a, 80, 12);
        assert!(text.contains("x 3/8"), "{text}");
        assert!(
            text.lines().last().unwrap().starts_with("(search)`red':"),
            "{text}"
        );
    }
}
