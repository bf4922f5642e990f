//! Putting a model together for a run, and writing what the run did into
//! its card: the library's side of `gantry train`, so that the command line
//! only parses options and reports.

use super::{hardware, Outcome, Trainer};
use crate::model::{Layers, ModelConfig};
use crate::training_set::TrainingSet;
use crate::weights::{Model, Schedule};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use tch::Device;

/// A fresh model of `preset` for the joint embedding, its text and image
/// encoders copied from `init` when given (which must have the preset's).
pub fn joint_model(
    name: &str,
    preset: &str,
    device: Device,
    seed: i64,
    init: Option<&Model>,
) -> Result<Model> {
    let config = ModelConfig::preset(preset)?;
    let mut model = Model::new(name, &config, device, seed)?;
    if let Some(init) = init {
        let (a, b) = (&init.card.architecture, &model.card.architecture);
        if a.text_encoder != b.text_encoder || a.image_encoder != b.image_encoder {
            bail!("its text and image encoders are not preset {preset}");
        }
        model.text_encoder.vs.copy(&init.text_encoder.vs)?;
        model.image_encoder.vs.copy(&init.image_encoder.vs)?;
    }
    Ok(model)
}

/// A model for a GAN run: G and D of `preset` (with `layers`' choices) sized to `source`'s text encoder, whose text and image encoders (and metrics, vocabulary and
/// training history) it takes. With `init`, G, D, S and the conditioning
/// come from that model, its training becomes this one's history, and its
/// schedule is returned for the run to take up.
pub fn gan_model(
    name: &str,
    preset: &str,
    layers: Layers,
    device: Device,
    seed: i64,
    source: &Model,
    init: Option<&Model>,
) -> Result<(Model, Option<Schedule>)> {
    let mut config = ModelConfig::preset(preset)?.with_layers(layers);
    let e = source.card.architecture.text_encoder.embedding_dim;
    config.text_encoder = source.card.architecture.text_encoder.clone();
    config.image_encoder = source.card.architecture.image_encoder.clone();
    config.generator.embedding_dim = e;
    config.discriminator.embedding_dim = e;
    let mut model = Model::new(name, &config, device, seed)?;
    model.text_encoder.vs.copy(&source.text_encoder.vs)?;
    model.image_encoder.vs.copy(&source.image_encoder.vs)?;
    model.card.metrics = source.card.metrics.clone();
    model.card.vocabulary = source.card.vocabulary.clone();
    model.card.training = source.card.training.clone();
    let Some(init) = init else {
        return Ok((model, None));
    };
    if init.card.architecture.generator != model.card.architecture.generator
        || init.card.architecture.discriminator != model.card.architecture.discriminator
    {
        let theirs = init.card.architecture.layers();
        if theirs.upsampling != layers.upsampling {
            bail!(
                "its G upsamples by '{}', this run's by '{}': pass --upsampling {0} to continue it",
                theirs.upsampling.name(),
                layers.upsampling.name()
            );
        }
        if theirs.minibatch_std != layers.minibatch_std {
            bail!(
                "its D {} the batch's spread, this run's {}: {} --minibatch-std to continue it",
                if theirs.minibatch_std {
                    "reads"
                } else {
                    "does not read"
                },
                if layers.minibatch_std {
                    "does"
                } else {
                    "does not"
                },
                if theirs.minibatch_std {
                    "pass"
                } else {
                    "leave out"
                },
            );
        }
        if theirs.d_joint_norm != layers.d_joint_norm {
            bail!(
                "its D normalises its joint layer by '{}', this run's by '{}': pass --d-joint-norm {0} to continue it",
                theirs.d_joint_norm.name(),
                layers.d_joint_norm.name()
            );
        }
        bail!("its G and D are not preset {preset} over this text encoder");
    }
    model.generator.vs.copy(&init.generator.vs)?;
    model.discriminator.vs.copy(&init.discriminator.vs)?;
    model.style_encoder.vs.copy(&init.style_encoder.vs)?;
    model.set_conditioning(init.card.architecture.conditioning.clone())?;
    // The earlier training is part of this model's history.
    for (k, v) in &init.card.training {
        model
            .card
            .training
            .insert(format!("before: {k}"), v.clone());
    }
    Ok((model, init.card.schedule.clone()))
}

/// What a run did, for the card: `{what}_steps`, `_epochs`, `_time_s`,
/// `_hardware`, `_preset` and `_train_images`.
pub fn details(
    what: &str,
    preset: &str,
    set: &TrainingSet,
    trainer: &dyn Trainer,
    seconds: f64,
    device: Device,
) -> BTreeMap<String, serde_json::Value> {
    let steps = trainer.step_index();
    BTreeMap::from([
        (format!("{what}_steps"), steps.into()),
        (
            format!("{what}_epochs"),
            (steps as f64 / trainer.steps_per_epoch().max(1) as f64).into(),
        ),
        (format!("{what}_time_s"), seconds.into()),
        (format!("{what}_hardware"), hardware(device).into()),
        (format!("{what}_preset"), preset.into()),
        (
            format!("{what}_train_images"),
            set.split(false).len().into(),
        ),
    ])
}

/// Marks the card trained, with the run's details and whether it finished,
/// as `{stage}_complete`: a card gathers the stages that made it (a text
/// encoder, a GAN, a style encoder, a distillation), and a later stage's
/// finishing says nothing of an earlier one's.
pub fn finish_card(
    model: &mut Model,
    stage: &str,
    outcome: Outcome,
    details: BTreeMap<String, serde_json::Value>,
) {
    model.card.trained = true;
    model.card.training.extend(details);
    model.card.training.insert(
        format!("{stage}_complete"),
        (outcome == Outcome::Finished).into(),
    );
}
