//! LLaMA (`model_type: "llama"`): RMSNorm, grouped-query attention, rotary embeddings with
//! the optional `llama3` frequency scaling, SwiGLU.

use burn::backend::Autodiff;
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use crate::LlmError;
use crate::config::{LlamaConfig, RopeParameters};
use crate::layers::{
    Affine, Gqa, Input, Positions, RmsNorm, Rope, embed, frozen, head_rows, linears_to_autodiff,
    lm_logits,
};
use crate::taps::{ModuleId, Taps};
use crate::weights::Weights;

/// The linear modules of one block, in slot order, by their HF names under `model.layers.{i}.`.
pub const SLOTS: [&str; 7] = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
];

#[derive(Debug, Clone)]
struct Block<B: Backend> {
    input_norm: RmsNorm<B>,
    post_norm: RmsNorm<B>,
    linears: [Affine<B>; 7],
}

/// A LLaMA model.
#[derive(Debug, Clone)]
pub struct Llama<B: Backend> {
    config: LlamaConfig,
    embed: Tensor<B, 2>,
    blocks: Vec<Block<B>>,
    norm: RmsNorm<B>,
    /// V×d, as stored (tied: the embedding).
    lm_head: Tensor<B, 2>,
    rope: Rope<B>,
}

/// Inverse rotary frequencies, with the `llama3` scaling when configured.
pub fn inv_freq(rope: &RopeParameters, head_dim: usize) -> Vec<f64> {
    let theta = rope.rope_theta.unwrap_or(10_000.0);
    let base: Vec<f64> = (0..head_dim / 2)
        .map(|i| {
            let exponent = ((2 * i) as f32 / head_dim as f32) as f64;
            (1.0 / theta.powf(exponent)) as f32 as f64
        })
        .collect();
    if rope.rope_type.as_deref() != Some("llama3") {
        return base;
    }
    let factor = rope.factor.unwrap_or(1.0);
    let low = rope.low_freq_factor.unwrap_or(1.0);
    let high = rope.high_freq_factor.unwrap_or(1.0);
    let old = rope.original_max_position_embeddings.unwrap_or(1.0);
    let (low_wavelen, high_wavelen) = (old / low, old / high);
    base.into_iter()
        .map(|f| {
            let wavelen = 2.0 * std::f64::consts::PI / f;
            if wavelen < high_wavelen {
                f
            } else if wavelen > low_wavelen {
                f / factor
            } else {
                let smooth = (old / wavelen - low) / (high - low);
                (1.0 - smooth) * f / factor + smooth * f
            }
        })
        .collect()
}

