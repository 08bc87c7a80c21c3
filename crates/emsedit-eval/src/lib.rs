//! # emsedit-eval — data, scenarios and metrics
//!
//! The top library layer, above the model and meta-learning crates. It will own:
//!
//! - loaders for ZsRE, CounterFact and RippleEdits and the tokenized, right-padded
//!   micro-batches of spec §1, plus a seeded synthetic fact world;
//! - the scenarios — sequential, batch and sequential-batch editing — as one driver over the
//!   editors, with train/edit time per edit and peak memory;
//! - the metrics of spec §5: efficacy, generalization, specificity.

#![warn(missing_docs)]

pub use emsedit_meta as meta;
