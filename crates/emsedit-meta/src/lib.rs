//! # emsedit-meta — editors, hypernetworks and meta-learning
//!
//! The meta-learning layer, above `emsedit-tensor` and `emsedit-llm`. It owns:
//!
//! - the [`Editor`] interface the scenario driver runs, and [`EditBatch`], what editors edit
//!   with;
//! - the fine-tuning baseline [`Ft`];
//! - the MALMEN-style hypernetwork ([`hypernet`], spec §3) and the shift predictors with their
//!   decoupled meta-gradients ([`predict`], spec §4.1);
//! - (next) MEND, MALMEN, RLEdit, UltraEdit and EMSEdit with multi-step back-propagation as a
//!   parameter of each, and hypernetwork checkpoints.
//!
//! It knows nothing of data-set formats, scenarios or metrics.

#![warn(missing_docs)]

mod editor;
mod error;
mod ft;
pub mod hypernet;
pub mod predict;

pub use editor::{EditBatch, Editor, resolve_modules};
pub use emsedit_llm as llm;
pub use error::MetaError;
pub use ft::{Ft, FtConfig};
