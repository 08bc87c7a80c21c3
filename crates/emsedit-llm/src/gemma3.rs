//! Gemma-3 text models (`model_type: "gemma3_text"`), beyond the paper's four families.
//!
//! Gemma-2's block (embeddings scaled by √d, RMSNorm with `(1 + w)`, pre- and post-norms
//! around attention and MLP, GeGLU with tanh GELU, grouped-query attention scaled by
//! `query_pre_attn_scalar^-1/2`, sliding-window layers) with three changes, as in
//! transformers' `Gemma3ForCausalLM`:
//!
//! - RMS norms (`q_norm`, `k_norm`, also `(1 + w)`) on each query and key head before RoPE;
//! - two rotary tables: `rope_local_base_freq` on the sliding layers, `rope_theta` on the
//!   global ones (every sixth layer unless `layer_types` says otherwise);
//! - no soft-capping of scores or logits.
//!
//! The config is [`Gemma2Config`] with `gemma3` set.

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use crate::LlmError;
use crate::config::Gemma2Config;
use crate::layers::{
    Affine, Input, Positions, RmsNorm, Rope, attend_grouped, embed, frozen, gelu_new, head_rows,
    linears_to_autodiff, lm_logits, merge_heads, split_heads, split_kv_heads,
};
use crate::llama::inv_freq;
use crate::taps::{ModuleId, Taps};
use crate::weights::Weights;

/// The linear modules of one block, in slot order (the same table as LLaMA's).
pub use crate::llama::SLOTS;

#[derive(Debug, Clone)]
struct Block<B: Backend> {
    /// input, post-attention, pre-feedforward, post-feedforward.
    norms: [RmsNorm<B>; 4],
    /// Per-head query and key norms (width head_dim).
    qk_norms: [RmsNorm<B>; 2],
    linears: [Affine<B>; 7],
}

/// A Gemma-3 model.
#[derive(Debug, Clone)]
pub struct Gemma3<B: Backend> {
    config: Gemma2Config,
    /// V×d; also the (tied) LM head.
    embed: Tensor<B, 2>,
    blocks: Vec<Block<B>>,
    norm: RmsNorm<B>,
    /// Global layers' rotary tables.
    rope: Rope<B>,
    /// Sliding layers' rotary tables.
    rope_local: Rope<B>,
}

const NORMS: [&str; 4] = [
    "input_layernorm",
    "post_attention_layernorm",
    "pre_feedforward_layernorm",
    "post_feedforward_layernorm",
];

impl<B: Backend> Gemma3<B> {
    /// Builds the model from a checkpoint.
    pub fn load(
        config: &Gemma2Config,
        w: &mut Weights,
        device: &B::Device,
    ) -> Result<Self, LlmError> {
        let (d, ff, eps, hd) = (
            config.hidden_size,
            config.intermediate_size,
            config.rms_norm_eps,
            config.head_dim,
        );
        let (q, kv) = (
            config.num_attention_heads * hd,
            config.num_key_value_heads * hd,
        );
        let bias = config.attention_bias;
        let norm =
            |w: &mut Weights, name: &str, width| RmsNorm::load(w, name, width, eps, 1.0, device);
        let blocks = (0..config.num_hidden_layers)
            .map(|i| {
                let p = format!("model.layers.{i}");
                let shapes = [(d, q), (d, kv), (d, kv), (q, d), (d, ff), (d, ff), (ff, d)];
                let linears = SLOTS
                    .iter()
                    .zip(shapes)
                    .enumerate()
                    .map(|(slot, (name, ab))| {
                        Affine::load_linear(w, &format!("{p}.{name}"), ab, bias && slot < 4, device)
                    })
                    .collect::<Result<Vec<_>, LlmError>>()?;
                let norms = NORMS
                    .iter()
                    .map(|n| norm(w, &format!("{p}.{n}.weight"), d))
                    .collect::<Result<Vec<_>, LlmError>>()?;
                Ok(Block {
                    norms: norms.try_into().expect("four norms"),
                    qk_norms: [
                        norm(w, &format!("{p}.self_attn.q_norm.weight"), hd)?,
                        norm(w, &format!("{p}.self_attn.k_norm.weight"), hd)?,
                    ],
                    linears: linears.try_into().expect("seven linears"),
                })
            })
            .collect::<Result<_, LlmError>>()?;
        let positions = config.max_position_embeddings;
        Ok(Self {
            config: config.clone(),
            embed: w.take("model.embed_tokens.weight", [config.vocab_size, d], device)?,
            norm: norm(w, "model.norm.weight", d)?,
            rope: Rope::new(&inv_freq(&config.rope(), hd), positions, device),
            rope_local: Rope::new(&inv_freq(&config.local_rope(), hd), positions, device),
            blocks,
        })
    }

