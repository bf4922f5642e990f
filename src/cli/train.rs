//! `gantry train text-encoder|gan|style-encoder|text-distil|pack` and `gantry bench train`.

use super::gan_args::{GanArgs, GanChoices};
use super::open_dataset;
use super::output::progress_bar;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use gantry::env::Env;
use gantry::runtime::describe_device;
use gantry::train::distil::{self, DistilConfig, DistilTrainer};
use gantry::train::gan::{GanConfig, GanTrainer, TextScalingKind};
use gantry::train::style::{StyleConfig, StyleTrainer};
use gantry::train::text_encoder::{zero_shot_top1, JointConfig, JointTrainer, Matching};
use gantry::train::{self, assemble, Control, Observer, Outcome, Run, Trainer};
use gantry::training_set::{OnError, TrainingSet};
use gantry::weights::Model;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use tch::Device;

/// Options every training command shares.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// KIND or KIND:PATH of the training data
    #[arg(long, default_value = "procedural-flowers")]
    pub dataset: String,
    /// Loader option KEY=VALUE (repeatable)
    #[arg(long = "opt", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// The run folder: checkpoint, losses.jsonl/png, samples/, and model/ at the end
    #[arg(long)]
    pub run: PathBuf,
    /// Continue the run in --run from its checkpoint
    #[arg(long)]
    pub resume: bool,
    /// Total steps (overrides --epochs)
    #[arg(long)]
    pub steps: Option<u64>,
    /// Stop after this many steps of this invocation, with a checkpoint
    #[arg(long)]
    pub stop_after: Option<u64>,
    /// Stop after this many minutes, with a checkpoint
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// Steps between checkpoints
    #[arg(long, default_value_t = 200)]
    pub checkpoint_every: u64,
    /// Use at most this many samples of the dataset
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed of initialisation, batches and noise
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Subcommand)]
pub enum TrainCommand {
    /// The char-CNN-RNN text encoder and image encoder as a joint embedding (DS-SJE)
    TextEncoder {
        #[command(flatten)]
        common: Common,
        /// Architecture preset: reed, small, tiny
        #[arg(long, default_value = "small")]
        preset: String,
        #[arg(long, default_value_t = 300)]
        epochs: u64,
        /// Pairs per batch: one from each of this many classes (--match class),
        /// or this many distinct images (--match image)
        #[arg(long, default_value_t = 40)]
        batch_classes: usize,
        /// What a caption is matched against: its class (the paper), or its own
        /// image (the embedding then keeps every attribute captions state)
        #[arg(long = "match", default_value = "class", value_parser = ["class", "image"])]
        matching: String,
        #[arg(long, default_value_t = 7e-4)]
        lr: f64,
        /// Learning-rate factor per epoch (the paper: 0.98). An epoch is one
        /// pass over the training images, so with more images (e.g. --opt
        /// count=48000) a per-step schedule like 12,000 renders' needs 0.98^4
        #[arg(long, default_value_t = 0.98)]
        lr_decay: f64,
        /// With --match image: half of each batch are images that differ from
        /// the other half in one content attribute only (data with attributes,
        /// e.g. procedural flowers), so the embedding must keep every one
        #[arg(long)]
        hard_negatives: bool,
        /// Weight of an attribute loss beside the paper's: one linear read per
        /// content attribute (colour, shape, count, centre) shared by text and
        /// image embeddings, so each is a direction of the joint space (data
        /// with attributes, e.g. procedural flowers); 0 is the paper
        #[arg(long, default_value_t = 0.0, value_name = "WEIGHT")]
        attribute_loss: f64,
        /// Drop each word of a training caption with this probability (text
        /// augmentation; at least one word is kept); 0 is the paper
        #[arg(long, default_value_t = 0.0, value_name = "P")]
        word_dropout: f64,
        /// Start the text and image encoders from this model's (fresh
        /// optimizer state) instead of a fresh initialisation
        #[arg(long)]
        init_from: Option<String>,
    },
    /// G and D with GAN-INT-CLS or an ablation, on a trained text encoder
    Gan {
        #[command(flatten)]
        common: Common,
        /// Model folder (or name) whose text encoder to use (from `train text-encoder`)
        #[arg(long)]
        text_encoder: String,
        #[command(flatten)]
        gan: Box<GanArgs>,
        #[arg(long, default_value_t = 600)]
        epochs: u64,
        /// Halve the learning rate every this many epochs
        #[arg(long, default_value_t = 100)]
        lr_halve_every: u64,
        /// D's target for real pairs: 1 is the paper; 0.9 is one-sided label
        /// smoothing (D less certain of real images, G's gradient less flat)
        #[arg(long, default_value_t = 1.0)]
        real_label: f64,
        /// Standard deviation of Gaussian noise added to every image D sees
        /// (images are in [-1, 1]); 0 is the paper
        #[arg(long, default_value_t = 0.0)]
        instance_noise: f64,
        /// How the text embedding is scaled before G and D read it: raw (the
        /// paper), or standardised per dimension over the training captions
        /// (statistics kept in the model card and used at inference too)
        #[arg(long, default_value = "raw", value_parser = ["raw", "standardised"])]
        conditioning: String,
        /// G's update draws fresh z (as the paper's Lua code does) instead of
        /// reusing the fakes of D's update
        #[arg(long)]
        fresh_noise: bool,
        /// Start G, D and S from this model's weights (fresh optimizer state)
        /// instead of a fresh initialisation; architectures must match. Where
        /// its card records the GAN's schedule, the run takes it up there (the
        /// step count, the learning rate and --epochs as the schedule's total)
        #[arg(long)]
        init_from: Option<String>,
        /// With --init-from: start the schedule again at step 0 instead
        #[arg(long, requires = "init_from")]
        restart_schedule: bool,
    },
    /// Teach a model's text encoder new phrasings (e.g. --opt grammar=rich) while
    /// keeping its embedding space, so its G and D need no retraining
    TextDistil {
        #[command(flatten)]
        common: Common,
        /// Model folder (or name) whose text encoder to teach; its G, D and S are kept
        #[arg(long)]
        model: String,
        /// Loader option KEY=VALUE of the captions the model was trained on
        /// (repeatable), e.g. grammar=classic for the shipped procedural model
        #[arg(long = "teacher-opt", value_name = "KEY=VALUE")]
        teacher_options: Vec<String>,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Adam's learning rate (β1 0.9)
        #[arg(long, default_value_t = 1e-4)]
        lr: f64,
        /// Share of each batch drawn from the model's own captions (their
        /// embeddings are kept as they are); 0 with the same captions on both
        /// sides draws every caption to its image's mean, so that every
        /// phrasing of a picture reads as the one G learned to draw
        #[arg(long, default_value_t = 0.5)]
        own_captions: f64,
        /// Share of the captions rephrased before the student reads them
        /// (their targets as written): clauses in a random order, a filler
        /// word or two
        #[arg(long, default_value_t = 0.0)]
        rephrase: f64,
        /// Share of the captions perturbed before the student reads them
        /// (their targets as written): small words left out, words of chat
        /// put in, the punctuation between clauses changed
        #[arg(long, default_value_t = 0.0)]
        perturb: f64,
        /// Share of the perturbed captions written instead as a terse list:
        /// small words and punctuation left out, the rest joined by spaces
        /// and one symbol ("red,round petals,5,yellow centre")
        #[arg(long, default_value_t = 0.0)]
        terse: f64,
        /// Share of the words perturbing puts in that are made up of
        /// syllables ("brenolt", "skivu") instead of words of chat, so that
        /// the text encoder learns to read past any word it never met
        #[arg(long, default_value_t = 0.0)]
        made_up: f64,
        /// Share of the loss measured as G reads φ (through G's text
        /// projection, each feature over its spread) rather than per
        /// dimension of φ; the rest keeps φ itself, which :score, :classify
        /// and D read
        #[arg(long, default_value_t = 0.0)]
        g_weight: f64,
    },
    /// The style encoder S with G frozen
    StyleEncoder {
        #[command(flatten)]
        common: Common,
        /// Model folder (or name) with the trained G
        #[arg(long)]
        model: String,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value_t = 2e-4)]
        lr: f64,
    },
    /// Write a run's checkpoint compactly, to carry the run to another
    /// machine (a GPU and back) and continue it there: networks f16, optimizer second moments bf16,
    /// no first moments (Adam's β1 = 0.5 refills them in a few steps). Put it
    /// in a run folder as checkpoint.safetensors and `--resume` continues the
    /// run at its step, learning rate and RNG
    Pack {
        /// The run folder whose checkpoint to pack
        #[arg(long)]
        run: PathBuf,
        /// The file to write
        out: PathBuf,
    },
}

