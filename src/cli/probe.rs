//! `gantry probe train|eval`: the attribute probe of evaluation.md, and the
//! class probe (a classifier of real photos, e.g. Oxford-102) that `gantry
//! eval` measures realism with.

use super::open_dataset;
use super::output::progress_bar;
use anyhow::{bail, Result};
use clap::Subcommand;
use gantry::env::Env;
use gantry::runtime::describe_device;
use gantry::training_set::{OnError, TrainingSet};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ProbeCommand {
    /// Train the probe on procedural renders, evaluate it on others, save it;
    /// with --dataset (e.g. reed:PATH), a class probe on 80% of each class's
    /// photos, evaluated on the other 20%
    Train {
        /// A captioned dataset of real photos (KIND:PATH) to train a class
        /// probe on instead of the attribute probe
        #[arg(long)]
        dataset: Option<String>,
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Renders to train on
        #[arg(long, default_value_t = 30_000)]
        count: usize,
        /// Held-out renders to evaluate on
        #[arg(long, default_value_t = 5_000)]
        eval_count: usize,
        #[arg(long, default_value_t = 2_000)]
        steps: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Base width of the CNN
        #[arg(long, default_value_t = 32)]
        width: i64,
        #[arg(long, default_value_t = 2e-3)]
        lr: f64,
        /// Where to write the probe [default: weights/probe, or
        /// weights/NAME-classifier for a dataset folder NAME]
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
    },
    /// Measure the probe's accuracy per attribute on held-out renders (a
    /// class probe: on the 20% of its --dataset it was not trained on)
    Eval {
        #[arg(long, default_value = "weights/probe")]
        dir: PathBuf,
        /// The class probe's dataset (KIND:PATH)
        #[arg(long)]
        dataset: Option<String>,
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        options: Vec<String>,
        #[arg(long, default_value_t = 5_000)]
        count: usize,
        /// Write the accuracy into the probe's card
        #[arg(long)]
        update_card: bool,
    },
}

/// Seeds of the procedural renders the probe trains and is evaluated on;
/// both differ from the GAN's training set (seed 0).
const PROBE_TRAIN_SEED: u64 = 1001;
const PROBE_EVAL_SEED: u64 = 2002;

fn print_accuracy(accuracy: &std::collections::BTreeMap<String, f64>) {
    println!("{:<16} {:>9}", "attribute", "accuracy");
    for (attribute, a) in accuracy {
        let flag = if *a >= 0.98 {
            ""
        } else {
            "  (below the 98% evaluation.md asks)"
        };
        println!("{attribute:<16} {:>8.2}%{flag}", a * 100.0);
    }
}

/// Where a class probe of `spec` goes by default: weights/NAME-classifier.
pub fn default_classifier(spec: &str) -> PathBuf {
    let name = spec
        .split_once(':')
        .map_or(spec, |(_, path)| path)
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("dataset");
    PathBuf::from(format!("weights/{name}-classifier"))
}

/// A captioned dataset in memory, for a class probe.
fn photos(env: &Env, spec: &str, options: &[String]) -> Result<TrainingSet> {
    let mut dataset = open_dataset(env, spec, options)?;
    let bar = progress_bar(dataset.len as u64, "loading");
    let set = TrainingSet::load(&mut dataset, None, OnError::Skip, &mut |d, _| {
        bar.set_position(d as u64)
    })?;
    bar.finish_and_clear();
    Ok(set)
}

/// (training, held-out) photos of a class probe: 80% / 20% of each class.
fn class_split(set: &TrainingSet) -> (Vec<usize>, Vec<usize>) {
    let held = gantry::probe::class_probe_held_out(set);
    (0..set.len()).partition(|&i| !held[i])
}

fn print_class_accuracy(accuracy: &std::collections::BTreeMap<String, f64>) {
    for (name, label) in [("class", "top-1"), ("class_top5", "top-5")] {
        if let Some(a) = accuracy.get(name) {
            println!("held-out photos, {label}: {:>6.2}%", a * 100.0);
        }
    }
}

