//! `gantry generate`, `gantry interp`, `gantry interp-z` and `gantry style`:
//! the REPL's drawing commands from the command line. Each runs its line of
//! the REPL's language in a session (the same command table, rows and
//! provenance as typing it), writes the row as PNGs and, with --sheet, one
//! contact sheet.

use super::open_session;
use super::output::slug;
use anyhow::{bail, Context, Result};
use clap::Args;
use gantry::env::Env;
use gantry::imageio::{write_png, Image};
use gantry::provenance::Provenance;
use gantry::session::words::quote;
use gantry::session::{Body, Outcome, Picture, Session};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct GenerateArgs {
    /// What the image should show
    pub caption: String,
    /// Number of images [config: n]
    #[arg(long, short = 'n')]
    pub n: Option<u32>,
    /// Seed of the first image; image i uses seed + i [config: seed]
    #[arg(long, short = 's')]
    pub seed: Option<u64>,
    /// Output folder [config: output_dir]
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Also write the images as one contact sheet PNG
    #[arg(long)]
    pub sheet: Option<PathBuf>,
}

#[derive(Args)]
pub struct Output {
    /// Output folder [config: output_dir]
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Also write the row as one contact sheet PNG with captions
    #[arg(long)]
    pub sheet: Option<PathBuf>,
    /// Seed of z [config: seed]
    #[arg(long, short = 's')]
    pub seed: Option<u64>,
}

#[derive(Args)]
pub struct InterpArgs {
    pub from: String,
    pub to: String,
    /// Images in the row, both ends included
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Args)]
pub struct InterpZArgs {
    pub caption: String,
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Args)]
pub struct StyleArgs {
    /// The photo whose pose and background to keep (any size; centre-cropped)
    pub image: PathBuf,
    /// Captions to draw in that style
    #[arg(required = true)]
    pub captions: Vec<String>,
    #[command(flatten)]
    pub output: Output,
}

/// A session on the configured model, with the seed of the command line
/// (set as `:seed` sets it).
fn session_for(env: &Env, seed: Option<u64>) -> Result<Session> {
    let mut session = open_session(env)?;
    if let Some(seed) = seed {
        row(&mut session, &format!(":seed {seed}"))?;
    }
    Ok(session)
}

/// Runs one line of the REPL's language: the pictures it drew (none for a
/// setting) and its warnings, or its error.
fn row(session: &mut Session, line: &str) -> Result<(Vec<Picture>, Vec<String>)> {
    let Outcome::Entry(index) = session.execute(line)? else {
        return Ok(Default::default());
    };
    let entry = &session.entries[index];
    match &entry.body {
        Body::Pictures(pictures) => Ok((pictures.clone(), entry.warnings.clone())),
        Body::Text(_) => Ok((Vec::new(), entry.warnings.clone())),
        Body::Error(e) => bail!("{e}"),
    }
}

/// Where a row goes: the folder, the stem of the style source's file
/// (`{stem}-source.png`, when there is a `lead`), and the optional contact
/// sheet, which starts with `lead` (the style source).
struct Row<'a> {
    out: PathBuf,
    stem: String,
    sheet: Option<&'a Path>,
    lead: Option<(Image, String)>,
}

/// Writes the pictures of a row with the provenance the session gave them,
/// and the sheet; prints each path.
fn write_row(
    session: &Session,
    (pictures, warnings): (Vec<Picture>, Vec<String>),
    row: Row,
    name: impl Fn(usize) -> String,
) -> Result<()> {
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let out = &row.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    if let Some((image, _)) = &row.lead {
        let path = out.join(format!("{}-source.png", row.stem));
        write_png(&path, image, &[])?;
        println!("{}", path.display());
    }
    let mut cells: Vec<(Image, String)> = row.lead.into_iter().collect();
    for (k, picture) in pictures.iter().enumerate() {
        let path = out.join(name(k));
        let image = session.image(picture)?;
        write_png(&path, &image, &picture.metadata)?;
        println!("{}", path.display());
        cells.push((image, picture.label.clone()));
    }
    if let (Some(sheet), Some(first)) = (row.sheet, pictures.first()) {
        let grid = gantry::sheet::contact_sheet(&cells, cells.len(), 2, 3);
        // A sheet is many pictures: :replay says so instead of remaking one.
        let provenance = Provenance {
            sheet: Some(cells.len() as u64),
            batch: None,
            ..Provenance::from_pairs(&first.metadata)?
        };
        write_png(sheet, &grid, &provenance.to_pairs())?;
        println!("{}", sheet.display());
    }
    Ok(())
}