impl<B: Backend> Llama<B> {
    /// Builds the model from a checkpoint.
    pub fn load(
        config: &LlamaConfig,
        w: &mut Weights,
        device: &B::Device,
    ) -> Result<Self, LlmError> {
        let (d, ff, eps) = (
            config.hidden_size,
            config.intermediate_size,
            config.rms_norm_eps,
        );
        let (q, kv) = (
            config.num_attention_heads * config.head_dim(),
            config.kv_heads() * config.head_dim(),
        );
        let (ab, mb) = (config.attention_bias, config.mlp_bias);
        let blocks = (0..config.num_hidden_layers)
            .map(|i| {
                let p = format!("model.layers.{i}");
                Ok(Block {
                    input_norm: RmsNorm::load(
                        w,
                        &format!("{p}.input_layernorm.weight"),
                        d,
                        eps,
                        0.0,
                        device,
                    )?,
                    post_norm: RmsNorm::load(
                        w,
                        &format!("{p}.post_attention_layernorm.weight"),
                        d,
                        eps,
                        0.0,
                        device,
                    )?,
                    linears: [
                        Affine::load_linear(
                            w,
                            &format!("{p}.self_attn.q_proj"),
                            (d, q),
                            ab,
                            device,
                        )?,
                        Affine::load_linear(
                            w,
                            &format!("{p}.self_attn.k_proj"),
                            (d, kv),
                            ab,
                            device,
                        )?,
                        Affine::load_linear(
                            w,
                            &format!("{p}.self_attn.v_proj"),
                            (d, kv),
                            ab,
                            device,
                        )?,
                        Affine::load_linear(
                            w,
                            &format!("{p}.self_attn.o_proj"),
                            (q, d),
                            ab,
                            device,
                        )?,
                        Affine::load_linear(w, &format!("{p}.mlp.gate_proj"), (d, ff), mb, device)?,
                        Affine::load_linear(w, &format!("{p}.mlp.up_proj"), (d, ff), mb, device)?,
                        Affine::load_linear(w, &format!("{p}.mlp.down_proj"), (ff, d), mb, device)?,
                    ],
                })
            })
            .collect::<Result<_, LlmError>>()?;
        let embed = w.take("model.embed_tokens.weight", [config.vocab_size, d], device)?;
        let lm_head = if config.tie_word_embeddings && !w.contains("lm_head.weight") {
            embed.clone()
        } else {
            w.take("lm_head.weight", [config.vocab_size, d], device)?
        };
        let freqs = inv_freq(&config.rope(), config.head_dim());
        Ok(Self {
            config: config.clone(),
            norm: RmsNorm::load(w, "model.norm.weight", d, eps, 0.0, device)?,
            rope: Rope::new(&freqs, config.max_position_embeddings, device),
            embed,
            lm_head,
            blocks,
        })
    }

    linear_access!(LlamaConfig);

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
            kv_heads: c.kv_heads(),
            scale: 1.0 / (c.head_dim() as f64).sqrt(),
            softcap: None,
        };
        let (start, mut h) = input.start(|ids| embed(&self.embed, ids));
        let mask = at.mask(None);
        for (layer, block) in self.blocks.iter().enumerate().take(until).skip(start) {
            let id = |slot| ModuleId { layer, slot };
            let x = block.input_norm.forward(h.clone());
            h = h + gqa.forward(layer, &block.linears, x, &self.rope, (&mask, at), taps);
            let x = block.post_norm.forward(h.clone());
            let gate = silu(taps.run(id(4), &block.linears[4], x.clone()));
            let up = taps.run(id(5), &block.linears[5], x);
            h = h + taps.run(id(6), &block.linears[6], gate * up);
        }
        h
    }

    /// The final norm and the head at every position, or at the flat rows `at` (1 × N × V).
    pub fn head(&self, h: Tensor<B, 3>, at: Option<Tensor<B, 1, Int>>) -> Tensor<B, 3> {
        lm_logits(self.head_norm(h, at), &self.lm_head)
    }

    /// The final norm at every position, or at the flat rows `at` (1 × N × d): what the head
    /// multiplies.
    pub fn head_norm(&self, h: Tensor<B, 3>, at: Option<Tensor<B, 1, Int>>) -> Tensor<B, 3> {
        self.norm.forward(head_rows(h, at))
    }

    /// The V × d matrix E when the head is the plain product `h Eᵀ` ([`crate::head_loss`]).
    pub fn plain_head(&self) -> Option<&Tensor<B, 2>> {
        Some(&self.lm_head)
    }

    /// A frozen copy on the autodiff backend (gradient passes take gradients at the edited
    /// modules' output probes, [`crate::Taps`]).
    pub fn to_autodiff(&self) -> Llama<Autodiff<B>> {
        let blocks = self
            .blocks
            .iter()
            .map(|b| Block {
                input_norm: b.input_norm.to_autodiff(),
                post_norm: b.post_norm.to_autodiff(),
                linears: linears_to_autodiff(&b.linears),
            })
            .collect();
        Llama {
            config: self.config.clone(),
            embed: frozen(&self.embed),
            blocks,
            norm: self.norm.to_autodiff(),
            lm_head: frozen(&self.lm_head),
            rope: self.rope.map(frozen),
        }
    }
}
