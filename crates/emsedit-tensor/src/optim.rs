//! PyTorch-exact Adam and global-norm gradient clipping (spec §4.1).

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};

use crate::TensorError;

/// Adam hyperparameters (PyTorch defaults except the learning rate, which is the spec's meta_lr).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-5,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

#[derive(Debug, Clone)]
struct Moments<B: Backend> {
    step: u32,
    m: Tensor<B, 1>,
    v: Tensor<B, 1>,
}

/// PyTorch's single-tensor Adam (no weight decay, no AMSGrad, bias correction on).
///
/// Each parameter has a slot with its own step counter, which advances on every call even for
/// an all-zero gradient, as in PyTorch.
#[derive(Debug, Clone)]
pub struct Adam<B: Backend> {
    config: AdamConfig,
    slots: Vec<Option<Moments<B>>>,
}

impl<B: Backend> Adam<B> {
    /// A fresh optimizer.
    pub fn new(config: AdamConfig) -> Self {
        Self {
            config,
            slots: Vec::new(),
        }
    }

    /// The hyperparameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// Changes the learning rate (for a schedule); the moments are kept.
    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// Steps taken by the parameter in `slot`.
    pub fn steps(&self, slot: usize) -> u32 {
        self.slots
            .get(slot)
            .and_then(Option::as_ref)
            .map_or(0, |s| s.step)
    }

    /// One update of the parameter in `slot`; returns the new value.
    pub fn step<const D: usize>(
        &mut self,
        slot: usize,
        param: Tensor<B, D>,
        grad: Tensor<B, D>,
    ) -> Result<Tensor<B, D>, TensorError> {
        let dims = param.dims();
        if grad.dims() != dims {
            return Err(TensorError::Shape {
                op: "adam",
                detail: format!("parameter {dims:?} but gradient {:?}", grad.dims()),
            });
        }
        let c = self.config;
        let numel = dims.iter().product::<usize>();
        let p = param.reshape([numel]);
        let g = grad.reshape([numel]);
        if self.slots.len() <= slot {
            self.slots.resize(slot + 1, None);
        }
        let state = self.slots[slot].get_or_insert_with(|| Moments {
            step: 0,
            m: g.zeros_like(),
            v: g.zeros_like(),
        });
        if state.m.dims() != [numel] {
            return Err(TensorError::Shape {
                op: "adam",
                detail: format!(
                    "slot {slot} holds {} entries, got {numel}",
                    state.m.dims()[0]
                ),
            });
        }
        state.step += 1;
        // exp_avg.lerp_(grad, 1 − β1): for weight < 0.5 torch computes m + w (g − m).
        let w = 1.0 - c.beta1;
        state.m = if w < 0.5 {
            state.m.clone() + (g.clone() - state.m.clone()).mul_scalar(w)
        } else {
            g.clone() - (g.clone() - state.m.clone()).mul_scalar(1.0 - w)
        };
        // exp_avg_sq.mul_(β2).addcmul_(grad, grad, value = 1 − β2)
        state.v = state.v.clone().mul_scalar(c.beta2) + (g.clone() * g).mul_scalar(1.0 - c.beta2);
        let bias1 = 1.0 - c.beta1.powi(state.step as i32);
        let bias2_sqrt = (1.0 - c.beta2.powi(state.step as i32)).sqrt();
        let step_size = c.lr / bias1;
        let denom = state
            .v
            .clone()
            .sqrt()
            .div_scalar(bias2_sqrt)
            .add_scalar(c.eps);
        let updated = p + (state.m.clone() / denom).mul_scalar(-step_size);
        Ok(updated.reshape(dims))
    }
}

/// The L2 norm of one gradient tensor, as `torch.linalg.vector_norm` (f32).
pub fn grad_norm<B: Backend, const D: usize>(grad: &Tensor<B, D>) -> f32 {
    let sq: f32 = grad.clone().powi_scalar(2).sum().into_scalar().elem();
    sq.sqrt()
}

/// `torch.nn.utils.clip_grad_norm_` arithmetic: from the per-tensor norms, the total norm
/// `τ = ‖(‖g₁‖, …, ‖gₖ‖)‖₂` and the factor `min(1, max_norm / (τ + 1e-6))` that every gradient
/// is multiplied by.
pub fn clip_coefficient(norms: &[f32], max_norm: f32) -> (f32, f32) {
    let total = norms.iter().map(|n| n * n).sum::<f32>().sqrt();
    let coef = max_norm / (total + 1e-6);
    (total, coef.min(1.0))
}
