//! # emsedit-tensor — the backend layer
//!
//! The bottom of the emsedit stack. It owns:
//!
//! - **backends**: [`Cpu`] (burn's Flex backend, the default) and [`CpuTrain`] (with
//!   autodiff), `Cuda` / `CudaTrain` with the `cuda` feature; [`DeviceKind`] for command lines;
//!   [`seed`] for reproducible runs;
//! - **the ridge solve** [`ridge_solve`]: `Δ = (KᵀK + λI)⁻¹KᵀV` in the a×a ([`RidgeForm::Primal`])
//!   and N×N Woodbury ([`RidgeForm::Dual`]) forms, by Cholesky, with the gradient with respect to
//!   K, V and λ ([`Ridge::backward`]);
//! - **the running normalizer** [`RunningNorm`] of the hypernetwork input;
//! - **PyTorch-exact [`Adam`]** and global-norm clipping ([`grad_norm`], [`clip_coefficient`]);
//! - **[`reuse_freed_memory`]**: an opt-in allocator setting (glibc) that keeps freed tensor
//!   buffers for the next tensor, which the binaries call first thing.
//!
//! Nothing here knows about language models or editors; every other crate builds on it.
//!
//! ```
//! use burn::tensor::Tensor;
//! use emsedit_tensor::{Cpu, cpu, ridge_solve, RidgeForm};
//!
//! let device = cpu();
//! let keys = Tensor::<Cpu, 2>::from_floats([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], &device);
//! let values = Tensor::<Cpu, 2>::from_floats([[1.0], [2.0], [0.5]], &device);
//! let ridge = ridge_solve(&keys, &values, 0.1, RidgeForm::Auto)?;
//! assert_eq!(ridge.delta().dims(), [2, 1]);
//! # Ok::<(), emsedit_tensor::TensorError>(())
//! ```

#![warn(missing_docs)]

mod alloc;
mod cholesky;
mod device;
mod error;
pub mod host;
mod normalizer;
mod optim;
mod ridge;
pub mod threads;

pub use alloc::{ARENAS, MMAP_THRESHOLD, reuse_freed_memory};
pub use burn;
pub use burn::tensor::Tensor;
pub use cholesky::{Cholesky, MAX_CONDITION};
pub use device::{Cpu, CpuTrain, DeviceKind, NdArrayCpu, cpu, host_rng, rng_lock, seed};
#[cfg(feature = "cuda")]
pub use device::{Cuda, CudaTrain, cuda};
pub use error::TensorError;
pub use normalizer::{APPLY_EPS, RunningNorm, STD_EPS};
pub use optim::{Adam, AdamConfig, clip_coefficient, grad_norm};
pub use ridge::{Ridge, RidgeForm, RidgeGrads, ridge_solve};
