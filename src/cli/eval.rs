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

/// What `gantry eval` measures, decided once from the model and the data.
#[derive(Clone, Copy, PartialEq)]
enum Subject {
    /// A text encoder whose G was never trained (state/procedural-text-encoder,
    /// a `train text-encoder` run): what its joint embedding reads, on
    /// procedural flowers only.
    TextEncoder,
    /// G on procedural flowers: the probe reads its pictures exactly.
    Procedural,
    /// G on captioned photos (Oxford-102, CUB): retrieval, colour and realism.
    Captioned,
}

pub fn command(env: &Env, args: EvalArgs) -> Result<()> {
    let device = env.device()?;
    let dir = env.find_model(&args.model)?;
    let procedural = args.dataset.split(':').next() == Some("procedural-flowers");
    let subject = match (read_card(&dir)?.text_side_only(), procedural) {
        (true, true) => Subject::TextEncoder,
        (true, false) => bail!(
            "{} holds only a text encoder: it is measured on procedural flowers (what its embedding reads), not on {}",
            dir.display(),
            args.dataset
        ),
        (false, true) => Subject::Procedural,
        (false, false) => Subject::Captioned,
    };
    // Style transfer is read by the attribute probe: procedural flowers only.
    // Plugins named are found before anything is measured.
    match subject {
        _ if args.encoders.is_empty() => {}
        Subject::TextEncoder => bail!(
            "--encoder measures style transfer through G: {} holds only a text encoder",
            dir.display()
        ),
        Subject::Captioned => bail!("--encoder measures style transfer on procedural flowers only (the probe reads the background and the position kept)"),
        Subject::Procedural => {}
    }
    let style_encoders = style_encoders(env, &args.encoders)?;
    let model = if subject == Subject::TextEncoder {
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
    let model = match subject {
        Subject::TextEncoder => {
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
            model
        }
        Subject::Procedural => {
            let probe = LoadedProbe::load(&args.probe, device)?;
            metrics.extend(eval::procedural(&model, &probe, &set, args.seed)?);
            metrics.extend(eval::captioned(&model, &set, args.queries, args.seed)?);
            if args.encoders.is_empty() {
                model
            } else {
                let runtime = Runtime::new(model, Sampler::BuiltinGaussian);
                metrics.extend(eval::style_encoders(
                    &runtime,
                    &probe,
                    &set,
                    &style_encoders,
                    args.encoder_count,
                )?);
                runtime.into_model()
            }
        }
        Subject::Captioned => {
            metrics.extend(eval::captioned(&model, &set, args.queries, args.seed)?);
            metrics.extend(realism(&args, &model, &set, device)?);
            model
        }
    };

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
        let mut model = model;
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

/// The learned S and the style-encoder plugins `--encoder` names.
fn style_encoders(env: &Env, names: &[String]) -> Result<Vec<StyleEncoderChoice>> {
    let registry = env.registry();
    let mut choices = vec![StyleEncoderChoice::Learned];
    for name in names.iter().filter(|n| *n != "learned") {
        let plugin = registry
            .find(PluginKind::StyleEncoder, name)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no style-encoder plugin named '{name}'"))?;
        choices.push(StyleEncoderChoice::Plugin(plugin));
    }
    Ok(choices)
}

/// Realism of captioned photos, read by the dataset's class probe (the one
/// `--classifier` names, else weights/NAME-classifier where it exists; none
/// there is said, not an error).
fn realism(
    args: &EvalArgs,
    model: &Model,
    set: &TrainingSet,
    device: tch::Device,
) -> Result<Vec<Metric>> {
    let path = args
        .classifier
        .clone()
        .unwrap_or_else(|| super::probe::default_classifier(&args.dataset));
    if !path.join("model.json").exists() {
        if args.classifier.is_some() {
            bail!("{}: no class probe there", path.display());
        }
        eprintln!(
            "realism not measured: no class probe at {} (gantry probe train --dataset {})",
            path.display(),
            args.dataset
        );
        return Ok(Vec::new());
    }
    let probe = LoadedProbe::load(&path, device)?;
    if probe.reads_classes_of(set) {
        eval::realism(model, set, &probe, args.seed)
    } else if args.classifier.is_some() {
        bail!(
            "{} does not read the classes of {}",
            path.display(),
            set.spec
        )
    } else {
        Ok(Vec::new())
    }
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
