//! Gemma-2 (`model_type: "gemma2"`): embeddings scaled by √d, RMSNorm with `(1 + w)`, pre-
//! and post-norms around attention and MLP, GeGLU (tanh GELU), grouped-query attention with
//! `query_pre_attn_scalar`, soft-capped attention scores and logits, and sliding-window
//! attention on the layers `layer_types` marks.

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};

use crate::LlmError;
use crate::config::Gemma2Config;
use crate::layers::{
    Affine, RmsNorm, Rope, attend, attention_mask, frozen, gelu_new, lm_logits, merge_heads,
    repeat_kv, split_heads,
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

fn rms<B: Backend>(
    w: &mut Weights,
    name: &str,
    d: usize,
    eps: f64,
    device: &B::Device,
) -> Result<RmsNorm<B>, LlmError> {
    Ok(RmsNorm {
        weight: w.take(name, [d], device)?,
        eps,
        offset: 1.0,
    })
}

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
                    .map(|(slot, (name, (a, b)))| {
                        let prefix = format!("{p}.{name}");
                        Ok(Affine {
                            weight: w.take_linear(&format!("{prefix}.weight"), a, b, device)?,
                            bias: if bias && slot < 4 {
                                Some(w.take(&format!("{prefix}.bias"), [b], device)?)
                            } else {
                                None
                            },
                        })
                    })
                    .collect::<Result<Vec<_>, LlmError>>()?;
                let norms = NORMS
                    .iter()
                    .map(|n| rms(w, &format!("{p}.{n}.weight"), d, eps, device))
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
            norm: rms(w, "model.norm.weight", d, eps, device)?,
            rope: Rope::new(&freqs, config.max_position_embeddings, device),
            blocks,
        })
    }

    /// The config.
    pub fn config(&self) -> &Gemma2Config {
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

    /// Logits (batch × time × V).
    pub fn forward(
        &self,
        ids: Tensor<B, 2, Int>,
        valid: Tensor<B, 2, Bool>,
        taps: &mut Taps<B>,
    ) -> Tensor<B, 3> {
        let [batch, time] = ids.dims();
        let c = &self.config;
        let (heads, kv_heads) = (c.num_attention_heads, c.num_key_value_heads);
        // The reference rounds √d to the hidden dtype (f32) before scaling.
        let normalizer = (c.hidden_size as f64).sqrt() as f32 as f64;
        let mut h = self
            .embed
            .clone()
            .select(0, ids.reshape([batch * time]))
            .reshape([batch, time, c.hidden_size])
            .mul_scalar(normalizer);
        let full = attention_mask(&valid, None);
        let sliding = attention_mask(&valid, Some(c.sliding_window));
        let scale = c.query_pre_attn_scalar.powf(-0.5);
        for (layer, block) in self.blocks.iter().enumerate() {
            let id = |slot| ModuleId { layer, slot };
            let [input, post_attn, pre_ff, post_ff] = &block.norms;
            let x = input.forward(h.clone());
            let q = split_heads(taps.run(id(0), &block.linears[0], x.clone()), heads);
            let k = split_heads(taps.run(id(1), &block.linears[1], x.clone()), kv_heads);
            let v = split_heads(taps.run(id(2), &block.linears[2], x), kv_heads);
            let (q, k) = (self.rope.apply(q), self.rope.apply(k));
            let (k, v) = (
                repeat_kv(k, heads / kv_heads),
                repeat_kv(v, heads / kv_heads),
            );
            let mask = if c.is_sliding(layer) { &sliding } else { &full };
            let attn = merge_heads(attend(q, k, v, scale, c.attn_logit_softcapping, mask));
            h = h + post_attn.forward(taps.run(id(3), &block.linears[3], attn));
            let x = pre_ff.forward(h.clone());
            let gate = gelu_new(taps.run(id(4), &block.linears[4], x.clone()));
            let up = taps.run(id(5), &block.linears[5], x);
            h = h + post_ff.forward(taps.run(id(6), &block.linears[6], gate * up));
        }
        let logits = lm_logits(self.norm.forward(h), &self.embed);
        match c.final_logit_softcapping {
            Some(cap) => logits.div_scalar(cap).tanh().mul_scalar(cap),
            None => logits,
        }
    }

    /// A copy on the autodiff backend in which only the weights of `edited` track gradients.
    pub fn to_autodiff(&self, edited: &[ModuleId]) -> Gemma2<Autodiff<B>> {
        let blocks = self
            .blocks
            .iter()
            .enumerate()
            .map(|(layer, b)| Block {
                norms: std::array::from_fn(|i| b.norms[i].to_autodiff()),
                linears: std::array::from_fn(|slot| {
                    b.linears[slot].to_autodiff(edited.contains(&ModuleId { layer, slot }))
                }),
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