fn out_dir(env: &Env, out: &Option<PathBuf>) -> PathBuf {
    out.clone()
        .unwrap_or_else(|| env.settings().output_dir.clone())
}

/// `gantry generate`: what typing the caption does, n pictures from seed.
pub fn generate(env: &mut Env, args: GenerateArgs) -> Result<()> {
    // As configured values (not `:n`, which keeps a REPL row to 64): the
    // command line may write thousands.
    if let Some(n) = args.n {
        env.set_from_command_line("n", |c| c.n = n);
    }
    if let Some(seed) = args.seed {
        env.set_from_command_line("seed", |c| c.seed = seed);
    }
    let env = &*env;
    let mut session = open_session(env)?;
    let seed = env.settings().seed;
    // The caption as typed (a caption that starts with ':' is still one).
    let drawn = session.caption(&args.caption)?;
    let stem = slug(&args.caption);
    let row = Row {
        out: out_dir(env, &args.out),
        stem: stem.clone(),
        sheet: args.sheet.as_deref(),
        lead: None,
    };
    write_row(&session, drawn, row, |k| {
        format!("{stem}-s{}.png", seed.wrapping_add(k as u64))
    })
}

pub fn interp(env: &Env, args: InterpArgs) -> Result<()> {
    let mut session = session_for(env, args.output.seed)?;
    let seed = args.output.seed.unwrap_or(env.settings().seed);
    let line = format!(
        ":interp {} {} {}",
        quote(&args.from),
        quote(&args.to),
        args.steps
    );
    let drawn = row(&mut session, &line)?;
    let stem = format!("interp-{}-to-{}-s{seed}", slug(&args.from), slug(&args.to));
    write_numbered(&session, drawn, env, &args.output, stem, None)
}

pub fn interp_z(env: &Env, args: InterpZArgs) -> Result<()> {
    let mut session = session_for(env, args.output.seed)?;
    let seed = args.output.seed.unwrap_or(env.settings().seed);
    let line = format!(":interp-z {} {}", quote(&args.caption), args.steps);
    let drawn = row(&mut session, &line)?;
    let stem = format!("interp-z-{}-s{seed}", slug(&args.caption));
    write_numbered(&session, drawn, env, &args.output, stem, None)
}

pub fn style(env: &Env, args: StyleArgs) -> Result<()> {
    let mut session = session_for(env, args.output.seed)?;
    let source = args.image.display().to_string();
    let (photo, _) = session.image_argument(&source)?;
    let line = format!(
        ":style {} {}",
        quote(&source),
        args.captions
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let drawn = row(&mut session, &line)?;
    let name = args
        .image
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let stem = format!(
        "style-{}",
        slug(
            &args
                .image
                .file_stem()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned())
        )
    );
    let lead = Some((photo, format!("style: {name}")));
    write_numbered(&session, drawn, env, &args.output, stem, lead)
}

/// A row as `{stem}-00.png`, `{stem}-01.png`, ...
fn write_numbered(
    session: &Session,
    drawn: (Vec<Picture>, Vec<String>),
    env: &Env,
    output: &Output,
    stem: String,
    lead: Option<(Image, String)>,
) -> Result<()> {
    let row = Row {
        out: out_dir(env, &output.out),
        stem: stem.clone(),
        sheet: output.sheet.as_deref(),
        lead,
    };
    write_row(session, drawn, row, |k| format!("{stem}-{k:02}.png"))
}
