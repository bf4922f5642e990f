//! `gantry dataset info|export|preview|...`.

use super::open_dataset;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use gantry::env::Env;
use gantry::imageio::write_png;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum DatasetCommand {
    /// Count images, captions and classes, and list problems in the data
    Info {
        /// KIND or KIND:PATH
        spec: String,
        /// Loader option KEY=VALUE (repeatable), e.g. size=144, on_error=stop, count=5000
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Print every problem, not just the first ten
        #[arg(long)]
        all_problems: bool,
    },
    /// Write samples as PNG files (with their captions in the PNG's text chunks)
    Export {
        /// KIND or KIND:PATH
        spec: String,
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Output folder
        #[arg(long, short = 'o')]
        out: PathBuf,
        /// Samples to write
        #[arg(long, default_value_t = 8)]
        count: usize,
        /// Index of the first sample
        #[arg(long, default_value_t = 0)]
        start: usize,
    },
    /// Write a grid of images with their captions as a PNG
    Preview {
        /// KIND or KIND:PATH
        spec: String,
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Output PNG
        #[arg(long, short = 'o', default_value = "preview.png")]
        out: PathBuf,
        /// Samples to show
        #[arg(long, default_value_t = 16)]
        count: usize,
        /// Columns of the grid
        #[arg(long, default_value_t = 4)]
        columns: usize,
        /// Pick samples at random with this seed (default: the first ones)
        #[arg(long)]
        seed: Option<u64>,
    },
}

pub fn command(env: &Env, command: DatasetCommand) -> Result<()> {
    match command {
        DatasetCommand::Info {
            spec,
            options,
            all_problems,
        } => {
            let dataset = open_dataset(env, &spec, &options)?;
            let held_classes = dataset.classes.iter().filter(|c| c.held_out).count();
            println!("dataset   {} ({})", dataset.spec, dataset.origin);
            println!(
                "images    {}{}",
                dataset.len,
                if dataset.has_images {
                    ""
                } else {
                    " caption files (no images: captions only)"
                }
            );
            println!("captions  {}", dataset.captions);
            println!(
                "classes   {} ({} train / {} test)",
                dataset.classes.len(),
                dataset.classes.len() - held_classes,
                held_classes
            );
            println!(
                "split     {} train images / {} test images",
                dataset.len - dataset.held_out_samples,
                dataset.held_out_samples
            );
            println!("problems  {}", dataset.problems.len());
            let shown = if all_problems {
                dataset.problems.len()
            } else {
                10
            };
            for p in dataset.problems.iter().take(shown) {
                println!("  {p}");
            }
            if dataset.problems.len() > shown {
                println!(
                    "  ... {} more (--all-problems lists them)",
                    dataset.problems.len() - shown
                );
            }
            Ok(())
        }
        DatasetCommand::Export {
            spec,
            options,
            out,
            count,
            start,
        } => {
            let mut dataset = open_dataset(env, &spec, &options)?;
            if start >= dataset.len {
                bail!(
                    "--start {start} is past the end: {} has {} samples (0 to {})",
                    dataset.spec,
                    dataset.len,
                    dataset.len.saturating_sub(1)
                );
            }
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            for i in start..start.saturating_add(count).min(dataset.len) {
                let sample = dataset.get(i)?;
                let Some(image) = sample.image else {
                    bail!("{}: captions only, no images to export", dataset.spec);
                };
                let path = out.join(format!("{}.png", sample.name));
                let mut meta = vec![("captions".to_string(), sample.captions.join("\n"))];
                meta.extend(
                    sample
                        .attributes
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
                write_png(&path, &image, &meta)?;
                println!("{}", path.display());
            }
            Ok(())
        }
        DatasetCommand::Preview {
            spec,
            options,
            out,
            count,
            columns,
            seed,
        } => {
            let mut dataset = open_dataset(env, &spec, &options)?;
            if !dataset.has_images {
                bail!("{}: captions only, nothing to preview", dataset.spec);
            }
            let mut indices: Vec<usize> = (0..dataset.len).collect();
            if let Some(seed) = seed {
                gantry::training_set::Rng(seed).shuffle(&mut indices);
            }
            let mut cells = Vec::new();
            for &i in indices.iter().take(count.max(1)) {
                let sample = dataset.get(i)?;
                if let Some(image) = sample.image {
                    let caption = sample.captions.first().cloned().unwrap_or_default();
                    let image = gantry::training_set::square(&image, 64)?;
                    cells.push((image, caption));
                }
            }
            let sheet = gantry::sheet::contact_sheet(&cells, columns, 3, 3);
            write_png(
                &out,
                &sheet,
                &[(
                    "Software".into(),
                    format!("gantry {}", env!("CARGO_PKG_VERSION")),
                )],
            )?;
            println!("{}", out.display());
            Ok(())
        }
    }
}
