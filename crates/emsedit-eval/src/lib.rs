//! # emsedit-eval — data, scenarios and metrics
//!
//! The top library layer, above the model and meta-learning crates. It owns:
//!
//! - loaders for ZsRE, CounterFact and RippleEdits ([`data::load`]) with errors that name the
//!   file, the record and the field; tokenized tuples and padded micro-batches exactly as
//!   spec §1 ([`data::tokenize`], [`data::collate`]);
//! - the metrics of spec §5 ([`metrics`]) and RippleEdits' test families ([`ripple`]);
//! - the general-capability tasks of the paper's Appendix C ([`glue`]);
//! - a seeded synthetic fact world ([`synthetic`]) that writes ZsRE- and CounterFact-format
//!   files and a corpus of its true facts;
//! - the scenarios — sequential, batch and sequential-batch editing — as one driver over the
//!   editors ([`scenario::run`]), with timing, peak memory and serializable reports, and
//!   the results table ([`table::markdown`]).

#![warn(missing_docs)]

pub mod data;
mod error;
pub mod glue;
pub mod metrics;
pub mod ripple;
pub mod scenario;
pub mod synthetic;
pub mod table;

pub use emsedit_meta as meta;
pub use error::DataError;