pub fn command(env: &Env, command: ProbeCommand) -> Result<()> {
    let device = env.device()?;
    match command {
        ProbeCommand::Train {
            dataset,
            options,
            count,
            eval_count,
            steps,
            batch,
            width,
            lr,
            out,
        } => {
            if batch == 0 || steps == 0 {
                bail!("--batch and --steps must be at least 1");
            }
            // Photos: a class probe on 4 of every 5 of each class. Renders:
            // the attribute probe, measured on other renders.
            let (set, train, held) = match &dataset {
                Some(spec) => {
                    let set = photos(env, spec, &options)?;
                    if gantry::probe::has_probed_attributes(&set) {
                        bail!("{spec} has procedural attributes: train the attribute probe without --dataset");
                    }
                    let (train, held) = class_split(&set);
                    (set, train, held)
                }
                None => {
                    let set = super::learn::renders(env, PROBE_TRAIN_SEED, count)?;
                    let all = (0..set.len()).collect();
                    (set, all, Vec::new())
                }
            };
            let bar = progress_bar(steps as u64, "training");
            let train_options = gantry::probe::TrainOptions {
                steps,
                batch,
                width,
                learning_rate: lr,
                device,
                seed: 0,
                augment: dataset.is_some(),
            };
            let started = std::time::Instant::now();
            let mut probe =
                gantry::probe::train(&set, &train, &train_options, &mut |step, loss| {
                    bar.set_position(step as u64);
                    if step % 10 == 0 {
                        bar.set_message(format!("loss {loss:.4}"));
                    }
                })?;
            bar.finish_and_clear();
            eprintln!(
                "trained on {} images in {:.0} s on {}",
                train.len(),
                started.elapsed().as_secs_f64(),
                describe_device(device)
            );
            let out = match &dataset {
                Some(spec) => {
                    probe.card.accuracy = probe.evaluate(&set, &held, 256)?;
                    probe.card.trained_on =
                        format!("{} (4 of every 5 photos of each class)", set.spec);
                    probe.card.evaluated_on = format!(
                        "{} (every 5th photo of each class: {} photos)",
                        set.spec,
                        held.len()
                    );
                    print_class_accuracy(&probe.card.accuracy);
                    out.unwrap_or_else(|| default_classifier(spec))
                }
                None => {
                    let eval_set = super::learn::renders(env, PROBE_EVAL_SEED, eval_count)?;
                    let all: Vec<usize> = (0..eval_set.len()).collect();
                    probe.card.accuracy = probe.evaluate(&eval_set, &all, 256)?;
                    probe.card.trained_on =
                        format!("procedural-flowers seed={PROBE_TRAIN_SEED} count={count}");
                    probe.card.evaluated_on =
                        format!("procedural-flowers seed={PROBE_EVAL_SEED} count={eval_count}");
                    print_accuracy(&probe.card.accuracy);
                    out.unwrap_or_else(|| PathBuf::from("weights/probe"))
                }
            };
            probe.save(&out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        ProbeCommand::Eval {
            dir,
            dataset: Some(spec),
            options,
            update_card,
            ..
        } => {
            let mut probe = gantry::probe::LoadedProbe::load(&dir, device)?;
            if probe.card.kind != "class-probe" {
                bail!(
                    "{} is an attribute probe of procedural flowers: evaluate it without --dataset",
                    dir.display()
                );
            }
            let set = photos(env, &spec, &options)?;
            if !probe.reads_classes_of(&set) {
                bail!("{} is not a class probe of {spec}'s classes", dir.display());
            }
            let (_, held) = class_split(&set);
            let accuracy = probe.evaluate(&set, &held, 256)?;
            print_class_accuracy(&accuracy);
            if update_card {
                probe.card.accuracy = accuracy;
                probe.save(&dir)?;
            }
            Ok(())
        }
        ProbeCommand::Eval {
            dir,
            dataset: None,
            count,
            update_card,
            ..
        } => {
            let mut probe = gantry::probe::LoadedProbe::load(&dir, device)?;
            if probe.card.kind == "class-probe" {
                bail!(
                    "{} is a class probe: give its photos with --dataset KIND:PATH",
                    dir.display()
                );
            }
            let eval_set = super::learn::renders(env, PROBE_EVAL_SEED, count)?;
            let all: Vec<usize> = (0..eval_set.len()).collect();
            let accuracy = probe.evaluate(&eval_set, &all, 256)?;
            print_accuracy(&accuracy);
            if update_card {
                probe.card.accuracy = accuracy;
                probe.card.evaluated_on =
                    format!("procedural-flowers seed={PROBE_EVAL_SEED} count={count}");
                probe.save(&dir)?;
            }
            Ok(())
        }
    }
}
