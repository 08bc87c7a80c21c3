//! # emsedit
//!
//! Meta-learning-based knowledge editing of causal language models in Rust: EMSEdit
//! ("Efficient Multi-Step Meta-Learning-based Model Editing") and its baselines, on burn.
//!
//! This facade re-exports the small public API of the layered crates:
//!
//! | layer | crate | owns |
//! |---|---|---|
//! | backend | [`tensor`] (`emsedit-tensor`) | devices, seeding, ridge solve, normalizer, Adam |
//! | models | [`llm`] (`emsedit-llm`) | causal LMs and edit hooks |
//! | meta-learning | [`meta`] (`emsedit-meta`) | hypernetworks and editors |
//! | scenarios | [`eval`] (`emsedit-eval`) | data, scenarios, metrics |
//!
//! ```
//! use emsedit::{cpu, ridge_solve, Cpu, RidgeForm, Tensor};
//!
//! let device = cpu();
//! let keys = Tensor::<Cpu, 2>::from_floats([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]], &device);
//! let values = Tensor::<Cpu, 2>::from_floats([[1.0], [0.0], [1.0]], &device);
//! let ridge = ridge_solve(&keys, &values, 1.0, RidgeForm::Auto)?;
//! let grads = ridge.backward(&Tensor::ones([2, 1], &device), false)?;
//! assert_eq!(grads.values.dims(), [3, 1]);
//! # Ok::<(), emsedit::TensorError>(())
//! ```

#![warn(missing_docs)]

pub mod fixtures;

pub use emsedit_eval as eval;
pub use emsedit_llm as llm;
pub use emsedit_meta as meta;
pub use emsedit_tensor as tensor;

pub use emsedit_tensor::{
    Adam, AdamConfig, Cpu, CpuTrain, DeviceKind, Ridge, RidgeForm, RidgeGrads, RunningNorm, Tensor,
    TensorError, clip_coefficient, cpu, grad_norm, ridge_solve, seed,
};
#[cfg(feature = "cuda")]
pub use emsedit_tensor::{Cuda, CudaTrain, cuda};
