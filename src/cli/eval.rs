//! `gantry eval MODEL --dataset ...`: every metric of evaluation.md that
//! applies, printed as a table and written into the model card.

use super::open_dataset;
use super::output::progress_bar;
use anyhow::{bail, Result};
use clap::Args;
use gantry::env::Env;
use gantry::eval::{self, Metric};
use gantry::host::Sampler;
use gantry::probe::LoadedProbe;
use gantry::runtime::{describe_device, Runtime, StyleEncoderChoice};
use gantry::training_set::{OnError, TrainingSet};
use gantry::weights::{read_card, write_card, Model};
use gantry_plugin_api::PluginKind;
use std::path::PathBuf;

/// Seed of the procedural renders evaluation uses (training uses 0, the probe 1001 and 2002).
pub const EVAL_SEED: u64 = 3003;

#[derive(Args)]
pub struct EvalArgs {
    /// Model name or folder
    pub model: String,
    /// KIND or KIND:PATH; procedural-flowers gets its exact metrics
    #[arg(long, default_value = "procedural-flowers")]
    pub dataset: String,
    #[arg(long = "opt", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// The attribute probe (procedural flowers)
    #[arg(long, default_value = "weights/probe")]
    pub probe: PathBuf,
    /// Procedural renders to evaluate on (fresh ones, seed 3003; `--opt
    /// seed=0` reads the renders training uses instead)
    #[arg(long, default_value_t = 2000)]
    pub count: usize,
    /// Captions ranked for R-precision and colour accuracy
    #[arg(long, default_value_t = 500)]
    pub queries: usize,
    /// Also measure style transfer with these style encoders (e.g. optimize)
    /// beside the learned S, on --encoder-count renders
    #[arg(long = "encoder")]
    pub encoders: Vec<String>,
    #[arg(long, default_value_t = 200)]
    pub encoder_count: usize,
    /// Class probe of the dataset's photos for realism (`gantry probe train
    /// --dataset ...`) [default: weights/NAME-classifier where it exists]
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// Do not write the metrics into the model card
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn command(env: &Env, args: EvalArgs) -> Result<()> {
    let device = env.device()?;
    let dir = env.find_model(&args.model)?;
    let procedural = args.dataset.split(':').next() == Some("procedural-flowers");
    // A text encoder whose G was never trained (state/procedural-text-encoder,
    // a `train text-encoder` run) is measured by what its joint embedding
    // reads; everything else needs G.
    let text_side_only = read_card(&dir)?.text_side_only();
    if text_side_only && !procedural {
        bail!(
            "{} holds only a text encoder: it is measured on procedural flowers (what its embedding reads), not on {}",
            dir.display(),
            args.dataset
        );
    }
    let model = if text_side_only {
        Model::load_text_side(&dir, device)?
    } else {
        Model::load(&dir, device)?
    };
    // The evaluation renders first, so that an --opt the user gives wins.
    let mut options = Vec::new();
    if procedural {
        options.push(format!("seed={EVAL_SEED}"));
        options.push(format!("count={}", args.count));
    }
    options.extend(args.options.iter().cloned());
    let mut dataset = open_dataset(env, &args.dataset, &options)?;
    let bar = progress_bar(dataset.len as u64, "loading");
    let set = TrainingSet::load(&mut dataset, None, OnError::Skip, &mut |d, _| {
        bar.set_position(d as u64)
    })?;
    bar.finish_and_clear();
    eprintln!(
        "evaluating {} on {} ({} images) on {}",
        dir.display(),
        set.spec,
        set.len(),
        describe_device(device)
    );

    let mut metrics: Vec<Metric> = Vec::new();
    if text_side_only {
        eprintln!("text encoder only: what its embedding reads on every render");
        metrics.extend(eval::embedding_reads(&model, &set, set.len())?);
        metrics.extend(eval::embedding_reads_with(
            &model,
            &set,
            set.len(),
            "phrasing_embedding_reads",
            &eval::phrased_caption,
        )?);
        print_reads_per_phrasing(&model, &set)?;
    } else if procedural {
        let probe = LoadedProbe::load(&args.probe, device)?;
        metrics.extend(eval::procedural(&model, &probe, &set, args.seed)?);
    }
    if !text_side_only {
        metrics.extend(eval::captioned(&model, &set, args.queries, args.seed)?);
    }
    if !text_side_only && !procedural {
        let path = args
            .classifier
            .clone()
            .unwrap_or_else(|| super::probe::default_classifier(&args.dataset));
        if path.join("model.json").exists() {
            let probe = LoadedProbe::load(&path, device)?;
            if probe.reads_classes_of(&set) {
                metrics.extend(eval::realism(&model, &set, &probe, args.seed)?);
            } else if args.classifier.is_some() {
                bail!(
                    "{} does not read the classes of {}",
                    path.display(),
                    set.spec
                );
            }
        } else if args.classifier.is_some() {
            bail!("{}: no class probe there", path.display());
        } else {
            eprintln!(
                "realism not measured: no class probe at {} (gantry probe train --dataset {})",
                path.display(),
                args.dataset
            );
        }
    }
    let mut model = model;
    if procedural && !text_side_only && !args.encoders.is_empty() {
        let registry = env.registry().clone();
        let mut choices = vec![StyleEncoderChoice::Learned];
        for name in &args.encoders {
            if name == "learned" {
                continue;
            }
            let plugin = registry
                .find(PluginKind::StyleEncoder, name)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no style-encoder plugin named '{name}'"))?;
            choices.push(StyleEncoderChoice::Plugin(plugin));
        }
        let probe = LoadedProbe::load(&args.probe, device)?;
        let runtime = Runtime::new(model, Sampler::BuiltinGaussian);
        metrics.extend(eval::style_encoders(
            &runtime,
            &probe,
            &set,
            &choices,
            args.encoder_count,
        )?);
        model = runtime.into_model();
    }

    println!("{:<36} {:>8}  note", "metric", "value");
    for m in &metrics {
        println!("{:<36} {:>8}  {}", m.name, m.shown(), m.note);
    }
    if !args.dry_run {
        let mut key = if procedural {
            "procedural-flowers".to_string()
        } else {
            set.spec.clone()
        };
        // Other renders (e.g. --opt seed=0) are another table.
        if procedural && !args.options.is_empty() {
            key = format!("{key} {}", args.options.join(" "));
        }
        let table: serde_json::Map<String, serde_json::Value> = metrics
            .iter()
            .map(|m| (m.name.clone(), m.value.into()))
            .collect();
        model
            .card
            .metrics
            .insert(format!("eval: {key}"), serde_json::Value::Object(table));
        write_card(&dir, &model.card)?;
        println!(
            "wrote the metrics into {}",
            dir.join("model.json").display()
        );
    }
    Ok(())
}

/// What the embedding reads in each held-out sentence form on its own (every
/// render captioned in that form), so the form that holds an attribute back
/// shows; printed, not put in the card.
fn print_reads_per_phrasing(model: &Model, set: &TrainingSet) -> Result<()> {
    println!("unseen sentence form (every render in it)         colour  shape  count  centre");
    for (k, (form, _)) in eval::HELD_OUT_PHRASINGS.iter().enumerate() {
        let reads = eval::embedding_reads_with(model, set, set.len(), "form", &move |a, _| {
            eval::phrased_caption(a, k)
        })?;
        let cells: String = eval::CONTENT
            .iter()
            .map(|(_, label)| {
                reads
                    .iter()
                    .find(|m| m.name == format!("form_{label}"))
                    .map_or("     -".to_string(), |m| format!("{:>7}", m.shown()))
            })
            .collect::<Vec<_>>()
            .join(" ");
        let form: String = form.chars().take(48).collect();
        println!("{form:<48} {cells}");
    }
    Ok(())
}
