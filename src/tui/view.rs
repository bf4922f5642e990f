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

/// Cells one picture takes at zoom 1: 16 columns by 8 rows (a 64x64 image at
/// the usual 1:2 cell shape). `:zoom N` multiplies both.
pub const PICTURE_COLS: u16 = 16;
pub const PICTURE_ROWS: u16 = 8;
/// Rows under a picture for its id and label at most (wrapped: a full
/// random seed is 20 characters); one where it fits.
const LABEL_ROWS: u16 = 2;

/// (columns, rows) of one picture at `zoom`.
pub fn picture_cells(zoom: u16) -> (u16, u16) {
    let z = zoom.max(1);
    (PICTURE_COLS * z, PICTURE_ROWS * z)
}

/// Terminal images by picture id, made once when a picture arrives, at the
/// size of `zoom`.
#[derive(Default)]
pub struct Images {
    pub by_id: HashMap<String, Protocol>,
    pub zoom: u16,
}

/// A piece of the transcript with a known height.
enum Block<'a> {
    /// One row of text (long lines are wrapped into several).
    Text(Line<'a>),
    /// A row of pictures, (id, label) each, and the rows their labels take.
    Pictures(Vec<(&'a str, &'a str)>, u16),
}

impl Block<'_> {
    fn height(&self, zoom: u16) -> u16 {
        match self {
            Block::Text(_) => 1,
            Block::Pictures(_, label_rows) => picture_cells(zoom).1 + label_rows,
        }
    }
}

/// Cuts a line into rows of at most `width` columns, keeping each span's
/// style (characters, not words: a path or a seed is never split oddly
/// elsewhere, and nothing is lost at the right edge).
fn wrap(line: Line<'_>, width: u16) -> Vec<Line<'static>> {
    let width = width.max(1) as usize;
    let mut rows: Vec<Line<'static>> = vec![Line::default()];
    let mut used = 0usize;
    for span in line.spans {
        let mut piece = String::new();
        for c in span.content.chars() {
            let mut buf = [0u8; 4];
            let w = Span::raw(&*c.encode_utf8(&mut buf)).width();
            if used + w > width && used > 0 {
                if !piece.is_empty() {
                    let row = rows.last_mut().expect("a row");
                    row.spans
                        .push(Span::styled(std::mem::take(&mut piece), span.style));
                }
                rows.push(Line::default());
                used = 0;
            }
            piece.push(c);
            used += w;
        }
        if !piece.is_empty() {
            rows.last_mut()
                .expect("a row")
                .spans
                .push(Span::styled(piece, span.style));
        }
    }
    rows
}

fn text_blocks<'a>(line: Line<'_>, width: u16) -> impl Iterator<Item = Block<'a>> {
    wrap(line, width).into_iter().map(Block::Text)
}

fn entry_blocks(entry: &Entry, width: u16, zoom: u16) -> Vec<Block<'_>> {
    let mut blocks: Vec<Block> = text_blocks(
        Line::from(vec![
            Span::styled("› ", Style::default().fg(Color::Cyan)),
            Span::styled(
                entry.input.as_str(),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::styled(
                format!("  {:.0} ms", entry.elapsed_ms),
                Style::default().fg(Color::DarkGray),
            ),
        ]),
        width,
    )
    .collect();
    match &entry.body {
        Body::Pictures(pictures) => {
            let cols = picture_cells(zoom).0;
            let per_row = ((width + 1) / (cols + 1)).max(1) as usize;
            for row in pictures.chunks(per_row) {
                let label_rows = row
                    .iter()
                    .map(|p| {
                        gantry::sheet::wrap(&format!("{} {}", p.id, p.label), cols as usize).len()
                            as u16
                    })
                    .max()
                    .unwrap_or(1)
                    .clamp(1, LABEL_ROWS);
                blocks.push(Block::Pictures(
                    row.iter()
                        .map(|p| (p.id.as_str(), p.label.as_str()))
                        .collect(),
                    label_rows,
                ));
            }
        }
        Body::Text(text) => {
            for line in text.lines() {
                blocks.extend(text_blocks(Line::from(line.to_string()), width));
            }
        }
        Body::Error(message) => {
            for line in message.lines() {
                blocks.extend(text_blocks(
                    Line::styled(format!("error: {line}"), Style::default().fg(Color::Red)),
                    width,
                ));
            }
        }
    }
    for w in &entry.warnings {
        blocks.extend(text_blocks(
            Line::styled(format!("warning: {w}"), Style::default().fg(Color::Yellow)),
            width,
        ));
    }
    blocks.push(Block::Text(Line::from("")));
    blocks
}

