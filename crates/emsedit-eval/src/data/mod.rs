//! Editing data: loaders, tokenized tuples and padded micro-batches (spec §1).

mod collate;
mod facts;
mod fields;
mod formats;
mod json;
mod records;
pub mod ripple;
mod splits;
mod tokenize;

pub use collate::{MicroBatch, collate};
pub use facts::{detect, load_facts};
pub(crate) use fields::Fields;
pub use fields::MAX_TEXT_BYTES;
pub(crate) use json::read_records;
pub use records::{Dataset, EditRecord, Loaded, Skipped, Tuple, from_json, load, skip_summary};
pub use splits::{load_splits, ripple_is_eval, ripple_split};
pub use tokenize::{TokenizedTuple, tokenize};
