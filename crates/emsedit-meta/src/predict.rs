//! Shift predictors and their meta-gradients (spec §4.1): PREDICT_LS with METAGRAD_LS
//! (MALMEN, RLEdit, EMSEdit) and PREDICT_SUM with METAGRAD_SUM (MEND).
//!
//! The meta-gradient is decoupled (MALMEN): the LLM's backward gives Γ = ∂𝓛/∂W, the ridge
//! backward turns it into Ψ = ∂𝓛/∂V and ∂𝓛/∂λ, and a surrogate `⟨Ψ, V(θ)⟩` back-propagated
//! through the hypernetwork (burn autodiff) gives ∂𝓛/∂θ. The LLM graph and the hypernetwork
//! graph are never alive at the same time.

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use emsedit_tensor::{Ridge, RidgeForm, ridge_solve};

use crate::MetaError;
use crate::hypernet::{HyperNet, Params, blocks, split};

/// Which predictor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Predictor {
    /// Least squares: `Δ = (KᵀK + λI)⁻¹KᵀV`, `V = diag(−η⟨k, k̃⟩) G̃`.
    LeastSquares,
    /// MEND's sum of rank-one updates: `Δ = −η K̃ᵀG̃`.
    Sum,
    /// UltraEdit's: least squares with `c_t = −η‖k̂_t‖²` (normalized key with itself) and the
    /// ridge fixed by λ̂ (spec §4.6; its networks have no blocks and are never trained).
    Normalized,
}

/// A predicted shift and what its meta-gradient needs.
#[derive(Debug, Clone)]
pub struct Prediction<B: Backend> {
    /// Δ (a×b).
    pub delta: Tensor<B, 2>,
    /// The cached keys K (N×a).
    pub keys: Tensor<B, 2>,
    /// The cached output gradients G (N×b).
    pub grads: Tensor<B, 2>,
    /// Module index j in the group.
    pub module: usize,
    /// The predictor that made it.
    pub predictor: Predictor,
    ridge: Option<Ridge<B>>,
}

/// Predicts the shift of module `j` from its cache (no gradient tracking).
pub fn predict<B: Backend>(
    net: &HyperNet<B>,
    predictor: Predictor,
    keys: &Tensor<B, 2>,
    grads: &Tensor<B, 2>,
    j: usize,
) -> Result<Prediction<B>, MetaError> {
    let (kt, gt) = net.pseudo(keys, grads, j);
    let (eta, lambda) = net.scalars(j);
    let (delta, ridge) = match predictor {
        Predictor::LeastSquares => {
            let c = (keys.clone() * kt).sum_dim(1).mul_scalar(-eta);
            let ridge = ridge_solve(keys, &(gt * c), lambda, RidgeForm::Auto)?;
            (ridge.delta().clone(), Some(ridge))
        }
        Predictor::Sum => (kt.transpose().matmul(gt).mul_scalar(-eta), None),
        Predictor::Normalized => {
            let c = kt.powi_scalar(2).sum_dim(1).mul_scalar(-eta);
            let ridge = ridge_solve(keys, &(gt * c), lambda, RidgeForm::Auto)?;
            (ridge.delta().clone(), Some(ridge))
        }
    };
    Ok(Prediction {
        delta,
        keys: keys.clone(),
        grads: grads.clone(),
        module: j,
        predictor,
        ridge,
    })
}

/// ∂𝓛/∂θ for one module given `gamma` = Γ = ∂𝓛/∂W (a×b) at the edited weights.
pub fn metagrad<B: Backend>(
    net: &HyperNet<B>,
    pred: &Prediction<B>,
    gamma: &Tensor<B, 2>,
) -> Result<Params<B>, MetaError> {
    let j = pred.module;
    let p = net.tracked();
    let y = blocks(
        &p,
        Tensor::from_inner(net.normalized(&pred.keys, &pred.grads)),
        j,
    );
    let (kt, gt) = split(y, net.key_dim());
    let eta = p.eta.clone().slice([j..j + 1, 0..1]);
    let (surrogate, dlambda) = match &pred.ridge {
        Some(ridge) => {
            let back = ridge.backward(gamma, false)?;
            let psi = Tensor::<Autodiff<B>, 2>::from_inner(back.values);
            let k = Tensor::<Autodiff<B>, 2>::from_inner(pred.keys.clone());
            let c = (k * kt).sum_dim(1) * eta.neg();
            ((gt * c * psi).sum(), Some(ridge.lambda() * back.lambda))
        }
        None => {
            let g = Tensor::<Autodiff<B>, 2>::from_inner(gamma.clone());
            let delta = kt.transpose().matmul(gt) * eta.neg();
            ((delta * g).sum(), None)
        }
    };
    let grads = surrogate.backward();
    let mut out = p.map(|t| {
        t.grad(&grads)
            .unwrap_or_else(|| t.clone().inner().zeros_like())
    });
    if let Some(dl) = dlambda {
        // ∂λ̂_j = λ ∂λ (spec §4.1), added to row j only.
        let n = net.modules();
        let mut row = vec![0f64; n];
        row[j] = dl;
        let device = out.log_ridge.device();
        out.log_ridge = out.log_ridge + Tensor::from_data(TensorData::new(row, [n, 1]), &device);
    }
    Ok(out)
}
