//! Editing data: loaders, tokenized tuples and padded micro-batches (spec §1).

mod collate;
mod fields;
mod json;
mod records;
mod tokenize;

pub use collate::{MicroBatch, collate};
pub use fields::MAX_TEXT_BYTES;
pub use records::{Dataset, EditRecord, Tuple, from_json, load, load_splits};
pub use tokenize::{TokenizedTuple, tokenize};
