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
//!   [`HyperEditor`] — EMSEdit (batch and sequential layouts), MALMEN / MALMEN2, MEND and
//!   RLEdit / RLEdit2, with K-step back-propagation — and the training-free [`UltraEdit`];
//! - hypernetwork checkpoints ([`checkpoint`], [`HyperEditor::save`], [`HyperEditor::load`]):
//!   safetensors with a JSON header, refused for another model or module set.
//!
//! It knows nothing of data-set formats, scenarios or metrics.

#![warn(missing_docs)]

pub mod checkpoint;
mod editor;
mod error;
mod ft;
mod hyper_editor;
pub mod hypernet;
pub mod predict;
pub mod steps;
mod ultraedit;

pub use editor::{EditBatch, Editor, Snapshot, resolve_modules};
pub use emsedit_llm as llm;
pub use error::MetaError;
pub use ft::{Ft, FtConfig};
pub use hyper_editor::{
    Backtrack, HyperEditor, HyperEditorConfig, Layout, Locality, MAX_BLOCKS, MAX_RANK, MAX_STEPS,
    StepTrace, TrainTrace, UpdateTrace,
};
pub use ultraedit::{UltraEdit, UltraEditConfig};
