//! `gantry bench learn` (the learning-curve benchmark) and `gantry bench
//! learn-score` (the same lines for PyTorch's pictures).

use super::eval::EVAL_SEED;
use super::gan_args::{GanArgs, GanChoices};
use super::open_dataset;
use super::output::progress_bar;
use anyhow::{Context, Result};
use clap::Args;
use gantry::env::Env;
use gantry::learn::{self, ForeignPoint, Inputs, LearnConfig, TextInput};

use gantry::probe::LoadedProbe;
use gantry::runtime::describe_device;
use gantry::training_set::{OnError, TrainingSet};
use gantry::weights::Model;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct LearnArgs {
    /// What G and D read as text: raw φ(t) (the paper, and `train gan`'s
    /// default), standardised φ(t), or one-hot attributes (no text encoder;
    /// the reference)
    #[arg(long, default_value = "raw", value_parser = ["raw", "standardised", "one-hot"])]
    pub conditioning: String,
    /// G's update reuses the fakes of D's update (the default draws fresh z,
    /// as the paper's Lua code does)
    #[arg(long)]
    pub reuse_fakes: bool,
    #[command(flatten)]
    pub gan: GanArgs,
    /// Steps from scratch
    #[arg(long, default_value_t = 2000)]
    pub steps: u64,
    /// A line every this many steps
    #[arg(long, default_value_t = 200)]
    pub every: u64,
    /// The model whose text encoder gives φ(t)
    #[arg(long, default_value = "procedural-flowers")]
    pub text_encoder: String,
    /// Procedural renders to train on (seed 0, as the shipped model)
    #[arg(long, default_value_t = 12_000)]
    pub count: usize,
    /// The caption grammar of the training renders: the one the text
    /// encoder learned (classic for the shipped one)
    #[arg(long, default_value = "classic", value_parser = ["classic", "rich"])]
    pub grammar: String,
    /// Fresh renders (seed 3003) whose full captions are drawn at each line
    #[arg(long, default_value_t = 1000)]
    pub eval_count: usize,
    /// The attribute probe
    #[arg(long, default_value = "weights/probe")]
    pub probe: PathBuf,
    /// Seed of initialisation, batches and noise
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also append each line as JSON to this file
    #[arg(long)]
    pub jsonl: Option<PathBuf>,
    /// At each line, also write the first 16 evaluation pictures with their
    /// captions as DIR/step-NNNNN.png (to look at what the numbers read)
    #[arg(long, value_name = "DIR")]
    pub samples: Option<PathBuf>,
    /// Write the prepared inputs for bench/pytorch_learn.py to this folder
    /// and stop before training
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// With --export: train here too, writing G and D as they start and
    /// every step's random draws and losses into the folder, so that
    /// bench/pytorch_learn.py takes the very same steps (learn-score then
    /// says how far the two runs drifted apart)
    #[arg(long, requires = "export")]
    pub lockstep: bool,
}

#[derive(Args)]
pub struct ScoreArgs {
    /// The folder `bench learn --export` wrote and bench/pytorch_learn.py drew into
    pub dir: PathBuf,
    /// The attribute probe
    #[arg(long, default_value = "weights/probe")]
    pub probe: PathBuf,
    /// Also append each line as JSON to this file
    #[arg(long)]
    pub jsonl: Option<PathBuf>,
}

pub fn renders(env: &Env, seed: u64, count: usize) -> Result<TrainingSet> {
    renders_in(env, seed, count, "classic")
}

pub fn renders_in(env: &Env, seed: u64, count: usize, grammar: &str) -> Result<TrainingSet> {
    let options = vec![
        format!("seed={seed}"),
        format!("count={count}"),
        format!("grammar={grammar}"),
    ];
    let mut dataset = open_dataset(env, "procedural-flowers", &options)?;
    let bar = progress_bar(count as u64, "rendering");
    let set = TrainingSet::load(&mut dataset, None, OnError::Stop, &mut |d, _| {
        bar.set_position(d as u64)
    })?;
    bar.finish_and_clear();
    Ok(set)
}

fn jsonl_writer(path: &Option<PathBuf>) -> Result<Option<std::fs::File>> {
    path.as_ref()
        .map(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))
        })
        .transpose()
}

