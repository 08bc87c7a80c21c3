//! The MALMEN-style hypernetwork (spec §3): a running normalizer, low-rank residual blocks with
//! per-module scale and shift, and per-module step size η and log-ridge λ̂.

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use emsedit_tensor::RunningNorm;
use serde::{Deserialize, Serialize};

/// Shape of a hypernetwork.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HyperConfig {
    /// Rank r of each block.
    pub rank: usize,
    /// Number of blocks n_b.
    pub blocks: usize,
    /// Initial step size η (`editor.lr`, 1e-6).
    pub lr: f64,
}

impl Default for HyperConfig {
    fn default() -> Self {
        Self {
            rank: 1024,
            blocks: 4,
            lr: 1e-6,
        }
    }
}

/// The trainable parameters (or their gradients, which have the same shapes).
#[derive(Debug, Clone)]
pub struct Params<B: Backend> {
    /// A_ℓ, D × r.
    pub a: Vec<Tensor<B, 2>>,
    /// B_ℓ, r × D.
    pub b: Vec<Tensor<B, 2>>,
    /// β_ℓ, 1 × D.
    pub bias: Vec<Tensor<B, 2>>,
    /// Sc_ℓ, n_g × D.
    pub scale: Vec<Tensor<B, 2>>,
    /// Sh_ℓ, n_g × D.
    pub shift: Vec<Tensor<B, 2>>,
    /// η, n_g × 1.
    pub eta: Tensor<B, 2>,
    /// λ̂, n_g × 1 (λ = e^λ̂).
    pub log_ridge: Tensor<B, 2>,
}

impl<B: Backend> Params<B> {
    /// Every tensor, in a fixed order (the optimizer's slots).
    pub fn tensors(&self) -> Vec<&Tensor<B, 2>> {
        let blocks = (0..self.a.len()).flat_map(|l| {
            [
                &self.a[l],
                &self.b[l],
                &self.bias[l],
                &self.scale[l],
                &self.shift[l],
            ]
        });
        blocks.chain([&self.eta, &self.log_ridge]).collect()
    }

    /// Applies `f` to every tensor, keeping the structure.
    pub fn map<B2: Backend>(
        &self,
        mut f: impl FnMut(&Tensor<B, 2>) -> Tensor<B2, 2>,
    ) -> Params<B2> {
        Params {
            a: self.a.iter().map(&mut f).collect(),
            b: self.b.iter().map(&mut f).collect(),
            bias: self.bias.iter().map(&mut f).collect(),
            scale: self.scale.iter().map(&mut f).collect(),
            shift: self.shift.iter().map(&mut f).collect(),
            eta: f(&self.eta),
            log_ridge: f(&self.log_ridge),
        }
    }

    /// Rebuilds from tensors in [`Params::tensors`] order.
    pub fn from_tensors(mut t: Vec<Tensor<B, 2>>) -> Self {
        let log_ridge = t.pop().expect("log_ridge");
        let eta = t.pop().expect("eta");
        let blocks = t.len() / 5;
        let mut it = t.into_iter();
        let mut p = Params {
            a: Vec::with_capacity(blocks),
            b: Vec::with_capacity(blocks),
            bias: Vec::with_capacity(blocks),
            scale: Vec::with_capacity(blocks),
            shift: Vec::with_capacity(blocks),
            eta,
            log_ridge,
        };
        for _ in 0..blocks {
            p.a.push(it.next().expect("a"));
            p.b.push(it.next().expect("b"));
            p.bias.push(it.next().expect("bias"));
            p.scale.push(it.next().expect("scale"));
            p.shift.push(it.next().expect("shift"));
        }
        p
    }

    /// Element-wise sum.
    pub fn add(&self, other: &Self) -> Self {
        let sum: Vec<_> = self
            .tensors()
            .into_iter()
            .zip(other.tensors())
            .map(|(x, y)| x.clone() + y.clone())
            .collect();
        Self::from_tensors(sum)
    }

    /// All-zero tensors of the same shapes.
    pub fn zeros_like(&self) -> Self {
        self.map(|t| t.zeros_like())
    }
}

/// The residual blocks applied to normalized rows `y` (N × D) for module index `j`.
pub fn blocks<B: Backend>(p: &Params<B>, mut y: Tensor<B, 2>, j: usize) -> Tensor<B, 2> {
    for l in 0..p.a.len() {
        let [_, d] = p.scale[l].dims();
        let z = y.clone().matmul(p.a[l].clone()).matmul(p.b[l].clone()) + p.bias[l].clone();
        // clamp_min masks only z < 0, so the gradient passes at exactly 0 (spec §3.4).
        let z = z.clamp_min(0.0);
        let sc = p.scale[l].clone().slice([j..j + 1, 0..d]);
        let sh = p.shift[l].clone().slice([j..j + 1, 0..d]);
        y = z * sc + sh + y;
    }
    y
}

