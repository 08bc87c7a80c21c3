//! The ridge least-squares solve `Δ = (KᵀK + λI)⁻¹ KᵀV` and its hand-written backward.
//!
//! burn 0.21 has no linear solve, let alone a differentiable one, so the gradient is derived
//! by hand (see `docs/numerics.md`). K and V are read once into host f64; every product is a
//! `gemm`, the Cholesky factor and the triangular solves are f64, and only the returned
//! tensors are rounded to f32.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::TensorError;
use crate::cholesky::Cholesky;
use crate::host::{Mat, Op};

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
pub struct RidgeGrads<B: Backend> {
    /// `∂𝓛/∂V = K (KᵀK + λI)⁻¹ Γ` (N×b), the spec's Ψ.
    pub values: Tensor<B, 2>,
    /// `∂𝓛/∂λ = −⟨(KᵀK + λI)⁻¹Γ, Δ⟩`.
    pub lambda: f64,
    /// `∂𝓛/∂K` (N×a), when asked for.
    pub keys: Option<Tensor<B, 2>>,
}

/// A solved ridge system: the shift `Δ` plus what the backward needs.
#[derive(Debug, Clone)]
pub struct Ridge<B: Backend> {
    form: RidgeForm,
    lambda: f64,
    chol: Cholesky,
    keys: Mat,
    values: Mat,
    /// Dual: `U = (KKᵀ + λI)⁻¹ V` (N×b). Primal: `Δ` (a×b).
    aux: Mat,
    delta: Tensor<B, 2>,
}

fn read<B: Backend>(t: &Tensor<B, 2>, what: &'static str) -> Result<Mat, TensorError> {
    let m = Mat::from_tensor(OP, t.clone())?;
    if !m.is_finite() {
        return Err(TensorError::NonFinite { op: OP, what });
    }
    Ok(m)
}

fn factor(mut gram: Mat, lambda: f64) -> Result<Cholesky, TensorError> {
    gram.add_diagonal(lambda);
    let n = gram.rows;
    Cholesky::factor(OP, gram.data, n)
}

/// Solves `Δ = argmin ‖KΔ − V‖² + λ‖Δ‖²` for keys K (N×a) and values V (N×b).
///
/// Works on any backend (autodiff included); nothing is tracked.
pub fn ridge_solve<B: Backend>(
    keys: &Tensor<B, 2>,
    values: &Tensor<B, 2>,
    lambda: f64,
    form: RidgeForm,
) -> Result<Ridge<B>, TensorError> {
    let [n, a] = keys.dims();
    let [nv, b] = values.dims();
    if n != nv || n == 0 || a == 0 || b == 0 {
        return Err(TensorError::Shape {
            op: OP,
            detail: format!("keys are {n}×{a} and values {nv}×{b}; need the same N ≥ 1 rows"),
        });
    }
    if !(lambda.is_finite() && lambda >= 0.0) {
        return Err(TensorError::InvalidRidge { op: OP, lambda });
    }
    let form = form.resolve(n, a);
    let k = read(keys, "keys")?;
    let v = read(values, "values")?;
    let (chol, aux, delta) = match form {
        RidgeForm::Dual => {
            let chol = factor(k.matmul(Op::N, &k, Op::T), lambda)?;
            let mut u = v.clone();
            chol.solve_in_place(&mut u.data, b);
            let delta = k.matmul(Op::T, &u, Op::N);
            (chol, u, delta)
        }
        _ => {
            let chol = factor(k.matmul(Op::T, &k, Op::N), lambda)?;
            let mut d = k.matmul(Op::T, &v, Op::N);
            chol.solve_in_place(&mut d.data, b);
            (chol, d.clone(), d)
        }
    };
    if !delta.is_finite() {
        return Err(TensorError::NonFinite {
            op: OP,
            what: "solution",
        });
    }
    Ok(Ridge {
        form,
        lambda,
        chol,
        delta: delta.to_tensor(&keys.device()),
        keys: k,
        values: v,
        aux,
    })
}

impl<B: Backend> Ridge<B> {
    /// The shift Δ (a×b, f32).
    pub fn delta(&self) -> &Tensor<B, 2> {
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

    /// Back-propagates `Γ = ∂𝓛/∂Δ` (a×b). `∂𝓛/∂K` is computed only when `with_keys`.
    pub fn backward(
        &self,
        grad_delta: &Tensor<B, 2>,
        with_keys: bool,
    ) -> Result<RidgeGrads<B>, TensorError> {
        let [a, b] = self.delta.dims();
        if grad_delta.dims() != [a, b] {
            return Err(TensorError::Shape {
                op: OP,
                detail: format!("∂Δ is {:?}, Δ is {a}×{b}", grad_delta.dims()),
            });
        }
        let gamma = read(grad_delta, "∂Δ")?;
        let k = &self.keys;
        let (psi, lambda, keys) = match self.form {
            RidgeForm::Dual => {
                // Ψ = M (KΓ) with M = (KKᵀ + λI)⁻¹, U = M V, ∂λ = −⟨Ψ, U⟩,
                // ∂K = U Γᵀ − (U Ψᵀ + Ψ Uᵀ) K.
                let u = &self.aux;
                let mut psi = k.matmul(Op::N, &gamma, Op::N);
                self.chol.solve_in_place(&mut psi.data, b);
                let keys = with_keys.then(|| {
                    let mut sym = u.matmul(Op::N, &psi, Op::T);
                    sym.axpy(1.0, &psi.matmul(Op::N, u, Op::T));
                    let mut gk = u.matmul(Op::N, &gamma, Op::T);
                    gk.axpy(-1.0, &sym.matmul(Op::N, k, Op::N));
                    gk
                });
                let lambda = -psi.dot(u);
                (psi, lambda, keys)
            }
            _ => {
                // Q = S⁻¹Γ, Ψ = KQ, ∂λ = −⟨Q, Δ⟩, ∂K = (V − KΔ) Qᵀ − Ψ Δᵀ.
                let delta = &self.aux;
                let mut q = gamma;
                self.chol.solve_in_place(&mut q.data, b);
                let psi = k.matmul(Op::N, &q, Op::N);
                let keys = with_keys.then(|| {
                    let mut resid = self.values.clone();
                    resid.axpy(-1.0, &k.matmul(Op::N, delta, Op::N));
                    let mut gk = resid.matmul(Op::N, &q, Op::T);
                    gk.axpy(-1.0, &psi.matmul(Op::N, delta, Op::T));
                    gk
                });
                (psi, -q.dot(delta), keys)
            }
        };
        let device = self.delta.device();
        Ok(RidgeGrads {
            values: psi.to_tensor(&device),
            lambda,
            keys: keys.map(|g| g.to_tensor(&device)),
        })
    }
}