/// Pictures per `--samples` sheet.
const SAMPLES_SHOWN: usize = 16;

/// The first pictures of `images` with their `captions` as one contact
/// sheet at `path`.
fn write_sheet(
    path: &Path,
    step: u64,
    images: &tch::Tensor,
    captions: &[String],
    label: &str,
) -> Result<()> {
    let shown = images.narrow(0, 0, (captions.len() as i64).min(images.size()[0]));
    let cells: Vec<_> = gantry::imageio::images_from_tensor(&shown)?
        .into_iter()
        .zip(captions.iter().cloned())
        .collect();
    let sheet = gantry::sheet::contact_sheet(&cells, 8, 2, 4);
    let note = [
        (
            "Software".to_string(),
            format!("gantry {}", env!("CARGO_PKG_VERSION")),
        ),
        ("Comment".to_string(), format!("{label}, step {step}")),
    ];
    gantry::imageio::write_png(path, &sheet, &note)
}

fn emit(point: &learn::Point, label: &str, jsonl: &mut Option<std::fs::File>) {
    println!("{}", point.line());
    let _ = std::io::stdout().flush();
    if let Some(f) = jsonl {
        let mut value = serde_json::to_value(point).unwrap_or_default();
        value["label"] = label.into();
        // One write a line: runs side by side may append to the same file.
        if let Err(e) = f.write_all(format!("{value}\n").as_bytes()) {
            eprintln!("warning: --jsonl line not written: {e}");
        }
    }
}

