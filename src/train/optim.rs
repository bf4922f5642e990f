//! Adam and RMSprop written out over named tensors, so that their state (the
//! moment estimates) can be saved in a checkpoint and a resumed run continues
//! exactly. (tch's optimizers keep their state inside libtorch, out of reach.)

use anyhow::{anyhow, Result};
use std::collections::HashMap;
use tch::{nn, Tensor};

/// The trainable variables of a var store, sorted by name.
pub fn named_parameters(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut params: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    params
}

#[derive(Clone, Copy, Debug)]
pub enum Rule {
    /// Adam (Kingma & Ba): β1, β2, ε.
    Adam { beta1: f64, beta2: f64, eps: f64 },
    /// RMSprop as torch7's optim.rmsprop: α, ε.
    RmsProp { alpha: f64, eps: f64 },
}

pub struct Optimizer {
    pub rule: Rule,
    pub lr: f64,
    pub steps: i64,
    params: Vec<(String, Tensor)>,
    /// Adam: first moment; RMSprop: unused.
    first: Vec<Tensor>,
    /// Adam: second moment; RMSprop: running mean of squared gradients.
    second: Vec<Tensor>,
}

impl Optimizer {
    pub fn new(vs: &nn::VarStore, rule: Rule, lr: f64) -> Self {
        let params = named_parameters(vs);
        let zeros =
            |p: &Vec<(String, Tensor)>| p.iter().map(|(_, t)| t.zeros_like().detach()).collect();
        Self {
            rule,
            lr,
            steps: 0,
            first: zeros(&params),
            second: zeros(&params),
            params,
        }
    }

    /// Adam with the paper's GAN settings: β1 = 0.5, β2 = 0.999.
    pub fn adam(vs: &nn::VarStore, lr: f64, beta1: f64) -> Self {
        Self::new(
            vs,
            Rule::Adam {
                beta1,
                beta2: 0.999,
                eps: 1e-8,
            },
            lr,
        )
    }

    /// RMSprop as the text encoder was trained with (α = 0.99, ε = 1e-8).
    pub fn rmsprop(vs: &nn::VarStore, lr: f64) -> Self {
        Self::new(
            vs,
            Rule::RmsProp {
                alpha: 0.99,
                eps: 1e-8,
            },
            lr,
        )
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// One update from the gradients now in the parameters.
    pub fn step(&mut self) {
        self.steps += 1;
        let t = self.steps as f64;
        tch::no_grad(|| {
            for (i, (_, p)) in self.params.iter_mut().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                match self.rule {
                    Rule::Adam { beta1, beta2, eps } => {
                        // As PyTorch's single-tensor Adam: m ← lerp(m, g, 1 − β1),
                        // v ← β2 v + (1 − β2) g², p ← p − lr/(1 − β1ᵗ) · m / (√v/√(1 − β2ᵗ) + ε).
                        let m = &mut self.first[i];
                        let v = &mut self.second[i];
                        let _ = m.lerp_(&g, 1.0 - beta1);
                        let _ = v.g_mul_scalar_(beta2).addcmul_(&(&g * (1.0 - beta2)), &g);
                        let step_size = self.lr / (1.0 - beta1.powf(t));
                        let denominator =
                            (v.sqrt() / (1.0 - beta2.powf(t)).sqrt()).g_add_scalar_(eps);
                        let _ = p.addcdiv_(&(&*m * -step_size), &denominator);
                    }
                    Rule::RmsProp { alpha, eps } => {
                        let v = &mut self.second[i];
                        let _ = v.g_mul_scalar_(alpha).g_add_(&(&g * &g * (1.0 - alpha)));
                        let update = &g / (v.sqrt() + eps) * self.lr;
                        let _ = p.g_sub_(&update);
                    }
                }
            }
        });
    }

    /// The optimizer's state as named tensors under `prefix`.
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((
                format!("{prefix}.first.{name}"),
                self.first[i].shallow_clone(),
            ));
            out.push((
                format!("{prefix}.second.{name}"),
                self.second[i].shallow_clone(),
            ));
        }
        out
    }

    /// Restores the state written by [`Optimizer::state`].
    pub fn load_state(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        prefix: &str,
        steps: i64,
    ) -> Result<()> {
        for (i, (name, _)) in self.params.iter().enumerate() {
            for (which, slot) in [
                ("first", &mut self.first[i]),
                ("second", &mut self.second[i]),
            ] {
                let key = format!("{prefix}.{which}.{name}");
                let src = tensors
                    .get(&key)
                    .ok_or_else(|| anyhow!("checkpoint has no optimizer state '{key}'"))?;
                tch::no_grad(|| slot.f_copy_(src))?;
            }
        }
        self.steps = steps;
        Ok(())
    }
}