/// A progress bar with the loss terms, images/s and ETA.
struct Progress {
    bar: indicatif::ProgressBar,
}

impl Progress {
    fn new(what: &str) -> Self {
        Self {
            bar: progress_bar(0, what),
        }
    }
}

impl Observer for Progress {
    fn started(&mut self, done: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(done);
        self.bar.reset_eta();
    }

    fn step(&mut self, step: u64, _total: u64, losses: &BTreeMap<String, f64>, images_per_s: f64) {
        self.bar.set_position(step);
        let terms: Vec<String> = losses
            .iter()
            .filter(|(k, _)| k.as_str() != "lr")
            .map(|(k, v)| format!("{k} {v:.3}"))
            .collect();
        self.bar
            .set_message(format!("{} | {images_per_s:.0} img/s", terms.join(" ")));
        if !self.bar.is_hidden() {
            return;
        }
        // Not a terminal: print a line now and then instead of a bar.
        if step.is_multiple_of(100) {
            eprintln!("step {step}: {} | {images_per_s:.0} img/s", terms.join(" "));
        }
    }

    fn message(&mut self, text: &str) {
        self.bar.println(text);
    }
}

fn control(common: &Common) -> Control {
    let control = Control {
        checkpoint_every: common.checkpoint_every,
        stop_after: common.stop_after,
        time_limit: common
            .time_limit
            .map(|m| std::time::Duration::from_secs_f64(m * 60.0)),
        ..Default::default()
    };
    let stop = control.stop.clone();
    // First Ctrl-C: finish the step, write a checkpoint, exit. Second: now.
    let _ = ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted twice: exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: writing a checkpoint (Ctrl-C again to quit at once)");
    });
    control
}

