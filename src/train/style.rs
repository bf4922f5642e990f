//! The style encoder S (paper.md §5), trained with G frozen:
//! L = ‖z − S(G(z, φ(t)))‖²₂ over random z and training captions.

use super::checkpoint::Position;
use super::optim::Optimizer;
use super::{checkpoint, mean_caption_embedding, noise, Run, RunLength, StepLosses, Trainer};
use crate::training_set::{Rng, TrainingSet};
use crate::weights::Model;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StyleConfig {
    pub dataset: String,
    pub batch: usize,
    pub steps: u64,
    pub lr: f64,
    pub seed: u64,
}

pub struct StyleTrainer<'a> {
    pub model: Model,
    pub config: StyleConfig,
    data: &'a TrainingSet,
    embeddings: Tensor,
    train: Vec<usize>,
    opt: Optimizer,
    position: Position,
}

impl<'a> StyleTrainer<'a> {
    pub fn new(
        model: Model,
        config: StyleConfig,
        data: &'a TrainingSet,
        embeddings: Tensor,
    ) -> Result<Self> {
        let train = data.split(false);
        if train.is_empty() || config.batch == 0 {
            bail!("no training images (or a zero batch)");
        }
        let opt = Optimizer::adam(&model.style_encoder.vs, config.lr, 0.5);
        Ok(Self {
            model,
            data,
            embeddings,
            train,
            opt,
            position: Position::start(config.seed ^ 0x3C6E_F372_FE94_F82B),
            config,
        })
    }

    fn style_step(&mut self) -> Result<StepLosses> {
        let device = self.model.device;
        let nz = self.model.card.architecture.generator.nz as usize;
        let batch: Vec<usize> = (0..self.config.batch)
            .map(|_| self.train[self.position.rng.below(self.train.len())])
            .collect();
        let text = mean_caption_embedding(&self.embeddings, &batch, 4, &mut self.position.rng);
        let z = noise(&mut self.position.rng, batch.len(), nz, device);
        let images = tch::no_grad(|| self.model.generator.net.forward_t(&z, &text, false));
        let s = self.model.style_encoder.net.forward_t(&images, true);
        let loss = (&s - &z)
            .square()
            .sum_dim_intlist(1, false, Kind::Float)
            .mean(Kind::Float);
        self.opt.zero_grad();
        loss.backward();
        self.opt.step();
        self.position.step += 1;
        let mut out = StepLosses::default();
        out.term("loss", &loss);
        Ok(out)
    }

    /// A grid: rows are real training images' styles, columns captions.
    pub fn transfer_grid(&self, path: &Path) -> Result<()> {
        let device = self.model.device;
        let picks: Vec<usize> = self
            .train
            .iter()
            .step_by((self.train.len() / 4).max(1))
            .take(4)
            .copied()
            .collect();
        let sources = self.data.image_batch(&picks, false, &mut Rng(0));
        let s = tch::no_grad(|| {
            self.model
                .style_encoder
                .net
                .forward_t(&sources.to_device(device), false)
        });
        let mut cells = Vec::new();
        for row in 0..picks.len() {
            let source = crate::imageio::images_from_tensor(&sources.narrow(0, row as i64, 1))?;
            cells.push((source[0].clone(), "style source".to_string()));
            for &j in picks.iter().take(3) {
                let text = self.embeddings.get(j as i64).get(0).unsqueeze(0);
                let out = tch::no_grad(|| {
                    self.model
                        .generator
                        .net
                        .forward_t(&s.narrow(0, row as i64, 1), &text, false)
                });
                cells.push((
                    crate::imageio::images_from_tensor(&out)?.remove(0),
                    self.data.captions[j][0].clone(),
                ));
            }
        }
        crate::imageio::write_png(path, &crate::sheet::contact_sheet(&cells, 4, 2, 3), &[])
    }
}

impl Trainer for StyleTrainer<'_> {
    fn position(&self) -> &Position {
        &self.position
    }

    fn checkpoint_parts(&mut self) -> checkpoint::Parts<'_> {
        checkpoint::Parts {
            settings: checkpoint::Settings::of(&self.config, |c| c.steps = 0),
            networks: vec![("style_encoder", &self.model.style_encoder.vs)],
            optimizers: vec![("opt_style", &mut self.opt)],
            position: &mut self.position,
        }
    }

    fn length(&self) -> RunLength {
        RunLength {
            train_images: self.train.len(),
            batch: self.config.batch,
            steps: Some(self.config.steps),
            epochs: 0,
        }
    }

    fn train_step(&mut self) -> Result<StepLosses> {
        self.style_step()
    }

    fn end_of_epoch(&mut self, epoch: u64, run: &Run) -> Result<BTreeMap<String, f64>> {
        self.transfer_grid(&run.samples().join(format!("style-{epoch:04}.png")))?;
        Ok(BTreeMap::new())
    }
}