/// One hypernetwork for a shape group (a, b) of `modules` modules.
#[derive(Debug, Clone)]
pub struct HyperNet<B: Backend> {
    key_dim: usize,
    modules: usize,
    /// The running normalizer of `K ⊕ G` (never reset, spec §3.2).
    pub norm: RunningNorm<B>,
    /// The trainable parameters.
    pub params: Params<B>,
}

impl<B: Backend> HyperNet<B> {
    /// A fresh network: A ~ N(0, 1) (unscaled) from the backend's seeded generator, B = 0,
    /// β = 0, Sc = 1, Sh = 0, η = `config.lr`, λ̂ = 0.
    pub fn new(
        key_dim: usize,
        value_dim: usize,
        modules: usize,
        config: &HyperConfig,
        device: &B::Device,
    ) -> Self {
        let d = key_dim + value_dim;
        let r = config.rank;
        let n = config.blocks;
        let params = Params {
            a: (0..n)
                .map(|_| Tensor::random([d, r], Distribution::Normal(0.0, 1.0), device))
                .collect(),
            b: (0..n).map(|_| Tensor::zeros([r, d], device)).collect(),
            bias: (0..n).map(|_| Tensor::zeros([1, d], device)).collect(),
            scale: (0..n).map(|_| Tensor::ones([modules, d], device)).collect(),
            shift: (0..n)
                .map(|_| Tensor::zeros([modules, d], device))
                .collect(),
            eta: Tensor::full([modules, 1], config.lr, device),
            log_ridge: Tensor::zeros([modules, 1], device),
        };
        Self {
            key_dim,
            modules,
            norm: RunningNorm::new(d, device),
            params,
        }
    }

    /// Key width a.
    pub fn key_dim(&self) -> usize {
        self.key_dim
    }

    /// Modules in the group n_g.
    pub fn modules(&self) -> usize {
        self.modules
    }

    /// Folds a cache's rows into the normalizer (spec §2.3 step 5).
    pub fn observe(
        &mut self,
        keys: &Tensor<B, 2>,
        grads: &Tensor<B, 2>,
    ) -> Result<(), emsedit_tensor::TensorError> {
        self.norm
            .update(&Tensor::cat(vec![keys.clone(), grads.clone()], 1))
    }

    /// Normalized input rows `norm(K ⊕ G)`.
    pub fn normalized(&self, keys: &Tensor<B, 2>, grads: &Tensor<B, 2>) -> Tensor<B, 2> {
        self.norm
            .apply(Tensor::cat(vec![keys.clone(), grads.clone()], 1))
    }

    /// Pseudo-keys and pseudo-value-gradients (K̃, G̃) for module index `j`, untracked.
    pub fn pseudo(
        &self,
        keys: &Tensor<B, 2>,
        grads: &Tensor<B, 2>,
        j: usize,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let y = blocks(&self.params, self.normalized(keys, grads), j);
        split(y, self.key_dim)
    }

    /// η_j and λ_j = e^λ̂_j as host numbers.
    pub fn scalars(&self, j: usize) -> (f64, f64) {
        let at = |t: &Tensor<B, 2>| -> f64 {
            let v: Vec<f64> = t
                .clone()
                .slice([j..j + 1, 0..1])
                .into_data()
                .convert::<f64>()
                .into_vec()
                .expect("f64");
            v[0]
        };
        (at(&self.params.eta), at(&self.params.log_ridge).exp())
    }

    /// The step size η of every module of the group.
    pub fn step_sizes(&self) -> Vec<f64> {
        self.params
            .eta
            .clone()
            .into_data()
            .convert::<f64>()
            .into_vec()
            .expect("f64")
    }

    /// The parameters on the autodiff backend, every tensor tracking gradients.
    pub fn tracked(&self) -> Params<Autodiff<B>> {
        self.params
            .map(|t| Tensor::<Autodiff<B>, 2>::from_inner(t.clone()).require_grad())
    }
}

/// Splits rows of width a + b into (N × a, N × b).
pub fn split<B: Backend>(y: Tensor<B, 2>, a: usize) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let [_, d] = y.dims();
    (y.clone().narrow(1, 0, a), y.narrow(1, a, d - a))
}
