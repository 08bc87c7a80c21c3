//! # emsedit-meta — editors, hypernetworks and meta-learning
//!
//! The meta-learning layer, above `emsedit-tensor` and `emsedit-llm`. It owns:
//!
//! - the [`Editor`] interface the scenario driver runs, and [`EditBatch`], what editors edit
//!   with;
//! - the fine-tuning baseline [`Ft`];
//! - the MALMEN-style hypernetwork ([`hypernet`], spec §3) and the shift predictors with their
//!   decoupled meta-gradients ([`predict`], spec §4.1);
//! - the loops' shared steps ([`steps`]: CACHE, PREDICT, APPLY/REVERT, Γ, clip and Adam),
//!   [`EmsEdit`] (batch and sequential layouts, K-step back-propagation) and the
//!   training-free [`UltraEdit`];
//! - (next) MEND, MALMEN and RLEdit on the same steps, and hypernetwork checkpoints.
//!
//! It knows nothing of data-set formats, scenarios or metrics.

#![warn(missing_docs)]

mod editor;
mod emsedit;
mod error;
mod ft;
pub mod hypernet;
pub mod predict;
pub mod steps;
mod ultraedit;

pub use editor::{EditBatch, Editor, resolve_modules};
pub use emsedit::{EmsEdit, EmsEditConfig, Layout};
pub use emsedit_llm as llm;
pub use error::MetaError;
pub use ft::{Ft, FtConfig};
pub use ultraedit::{UltraEdit, UltraEditConfig};
