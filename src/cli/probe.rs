//! `gantry probe train|eval`: the attribute probe of evaluation.md.

use super::output::progress_bar;
use anyhow::{bail, Result};
use clap::Subcommand;
use gantry::env::Env;
use gantry::runtime::describe_device;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ProbeCommand {
    /// Train the probe on procedural renders, evaluate it on others, save it
    Train {
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
        /// Where to write the probe
        #[arg(long, short = 'o', default_value = "weights/probe")]
        out: PathBuf,
    },
    /// Measure the probe's accuracy per attribute on held-out renders
    Eval {
        #[arg(long, default_value = "weights/probe")]
        dir: PathBuf,
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

pub fn command(env: &Env, command: ProbeCommand) -> Result<()> {
    let device = env.device()?;
    match command {
        ProbeCommand::Train {
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
            let train_set = super::learn::renders(env, PROBE_TRAIN_SEED, count)?;
            let bar = progress_bar(steps as u64, "training");
            let options = gantry::probe::TrainOptions {
                steps,
                batch,
                width,
                learning_rate: lr,
                device,
                seed: 0,
            };
            let started = std::time::Instant::now();
            let mut probe = gantry::probe::train(&train_set, &options, &mut |step, loss| {
                bar.set_position(step as u64);
                if step % 10 == 0 {
                    bar.set_message(format!("loss {loss:.4}"));
                }
            })?;
            bar.finish_and_clear();
            eprintln!(
                "trained in {:.0} s on {}",
                started.elapsed().as_secs_f64(),
                describe_device(device)
            );
            let eval_set = super::learn::renders(env, PROBE_EVAL_SEED, eval_count)?;
            probe.card.accuracy = probe.evaluate(&eval_set, 256)?;
            probe.card.trained_on =
                format!("procedural-flowers seed={PROBE_TRAIN_SEED} count={count}");
            probe.card.evaluated_on =
                format!("procedural-flowers seed={PROBE_EVAL_SEED} count={eval_count}");
            print_accuracy(&probe.card.accuracy);
            probe.save(&out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        ProbeCommand::Eval {
            dir,
            count,
            update_card,
        } => {
            let mut probe = gantry::probe::LoadedProbe::load(&dir, device)?;
            let eval_set = super::learn::renders(env, PROBE_EVAL_SEED, count)?;
            let accuracy = probe.evaluate(&eval_set, 256)?;
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
