//! `gantry model info|init|presets|vocabulary|export`.

use super::open_dataset;
use anyhow::{bail, Result};
use clap::builder::PossibleValuesParser;
use clap::Subcommand;
use gantry::env::Env;
use gantry::model::{JointNorm, Layers, ModelConfig, Upsampling, PRESETS, UPSAMPLINGS};
use gantry::weights::{read_card, Model};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Print each network's parameter count and a summary of the model card
    Info {
        /// Model name or folder (default: the configured model)
        name: Option<String>,
        /// Print the whole card as JSON instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// Write a randomly initialised model folder (runs everything before training)
    Init {
        /// Name of the new model
        name: String,
        /// Architecture preset: reed (paper.md), small (CPU), tiny (tests)
        #[arg(long, default_value = "small")]
        preset: String,
        /// Folder to write (default: <data dir>/models/NAME)
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        /// Seed of the initialisation
        #[arg(long, default_value_t = 0)]
        seed: i64,
        /// How G doubles its maps (see `gantry train gan --help`)
        #[arg(long, default_value = "transposed", value_parser = PossibleValuesParser::new(UPSAMPLINGS))]
        upsampling: String,
        /// D reads the batch's spread (see `gantry train gan --help`)
        #[arg(long)]
        minibatch_std: bool,
        /// How D normalises its joint layer (see `gantry train gan --help`)
        #[arg(long, default_value = "batch", value_parser = JointNorm::NAMES)]
        d_joint_norm: String,
        /// Store weights as f16
        #[arg(long)]
        half: bool,
        /// Replace an existing folder
        #[arg(long)]
        force: bool,
    },
    /// List the presets
    Presets,
    /// Record the words of a dataset's captions in a model's card (the words
    /// its text encoder was trained on), so that unknown words are named when typed
    Vocabulary {
        /// Model name or folder
        name: String,
        /// KIND or KIND:PATH of the captions the text encoder learned
        #[arg(long)]
        dataset: String,
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Words seen fewer times are left out (deliberate typos); default: one
        /// in 10,000 captions, at least 2
        #[arg(long)]
        min_count: Option<usize>,
    },
    /// Copy a model folder, optionally as f16 (for shipping)
    Export {
        /// Model name or folder
        name: String,
        /// Destination folder
        out: PathBuf,
        /// Store weights as f16
        #[arg(long)]
        half: bool,
    },
}

