//! GPT-J (`model_type: "gptj"`): parallel attention and MLP off one LayerNorm, partial
//! rotary embeddings in the interleaved layout, an untied LM head with a bias.

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use crate::LlmError;
use crate::config::{GptjConfig, RopeParameters};
use crate::layers::{
    Affine, Input, LayerNorm, Positions, Rope, attend, embed, frozen, gelu_new, head_rows,
    linears_to_autodiff, lm_logits, merge_heads, split_heads,
};
use crate::llama::inv_freq;
use crate::taps::{ModuleId, Taps};
use crate::weights::Weights;

/// The linear modules of one block, in slot order, by their HF names under `transformer.h.{i}.`.
pub const SLOTS: [&str; 6] = [
    "attn.q_proj",
    "attn.k_proj",
    "attn.v_proj",
    "attn.out_proj",
    "mlp.fc_in",
    "mlp.fc_out",
];

#[derive(Debug, Clone)]
struct Block<B: Backend> {
    ln_1: LayerNorm<B>,
    linears: [Affine<B>; 6],
}

/// A GPT-J model.
#[derive(Debug, Clone)]
pub struct Gptj<B: Backend> {
    config: GptjConfig,
    wte: Tensor<B, 2>,
    blocks: Vec<Block<B>>,
    ln_f: LayerNorm<B>,
    /// V×d and V.
    lm_head: (Tensor<B, 2>, Tensor<B, 1>),
    rope: Rope<B>,
}

impl<B: Backend> Gptj<B> {
    /// Builds the model from a checkpoint.
    pub fn load(
        config: &GptjConfig,
        w: &mut Weights,
        device: &B::Device,
    ) -> Result<Self, LlmError> {
        let (d, inner, eps) = (config.n_embd, config.inner(), config.layer_norm_epsilon);
        let blocks = (0..config.n_layer)
            .map(|i| {
                let p = format!("transformer.h.{i}");
                Ok(Block {
                    ln_1: LayerNorm::load(w, &format!("{p}.ln_1"), d, eps, device)?,
                    linears: [
                        Affine::load_linear(w, &format!("{p}.attn.q_proj"), (d, d), false, device)?,
                        Affine::load_linear(w, &format!("{p}.attn.k_proj"), (d, d), false, device)?,
                        Affine::load_linear(w, &format!("{p}.attn.v_proj"), (d, d), false, device)?,
                        Affine::load_linear(
                            w,
                            &format!("{p}.attn.out_proj"),
                            (d, d),
                            false,
                            device,
                        )?,
                        Affine::load_linear(
                            w,
                            &format!("{p}.mlp.fc_in"),
                            (d, inner),
                            true,
                            device,
                        )?,
                        Affine::load_linear(
                            w,
                            &format!("{p}.mlp.fc_out"),
                            (inner, d),
                            true,
                            device,
                        )?,
                    ],
                })
            })
            .collect::<Result<_, LlmError>>()?;
        let rope = RopeParameters {
            rope_theta: Some(10_000.0),
            ..RopeParameters::default()
        };
        let freqs = inv_freq(&rope, config.rotary());
        Ok(Self {
            config: config.clone(),
            wte: w.take("transformer.wte.weight", [config.vocab_size, d], device)?,
            ln_f: LayerNorm::load(w, "transformer.ln_f", d, eps, device)?,
            lm_head: (
                w.take("lm_head.weight", [config.vocab_size, d], device)?,
                w.take("lm_head.bias", [config.vocab_size], device)?,
            ),
            rope: Rope::new_interleaved(&freqs, config.n_positions, device),
            blocks,
        })
    }

    linear_access!(GptjConfig);

    fn rotate(&self, x: Tensor<B, 4>, at: &Positions<B>) -> Tensor<B, 4> {
        let [_, _, _, hd] = x.dims();
        let r = self.config.rotary();
        if r == hd {
            return self.rope.apply_interleaved(x, at);
        }
        let rotated = self.rope.apply_interleaved(x.clone().narrow(3, 0, r), at);
        Tensor::cat(vec![rotated, x.narrow(3, r, hd - r)], 3)
    }

    /// The hidden state entering block `until`, running the blocks from where `input` starts.
    pub fn hidden(
        &self,
        input: Input<B>,
        at: &Positions<B>,
        until: usize,
        taps: &mut Taps<B>,
    ) -> Tensor<B, 3> {
        let heads = self.config.n_head;
        let (start, mut h) = input.start(|ids| embed(&self.wte, ids));
        let mask = at.mask(None);
        let scale = 1.0 / (self.config.head_dim() as f64).sqrt();
        for (layer, block) in self.blocks.iter().enumerate().take(until).skip(start) {
            let id = |slot| ModuleId { layer, slot };
            let x = block.ln_1.forward(h.clone());
            let q = self.rotate(
                split_heads(taps.run(id(0), &block.linears[0], x.clone()), heads),
                at,
            );
            let k = self.rotate(
                split_heads(taps.run(id(1), &block.linears[1], x.clone()), heads),
                at,
            );
            let v = split_heads(taps.run(id(2), &block.linears[2], x.clone()), heads);
            let attn = taps.run(
                id(3),
                &block.linears[3],
                merge_heads(attend(q, k, v, scale, None, &mask)),
            );
            let fc = taps.run(id(4), &block.linears[4], x);
            let mlp = taps.run(id(5), &block.linears[5], gelu_new(fc));
            h = h + attn + mlp;
        }
        h
    }

    /// The final norm and the head at every position, or at the flat rows `at` (1 × N × V).
    pub fn head(&self, h: Tensor<B, 3>, at: Option<Tensor<B, 1, Int>>) -> Tensor<B, 3> {
        let (w, b) = &self.lm_head;
        lm_logits(self.head_norm(h, at), w) + b.clone().unsqueeze::<3>()
    }

    /// The final norm at every position, or at the flat rows `at` (1 × N × d): what the head
    /// multiplies.
    pub fn head_norm(&self, h: Tensor<B, 3>, at: Option<Tensor<B, 1, Int>>) -> Tensor<B, 3> {
        self.ln_f.forward(head_rows(h, at))
    }

    /// None: GPT-J's head has a bias.
    pub fn plain_head(&self) -> Option<&Tensor<B, 2>> {
        None
    }

    /// A frozen copy on the autodiff backend (gradient passes take gradients at the edited
    /// modules' output probes, [`crate::Taps`]).
    pub fn to_autodiff(&self) -> Gptj<Autodiff<B>> {
        let blocks = self
            .blocks
            .iter()
            .map(|b| Block {
                ln_1: b.ln_1.to_autodiff(),
                linears: linears_to_autodiff(&b.linears),
            })
            .collect();
        Gptj {
            config: self.config.clone(),
            wte: frozen(&self.wte),
            blocks,
            ln_f: self.ln_f.to_autodiff(),
            lm_head: (frozen(&self.lm_head.0), frozen(&self.lm_head.1)),
            rope: self.rope.map(frozen),
        }
    }
}