    linear_access!(Gemma2Config);

    /// The hidden state entering block `until`, running the blocks from where `input` starts.
    pub fn hidden(
        &self,
        input: Input<B>,
        at: &Positions<B>,
        until: usize,
        taps: &mut Taps<B>,
    ) -> Tensor<B, 3> {
        let c = &self.config;
        let scale = c.query_pre_attn_scalar.powf(-0.5);
        // The reference rounds √d to the hidden dtype (f32) before scaling.
        let normalizer = (c.hidden_size as f64).sqrt() as f32 as f64;
        let (start, mut h) = input.start(|ids| embed(&self.embed, ids).mul_scalar(normalizer));
        let full = at.mask(None);
        let sliding = at.mask(Some(c.sliding_window));
        for (layer, block) in self.blocks.iter().enumerate().take(until).skip(start) {
            let id = |slot| ModuleId { layer, slot };
            let [input, post_attn, pre_ff, post_ff] = &block.norms;
            let [q_norm, k_norm] = &block.qk_norms;
            let (mask, rope) = if c.is_sliding(layer) {
                (&sliding, &self.rope_local)
            } else {
                (&full, &self.rope)
            };
            let x = input.forward(h.clone());
            let q = split_heads(
                taps.run(id(0), &block.linears[0], x.clone()),
                c.num_attention_heads,
            );
            let k = split_heads(
                taps.run(id(1), &block.linears[1], x.clone()),
                c.num_key_value_heads,
            );
            let v = split_kv_heads(taps.run(id(2), &block.linears[2], x), c.num_key_value_heads);
            let (q, k) = (
                rope.apply(q_norm.forward(q), at),
                rope.apply(k_norm.forward(k), at),
            );
            let attn = merge_heads(attend_grouped(q, k, v, scale, None, mask));
            let attn = taps.run(id(3), &block.linears[3], attn);
            h = h + post_attn.forward(attn);
            let x = pre_ff.forward(h.clone());
            let gate = gelu_new(taps.run(id(4), &block.linears[4], x.clone()));
            let up = taps.run(id(5), &block.linears[5], x);
            h = h + post_ff.forward(taps.run(id(6), &block.linears[6], gate * up));
        }
        h
    }

    /// The final norm and the head at every position, or at the flat rows `at` (1 × N × V).
    pub fn head(&self, h: Tensor<B, 3>, at: Option<Tensor<B, 1, Int>>) -> Tensor<B, 3> {
        lm_logits(self.head_norm(h, at), &self.embed)
    }

    /// The final norm at every position, or at the flat rows `at` (1 × N × d): what the head
    /// multiplies.
    pub fn head_norm(&self, h: Tensor<B, 3>, at: Option<Tensor<B, 1, Int>>) -> Tensor<B, 3> {
        self.norm.forward(head_rows(h, at))
    }

    /// The V × d matrix E when the head is the plain product `h Eᵀ` ([`crate::head_loss`]).
    pub fn plain_head(&self) -> Option<&Tensor<B, 2>> {
        Some(&self.embed)
    }

    /// A frozen copy on the autodiff backend (gradient passes take gradients at the edited
    /// modules' output probes, [`crate::Taps`]).
    pub fn to_autodiff(&self) -> Gemma3<Autodiff<B>> {
        let blocks = self
            .blocks
            .iter()
            .map(|b| Block {
                norms: std::array::from_fn(|i| b.norms[i].to_autodiff()),
                qk_norms: std::array::from_fn(|i| b.qk_norms[i].to_autodiff()),
                linears: linears_to_autodiff(&b.linears),
            })
            .collect();
        Gemma3 {
            config: self.config.clone(),
            embed: frozen(&self.embed),
            blocks,
            norm: self.norm.to_autodiff(),
            rope: self.rope.map(frozen),
            rope_local: self.rope_local.map(frozen),
        }
    }
}
