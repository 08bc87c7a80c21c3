//! # emsedit-eval — data, scenarios and metrics
//!
//! The top library layer, above the model and meta-learning crates. It owns:
//!
//! - loaders for ZsRE, CounterFact and RippleEdits ([`data::load`]) with errors that name the
//!   file, the record and the field; tokenized tuples and padded micro-batches exactly as
//!   spec §1 ([`data::tokenize`], [`data::collate`]);
//! - the metrics of spec §5 ([`metrics`]);
//! - (next) a seeded synthetic fact world and the scenarios — sequential, batch and
//!   sequential-batch editing — as one driver over the editors.

#![warn(missing_docs)]

pub mod data;
mod error;
pub mod metrics;
pub mod scenario;

pub use emsedit_meta as meta;
pub use error::DataError;
