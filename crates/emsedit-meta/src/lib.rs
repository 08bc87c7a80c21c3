//! # emsedit-meta — hypernetworks and meta-learning editors
//!
//! The meta-learning layer, above `emsedit-tensor` and `emsedit-llm`. It will own:
//!
//! - the MALMEN-style hypernetwork (spec §3): normalizer, low-rank residual blocks with
//!   per-module scale and shift, per-module step size and log-ridge; one network per shape
//!   group and, where the editor needs it, per step;
//! - the shift predictors (least squares and MEND's sum) and their meta-gradients;
//! - every editor: FT, MEND, MALMEN, RLEdit, UltraEdit and EMSEdit, with multi-step
//!   back-propagation (K steps) as a parameter of each, and hypernetwork checkpoints.
//!
//! It knows nothing of data-set formats, scenarios or metrics.

#![warn(missing_docs)]

pub use emsedit_llm as llm;
