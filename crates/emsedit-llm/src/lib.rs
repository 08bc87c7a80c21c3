//! # emsedit-llm — causal language models and edit hooks
//!
//! The model layer of emsedit, above `emsedit-tensor`. It owns:
//!
//! - the architectures people edit, written on burn and loaded from Hugging Face model
//!   directories (`config.json`, `model.safetensors` or a sharded index, bf16/f16 converted to
//!   f32): GPT-2, GPT-J, LLaMA (3.x, with `llama3` rope scaling), Gemma-2 and Gemma-3;
//! - GGUF files (llama.cpp) read, dequantized and converted to such directories ([`gguf`]);
//! - pre-training a GPT-2 from scratch and saving it, and a deterministic byte-level BPE
//!   trainer ([`pretrain`], [`bpe`]): how the embedded default model is made;
//! - the **edit hooks** every editor uses (spec §2): modules named by their HF names
//!   ([`CausalLm::module`]), the keys and output gradients at labelled positions and the weight
//!   gradient Γ in the a×b orientation ([`CausalLm::edit_gradients`]), exact apply/revert of a
//!   shift ([`CausalLm::apply_shift`], [`CausalLm::set_weight`]);
//! - teacher-forced loss and logits.
//!
//! It knows nothing of hypernetworks, data sets or metrics.

#![warn(missing_docs)]

/// The accessors every architecture shares: its config and its blocks' linear modules.
macro_rules! linear_access {
    ($config:ty) => {
        /// The config.
        pub fn config(&self) -> &$config {
            &self.config
        }

        /// The linear module `id`.
        pub fn linear(&self, id: ModuleId) -> &Affine<B> {
            &self.blocks[id.layer].linears[id.slot]
        }

        /// The linear module `id`, mutably.
        pub fn linear_mut(&mut self, id: ModuleId) -> &mut Affine<B> {
            &mut self.blocks[id.layer].linears[id.slot]
        }

        /// Logits (batch × time × V): [`Self::hidden`] through every block, then
        /// [`Self::head`] at every position.
        pub fn forward(
            &self,
            ids: Tensor<B, 2, Int>,
            at: &$crate::layers::Positions<B>,
            taps: &mut Taps<B>,
        ) -> Tensor<B, 3> {
            let h = self.hidden(Input::Ids(ids), at, self.blocks.len(), taps);
            self.head(h, None)
        }

        /// Blocks.
        pub fn depth(&self) -> usize {
            self.blocks.len()
        }
    };
}

mod batch;
pub mod bpe;
pub mod config;
mod error;
pub mod export;
pub mod gemma2;
pub mod gemma3;
pub mod gguf;
pub mod gpt2;
pub mod gptj;
pub mod head_loss;
pub mod layers;
pub mod llama;
mod lm;
pub mod models_cache;
pub mod parts;
pub mod patch;
pub mod prefix;
pub mod pretrain;
mod taps;
mod tokenizer;
pub mod weights;

pub use batch::{Batch, IGNORE, PACKED_ROW_TOKENS};
pub use config::ModelConfig;
pub use emsedit_tensor as tensor;
pub use error::LlmError;
pub use lm::{CausalLm, EditGrads, Objective, all_finite, cross_entropy, kl_divergence};
pub use taps::{ModuleId, Taps};
pub use tokenizer::LmTokenizer;
