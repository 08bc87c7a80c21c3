//! # emsedit-meta — editors, hypernetworks and meta-learning
//!
//! The meta-learning layer, above `emsedit-tensor` and `emsedit-llm`. It owns:
//!
//! - the [`Editor`] interface the scenario driver runs, and [`EditBatch`], what editors edit
//!   with;
//! - the fine-tuning baseline [`Ft`];
//! - (next) the MALMEN-style hypernetwork (spec §3), the shift predictors and their
//!   meta-gradients, and MEND, MALMEN, RLEdit, UltraEdit and EMSEdit with multi-step
//!   back-propagation as a parameter of each, and hypernetwork checkpoints.
//!
//! It knows nothing of data-set formats, scenarios or metrics.

#![warn(missing_docs)]

mod editor;
mod error;
mod ft;

pub use editor::{EditBatch, Editor, resolve_modules};
pub use emsedit_llm as llm;
pub use error::MetaError;
pub use ft::{Ft, FtConfig};
