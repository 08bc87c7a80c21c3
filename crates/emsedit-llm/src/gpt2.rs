//! GPT-2 (`model_type: "gpt2"`), with HF's Conv1D weights used as stored (a×b).

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor};

use crate::LlmError;
use crate::config::Gpt2Config;
use crate::layers::{
    Affine, Input, LayerNorm, Positions, attend, embed, frozen, gelu_new, head_rows,
    linears_to_autodiff, lm_logits, merge_heads, split_heads,
};
use crate::taps::{ModuleId, Taps};
use crate::weights::Weights;

/// The linear modules of one block, in slot order, by their HF names under `transformer.h.{i}.`.
pub const SLOTS: [&str; 4] = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"];

#[derive(Debug, Clone)]
struct Block<B: Backend> {
    ln_1: LayerNorm<B>,
    ln_2: LayerNorm<B>,
    /// c_attn, attn.c_proj, c_fc, mlp.c_proj.
    linears: [Affine<B>; 4],
}

/// A GPT-2 model.
#[derive(Debug, Clone)]
pub struct Gpt2<B: Backend> {
    config: Gpt2Config,
    wte: Tensor<B, 2>,
    wpe: Tensor<B, 2>,
    blocks: Vec<Block<B>>,
    ln_f: LayerNorm<B>,
}

impl<B: Backend> Gpt2<B> {
    /// Builds the model from a checkpoint, taking every tensor it needs.
    pub fn load(
        config: &Gpt2Config,
        w: &mut Weights,
        device: &B::Device,
    ) -> Result<Self, LlmError> {
        let (d, inner, eps) = (config.n_embd, config.inner(), config.layer_norm_epsilon);
        let blocks = (0..config.n_layer)
            .map(|i| {
                let p = format!("transformer.h.{i}");
                Ok(Block {
                    ln_1: LayerNorm::load(w, &format!("{p}.ln_1"), d, eps, device)?,
                    ln_2: LayerNorm::load(w, &format!("{p}.ln_2"), d, eps, device)?,
                    linears: [
                        Affine::load_conv1d(w, &format!("{p}.attn.c_attn"), (d, 3 * d), device)?,
                        Affine::load_conv1d(w, &format!("{p}.attn.c_proj"), (d, d), device)?,
                        Affine::load_conv1d(w, &format!("{p}.mlp.c_fc"), (d, inner), device)?,
                        Affine::load_conv1d(w, &format!("{p}.mlp.c_proj"), (inner, d), device)?,
                    ],
                })
            })
            .collect::<Result<_, LlmError>>()?;
        let wte = w.take("transformer.wte.weight", [config.vocab_size, d], device)?;
        if !config.tie_word_embeddings {
            // GPT-2 always ties; an untied head would be ignored by HF's GPT2LMHeadModel too.
            let _ = w.take::<B, 2>("lm_head.weight", [config.vocab_size, d], device);
        }
        Ok(Self {
            config: config.clone(),
            wpe: w.take("transformer.wpe.weight", [config.n_positions, d], device)?,
            ln_f: LayerNorm::load(w, "transformer.ln_f", d, eps, device)?,
            wte,
            blocks,
        })
    }

    /// A freshly initialized model (HF's init: weights N(0, 0.02), biases 0, LayerNorm 1/0),
    /// drawn from the backend's seeded generator.
    pub fn init(config: &Gpt2Config, device: &B::Device) -> Self {
        let (d, inner, eps) = (config.n_embd, config.inner(), config.layer_norm_epsilon);
        let normal =
            |shape: [usize; 2]| Tensor::random(shape, Distribution::Normal(0.0, 0.02), device);
        let ln = || LayerNorm {
            weight: Tensor::ones([d], device),
            bias: Tensor::zeros([d], device),
            eps,
        };
        let affine = |a, b| Affine {
            weight: normal([a, b]),
            bias: Some(Tensor::zeros([b], device)),
            stale_shift: None,
        };
        let blocks = (0..config.n_layer)
            .map(|_| Block {
                ln_1: ln(),
                ln_2: ln(),
                linears: [
                    affine(d, 3 * d),
                    affine(d, d),
                    affine(d, inner),
                    affine(inner, d),
                ],
            })
            .collect();
        Self {
            config: config.clone(),
            wte: normal([config.vocab_size, d]),
            wpe: normal([config.n_positions, d]),
            blocks,
            ln_f: ln(),
        }
    }

    linear_access!(Gpt2Config);