pub fn command(env: &Env, command: ModelCommand) -> Result<()> {
    match command {
        ModelCommand::Export { name, out, half } => {
            let dir = env.find_model(&name)?;
            let mut model = Model::load(&dir, tch::Device::Cpu)?;
            model.save(&out, half)?;
            println!(
                "wrote {} ({})",
                out.display(),
                if half { "f16" } else { "f32" }
            );
            Ok(())
        }
        ModelCommand::Vocabulary {
            name,
            dataset,
            options,
            min_count,
        } => {
            let dir = env.find_model(&name)?;
            let mut card = read_card(&dir)?;
            let mut data = open_dataset(env, &dataset, &options)?;
            let mut captions = Vec::new();
            for i in 0..data.len {
                captions.extend(data.get(i)?.captions);
            }
            let min_count =
                min_count.unwrap_or_else(|| gantry::text::vocabulary_min_count(captions.len()));
            card.vocabulary =
                gantry::text::vocabulary(captions.iter().map(String::as_str), min_count);
            gantry::weights::write_card(&dir, &card)?;
            println!(
                "{}: {} words from {} captions of {}",
                dir.display(),
                card.vocabulary.len(),
                captions.len(),
                data.spec
            );
            Ok(())
        }
        ModelCommand::Presets => {
            for (name, about) in PRESETS {
                println!("{name:<6} {about}");
            }
            Ok(())
        }
        ModelCommand::Init {
            name,
            preset,
            out,
            seed,
            upsampling,
            minibatch_std,
            d_joint_norm,
            half,
            force,
        } => {
            let config = ModelConfig::preset(&preset)?.with_layers(Layers {
                upsampling: Upsampling::parse(&upsampling)?,
                minibatch_std,
                d_joint_norm: JointNorm::parse(&d_joint_norm)?,
            });
            let dir = out.unwrap_or_else(|| env.paths.models_dir().join(&name));
            if dir.exists() && !force {
                bail!(
                    "{} already exists (use --force to replace it)",
                    dir.display()
                );
            }
            let mut model = Model::new(&name, &config, tch::Device::Cpu, seed)?;
            model.save(&dir, half)?;
            println!(
                "wrote untrained model '{name}' (preset {preset}{}) to {}",
                config.layers().describe(),
                dir.display()
            );
            Ok(())
        }
        ModelCommand::Info { name, json } => {
            let name = name.unwrap_or_else(|| env.settings().model.clone());
            let dir = env.find_model(&name)?;
            let card = read_card(&dir)?;
            // A folder between trainings may hold the text side only.
            let text_side_only = !card.files.contains_key("generator");
            let model = if text_side_only {
                Model::load_text_side(&dir, tch::Device::Cpu)?
            } else {
                Model::load(&dir, tch::Device::Cpu)?
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&card)?);
                return Ok(());
            }
            println!("model {} ({})", card.name, dir.display());
            println!(
                "preset {}, trained: {}, dataset {}",
                card.architecture.preset,
                card.trained,
                card.dataset.as_deref().unwrap_or("none")
            );
            if !card.trained {
                println!("untrained (random weights): it draws noise until `gantry train` has trained it");
            }
            if text_side_only {
                println!("the text side only (text and image encoders): `train gan --text-encoder` reads it");
            }
            let mut total = 0;
            for (network, count) in model.parameter_counts() {
                if !card.files.contains_key(network) {
                    continue;
                }
                println!(
                    "  {network:<14} {count:>12} parameters ({:.2} M)",
                    count as f64 / 1e6
                );
                total += count;
            }
            println!(
                "  {:<14} {total:>12} parameters ({:.2} M)",
                "total",
                total as f64 / 1e6
            );
            println!(
                "text conditioning: {}",
                card.architecture.conditioning.name()
            );
            if !text_side_only {
                let layer = card.architecture.generator.upsampling;
                println!("G's upsampling: {}", layer.describe());
                if card.architecture.discriminator.minibatch_std {
                    println!("D reads the batch's spread (minibatch standard deviation)");
                }
                if card.architecture.discriminator.joint_norm == JointNorm::Pair {
                    println!("D normalises its joint layer over each pair (d-joint-norm pair)");
                }
            }
            if let Some(s) = &card.schedule {
                println!(
                    "schedule: step {} (epoch {:.1} of {}), lr {} halved every {} epochs",
                    s.step,
                    s.epoch(),
                    s.epochs,
                    s.lr,
                    s.lr_halve_every_epochs
                );
            }
            if !card.vocabulary.is_empty() {
                println!("vocabulary: {} words", card.vocabulary.len());
            }
            if !card.metrics.is_empty() {
                println!("metrics (gantry eval):");
                fn show(indent: usize, key: &str, value: &serde_json::Value) {
                    let pad = " ".repeat(indent);
                    match value {
                        serde_json::Value::Object(inner) => {
                            println!("{pad}{key}:");
                            for (k, v) in inner {
                                show(indent + 2, k, v);
                            }
                        }
                        v => match v.as_f64() {
                            Some(x) => println!("{pad}{key:<36} {x:.4}"),
                            None => println!("{pad}{key:<36} {v}"),
                        },
                    }
                }
                for (k, v) in &card.metrics {
                    show(2, k, v);
                }
            }
            for note in &card.notes {
                println!("note: {note}");
            }
            println!("(the whole card: gantry model info {name} --json)");
            Ok(())
        }
    }
}
