//! `gantry interp`, `gantry interp-z` and `gantry style`: the paper's
//! interpolations and style transfer from the command line, each writing its
//! row of PNGs and, with --sheet, one contact sheet.

use crate::{open_runtime, slug, write_image, Context_};
use anyhow::{Context, Result};
use clap::Args;
use gantry::imageio::{load_photo, Image};
use gantry::provenance::{Batch, Provenance};
use gantry::runtime::{Generated, Runtime};
use std::path::{Path, PathBuf};

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

fn meta(runtime: &Runtime, caption: &str, command: &str, seed: Option<u64>) -> Provenance {
    Provenance {
        seed,
        ..runtime.provenance(caption, command, "learned")
    }
}

/// What a row is called and how it was made.
struct Row {
    stem: String,
    labels: Vec<String>,
    command: String,
    seed: Option<u64>,
}

/// Writes each image (with its label) and the optional sheet; prints paths.
fn write_row(
    runtime: &Runtime,
    generated: &Generated,
    row: &Row,
    out: &Path,
    sheet: Option<&Path>,
) -> Result<()> {
    let Row {
        stem,
        labels,
        command,
        seed,
    } = row;
    let (command, seed) = (command.as_str(), *seed);
    for w in &generated.warnings {
        eprintln!("warning: {w}");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (k, image) in generated.images.iter().enumerate() {
        let path = out.join(format!("{stem}-{k:02}.png"));
        // Which picture of the row it is, so that :replay remakes this one.
        let m = Provenance {
            batch: Some(Batch {
                index: k as u64,
                ..Default::default()
            }),
            ..meta(runtime, &labels[k], command, seed)
        };
        write_image(&path, image, &m.to_pairs())?;
        println!("{}", path.display());
    }
    if let Some(sheet) = sheet {
        let cells: Vec<(Image, String)> = generated
            .images
            .iter()
            .cloned()
            .zip(labels.iter().cloned())
            .collect();
        let grid = gantry::grid::contact_sheet(&cells, cells.len(), 2, 3);
        // A sheet is many pictures: :replay says so instead of remaking one.
        let m = Provenance {
            sheet: Some(cells.len() as u64),
            ..meta(runtime, &labels.join(" | "), command, seed)
        };
        gantry::imageio::write_png(sheet, &grid, &m.to_pairs())?;
        println!("{}", sheet.display());
    }
    Ok(())
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn interp(ctx: &Context_, args: InterpArgs) -> Result<()> {
    let runtime = open_runtime(ctx)?;
    let seed = args.output.seed.unwrap_or(ctx.config.config.seed);
    let out = args
        .output
        .out
        .clone()
        .unwrap_or_else(|| ctx.config.config.output_dir.clone());
    let row = runtime.interpolate_text(&args.from, &args.to, args.steps, seed)?;
    let labels: Vec<String> = (0..args.steps)
        .map(|k| match k {
            0 => args.from.clone(),
            k if k + 1 == args.steps => args.to.clone(),
            k => format!(
                "{:.0}% of the way",
                100.0 * k as f64 / (args.steps - 1) as f64
            ),
        })
        .collect();
    let command = format!(
        ":interp {} {} {}",
        quote(&args.from),
        quote(&args.to),
        args.steps
    );
    let stem = format!("interp-{}-to-{}-s{seed}", slug(&args.from), slug(&args.to));
    write_row(
        &runtime,
        &row,
        &Row {
            stem,
            labels,
            command,
            seed: Some(seed),
        },
        &out,
        args.output.sheet.as_deref(),
    )
}

pub fn interp_z(ctx: &Context_, args: InterpZArgs) -> Result<()> {
    let runtime = open_runtime(ctx)?;
    let seed = args.output.seed.unwrap_or(ctx.config.config.seed);
    let out = args
        .output
        .out
        .clone()
        .unwrap_or_else(|| ctx.config.config.output_dir.clone());
    let row = runtime.interpolate_noise(&args.caption, args.steps, seed)?;
    let labels: Vec<String> = (0..args.steps)
        .map(|k| match k {
            0 => format!("seed {seed}"),
            k if k + 1 == args.steps => format!("seed {}", seed + 1),
            _ => String::new(),
        })
        .collect();
    let command = format!(":interp-z {} {}", quote(&args.caption), args.steps);
    let stem = format!("interp-z-{}-s{seed}", slug(&args.caption));
    write_row(
        &runtime,
        &row,
        &Row {
            stem,
            labels,
            command,
            seed: Some(seed),
        },
        &out,
        args.output.sheet.as_deref(),
    )
}

pub fn style(ctx: &Context_, args: StyleArgs) -> Result<()> {
    let runtime = open_runtime(ctx)?;
    let out = args
        .output
        .out
        .clone()
        .unwrap_or_else(|| ctx.config.config.output_dir.clone());
    let photo = load_photo(&args.image)?;
    let mut images = vec![photo.clone()];
    let mut labels = vec![format!(
        "style: {}",
        args.image
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned())
    )];
    let mut warnings = Vec::new();
    for caption in &args.captions {
        let g = runtime.style_transfer(&photo, caption)?;
        images.extend(g.images);
        warnings.extend(g.warnings);
        labels.push(caption.clone());
    }
    let row = Generated {
        images,
        seeds: vec![],
        warnings,
    };
    let command = format!(
        ":style {} {}",
        quote(&args.image.display().to_string()),
        args.captions
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let stem = format!(
        "style-{}",
        slug(
            &args
                .image
                .file_stem()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned())
        )
    );
    write_row(
        &runtime,
        &row,
        &Row {
            stem,
            labels,
            command,
            seed: None,
        },
        &out,
        args.output.sheet.as_deref(),
    )
}
