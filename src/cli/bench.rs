//! `gantry bench generate|train|learn|learn-score|dataset`: speed and the learning curve.

use super::{open_dataset, open_runtime};
use anyhow::{bail, Result};
use clap::builder::PossibleValuesParser;
use clap::Subcommand;
use gantry::env::Env;
use gantry::model::{JointNorm, Layers, ModelConfig, Upsampling, UPSAMPLINGS};
use gantry::runtime::{describe_device, Runtime};
use gantry::weights::Model;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Time generating one batch from caption text (text encoding included)
    Generate {
        /// Images per batch
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Time a randomly initialised preset instead of a model folder
        #[arg(long)]
        preset: Option<String>,
        /// Timed runs (the median is printed)
        #[arg(long, default_value_t = 20)]
        repeats: usize,
        /// Untimed runs first
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Run G as trained, its batch norms not folded into the convolutions
        /// (what drawing cost before folding; bench/generate.sh prints both)
        #[arg(long)]
        unfolded: bool,
        /// Also draw the batch with G as trained and print how far the folded
        /// G is from it (8-bit levels; an error above 1)
        #[arg(long)]
        check: bool,
    },
    /// Time full GAN-INT-CLS training steps (D and G) on synthetic inputs
    Train {
        /// Architecture preset
        #[arg(long, default_value = "reed")]
        preset: String,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Timed steps
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Untimed steps first
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Then as many steps again, timed phase by phase (batch, G forward,
        /// D forward and backward, Adam, ...), the device synchronised between
        /// phases: where a step's time goes
        #[arg(long)]
        phases: bool,
        /// How G doubles its maps (see `gantry train gan --help`)
        #[arg(long, default_value = "transposed", value_parser = PossibleValuesParser::new(UPSAMPLINGS))]
        upsampling: String,
        /// D reads the batch's spread (see `gantry train gan --help`)
        #[arg(long)]
        minibatch_std: bool,
        /// How D normalises its joint layer (see `gantry train gan --help`)
        #[arg(long, default_value = "batch", value_parser = JointNorm::NAMES)]
        d_joint_norm: String,
    },
    /// The learning curve: GAN-INT-CLS from scratch on procedural flowers,
    /// a line of probe-read content accuracy (in-grammar captions and
    /// sentence forms no grammar has), D's scores and the checkerboard
    /// measure at fixed steps
    Learn(Box<super::learn::LearnArgs>),
    /// The learning-curve lines for pictures bench/pytorch_learn.py drew
    LearnScore(super::learn::ScoreArgs),
    /// Time reading samples (decoding or rendering images included)
    Dataset {
        /// KIND or KIND:PATH
        spec: String,
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Samples to read
        #[arg(long, default_value_t = 10_000)]
        count: usize,
    },
}

pub fn command(env: &Env, command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Generate {
            batch,
            preset,
            repeats,
            warmup,
            unfolded,
            check,
        } => {
            if batch == 0 {
                bail!("--batch must be at least 1");
            }
            let runtime = match preset {
                Some(preset) => {
                    let device = env.device()?;
                    let model = Model::new(&preset, &ModelConfig::preset(&preset)?, device, 0)?;
                    Runtime::new(model, env.sampler()?)
                }
                None => open_runtime(env)?,
            };
            let ms = gantry::bench::generate(&runtime, batch, warmup, repeats, unfolded)?;
            eprintln!(
                "# model {} ({}), device {}, batch {batch}, {} runs: min {:.3} ms, max {:.3} ms",
                runtime.model().card.name,
                runtime.model().card.architecture.preset,
                describe_device(runtime.device),
                ms.len(),
                ms[0],
                ms[ms.len() - 1]
            );
            println!("ms_per_batch={:.3}", gantry::bench::median(&ms));
            if check {
                let levels = gantry::bench::folded_drift(&runtime, batch)?;
                println!("folded_levels_apart={levels:.4}");
                eprintln!("# drawing computes in {:?}", runtime.drawing().kind());
                if levels > 1.0 {
                    bail!("the folded G is {levels:.3} levels (of 255) from G as trained: more than 1");
                }
            }
            Ok(())
        }
        BenchCommand::Train {
            preset,
            batch,
            steps,
            warmup,
            phases,
            upsampling,
            minibatch_std,
            d_joint_norm,
        } => {
            if batch < 2 || batch % 2 != 0 {
                bail!("--batch must be even and at least 2");
            }
            let device = env.device()?;
            let layers = Layers {
                upsampling: Upsampling::parse(&upsampling)?,
                minibatch_std,
                d_joint_norm: JointNorm::parse(&d_joint_norm)?,
            };
            let config = ModelConfig::preset(&preset)?.with_layers(layers);
            let speed = gantry::bench::train_gan(&config, device, batch, steps, warmup, phases)?;
            eprintln!(
                    "# gan-int-cls step, preset {preset}{}, batch {batch} (+{} interpolated), {steps} steps on {}, {} threads",
                    layers.describe(),
                    batch / 2,
                    describe_device(device),
                    tch::get_num_threads()
                );
            if phases {
                let total: f64 = speed.phases.iter().map(|(_, ms)| ms).sum();
                eprintln!("# phase, ms per step (device synchronised between phases), share");
                for (phase, ms) in &speed.phases {
                    eprintln!(
                        "#   {phase:<32} {ms:>9.2} {:>5.1}%",
                        100.0 * ms / total.max(1e-12)
                    );
                }
                eprintln!("#   {:<32} {total:>9.2}", "all phases");
            }
            println!("images_per_s={:.2}", speed.images_per_s);
            Ok(())
        }
        BenchCommand::Learn(args) => super::learn::learn(env, *args),
        BenchCommand::LearnScore(args) => super::learn::score(env, args),
        BenchCommand::Dataset {
            spec,
            options,
            count,
        } => {
            let mut dataset = open_dataset(env, &spec, &options)?;
            let n = count.min(dataset.len);
            let start = std::time::Instant::now();
            for i in 0..n {
                dataset.get(i)?;
            }
            let seconds = start.elapsed().as_secs_f64();
            eprintln!("# {} samples of {} in {seconds:.2} s", n, dataset.spec);
            println!("samples_per_s={:.1}", n as f64 / seconds);
            Ok(())
        }
    }
}
