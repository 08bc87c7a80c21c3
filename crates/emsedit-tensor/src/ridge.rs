//! The ridge least-squares solve `Δ = (KᵀK + λI)⁻¹ KᵀV` and its hand-written backward.
//!
//! burn 0.22 has no differentiable linear solve (burn-linalg offers LU/QR without autodiff),
//! so the gradient is derived by hand (see `docs/numerics.md`). Products run as burn f64
//! matmuls on the operands' device; the Cholesky factor and the triangular solves run in f64
//! on the host. Only the returned shift is rounded to f32.

use burn::tensor::{DType, Device, Tensor};

use crate::TensorError;
use crate::cholesky::Cholesky;
use crate::host::{all_finite, dot, from_f64, to_f64};

const OP: &str = "ridge solve";

/// Which system to factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RidgeForm {
    /// The smaller of the two: [`RidgeForm::Dual`] when N < a, else [`RidgeForm::Primal`].
    #[default]
    Auto,
    /// The a×a system `(KᵀK + λI) Δ = KᵀV`.
    Primal,
    /// The N×N (Woodbury) system: `Δ = Kᵀ (KKᵀ + λI)⁻¹ V`.
    Dual,
}

impl RidgeForm {
    fn resolve(self, n: usize, a: usize) -> Self {
        match self {
            Self::Auto if n < a => Self::Dual,
            Self::Auto => Self::Primal,
            other => other,
        }
    }
}

/// Gradients of a scalar loss through [`Ridge`], given `∂𝓛/∂Δ`.
#[derive(Debug, Clone)]
pub struct RidgeGrads {
    /// `∂𝓛/∂V = K (KᵀK + λI)⁻¹ Γ` (N×b), the spec's Ψ.
    pub values: Tensor<2>,
    /// `∂𝓛/∂λ = −⟨(KᵀK + λI)⁻¹Γ, Δ⟩`.
    pub lambda: f64,
    /// `∂𝓛/∂K` (N×a), when asked for.
    pub keys: Option<Tensor<2>>,
}

/// A solved ridge system: the shift `Δ` plus what the backward needs.
#[derive(Debug, Clone)]
pub struct Ridge {
    form: RidgeForm,
    lambda: f64,
    chol: Cholesky,
    /// K and V in f64.
    keys: Tensor<2>,
    values: Tensor<2>,
    /// Dual: `U = (KKᵀ + λI)⁻¹ V` (N×b). Primal: `Δ` (a×b). f64, host copy alongside.
    aux: Tensor<2>,
    aux_host: Vec<f64>,
    delta: Tensor<2>,
}

fn check_shapes(keys: &Tensor<2>, values: &Tensor<2>) -> Result<[usize; 3], TensorError> {
    let [n, a] = keys.dims();
    let [nv, b] = values.dims();
    if n != nv || n == 0 || a == 0 || b == 0 {
        return Err(TensorError::Shape {
            op: OP,
            detail: format!("keys are {n}×{a} and values {nv}×{b}; need the same N ≥ 1 rows"),
        });
    }
    Ok([n, a, b])
}

fn gram_plus_ridge(
    gram: Tensor<2>,
    order: usize,
    lambda: f64,
    what: &'static str,
) -> Result<Cholesky, TensorError> {
    let mut host = to_f64(OP, gram)?;
    if !all_finite(&host) {
        return Err(TensorError::NonFinite { op: OP, what });
    }
    for i in 0..order {
        host[i * order + i] += lambda;
    }
    Cholesky::factor(OP, host, order)
}