    /// Rebuilds the model with every parameter passed through `f`, flattened, with its HF
    /// name and shape, in a fixed order (the one [`Gpt2::params`] lists). Pre-training uses it to move
    /// the model to the autodiff backend and back through the optimizer.
    pub fn map_params<B2: Backend>(
        &self,
        f: &mut impl FnMut(&str, &[usize], Tensor<B, 1>) -> Tensor<B2, 1>,
    ) -> Gpt2<B2> {
        fn flat<B: Backend, B2: Backend, const D: usize>(
            f: &mut impl FnMut(&str, &[usize], Tensor<B, 1>) -> Tensor<B2, 1>,
            name: &str,
            t: &Tensor<B, D>,
        ) -> Tensor<B2, D> {
            let dims = t.dims();
            let flat = t.clone().reshape([dims.iter().product::<usize>()]);
            f(name, &dims, flat).reshape(dims)
        }
        let ln = |f: &mut _, p: &str, l: &LayerNorm<B>| LayerNorm {
            weight: flat(f, &format!("{p}.weight"), &l.weight),
            bias: flat(f, &format!("{p}.bias"), &l.bias),
            eps: l.eps,
        };
        let wte = flat(f, "transformer.wte.weight", &self.wte);
        let wpe = flat(f, "transformer.wpe.weight", &self.wpe);
        let blocks = self
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let p = format!("transformer.h.{i}");
                let ln_1 = ln(f, &format!("{p}.ln_1"), &b.ln_1);
                let ln_2 = ln(f, &format!("{p}.ln_2"), &b.ln_2);
                let linears = std::array::from_fn(|slot| {
                    let (l, name) = (&b.linears[slot], format!("{p}.{}", SLOTS[slot]));
                    Affine {
                        weight: flat(f, &format!("{name}.weight"), &l.weight),
                        bias: l.bias.as_ref().map(|t| flat(f, &format!("{name}.bias"), t)),
                        stale_shift: None,
                    }
                });
                Block {
                    ln_1,
                    ln_2,
                    linears,
                }
            })
            .collect();
        Gpt2 {
            config: self.config.clone(),
            wte,
            wpe,
            blocks,
            ln_f: ln(f, "transformer.ln_f", &self.ln_f),
        }
    }

    /// Every parameter with its HF name and shape (Conv1D weights a×b, as HF stores them).
    pub fn params(&self) -> Vec<(String, Vec<usize>, Tensor<B, 1>)> {
        let mut out = Vec::new();
        self.map_params::<B>(&mut |name, dims, t| {
            out.push((name.to_string(), dims.to_vec(), t.clone()));
            t
        });
        out
    }

    /// The hidden state entering block `until`, running the blocks from where `input` starts.
    pub fn hidden(
        &self,
        input: Input<B>,
        at: &Positions<B>,
        until: usize,
        taps: &mut Taps<B>,
    ) -> Tensor<B, 3> {
        let d = self.config.n_embd;
        let heads = self.config.n_head;
        let (start, mut h) = input.start(|ids| {
            let [batch, time] = ids.dims();
            let positions = match at.ids() {
                Some(pos) => self
                    .wpe
                    .clone()
                    .select(0, pos.clone())
                    .reshape([batch, time, d]),
                None => self.wpe.clone().narrow(0, 0, time).unsqueeze::<3>(),
            };
            embed(&self.wte, ids) + positions
        });
        let mask = at.mask(None);
        let scale = if self.config.scale_attn_weights {
            1.0 / ((d / heads) as f64).sqrt()
        } else {
            1.0
        };
        for (layer, block) in self.blocks.iter().enumerate().take(until).skip(start) {
            let id = |slot| ModuleId { layer, slot };
            let qkv = taps.run(id(0), &block.linears[0], block.ln_1.forward(h.clone()));
            let mut parts = qkv.split(d, 2).into_iter().map(|t| split_heads(t, heads));
            let (q, k, v) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            let attn = merge_heads(attend(q, k, v, scale, None, &mask));
            h = h + taps.run(id(1), &block.linears[1], attn);
            let fc = taps.run(id(2), &block.linears[2], block.ln_2.forward(h.clone()));
            h = h + taps.run(id(3), &block.linears[3], gelu_new(fc));
        }
        h
    }

    /// The final norm and the head at every position, or at the flat rows `at` (1 × N × V).
    pub fn head(&self, h: Tensor<B, 3>, at: Option<Tensor<B, 1, Int>>) -> Tensor<B, 3> {
        lm_logits(self.head_norm(h, at), &self.wte)
    }

    /// The final norm at every position, or at the flat rows `at` (1 × N × d): what the head
    /// multiplies.
    pub fn head_norm(&self, h: Tensor<B, 3>, at: Option<Tensor<B, 1, Int>>) -> Tensor<B, 3> {
        self.ln_f.forward(head_rows(h, at))
    }

    /// The V × d matrix E when the head is the plain product `h Eᵀ` ([`crate::head_loss`]).
    pub fn plain_head(&self) -> Option<&Tensor<B, 2>> {
        Some(&self.wte)
    }

    /// A frozen copy on the autodiff backend (gradient passes take gradients at the edited
    /// modules' output probes, [`crate::Taps`]).
    pub fn to_autodiff(&self) -> Gpt2<Autodiff<B>> {
        let blocks = self
            .blocks
            .iter()
            .map(|b| Block {
                ln_1: b.ln_1.to_autodiff(),
                ln_2: b.ln_2.to_autodiff(),
                linears: linears_to_autodiff(&b.linears),
            })
            .collect();
        Gpt2 {
            config: self.config.clone(),
            wte: frozen(&self.wte),
            wpe: frozen(&self.wpe),
            blocks,
            ln_f: self.ln_f.to_autodiff(),
        }
    }
}
