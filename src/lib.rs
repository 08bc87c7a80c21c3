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
//! The most used items of each layer are re-exported here: models ([`CausalLm`],
//! [`LmTokenizer`]), editors ([`Editor`], [`Ft`]), data ([`load`], [`EditRecord`]) and the
//! scenario driver ([`run`], [`ScenarioConfig`], [`Report`]).
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

//!
//! Loading a Hugging Face model directory and taking the editors' gradients (spec §1.2, §2):
//!
//! ```
//! use emsedit::llm::{Batch, CausalLm, LmTokenizer};
//! use emsedit::{cpu, Cpu};
//!
//! let dir = std::path::Path::new("fixtures/llm/gpt2");
//! let lm = CausalLm::<Cpu>::load(dir, &cpu())?;
//! let tok = LmTokenizer::load_dir(dir)?;
//! let prompt = tok.encode_prompt("The capital of Veltria is")?;
//! let target = tok.encode_target("Orsk")?;
//! let (p, t) = (prompt.len(), target.len());
//! let input_ids: Vec<i64> = prompt.iter().chain(&target[..t - 1]).map(|&i| i as i64).collect();
//! let labels: Vec<i64> =
//!     std::iter::repeat(-100).take(p - 1).chain(target.iter().map(|&i| i as i64)).collect();
//! let batch =
//!     Batch { batch: 1, time: input_ids.len(), attention_mask: vec![1; input_ids.len()], input_ids, labels };
//! let module = lm.module("transformer.h.2.mlp.c_proj")?;
//! let grads = lm.edit_gradients(&batch, &[module])?;
//! assert_eq!(grads.keys[0].dims(), [t, 180]);
//! assert_eq!(grads.gammas[0].dims(), [180, 45]);
//! # Ok::<(), emsedit::llm::LlmError>(())
//! ```

#![warn(missing_docs)]

pub mod fixtures;
/// The method registry: editors by name, their overrides and default edited modules.
pub mod methods;
pub mod models;

pub use emsedit_eval as eval;
pub use emsedit_llm as llm;
pub use emsedit_meta as meta;
pub use emsedit_tensor as tensor;

pub use emsedit_tensor::{
    Adam, AdamConfig, Cpu, CpuTrain, DeviceKind, Ridge, RidgeForm, RidgeGrads, RunningNorm, Tensor,
    TensorError, clip_coefficient, cpu, grad_norm, reuse_freed_memory, ridge_solve, seed,
};
#[cfg(feature = "cuda")]
pub use emsedit_tensor::{Cuda, CudaTrain, cuda};

pub use emsedit_eval::DataError;
pub use emsedit_eval::data::{Dataset, EditRecord, Tuple, load};
pub use emsedit_eval::scenario::{
    Phase, Report, Run, RunError, ScenarioConfig, Scores, run, run_with_progress,
};
pub use emsedit_llm::patch::Patch;
pub use emsedit_llm::{Batch, CausalLm, EditGrads, LlmError, LmTokenizer, ModuleId};
pub use emsedit_meta::{
    EditBatch, Editor, Ft, FtConfig, HyperEditor, HyperEditorConfig, MetaError, UltraEdit,
    UltraEditConfig,
};

/// The embedded default model (`fixtures/model` of this crate: a 4-layer GPT-2 that knows the
/// synthetic world's facts), as an absolute path that does not depend on the working
/// directory.
pub fn default_model_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/model")
}

/// The README's Rust examples, compiled and run as doctests so that the README cannot drift
/// from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
