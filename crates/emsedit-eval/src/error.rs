//! The error type of the data and evaluation layer.

use std::path::PathBuf;

/// Errors reading editing data. Each names the file, the record index and the field.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a JSON array of records (truncated, not UTF-8, wrong top level...).
    #[error("{path}: record {record}: field `{field}`: {detail}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Index of the record being read (0-based).
        record: usize,
        /// The field being read, or `(record)` when between fields.
        field: String,
        /// The parser's message, with line and column.
        detail: String,
    },
    /// A record whose content is unusable (missing field, wrong type, empty or oversized text).
    #[error("{path}: record {record}: field `{field}`: {detail}")]
    Record {
        /// The file.
        path: PathBuf,
        /// Index of the record (0-based).
        record: usize,
        /// The field, dotted for nested ones (`requested_rewrite.target_new.str`).
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// A record that cannot be edited or scored (a blank prompt or target). Loaders skip such
    /// records and list them ([`crate::data::Skipped`]); strict mode refuses them.
    #[error("{path}: record {record}: field `{field}`: {reason}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// Index of the record (0-based).
        record: usize,
        /// The field.
        field: String,
        /// Why the record is unusable.
        reason: String,
    },
    /// A data folder has more than one candidate for a split.
    #[error("{dir}: more than one {split} file: {}; name one `{split}.json` or keep one", candidates.join(", "))]
    AmbiguousSplit {
        /// The folder.
        dir: PathBuf,
        /// `train` or `eval`.
        split: &'static str,
        /// The matching file names.
        candidates: Vec<String>,
    },
    /// A data folder lacks a split file.
    #[error("{dir}: no {split} file (looked for {looked_for})")]
    MissingSplit {
        /// The folder.
        dir: PathBuf,
        /// `train` or `eval`.
        split: &'static str,
        /// The names tried.
        looked_for: &'static str,
    },
    /// Tokenization failed or produced an unusable sequence.
    #[error("tokenizing {what} {text:?}: {detail}")]
    Tokenize {
        /// Prompt or target.
        what: &'static str,
        /// The text.
        text: String,
        /// What went wrong.
        detail: String,
    },
}