/// Solves `Δ = argmin ‖KΔ − V‖² + λ‖Δ‖²` for keys K (N×a) and values V (N×b).
///
/// Inputs may live on an autodiff device; the solve itself is never tracked.
pub fn ridge_solve(
    keys: &Tensor<2>,
    values: &Tensor<2>,
    lambda: f64,
    form: RidgeForm,
) -> Result<Ridge, TensorError> {
    let [n, a, b] = check_shapes(keys, values)?;
    if !(lambda.is_finite() && lambda >= 0.0) {
        return Err(TensorError::InvalidRidge { op: OP, lambda });
    }
    let form = form.resolve(n, a);
    let device = keys.device().inner();
    let k = keys.clone().inner().cast(DType::F64);
    let v = values.clone().inner().cast(DType::F64);
    let (chol, aux_host, aux_shape) = match form {
        RidgeForm::Dual => {
            let chol = gram_plus_ridge(k.clone().matmul(k.clone().transpose()), n, lambda, "keys")?;
            let mut u = to_f64(OP, v.clone())?;
            chol.solve_in_place(&mut u, b);
            (chol, u, [n, b])
        }
        _ => {
            let kt = k.clone().transpose();
            let chol = gram_plus_ridge(kt.clone().matmul(k.clone()), a, lambda, "keys")?;
            let mut d = to_f64(OP, kt.matmul(v.clone()))?;
            chol.solve_in_place(&mut d, b);
            (chol, d, [a, b])
        }
    };
    if !all_finite(&aux_host) {
        return Err(TensorError::NonFinite {
            op: OP,
            what: "values",
        });
    }
    let aux = from_f64(aux_host.clone(), aux_shape, &device);
    let delta64 = match form {
        RidgeForm::Dual => k.clone().transpose().matmul(aux.clone()),
        _ => aux.clone(),
    };
    Ok(Ridge {
        form,
        lambda,
        chol,
        keys: k,
        values: v,
        aux,
        aux_host,
        delta: delta64.cast(DType::F32),
    })
}

impl Ridge {
    /// The shift Δ (a×b, f32).
    pub fn delta(&self) -> &Tensor<2> {
        &self.delta
    }

    /// The form that was factored.
    pub fn form(&self) -> RidgeForm {
        self.form
    }

    /// The ridge coefficient λ.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    fn device(&self) -> Device {
        self.keys.device()
    }

    /// Back-propagates `Γ = ∂𝓛/∂Δ` (a×b). `∂𝓛/∂K` is computed only when `with_keys`.
    pub fn backward(
        &self,
        grad_delta: &Tensor<2>,
        with_keys: bool,
    ) -> Result<RidgeGrads, TensorError> {
        let [a, b] = self.delta.dims();
        if grad_delta.dims() != [a, b] {
            return Err(TensorError::Shape {
                op: OP,
                detail: format!("∂Δ is {:?}, Δ is {a}×{b}", grad_delta.dims()),
            });
        }
        let gamma = grad_delta.clone().inner().cast(DType::F64);
        let k = &self.keys;
        let n = k.dims()[0];
        let device = self.device();
        match self.form {
            RidgeForm::Dual => {
                // Ψ = M (KΓ) with M = (KKᵀ + λI)⁻¹, U = M V, ∂λ = −⟨Ψ, U⟩,
                // ∂K = U Γᵀ − (U Ψᵀ + Ψ Uᵀ) K.
                let mut psi = to_f64(OP, k.clone().matmul(gamma.clone()))?;
                if !all_finite(&psi) {
                    return Err(TensorError::NonFinite {
                        op: OP, what: "∂Δ"
                    });
                }
                self.chol.solve_in_place(&mut psi, b);
                let lambda = -dot(&psi, &self.aux_host);
                let psi_t = from_f64(psi, [n, b], &device);
                let keys = with_keys.then(|| {
                    let u = &self.aux;
                    let sym = u.clone().matmul(psi_t.clone().transpose())
                        + psi_t.clone().matmul(u.clone().transpose());
                    (u.clone().matmul(gamma.transpose()) - sym.matmul(k.clone())).cast(DType::F32)
                });
                Ok(RidgeGrads {
                    values: psi_t.cast(DType::F32),
                    lambda,
                    keys,
                })
            }
            _ => {
                // Q = S⁻¹Γ, Ψ = KQ, ∂λ = −⟨Q, Δ⟩, ∂K = (V − KΔ) Qᵀ − Ψ Δᵀ.
                let mut q = to_f64(OP, gamma)?;
                if !all_finite(&q) {
                    return Err(TensorError::NonFinite {
                        op: OP, what: "∂Δ"
                    });
                }
                self.chol.solve_in_place(&mut q, b);
                let lambda = -dot(&q, &self.aux_host);
                let q_t = from_f64(q, [a, b], &device);
                let psi = k.clone().matmul(q_t.clone());
                let keys = with_keys.then(|| {
                    let delta = &self.aux;
                    let resid = self.values.clone() - k.clone().matmul(delta.clone());
                    (resid.matmul(q_t.transpose()) - psi.clone().matmul(delta.clone().transpose()))
                        .cast(DType::F32)
                });
                Ok(RidgeGrads {
                    values: psi.cast(DType::F32),
                    lambda,
                    keys,
                })
            }
        }
    }
}
