//! Gemma-2 (`model_type: "gemma2"`): embeddings scaled by √d, RMSNorm with `(1 + w)`, pre-
//! and post-norms around attention and MLP, GeGLU (tanh GELU), grouped-query attention with
//! `query_pre_attn_scalar`, soft-capped attention scores and logits, and sliding-window
//! attention on the layers `layer_types` marks.

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use crate::LlmError;
use crate::config::Gemma2Config;
use crate::layers::{
    Affine, Gqa, Input, Positions, RmsNorm, Rope, embed, frozen, gelu_new, head_rows,
    linears_to_autodiff, lm_logits,
};
use crate::llama::inv_freq;
use crate::taps::{ModuleId, Taps};
use crate::weights::Weights;

/// The linear modules of one block, in slot order, by their HF names under `model.layers.{i}.`
/// (the same table as LLaMA's).
pub use crate::llama::SLOTS;

#[derive(Debug, Clone)]
struct Block<B: Backend> {
    /// input, post-attention, pre-feedforward, post-feedforward.
    norms: [RmsNorm<B>; 4],
    linears: [Affine<B>; 7],
}

/// A Gemma-2 model.
#[derive(Debug, Clone)]
pub struct Gemma2<B: Backend> {
    config: Gemma2Config,
    /// V×d; also the (tied) LM head.
    embed: Tensor<B, 2>,
    blocks: Vec<Block<B>>,
    norm: RmsNorm<B>,
    rope: Rope<B>,
}

const NORMS: [&str; 4] = [
    "input_layernorm",
    "post_attention_layernorm",
    "pre_feedforward_layernorm",
    "post_feedforward_layernorm",
];

impl<B: Backend> Gemma2<B> {
    /// Builds the model from a checkpoint.
    pub fn load(
        config: &Gemma2Config,
        w: &mut Weights,
        device: &B::Device,
    ) -> Result<Self, LlmError> {
        let (d, ff, eps) = (
            config.hidden_size,
            config.intermediate_size,
            config.rms_norm_eps,
        );
        let (q, kv) = (
            config.num_attention_heads * config.head_dim,
            config.num_key_value_heads * config.head_dim,
        );
        let bias = config.attention_bias;
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
                    .map(|n| RmsNorm::load(w, &format!("{p}.{n}.weight"), d, eps, 1.0, device))
                    .collect::<Result<Vec<_>, LlmError>>()?;
                Ok(Block {
                    norms: norms.try_into().expect("four norms"),
                    linears: linears.try_into().expect("seven linears"),
                })
            })
            .collect::<Result<_, LlmError>>()?;
        let freqs = inv_freq(&config.rope(), config.head_dim);
        Ok(Self {
            config: config.clone(),
            embed: w.take("model.embed_tokens.weight", [config.vocab_size, d], device)?,
            norm: RmsNorm::load(w, "model.norm.weight", d, eps, 1.0, device)?,
            rope: Rope::new(&freqs, config.max_position_embeddings, device),
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
        let gqa = Gqa {
            heads: c.num_attention_heads,
            kv_heads: c.num_key_value_heads,
            scale: c.query_pre_attn_scalar.powf(-0.5),
            softcap: c.attn_logit_softcapping,
        };
        // The reference rounds √d to the hidden dtype (f32) before scaling.
        let normalizer = (c.hidden_size as f64).sqrt() as f32 as f64;
        let (start, mut h) = input.start(|ids| embed(&self.embed, ids).mul_scalar(normalizer));
        let full = at.mask(None);
        let sliding = at.mask(Some(c.sliding_window));
        for (layer, block) in self.blocks.iter().enumerate().take(until).skip(start) {
            let id = |slot| ModuleId { layer, slot };
            let [input, post_attn, pre_ff, post_ff] = &block.norms;
            let mask = if c.is_sliding(layer) { &sliding } else { &full };
            let attn = gqa.forward(
                layer,
                &block.linears,
                input.forward(h.clone()),
                &self.rope,
                (mask, at),
                taps,
            );
            h = h + post_attn.forward(attn);
            let x = pre_ff.forward(h.clone());
            let gate = gelu_new(taps.run(id(4), &block.linears[4], x.clone()));
            let up = taps.run(id(5), &block.linears[5], x);
            h = h + post_ff.forward(taps.run(id(6), &block.linears[6], gate * up));
        }
        h
    }

    /// The final norm and the head at every position, or at the flat rows `at` (1 × N × V),
    /// soft-capped.
    pub fn head(&self, h: Tensor<B, 3>, at: Option<Tensor<B, 1, Int>>) -> Tensor<B, 3> {
        let logits = lm_logits(self.head_norm(h, at), &self.embed);
        match self.config.final_logit_softcapping {
            Some(cap) => logits.div_scalar(cap).tanh().mul_scalar(cap),
            None => logits,
        }
    }

    /// The final norm at every position, or at the flat rows `at` (1 × N × d): what the head
    /// multiplies.
    pub fn head_norm(&self, h: Tensor<B, 3>, at: Option<Tensor<B, 1, Int>>) -> Tensor<B, 3> {
        self.norm.forward(head_rows(h, at))
    }

    /// The V × d matrix E when the head is the plain product `h Eᵀ` ([`crate::head_loss`]):
    /// only without soft-capping.
    pub fn plain_head(&self) -> Option<&Tensor<B, 2>> {
        self.config
            .final_logit_softcapping
            .is_none()
            .then_some(&self.embed)
    }

    /// A frozen copy on the autodiff backend (gradient passes take gradients at the edited
    /// modules' output probes, [`crate::Taps`]).
    pub fn to_autodiff(&self) -> Gemma2<Autodiff<B>> {
        let blocks = self
            .blocks
            .iter()
            .map(|b| Block {
                norms: std::array::from_fn(|i| b.norms[i].to_autodiff()),
                linears: linears_to_autodiff(&b.linears),
            })
            .collect();
        Gemma2 {
            config: self.config.clone(),
            embed: frozen(&self.embed),
            blocks,
            norm: self.norm.to_autodiff(),
            rope: self.rope.map(frozen),
        }
    }
}
