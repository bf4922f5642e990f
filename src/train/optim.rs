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
    /// Where each parameter's elements lie in the flat moment buffers.
    spans: Vec<(i64, i64)>,
    /// Adam: first moment; RMSprop: unused. All parameters end to end, so
    /// that one update is a handful of kernels, not a handful per tensor.
    first: Tensor,
    /// Adam: second moment; RMSprop: running mean of squared gradients.
    second: Tensor,
}

impl Optimizer {
    pub fn new(vs: &nn::VarStore, rule: Rule, lr: f64) -> Self {
        let params = named_parameters(vs);
        let mut spans = Vec::with_capacity(params.len());
        let mut total = 0i64;
        for (_, p) in &params {
            let n = p.numel() as i64;
            spans.push((total, n));
            total += n;
        }
        let options = params
            .first()
            .map_or((tch::Kind::Float, vs.device()), |(_, p)| {
                (p.kind(), p.device())
            });
        Self {
            rule,
            lr,
            steps: 0,
            first: Tensor::zeros([total], options),
            second: Tensor::zeros([total], options),
            spans,
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

    /// Parameter `i`'s slice of a flat buffer, shaped like the parameter.
    fn slot(&self, buffer: &Tensor, i: usize) -> Tensor {
        let (start, n) = self.spans[i];
        buffer.narrow(0, start, n).view_(self.params[i].1.size())
    }

    /// The change to add to the parameters for gradient `g` (any shape; the
    /// moments `m` and `v` of the same shape are updated in place).
    fn delta(&self, g: &Tensor, m: &mut Tensor, v: &mut Tensor) -> Tensor {
        let t = self.steps as f64;
        match self.rule {
            Rule::Adam { beta1, beta2, eps } => {
                // As PyTorch's Adam: m ← lerp(m, g, 1 − β1),
                // v ← β2 v + (1 − β2) g², p ← p − lr/(1 − β1ᵗ) · m / (√v/√(1 − β2ᵗ) + ε).
                let _ = m.lerp_(g, 1.0 - beta1);
                let _ = v.g_mul_scalar_(beta2).addcmul_(&(g * (1.0 - beta2)), g);
                let step_size = self.lr / (1.0 - beta1.powf(t));
                let mut denominator = v.sqrt();
                let _ = denominator
                    .g_div_scalar_((1.0 - beta2.powf(t)).sqrt())
                    .g_add_scalar_(eps);
                (&*m * -step_size).g_div_(&denominator)
            }
            Rule::RmsProp { alpha, eps } => {
                let _ = v.g_mul_scalar_(alpha).g_add_(&(g * g * (1.0 - alpha)));
                let mut denominator = v.sqrt();
                let _ = denominator.g_add_scalar_(eps);
                (g * -self.lr).g_div_(&denominator)
            }
        }
    }

    /// One update from the gradients now in the parameters. Where every
    /// parameter has a gradient (the usual case) the moments are updated as
    /// one flat tensor; parameters without a gradient are left alone.
    pub fn step(&mut self) {
        self.steps += 1;
        tch::no_grad(|| {
            let grads: Vec<Tensor> = self.params.iter().map(|(_, p)| p.grad()).collect();
            if grads.iter().all(Tensor::defined) {
                let flat: Vec<Tensor> = grads.iter().map(|g| g.reshape([-1])).collect();
                let g = Tensor::cat(&flat, 0);
                let (mut m, mut v) = (self.first.shallow_clone(), self.second.shallow_clone());
                let delta = self.delta(&g, &mut m, &mut v);
                for (i, (_, p)) in self.params.iter().enumerate() {
                    let _ = p.shallow_clone().g_add_(&self.slot(&delta, i));
                }
            } else {
                for (i, g) in grads.iter().enumerate() {
                    if !g.defined() {
                        continue;
                    }
                    let (mut m, mut v) = (self.slot(&self.first, i), self.slot(&self.second, i));
                    let delta = self.delta(g, &mut m, &mut v);
                    let _ = self.params[i].1.shallow_clone().g_add_(&delta);
                }
            }
        });
    }

    /// The optimizer's state as named tensors under `prefix`: a pair of
    /// moments per parameter (names that [`moment_of`] reads back), and the
    /// number of updates taken (`PREFIX.steps`), which Adam's bias
    /// correction counts and which a run started with a fresh optimizer on
    /// trained weights differs from the run's step.
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = vec![(format!("{prefix}.steps"), Tensor::from_slice(&[self.steps]))];
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((
                format!("{prefix}.first.{name}"),
                self.slot(&self.first, i).copy(),
            ));
            out.push((
                format!("{prefix}.second.{name}"),
                self.slot(&self.second, i).copy(),
            ));
        }
        out
    }

    /// Restores the state written by [`Optimizer::state`]. A packed
    /// checkpoint (`checkpoint::pack`) has no first moments: they start at
    /// zero. `steps` is the update count where the checkpoint does not keep
    /// one (those written before it did were of optimizers as old as the run).
    pub fn load_state(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        prefix: &str,
        steps: i64,
        packed: bool,
    ) -> Result<()> {
        let steps = match tensors.get(&format!("{prefix}.steps")) {
            Some(saved) => saved.f_int64_value(&[0])?,
            None => steps,
        };
        for (i, (name, p)) in self.params.iter().enumerate() {
            for (which, buffer) in [("first", &self.first), ("second", &self.second)] {
                let key = format!("{prefix}.{which}.{name}");
                let mut slot = self.slot(buffer, i);
                if packed && which == "first" {
                    let _ = slot.zero_();
                    continue;
                }
                let src = tensors
                    .get(&key)
                    .ok_or_else(|| anyhow!("checkpoint has no optimizer state '{key}'"))?;
                if src.size() != p.size() {
                    return Err(anyhow!(
                        "optimizer state '{key}' has shape {:?}, expected {:?}",
                        src.size(),
                        p.size()
                    ));
                }
                tch::no_grad(|| slot.f_copy_(src))?;
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// Which moment a tensor named by [`Optimizer::state`] is (`PREFIX.first.PARAM`
/// or `PREFIX.second.PARAM`); None for any other name, such as a network's
/// variable (`network/layer.weight`).
pub fn moment_of(name: &str) -> Option<Moment> {
    let (prefix, rest) = name.split_once('.')?;
    if prefix.contains('/') {
        return None;
    }
    match rest.split_once('.')?.0 {
        "first" => Some(Moment::First),
        "second" => Some(Moment::Second),
        _ => None,
    }
}

pub enum Moment {
    First,
    Second,
}
