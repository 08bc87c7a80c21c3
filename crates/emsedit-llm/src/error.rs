//! The error type of the model layer.

use std::path::PathBuf;

/// Errors loading or running a model. Each names the file, tensor or module involved.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `config.json` is malformed or lacks a field.
    #[error("{path}: field `{field}`: {detail}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The field.
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// A `model_type` this crate does not implement.
    #[error(
        "{path}: field `model_type`: unknown model type `{model_type}` (supported: {supported})"
    )]
    UnknownModelType {
        /// The config file.
        path: PathBuf,
        /// The value found.
        model_type: String,
        /// The supported values.
        supported: &'static str,
    },
    /// A safetensors file that cannot be parsed.
    #[error("{path}: invalid safetensors: {detail}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// A tensor the architecture needs is absent.
    #[error("{path}: missing tensor `{name}`")]
    MissingTensor {
        /// The weights file (or index).
        path: PathBuf,
        /// The tensor name.
        name: String,
    },
    /// A tensor whose shape disagrees with the config.
    #[error("{path}: tensor `{name}` has shape {found:?} but the config implies {expected:?}")]
    TensorShape {
        /// The weights file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// Shape implied by config.json.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor stored in a dtype we cannot convert to f32.
    #[error("{path}: tensor `{name}` has unsupported dtype {dtype}")]
    TensorDtype {
        /// The weights file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// The dtype.
        dtype: String,
    },
    /// An edit-module name that the model does not have.
    #[error("no module `{name}` in this {arch} model (editable modules look like `{example}`)")]
    UnknownModule {
        /// The requested name.
        name: String,
        /// The architecture.
        arch: &'static str,
        /// One valid name.
        example: String,
    },
    /// A `tokenizer.json` that cannot be loaded, or text it cannot encode.
    #[error("{path}: tokenizer: {detail}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// The library's message.
        detail: String,
    },
    /// A batch the model cannot take.
    #[error("invalid batch: {0}")]
    Batch(String),
    /// An operation this architecture does not offer (pre-training and saving are GPT-2 only).
    #[error("{operation} is not available for `{arch}` models (only for: {supported})")]
    Unsupported {
        /// What was asked.
        operation: &'static str,
        /// The model's architecture.
        arch: &'static str,
        /// The architectures that offer it.
        supported: &'static str,
    },
    /// A checkpoint tensor with NaN or infinite entries.
    #[error("{path}: tensor `{name}` has NaN or infinite entries")]
    NonFiniteTensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
    },
    /// Checkpoint tensors the architecture does not use (e.g. a config with fewer layers than
    /// the weights).
    #[error("{path}: {} tensor(s) that this config does not use: {}", names.len(), names.join(", "))]
    UnusedTensors {
        /// The checkpoint.
        path: PathBuf,
        /// Their names.
        names: Vec<String>,
    },
    /// A tokenizer whose vocabulary does not fit the model's.
    #[error("{path}: the tokenizer has {tokenizer} tokens, the model's vocabulary is {model}")]
    VocabMismatch {
        /// The tokenizer file.
        path: PathBuf,
        /// Tokens the tokenizer can produce.
        tokenizer: usize,
        /// The model's vocabulary size.
        model: usize,
    },
    /// An edit patch that cannot be read or does not fit the model.
    #[error("patch: {0}")]
    Patch(String),
    /// A weight or a weight update with NaN or infinite entries.
    #[error("{what} of `{name}` is not finite (NaN or infinite entries)")]
    NonFinite {
        /// The module or tensor.
        name: String,
        /// `shift`, `weight`, ...
        what: &'static str,
    },
    /// A shift whose shape does not match the module.
    #[error("shift for `{name}` is {found:?}, the weight is {expected:?}")]
    ShiftShape {
        /// The module.
        name: String,
        /// The weight's a×b shape.
        expected: [usize; 2],
        /// The shift's shape.
        found: [usize; 2],
    },
}