pub fn learn(env: &Env, args: LearnArgs) -> Result<()> {
    let device = env.device()?;
    let GanChoices {
        variant,
        wrong,
        d_batches,
        match_negatives,
        text_noise_along,
        layers,
    } = args.gan.choices()?;
    let config = LearnConfig {
        preset: args.gan.preset.clone(),
        text: TextInput::parse(&args.conditioning)?,
        steps: args.steps,
        every: args.every,
        batch: args.gan.batch,
        lr: args.gan.lr,
        variant,
        wrong,
        d_batches,
        fresh_noise_for_g: !args.reuse_fakes,
        seed: args.seed,
        match_loss: args.gan.match_loss,
        match_negatives,
        mode_seeking: args.gan.mode_seeking,
        upsampling: layers.upsampling,
        minibatch_std: layers.minibatch_std,
        d_joint_norm: layers.d_joint_norm,
        captions_averaged: args.gan.captions_averaged as usize,
        text_noise: args.gan.text_noise,
        text_noise_along,
        g_ema: args.gan.g_ema,
        reworded: args.gan.reworded,
        phrasing_consistency: args.gan.phrasing_consistency,
    };
    // What cannot run is said before the renders are made.
    config.validate()?;
    if args.export.is_some() {
        config.validate_export()?;
    }
    let probe = LoadedProbe::load(&args.probe, device)?;
    let text_model = if config.text == TextInput::OneHot {
        None
    } else {
        let dir = env.find_model(&args.text_encoder)?;
        Some(
            Model::load_text_side(&dir, device)
                .with_context(|| format!("loading the text encoder from {}", dir.display()))?,
        )
    };
    let mut train = renders_in(env, 0, args.count, &args.grammar)?;
    if device != tch::Device::Cpu {
        train.move_images_to(device);
    }
    let eval = renders(env, EVAL_SEED, args.eval_count)?;
    let inputs = Inputs {
        train: &train,
        eval: &eval,
        probe: &probe,
        text_model: text_model.as_ref(),
    };
    super::gan_args::say_if_rewording(config.rewording_option().is_some());
    let mut prepared = learn::prepare(&config, &inputs, device)?;
    let label = config.label("gantry");
    let mut tape = None;
    if let Some(dir) = &args.export {
        learn::export(dir, &config, &inputs, &prepared, EVAL_SEED)?;
        if args.lockstep {
            tape = Some(learn::Tape::create(dir, &prepared)?);
        } else {
            println!("wrote {}", dir.display());
            println!(
                "next: .venv/bin/python bench/pytorch_learn.py {0} && gantry bench learn-score {0}",
                dir.display()
            );
            return Ok(());
        }
    }
    eprintln!(
        "# learning curve: {label}, {} from scratch, batch {}, {} steps, {} training renders ({} in training classes), {} evaluation captions, wrong images: {}, {}, {} threads",
        config.variant.name(),
        config.batch,
        config.steps,
        train.len(),
        train.split(false).len(),
        eval.len(),
        config.wrong.name(),
        describe_device(device),
        tch::get_num_threads()
    );
    let mut jsonl = jsonl_writer(&args.jsonl)?;
    if let Some(dir) = &args.samples {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let captions: Vec<String> = eval
        .attributes
        .iter()
        .take(SAMPLES_SHOWN)
        .map(gantry::eval::procedural::full_caption)
        .collect::<Result<_>>()?;
    learn::run(
        &config,
        &inputs,
        &mut prepared,
        tape.as_mut(),
        &mut |point, images, varied| {
            emit(point, &label, &mut jsonl);
            let Some(dir) = &args.samples else {
                return Ok(());
            };
            let path = dir.join(format!("step-{:05}.png", point.step));
            write_sheet(&path, point.step, images, &captions, &label)?;
            // The first caption under other z: how varied G's pictures are.
            let under_z: Vec<String> = (1..=SAMPLES_SHOWN)
                .map(|k| format!("z {k}: {}", captions[0]))
                .collect();
            let path = dir.join(format!("step-{:05}-z.png", point.step));
            write_sheet(&path, point.step, varied, &under_z, &label)
        },
    )?;
    if let (Some(tape), Some(dir)) = (tape, &args.export) {
        tape.finish()?;
        println!(
            "wrote {} (lockstep: G and D at the start, every step's draws and losses)",
            dir.display()
        );
        println!(
            "next: .venv/bin/python bench/pytorch_learn.py {0} && gantry bench learn-score {0}",
            dir.display()
        );
    }
    Ok(())
}

pub fn score(env: &Env, args: ScoreArgs) -> Result<()> {
    let device = env.device()?;
    let meta_path = args.dir.join("meta.json");
    let meta: learn::ExportMeta = serde_json::from_str(
        &std::fs::read_to_string(&meta_path)
            .with_context(|| format!("reading {}", meta_path.display()))?,
    )
    .with_context(|| format!("{}: not a learning-curve export", meta_path.display()))?;
    let probe = LoadedProbe::load(&args.probe, device)?;
    let eval = renders(env, meta.eval_seed, meta.eval_images)?;
    let real = learn::real_grids(&eval)?;
    let points = foreign_points(&args.dir)?;
    if points.is_empty() {
        anyhow::bail!(
            "{}: no points.jsonl lines yet (run bench/pytorch_learn.py on it first)",
            args.dir.display()
        );
    }
    let label = meta.learn.label("pytorch");
    eprintln!(
        "# learning curve: {label}, read from {}",
        args.dir.display()
    );
    let mut jsonl = jsonl_writer(&args.jsonl)?;
    for foreign in &points {
        let point = learn::score_images(
            &args.dir,
            foreign,
            &eval,
            &probe,
            &real,
            meta.diverse_captions,
        )?;
        emit(&point, &label, &mut jsonl);
    }
    let (ours, theirs) = (
        args.dir.join("steps.gantry.jsonl"),
        args.dir.join("steps.pytorch.jsonl"),
    );
    if ours.exists() && theirs.exists() {
        print_drift(&learn::lockstep_drift(&ours, &theirs)?, &points);
    }
    Ok(())
}

/// How far the lockstep runs drifted apart: at the first step and at each
/// line, the largest relative difference of D's and G's losses so far.
fn print_drift(drift: &[(u64, f64)], points: &[ForeignPoint]) {
    let Some(&(first, at_first)) = drift.first() else {
        println!("lockstep: no step in common");
        return;
    };
    println!("lockstep step={first} drift={at_first:.1e}");
    let mut worst = 0f64;
    let mut lines = points.iter().map(|p| p.step).peekable();
    for &(step, d) in drift {
        worst = worst.max(d);
        if lines.peek() == Some(&step) {
            lines.next();
            println!("lockstep step={step} drift={d:.1e} max_drift={worst:.1e}");
        }
    }
}

fn foreign_points(dir: &Path) -> Result<Vec<ForeignPoint>> {
    let path = dir.join("points.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    learn::parse_jsonl(&text, &path, "point")
}
