//! # emsedit-llm — causal language models and edit hooks
//!
//! The model layer of emsedit, above `emsedit-tensor`. It will own:
//!
//! - the architectures people edit — GPT-2, GPT-J, LLaMA-3 and Gemma-2 — written on burn and
//!   loaded from Hugging Face model directories (`config.json`, safetensors, `tokenizer.json`);
//! - the **edit hooks** every editor uses (spec §2): edited modules named by their HF names, the
//!   keys and output gradients at answer positions, the weight gradient Γ in the a×b
//!   orientation, and exact apply/revert of a shift ΔW;
//! - teacher-forced loss, per-position argmax and logits, greedy generation.
//!
//! It knows nothing of hypernetworks, data sets or metrics.

#![warn(missing_docs)]

pub use emsedit_tensor as tensor;