/// Draws a row of pictures with their labels under them in `area`; where
/// `area` is shorter than a picture and its labels, the picture's top is cut.
fn draw_pictures(frame: &mut Frame, area: Rect, row: &[(&str, &str)], images: &Images, zoom: u16) {
    let (cols, full_rows) = picture_cells(zoom);
    let label_rows = row
        .iter()
        .map(|(id, label)| {
            gantry::sheet::wrap(&format!("{id} {label}"), cols as usize).len() as u16
        })
        .max()
        .unwrap_or(1)
        .clamp(1, LABEL_ROWS);
    let rows = full_rows.min(area.height.saturating_sub(label_rows));
    let top = area.y + area.height.saturating_sub(rows + label_rows);
    for (k, (id, label)) in row.iter().enumerate() {
        let x = area.x + k as u16 * (cols + 1);
        if x + cols > area.x + area.width {
            break;
        }
        let picture = Rect::new(x, top, cols, rows);
        match images.by_id.get(*id) {
            Some(protocol) => frame.render_widget(ratatui_image::Image::new(protocol), picture),
            None => frame.render_widget(
                Paragraph::new("(kept on disk: :save it)")
                    .wrap(ratatui::widgets::Wrap { trim: true }),
                picture,
            ),
        }
        let caption = format!("{id} {label}");
        for (r, line) in gantry::sheet::wrap(&caption, cols as usize)
            .into_iter()
            .take(LABEL_ROWS as usize)
            .enumerate()
        {
            frame.render_widget(
                // The terminal's own foreground: readable on dark and light themes.
                Paragraph::new(Line::raw(line)),
                Rect::new(x, top + rows + r as u16, cols, 1),
            );
        }
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
    let zoom = app.status.zoom.max(1);
    for entry in &app.transcript {
        blocks.extend(entry_blocks(entry, area.width, zoom));
    }
    // Skip `scroll` lines from the bottom, then fill upwards.
    let mut skip = app.scroll;
    let mut bottom = area.y + area.height;
    for block in blocks.iter().rev() {
        let h = block.height(zoom);
        if skip >= h {
            skip -= h;
            continue;
        }
        skip = 0;
        if bottom < area.y + h {
            // The top block, cut by the edge of the screen: a row of pictures
            // shows its labels and what fits of the pictures.
            if let Block::Pictures(row, label_rows) = block {
                let room = bottom - area.y;
                if room > *label_rows {
                    let rect = Rect::new(area.x, area.y, area.width, room);
                    draw_pictures(frame, rect, row, images, zoom);
                }
            }
            break;
        }
        let rect = Rect::new(area.x, bottom - h, area.width, h);
        match block {
            Block::Text(line) => frame.render_widget(Paragraph::new(line.clone()), rect),
            Block::Pictures(row, _) => draw_pictures(frame, rect, row, images, zoom),
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
    let (picture_cols, picture_rows) = picture_cells(app.status.zoom);
    let preview_rows = if app.preview.is_some() {
        picture_rows
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
                Rect::new(preview.x, preview.y, picture_cols, picture_rows),
            );
        }
        let label = Rect::new(
            preview.x + picture_cols + 1,
            preview.y,
            preview.width.saturating_sub(picture_cols + 1),
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
    // A line longer than the screen scrolls sideways to keep the cursor in
    // view (an ellipsis marks text cut off on the left).
    let prompt_width = prompt.chars().count();
    let room = (input.width as usize)
        .saturating_sub(prompt_width + 1)
        .max(1);
    let at = cursor.saturating_sub(prompt_width);
    let skip = (at + 1).saturating_sub(room);
    let shown: String = if skip > 0 {
        std::iter::once('…')
            .chain(text.chars().skip(skip + 1).take(room - 1))
            .collect()
    } else {
        text.chars().take(room).collect()
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(prompt, Style::default().fg(Color::Cyan)),
            Span::raw(shown),
        ])),
        input,
    );
    let x = (input.x as usize + prompt_width + at - skip)
        .min((input.x + input.width).saturating_sub(1) as usize) as u16;
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
                zoom: 1,
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
                            {
                                let (c, r) = picture_cells(app.status.zoom);
                                ratatui::layout::Size::new(c, r)
                            },
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
    fn picture_labels_use_the_terminals_own_colour() {
        // A fixed light grey was hard to read on a light terminal theme.
        let mut terminal = Terminal::new(TestBackend::new(60, 16)).unwrap();
        let app = app();
        let images = images(&app);
        terminal.draw(|f| draw(f, &app, &images)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let label = (0..16)
            .find_map(|y| {
                let row: String = (0..60).map(|x| buffer[(x, y)].symbol()).collect();
                row.find("#1.1 seed 0").map(|x| (x as u16, y))
            })
            .expect("the label is drawn");
        assert_eq!(buffer[label].fg, Color::Reset);
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

    #[test]
    fn long_errors_wrap_and_full_seeds_stay_readable() {
        let mut a = app();
        let long = "no model 'nope' (looked in weights/, /very/long/path/to/the/user/data/dir/models/ and the shipped weights folder); known models: procedural-flowers, oxford102, a-model-with-a-long-name";
        a.transcript.push(Entry {
            number: 0,
            input: ":model nope".into(),
            body: Body::Error(long.into()),
            warnings: vec![],
            elapsed_ms: 0.0,
        });
        let mut p = picture("#3.1", 120);
        p.label = "seed 281474976710655".into();
        a.transcript.insert(
            0,
            Entry {
                number: 3,
                input: ":seed random".into(),
                body: Body::Pictures(vec![p]),
                warnings: vec![],
                elapsed_ms: 9.0,
            },
        );
        let text = render(&a, 60, 40);
        // Nothing is cut at the right edge: the whole message is there.
        let joined: String = text.lines().map(str::trim_end).collect();
        assert!(joined.contains("a-model-with-a-long-name"), "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= 60));
        // The full seed, on its own row under the picture.
        assert!(
            text.lines().any(|l| l.contains("281474976710655")),
            "{text}"
        );
        snapshot("wrapped", &text);
    }

    #[test]
    fn zoom_draws_larger_pictures_and_long_input_scrolls() {
        let mut a = app();
        a.status.zoom = 2;
        let text = render(&a, 80, 40);
        // Two pictures of 32 columns side by side: the second starts at 33.
        let labels = text
            .lines()
            .find(|l| l.contains("#1.1") && l.contains("#1.2"))
            .unwrap_or_else(|| panic!("{text}"));
        assert_eq!(labels.find("#1.2"), Some(33), "{text}");
        snapshot("zoomed", &text);

        // A 500-character caption: its end and the cursor stay in view.
        a.input = (0..100).map(|k| format!("w{k:03} ")).collect::<String>() + "END";
        a.cursor = a.input.chars().count();
        let text = render(&a, 80, 40);
        let input = text.lines().last().unwrap();
        assert!(input.ends_with("END"), "{input}");
        assert!(input.starts_with("› …"), "{input}");
        assert!(input.chars().count() <= 80);
    }
}
