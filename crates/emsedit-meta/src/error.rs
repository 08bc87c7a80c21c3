//! The error type of the meta-learning layer.

use emsedit_llm::LlmError;
use emsedit_tensor::TensorError;

/// Errors of editors and their training.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The model rejected a batch, module or shift.
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// A numerical routine failed (ridge solve, optimizer).
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A checkpoint that cannot be read, or was made for another model or module set.
    #[error("{path}: checkpoint: {detail}")]
    Checkpoint {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// An editor configuration that cannot work with this model.
    #[error("editor config: {0}")]
    Config(String),
}
