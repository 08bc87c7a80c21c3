//! GGUF (llama.cpp's model format): reading, dequantization and conversion to a Hugging Face
//! directory that [`crate::CausalLm::load`] and [`crate::LmTokenizer::load_dir`] read.
//!
//! - [`reader`]: the header, the metadata and the tensor directory, every length checked
//!   against the file before it is used;
//! - [`quant`]: dequantization of F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and
//!   Q6_K blocks to f32, in the same f32 operations as llama.cpp and the Python `gguf` package;
//! - [`convert`]: GGUF → `config.json` + `model.safetensors` (f32) + `tokenizer.json`, undoing
//!   llama.cpp's conventions (LLaMA's Q/K row permutation, Gemma's `+1` on norm weights);
//! - [`tokenizer`]: `tokenizer.json` rebuilt from a GGUF vocabulary (byte-level BPE with
//!   merges, or SentencePiece pieces with scores and byte fallback), and GPT-2's from OpenAI's
//!   `encoder.json` + `vocab.bpe`.
//!
//! A GGUF file is user input: every error names the file and the key or tensor involved.

pub mod convert;
pub mod quant;
pub mod reader;
pub mod tokenizer;

use std::path::PathBuf;

pub use convert::{Converted, convert_gguf};
pub use quant::GgmlType;
pub use reader::{Array, GgufFile, TensorInfo, Value};

/// Errors reading or converting a GGUF file; each names the file and the key or tensor.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not start with `GGUF`.
    #[error("{path}: not a GGUF file (magic {found:?}, expected \"GGUF\")")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes.
        found: String,
    },
    /// A GGUF version this reader does not know.
    #[error("{path}: GGUF version {version} is not supported (only 2 and 3)")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// The file ends (or a length points) before the named item is complete.
    #[error("{path}: truncated at byte {offset} while reading {what}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Where the item starts.
        offset: u64,
        /// What was being read (names the key or tensor).
        what: String,
    },
    /// Text that is not UTF-8.
    #[error("{path}: {what} (at byte {offset}) is not UTF-8")]
    Utf8 {
        /// The file.
        path: PathBuf,
        /// Where the string starts.
        offset: u64,
        /// What was being read (a key name, a key's value).
        what: String,
    },
    /// A metadata value that is malformed or of the wrong type.
    #[error("{path}: metadata key `{key}`: {detail}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// A metadata key the conversion needs is absent.
    #[error("{path}: missing metadata key `{key}`")]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A tensor whose directory entry or data is malformed.
    #[error("{path}: tensor `{tensor}`: {detail}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// What is wrong.
        detail: String,
    },
    /// A tensor the conversion needs is absent.
    #[error("{path}: missing tensor `{tensor}`")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
    },
    /// A tensor type id this reader does not know, or cannot dequantize.
    #[error("{path}: tensor `{tensor}`: {detail}")]
    TensorType {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// The type and why it is refused.
        detail: String,
    },
    /// Something the converter does not handle (architecture, tokenizer kind), named by key.
    #[error("{path}: metadata key `{key}`: {detail}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The key whose value is not supported.
        key: String,
        /// What is not supported.
        detail: String,
    },
    /// Writing the converted directory failed.
    #[error("{path}: cannot write: {detail}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// The cause.
        detail: String,
    },
}
