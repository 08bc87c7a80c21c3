//! The running mean/std normalizer of the hypernetwork input (spec §3.2).

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::TensorError;

/// `ε` of [`RunningNorm::apply`]: f32 machine epsilon, 2⁻²³.
pub const APPLY_EPS: f32 = f32::EPSILON;
/// The constant added to `n − 1` in the unbiased std.
pub const STD_EPS: f64 = 1e-8;

/// Running column statistics of every row seen so far (Chan et al.'s parallel update).
///
/// State is kept in f32 on the backend, as in the reference; the row count is exact. Keep it on
/// the plain (non-autodiff) backend: its statistics never take a gradient.
#[derive(Debug, Clone)]
pub struct RunningNorm<B: Backend> {
    count: u64,
    /// Column means, 1×D.
    mean: Tensor<B, 2>,
    /// Sum of squared deviations (M2), 1×D.
    m2: Tensor<B, 2>,
    /// Unbiased std used by [`RunningNorm::apply`], 1×D.
    std: Tensor<B, 2>,
}

impl<B: Backend> RunningNorm<B> {
    /// A fresh normalizer over `dim` columns: mean 0, std 1, nothing seen.
    pub fn new(dim: usize, device: &B::Device) -> Self {
        Self {
            count: 0,
            mean: Tensor::zeros([1, dim], device),
            m2: Tensor::zeros([1, dim], device),
            std: Tensor::ones([1, dim], device),
        }
    }

    /// Number of columns.
    pub fn dim(&self) -> usize {
        self.mean.dims()[1]
    }

    /// Rows seen so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Column means (1×D).
    pub fn mean(&self) -> &Tensor<B, 2> {
        &self.mean
    }

    /// Unbiased column std (1×D), `sqrt(M2 / (n − 1 + 1e-8))`.
    pub fn std(&self) -> &Tensor<B, 2> {
        &self.std
    }

    /// Sum of squared deviations M2 (1×D).
    pub fn m2(&self) -> &Tensor<B, 2> {
        &self.m2
    }

    /// Restores a saved state (`count`, mean, M2, std; each 1×D).
    pub fn from_parts(
        count: u64,
        mean: Tensor<B, 2>,
        m2: Tensor<B, 2>,
        std: Tensor<B, 2>,
    ) -> Result<Self, TensorError> {
        let d = mean.dims();
        if d[0] != 1 || m2.dims() != d || std.dims() != d {
            return Err(TensorError::Shape {
                op: "normalizer state",
                detail: format!(
                    "mean {:?}, M2 {:?}, std {:?}; need 1×D each",
                    d,
                    m2.dims(),
                    std.dims()
                ),
            });
        }
        Ok(Self {
            count,
            mean,
            m2,
            std,
        })
    }

    /// Biased variance `M2 / max(n, 1)` (1×D): kept for completeness, not used by `apply`.
    pub fn var(&self) -> Tensor<B, 2> {
        self.m2.clone().div_scalar(self.count.max(1) as f64)
    }

    /// Folds the rows of `x` (m×D, m ≥ 1) into the statistics.
    pub fn update(&mut self, x: &Tensor<B, 2>) -> Result<(), TensorError> {
        let [m, d] = x.dims();
        if m == 0 || d != self.dim() {
            return Err(TensorError::Shape {
                op: "normalizer update",
                detail: format!("got {m}×{d} rows, need at least one row of {}", self.dim()),
            });
        }
        let x = x.clone();
        let n = self.count as f64;
        let total = n + m as f64;
        let batch_mean = x.clone().mean_dim(0);
        let batch_var = x.var_bias(0);
        let delta = batch_mean - self.mean.clone();
        self.mean = self.mean.clone() + delta.clone().mul_scalar(m as f64 / total);
        self.m2 = self.m2.clone()
            + batch_var.mul_scalar(m as f64)
            + delta.powi_scalar(2).mul_scalar(n * m as f64 / total);
        self.std = self.m2.clone().div_scalar(total - 1.0 + STD_EPS).sqrt();
        self.count += m as u64;
        Ok(())
    }

    /// `(x − μ) / (σ + ε)`; gradient flows through `x` only.
    pub fn apply(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        (x - self.mean.clone()) / self.std.clone().add_scalar(APPLY_EPS)
    }
}