/// Loads the training data; on a GPU the images are kept there, so that
/// batches are cut without a trip through the host.
fn load_training_set(env: &Env, common: &Common, device: Device) -> Result<TrainingSet> {
    let mut dataset = open_dataset(env, &common.dataset, &common.options)?;
    let total = common.limit.map_or(dataset.len, |l| l.min(dataset.len));
    let bar = progress_bar(total as u64, "loading");
    let mut set = TrainingSet::load(&mut dataset, common.limit, OnError::Skip, &mut |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    if device != Device::Cpu {
        set.move_images_to(device);
    }
    if set.problems.len() > dataset.problems.len() {
        eprintln!(
            "warning: {} samples skipped while loading",
            set.problems.len() - dataset.problems.len()
        );
    }
    eprintln!(
        "data: {} images ({} in training classes, {} held out) from {}",
        set.len(),
        set.split(false).len(),
        set.split(true).len(),
        set.spec
    );
    Ok(set)
}

fn prepare_run(common: &Common) -> Result<Run> {
    let run = Run::create(&common.run)?;
    if common.resume && !run.checkpoint().exists() {
        bail!(
            "{}: no checkpoint to resume from",
            run.checkpoint().display()
        );
    }
    if !common.resume && run.checkpoint().exists() {
        bail!(
            "{} already holds a run (pass --resume to continue it, or choose another --run folder)",
            run.dir.display()
        );
    }
    Ok(run)
}

fn embeddings(model: &Model, set: &TrainingSet) -> Result<tch::Tensor> {
    let bar = progress_bar((set.len() * 10) as u64, "embedding");
    let e = train::embed_captions(
        &model.text_encoder.net,
        set,
        10,
        model.device,
        &mut |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    Ok(e)
}

fn finish(
    model: &mut Model,
    stage: &str,
    run: &Run,
    outcome: Outcome,
    details: BTreeMap<String, serde_json::Value>,
) -> Result<()> {
    assemble::finish_card(model, stage, outcome, details);
    let dir = run.model();
    model.save(&dir, false)?;
    println!("wrote {}", dir.display());
    if outcome == Outcome::Stopped {
        println!("(training stopped early; `--resume` continues it)");
    }
    Ok(())
}

/// The folder and model `--init-from` names, loaded by `load`.
fn init_model(
    env: &Env,
    init_from: &Option<String>,
    load: fn(&std::path::Path, Device) -> Result<Model>,
    device: Device,
) -> Result<Option<(PathBuf, Model)>> {
    init_from
        .as_ref()
        .map(|name| {
            let dir = env.find_model(name)?;
            let model = load(&dir, device)?;
            Ok((dir, model))
        })
        .transpose()
}

/// An error of building on `--init-from`'s model names its folder.
fn about_init(init: &Option<(PathBuf, Model)>, e: anyhow::Error) -> anyhow::Error {
    match init {
        Some((dir, _)) => e.context(format!("--init-from {}", dir.display())),
        None => e,
    }
}

pub fn command(env: &Env, command: TrainCommand) -> Result<()> {
    let device = env.device()?;
    match command {
        TrainCommand::TextEncoder {
            common,
            preset,
            epochs,
            batch_classes,
            matching,
            lr,
            lr_decay,
            hard_negatives,
            attribute_loss,
            word_dropout,
            init_from,
        } => {
            // A wrong preset is said before the data is read.
            gantry::model::ModelConfig::preset(&preset)?;
            let run = prepare_run(&common)?;
            let set = load_training_set(env, &common, device)?;
            let init = init_model(env, &init_from, Model::load_text_side, device)?;
            let model = assemble::joint_model(
                &run.name(),
                &preset,
                device,
                common.seed as i64,
                init.as_ref().map(|(_, m)| m),
            )
            .map_err(|e| about_init(&init, e))?;
            if let Some((dir, _)) = &init {
                eprintln!("starting the encoders from {}", dir.display());
            }
            let joint = JointConfig {
                batch_classes,
                matching: Matching::parse(&matching)?,
                hard_negatives,
                attribute_loss,
                word_dropout,
                epochs,
                steps: common.steps,
                lr,
                lr_decay,
                seed: common.seed,
                ..JointConfig::paper(&set.spec)
            };
            let mut trainer = JointTrainer::new(model, joint, &set)?;
            if common.resume {
                trainer.resume(&run.checkpoint())?;
            }
            eprintln!(
                "training the joint embedding on {}",
                describe_device(device)
            );
            let (outcome, seconds) = train::run_loop(
                &mut trainer,
                &run,
                &control(&common),
                &mut Progress::new("text-enc"),
            )?;
            let mut details = assemble::details("ds-sje", &preset, &set, &trainer, seconds, device);
            if set.class_count(true) >= 2 {
                let top1 = zero_shot_top1(&trainer.model, &set, true, 100)?;
                println!(
                    "zero-shot top-1 on {} held-out classes: {:.1}%",
                    set.class_count(true),
                    top1 * 100.0
                );
                trainer
                    .model
                    .card
                    .metrics
                    .insert("zero_shot_top1_held_out".into(), top1.into());
            } else {
                eprintln!(
                    "note: fewer than two held-out classes in the data: no zero-shot measurement"
                );
            }
            details.insert("batch_classes".into(), trainer.config.batch_classes.into());
            details.insert("matching".into(), trainer.config.matching.name().into());
            details.insert("hard_negatives".into(), hard_negatives.into());
            if attribute_loss > 0.0 {
                details.insert("attribute_loss".into(), attribute_loss.into());
            }
            if word_dropout > 0.0 {
                details.insert("word_dropout".into(), word_dropout.into());
            }
            if set.spec.starts_with("procedural-flowers") {
                record_embedding_reads(env, &mut trainer.model)?;
            }
            if let Some(init) = init_from {
                details.insert("init_from".into(), init.into());
            }
            trainer.model.card.dataset = Some(set.spec.clone());
            let captions = set.captions.iter().flatten().map(String::as_str);
            let min_count = gantry::text::vocabulary_min_count(captions.clone().count());
            trainer.model.card.vocabulary = gantry::text::vocabulary(captions, min_count);
            finish(&mut trainer.model, "ds-sje", &run, outcome, details)
        }
        TrainCommand::Gan {
            common,
            text_encoder,
            gan: options,
            epochs,
            lr_halve_every,
            real_label,
            instance_noise,
            conditioning,
            fresh_noise,
            init_from,
            restart_schedule,
        } => {
            let GanChoices {
                variant,
                wrong,
                d_batches,
                match_negatives,
                text_noise_along,
                layers,
            } = options.choices()?;
            let GanArgs {
                preset,
                batch,
                lr,
                match_loss,
                mode_seeking,
                captions_averaged,
                text_noise,
                g_ema,
                reworded,
                phrasing_consistency,
                ..
            } = *options;
            gantry::train::gan::check_mode_seeking(mode_seeking, fresh_noise)?;
            gantry::train::gan::check_text_noise(text_noise)?;
            let text_scaling = TextScalingKind::parse(&conditioning)?;
            let run = prepare_run(&common)?;
            let source_dir = env.find_model(&text_encoder)?;
            let source = Model::load_text_side(&source_dir, device).with_context(|| {
                format!("loading the text encoder from {}", source_dir.display())
            })?;
            let set = load_training_set(env, &common, device)?;
            let init = init_model(env, &init_from, Model::load, device)?;
            let (model, schedule) = assemble::gan_model(
                &run.name(),
                &preset,
                layers,
                device,
                common.seed as i64,
                &source,
                init.as_ref().map(|(_, m)| m),
            )
            .map_err(|e| about_init(&init, e))?;
            // The schedule of the model --init-from names, taken up below.
            let schedule = schedule.filter(|_| !restart_schedule);
            if let Some((dir, init)) = &init {
                eprintln!("starting G, D and S from {}", dir.display());
                if let Some(decay) = init.card.training.get("g_ema") {
                    // The folder keeps the average only: G goes on from it
                    // (about 1 / (1 - decay) steps behind the G that trained).
                    eprintln!("its G is the moving average (decay {decay}) of the G that trained: G goes on from the average");
                }
            }
            let embeddings = embeddings(&model, &set)?;
            let gan = GanConfig {
                batch,
                epochs,
                steps: common.steps,
                lr,
                lr_halve_every_epochs: lr_halve_every,
                seed: common.seed,
                wrong,
                real_label,
                instance_noise,
                text_scaling,
                fresh_noise_for_g: fresh_noise,
                match_loss,
                match_negatives,
                d_batches,
                mode_seeking,
                captions_averaged: captions_averaged as usize,
                text_noise,
                text_noise_along,
                g_ema,
                reworded,
                phrasing_consistency,
                ..GanConfig::paper(variant, &set.spec)
            };
            super::gan_args::say_if_rewording(gan.reads_rewordings());
            let mut trainer = GanTrainer::new(model, gan, &set, embeddings)?;
            if common.resume {
                trainer.resume(&run.checkpoint())?;
            } else if let Some(schedule) = &schedule {
                trainer.continue_schedule(schedule).context(
                    "--init-from: taking up its schedule (--restart-schedule starts it again)",
                )?;
                eprintln!(
                    "continuing the schedule at step {} (epoch {:.1} of {}); fresh Adam: the lr warms up to the schedule's over {} steps",
                    schedule.step,
                    schedule.epoch(),
                    trainer.config.epochs,
                    gantry::train::gan::FRESH_ADAM_WARMUP
                );
            }
            eprintln!(
                "training {} ({preset}) on {}",
                variant.name(),
                describe_device(device)
            );
            let (outcome, seconds) = train::run_loop(
                &mut trainer,
                &run,
                &control(&common),
                &mut Progress::new(variant.name()),
            )?;
            let mut details =
                assemble::details(variant.name(), &preset, &set, &trainer, seconds, device);
            details.insert("batch".into(), batch.into());
            details.insert("wrong_images".into(), trainer.config.wrong.name().into());
            details.insert("d_batches".into(), trainer.config.d_batches.name().into());
            details.insert("real_label".into(), trainer.config.real_label.into());
            details.insert(
                "instance_noise".into(),
                trainer.config.instance_noise.into(),
            );
            details.insert("conditioning".into(), text_scaling.name().into());
            trainer.model.card.schedule = Some(trainer.schedule());
            details.insert("fresh_noise_for_g".into(), fresh_noise.into());
            if match_loss > 0.0 {
                details.insert("match_loss".into(), match_loss.into());
                details.insert("match_negatives".into(), match_negatives.name().into());
            }
            if mode_seeking > 0.0 {
                details.insert("mode_seeking".into(), mode_seeking.into());
            }
            details.insert("captions_averaged".into(), captions_averaged.into());
            if text_noise > 0.0 {
                details.insert("text_noise".into(), text_noise.into());
                details.insert("text_noise_along".into(), text_noise_along.name().into());
            }
            if reworded > 0.0 {
                details.insert("reworded".into(), reworded.into());
            }
            if phrasing_consistency > 0.0 {
                details.insert("phrasing_consistency".into(), phrasing_consistency.into());
            }
            details.insert(
                "text_encoder".into(),
                source_dir.display().to_string().into(),
            );
            trainer.settle_average();
            if let Some(average) = &trainer.average {
                // The model draws with G's moving average; the checkpoint
                // keeps both, for the run to go on.
                trainer.model.generator.vs.copy(&average.vs)?;
                details.insert("g_ema".into(), average.decay.into());
                trainer.model.card.notes.push(format!(
                    "G's weights are the exponential moving average (decay {}) of the trained G's over the run (train gan --g-ema).",
                    average.decay
                ));
            }
            trainer.model.card.dataset = Some(set.spec.clone());
            finish(&mut trainer.model, variant.name(), &run, outcome, details)
        }
        TrainCommand::TextDistil {
            common,
            model,
            teacher_options,
            batch,
            lr,
            own_captions,
            rephrase,
            perturb,
            terse,
            made_up,
            g_weight,
        } => text_distil(
            env,
            device,
            common,
            &model,
            teacher_options,
            DistilConfig {
                batch,
                lr,
                own_captions,
                rephrase,
                perturb,
                terse,
                made_up,
                g_weight,
                ..DistilConfig::new("", "")
            },
        ),
        TrainCommand::Pack { run, out } => {
            let from = Run { dir: run }.checkpoint();
            if !from.exists() {
                bail!("{}: no checkpoint to pack", from.display());
            }
            let packed = train::checkpoint::pack(&from, &out)?;
            println!(
                "wrote {} (step {}): {:.1} MB, from {:.1} MB",
                out.display(),
                packed.step,
                packed.bytes_after as f64 / 1e6,
                packed.bytes_before as f64 / 1e6
            );
            Ok(())
        }
        TrainCommand::StyleEncoder {
            common,
            model,
            batch,
            lr,
        } => {
            let run = prepare_run(&common)?;
            let dir = env.find_model(&model)?;
            let loaded = Model::load(&dir, device)?;
            let set = load_training_set(env, &common, device)?;
            let embeddings = embeddings(&loaded, &set)?;
            let steps = common.steps.unwrap_or(2000);
            let config = StyleConfig {
                dataset: set.spec.clone(),
                batch,
                steps,
                lr,
                seed: common.seed,
            };
            let mut trainer = StyleTrainer::new(loaded, config, &set, embeddings)?;
            if common.resume {
                trainer.resume(&run.checkpoint())?;
            }
            let (outcome, seconds) = train::run_loop(
                &mut trainer,
                &run,
                &control(&common),
                &mut Progress::new("style"),
            )?;
            let preset = trainer.model.card.architecture.preset.clone();
            let mut details = BTreeMap::new();
            details.insert(
                "style_encoder".into(),
                serde_json::json!({
                    "steps": trainer.step_index(),
                    "time_s": seconds,
                    "hardware": train::hardware(device),
                    "preset": preset,
                }),
            );
            finish(&mut trainer.model, "style_encoder", &run, outcome, details)
        }
    }
}

/// What a text encoder's embedding carries per attribute, on 300 procedural
/// renders it was not trained on, in-grammar and in held-out phrasings:
/// printed and put in the card.
fn record_embedding_reads(env: &Env, model: &mut Model) -> Result<()> {
    let fresh = super::learn::renders(env, super::eval::EVAL_SEED, 300)?;
    let mut reads = gantry::eval::embedding_reads(model, &fresh, 300)?;
    reads.extend(gantry::eval::embedding_reads_with(
        model,
        &fresh,
        300,
        "phrasing_embedding_reads",
        &gantry::eval::phrased_caption,
    )?);
    for m in reads {
        println!("{:<32} {:>7}  ({})", m.name, m.shown(), m.note);
        model.card.metrics.insert(m.name, m.value.into());
    }
    Ok(())
}

/// `gantry train text-distil`: see `gantry::train::distil`.
fn text_distil(
    env: &Env,
    device: Device,
    common: Common,
    model: &str,
    teacher_options: Vec<String>,
    settings: DistilConfig,
) -> Result<()> {
    let run = prepare_run(&common)?;
    let dir = env.find_model(model)?;
    let mut loaded = Model::load(&dir, device)?;
    let student = load_training_set(env, &common, device)?;
    let teacher_common = Common {
        options: teacher_options,
        ..common.clone()
    };
    let teacher = load_training_set(env, &teacher_common, device)?;
    // The same captions on both sides teach something only when every
    // caption is drawn to its image's mean (--own-captions 0) or the
    // student reads them changed (rephrased, perturbed) for the same targets.
    if student.captions == teacher.captions
        && settings.own_captions > 0.0
        && settings.rephrase == 0.0
        && settings.perturb == 0.0
    {
        bail!(
            "the model's captions and the new ones are the same: pass the options of the captions it was trained on with --teacher-opt (e.g. grammar=classic) and the new ones with --opt, or --own-captions 0 to draw every caption to its image's mean, or --rephrase/--perturb to teach it those captions changed"
        );
    }
    // The two caption sets differ by their loader options.
    let described = |spec: &str, options: &[String]| match options {
        [] => spec.to_string(),
        _ => format!("{spec} {}", options.join(" ")),
    };
    let config = DistilConfig {
        dataset: described(&student.spec, &common.options),
        teacher_dataset: described(&teacher.spec, &teacher_common.options),
        steps: common.steps.unwrap_or(3000),
        seed: common.seed,
        ..settings
    };
    loaded.card.name = run.name();
    let bar = progress_bar(0, "teacher");
    let mut trainer =
        DistilTrainer::new(loaded, config, &student, &teacher, &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64)
        })?;
    bar.finish_and_clear();
    let probe: Vec<usize> = student.split(true).into_iter().take(200).collect();
    let before = distil::new_phrasing_error(&trainer, &probe)?;
    if common.resume {
        trainer.resume(&run.checkpoint())?;
    }
    eprintln!(
        "teaching {}'s text encoder the captions of {} on {}",
        dir.display(),
        trainer.config.dataset,
        describe_device(device)
    );
    let (outcome, seconds) = train::run_loop(
        &mut trainer,
        &run,
        &control(&common),
        &mut Progress::new("distil"),
    )?;
    let after = distil::new_phrasing_error(&trainer, &probe)?;
    println!(
        "new phrasings, held-out images: unexplained share of the targets' variance {:.3} -> {:.3}",
        before, after
    );
    let preset = trainer.model.card.architecture.preset.clone();
    let mut details =
        assemble::details("text_distil", &preset, &student, &trainer, seconds, device);
    details.insert("text_distil_from".into(), dir.display().to_string().into());
    details.insert(
        "text_distil_captions".into(),
        format!(
            "{} (taught) and {} (kept)",
            trainer.config.dataset, trainer.config.teacher_dataset
        )
        .into(),
    );
    details.insert(
        "text_distil_own_captions".into(),
        trainer.config.own_captions.into(),
    );
    if trainer.config.rephrase > 0.0 {
        details.insert(
            "text_distil_rephrase".into(),
            trainer.config.rephrase.into(),
        );
    }
    if trainer.config.perturb > 0.0 {
        details.insert("text_distil_perturb".into(), trainer.config.perturb.into());
    }
    if trainer.config.terse > 0.0 {
        details.insert("text_distil_terse".into(), trainer.config.terse.into());
    }
    if trainer.config.made_up > 0.0 {
        details.insert("text_distil_made_up".into(), trainer.config.made_up.into());
    }
    if trainer.config.g_weight > 0.0 {
        details.insert(
            "text_distil_g_weight".into(),
            trainer.config.g_weight.into(),
        );
    }
    details.insert("text_distil_unexplained_before".into(), before.into());
    details.insert("text_distil_unexplained_after".into(), after.into());
    let steps_done = trainer.step_index();
    let model = &mut trainer.model;
    // What `gantry eval` measured was of the old text encoder.
    model.card.metrics.retain(|k, _| !k.starts_with("eval:"));
    if student.spec.starts_with("procedural-flowers") {
        record_embedding_reads(env, model)?;
    }
    let captions = student
        .captions
        .iter()
        .chain(&teacher.captions)
        .flatten()
        .map(String::as_str);
    let min_count = gantry::text::vocabulary_min_count(captions.clone().count());
    let mut vocabulary = gantry::text::vocabulary(captions, min_count);
    vocabulary.extend(model.card.vocabulary.iter().cloned());
    vocabulary.sort();
    vocabulary.dedup();
    model.card.vocabulary = vocabulary;
    let config = &trainer.config;
    let targets = if config.own_captions >= 1.0 {
        format!(
            "the teacher's embedding of each caption of {} as written",
            config.teacher_dataset
        )
    } else if config.own_captions > 0.0 {
        format!(
            "the mean embedding of their images' captions of {}, which keep their own",
            config.teacher_dataset
        )
    } else {
        format!(
            "the mean embedding of their images' captions of {}, as do those captions themselves",
            config.teacher_dataset
        )
    };
    let share = |of: f64, what: &str| {
        if of > 0.0 {
            format!(" ({:.0}% of them {what})", of * 100.0)
        } else {
            String::new()
        }
    };
    let rephrased = share(
        config.rephrase,
        "rephrased: clauses reordered, fillers put in",
    );
    let put_in = if config.made_up > 0.0 {
        format!(
            "words of chat put in ({:.0}% of them made up)",
            config.made_up * 100.0
        )
    } else {
        "words of chat put in".to_string()
    };
    let perturbed = share(
        config.perturb * (1.0 - config.terse),
        &format!("perturbed: small words left out, {put_in}, punctuation changed"),
    );
    let terse = share(
        config.perturb * config.terse,
        "written as terse lists: small words left out, words joined by symbols",
    );
    let measured = if config.g_weight > 0.0 {
        format!(
            " ({:.0}% of the loss measured as G reads φ)",
            config.g_weight * 100.0
        )
    } else {
        String::new()
    };
    let note = format!(
        "Text encoder taught new phrasings by `train text-distil` ({} steps) from {}: captions of {}{rephrased}{perturbed}{terse} map to {targets}{measured}; G, D and S unchanged. Run `gantry eval` for this model's metrics.",
        steps_done,
        dir.display(),
        config.dataset,
    );
    model.card.notes.push(note);
    finish(model, "text_distil", &run, outcome, details)
}
