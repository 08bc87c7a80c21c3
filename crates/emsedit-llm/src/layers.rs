//! Building blocks shared by the architectures.

use burn::backend::Autodiff;
use burn::tensor::activation::{self, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};

use crate::LlmError;
use crate::batch::Batch;
use crate::taps::{ModuleId, Taps};
use crate::weights::Weights;

/// `y = x W + bias` with `W` stored a×b (fan-in × fan-out), the editors' orientation.
#[derive(Debug, Clone)]
pub struct Affine<B: Backend> {
    /// a×b weight.
    pub weight: Tensor<B, 2>,
    /// Optional b bias.
    pub bias: Option<Tensor<B, 1>>,
    /// A shift S added as `x̄ S`, x̄ the input without gradient: the output is that of W + S,
    /// while gradients reach the input through W alone ([`crate::CausalLm::gradients_stale`]).
    /// `None` on every loaded model.
    pub stale_shift: Option<Tensor<B, 2>>,
}

impl<B: Backend> Affine<B> {
    /// An HF `nn.Linear` (weight stored b×a, optional bias) under `prefix`.
    pub fn load_linear(
        w: &mut Weights,
        prefix: &str,
        (a, b): (usize, usize),
        bias: bool,
        device: &B::Device,
    ) -> Result<Self, LlmError> {
        Ok(Self {
            weight: w.take_linear(&format!("{prefix}.weight"), a, b, device)?,
            bias: if bias {
                Some(w.take(&format!("{prefix}.bias"), [b], device)?)
            } else {
                None
            },
            stale_shift: None,
        })
    }

    /// A GPT-2 `Conv1D` (weight stored a×b, bias) under `prefix`.
    pub fn load_conv1d(
        w: &mut Weights,
        prefix: &str,
        (a, b): (usize, usize),
        device: &B::Device,
    ) -> Result<Self, LlmError> {
        Ok(Self {
            weight: w.take(&format!("{prefix}.weight"), [a, b], device)?,
            bias: Some(w.take(&format!("{prefix}.bias"), [b], device)?),
            stale_shift: None,
        })
    }

    /// Applies the map to the last axis of `x` (batch × time × a), as one 2-D product.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, time, _] = x.dims();
        let [_, b] = self.weight.dims();
        let x = rows(x);
        let mut y = transposed_product(&self.weight, x.clone());
        if let Some(shift) = &self.stale_shift {
            y = y + x.detach().matmul(shift.clone());
        }
        let y = match &self.bias {
            Some(bias) => y + bias.clone().unsqueeze::<2>(),
            None => y,
        };
        y.reshape([batch, time, b])
    }

    /// (a, b).
    pub fn shape(&self) -> [usize; 2] {
        self.weight.dims()
    }

    /// A frozen copy on the autodiff backend.
    pub fn to_autodiff(&self) -> Affine<Autodiff<B>> {
        Affine {
            weight: frozen(&self.weight),
            bias: self.bias.as_ref().map(frozen),
            stale_shift: self.stale_shift.as_ref().map(frozen),
        }
    }
}

/// Token embeddings: rows of `table` (V×d) for batch × time ids.
pub fn embed<B: Backend>(table: &Tensor<B, 2>, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
    let [batch, time] = ids.dims();
    let [_, d] = table.dims();
    table
        .clone()
        .select(0, ids.reshape([batch * time]))
        .reshape([batch, time, d])
}

/// The shape of grouped-query self-attention (LLaMA, Gemma).
#[derive(Debug, Clone, Copy)]
pub struct Gqa {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Score scale.
    pub scale: f64,
    /// Optional score soft-cap.
    pub softcap: Option<f64>,
}

impl Gqa {
    /// Self-attention through `linears[0..4]` (q, k, v, o) of block `layer`, rotary on q and k.
    pub fn forward<B: Backend>(
        &self,
        layer: usize,
        linears: &[Affine<B>],
        x: Tensor<B, 3>,
        rope: &Rope<B>,
        (mask, at): (&Tensor<B, 4, Bool>, &Positions<B>),
        taps: &mut Taps<B>,
    ) -> Tensor<B, 3> {
        let id = |slot| ModuleId { layer, slot };
        let q = split_heads(taps.run(id(0), &linears[0], x.clone()), self.heads);
        let k = split_heads(taps.run(id(1), &linears[1], x.clone()), self.kv_heads);
        let v = split_kv_heads(taps.run(id(2), &linears[2], x), self.kv_heads);
        let (q, k) = (rope.apply(q, at), rope.apply(k, at));
        let attn = merge_heads(attend_grouped(q, k, v, self.scale, self.softcap, mask));
        taps.run(id(3), &linears[3], attn)
    }
}

/// Where a pass starts: token ids (at the embeddings) or the hidden state entering a block.
#[derive(Debug, Clone)]
pub enum Input<B: Backend> {
    /// Token ids, batch × time.
    Ids(Tensor<B, 2, Int>),
    /// The hidden state (batch × time × d) entering block `layer`.
    Hidden(usize, Tensor<B, 3>),
}

impl<B: Backend> Input<B> {
    /// The first block to run and its input, embedding the ids with `embed` when needed.
    pub fn start(
        self,
        embed: impl FnOnce(Tensor<B, 2, Int>) -> Tensor<B, 3>,
    ) -> (usize, Tensor<B, 3>) {
        match self {
            Input::Ids(ids) => (0, embed(ids)),
            Input::Hidden(layer, h) => (layer, h),
        }
    }
}

/// The positions of `h` (batch × time × d) a head is applied to: all, or the flat
/// (batch·time) rows `at`, as 1 × N × d.
pub fn head_rows<B: Backend>(h: Tensor<B, 3>, at: Option<Tensor<B, 1, Int>>) -> Tensor<B, 3> {
    match at {
        None => h,
        Some(at) => rows(h).select(0, at).unsqueeze::<3>(),
    }
}

/// Flattens batch × time × w into (batch·time) × w: one large product beats many small ones.
pub fn rows<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 2> {
    let [batch, time, w] = x.dims();
    x.reshape([batch * time, w])
}

/// `h Eᵀ` for an embedding-shaped head E (V×d): batch × time × V logits.
///
/// From [`PLAIN_HEAD_ROWS`] rows on, the plain product with Eᵀ as a column-major view: gemm
/// writes the logits row-major, where [`transposed_product`]'s `(E hᵀ)ᵀ` leaves a transposed
/// V-wide result to copy; on one thread the plain product's forward and backward take 10–20%
/// less time at 24–88 rows. Below 20 rows `(E hᵀ)ᵀ`, which is 7–20% faster there. The same
/// sums in the same order either way, bit for bit.
pub fn lm_logits<B: Backend>(h: Tensor<B, 3>, head: &Tensor<B, 2>) -> Tensor<B, 3> {
    let [batch, time, _] = h.dims();
    let [vocab, _] = head.dims();
    let x = rows(h);
    let logits = if batch * time >= PLAIN_HEAD_ROWS {
        x.matmul(head.clone().transpose())
    } else {
        transposed_product(&head.clone().transpose(), x)
    };
    logits.reshape([batch, time, vocab])
}

/// The row count from which [`lm_logits`] takes the plain product (measured crossover
/// between 16 and 24 rows on SmolLM2's and Gemma-3's heads, docs/performance.md).
pub const PLAIN_HEAD_ROWS: usize = 20;

/// `x W` (n×a times a×b) computed as `(Wᵀ xᵀ)ᵀ`. The CPU matmul (gemm) packs its right
/// operand element by element when that operand is stored column-major, which a model's
/// weights are here (HF's b×a `nn.Linear` weights, read as a×b views): the plain product spent
/// 43% of a SmolLM2 forward in that packing. With the weight on the left, the forward packs
/// the small xᵀ instead, and the backward's input gradient `Ġ Wᵀ`, as `W Ġᵀ`, packs the
/// small Ġᵀ too. The same products, summed in gemm's order for the other layout.
pub fn transposed_product<B: Backend>(w: &Tensor<B, 2>, x: Tensor<B, 2>) -> Tensor<B, 2> {
    w.clone().transpose().matmul(x.transpose()).transpose()
}

/// A block's linear modules, frozen, on the autodiff backend.
pub fn linears_to_autodiff<B: Backend, const N: usize>(
    linears: &[Affine<B>; N],
) -> [Affine<Autodiff<B>>; N] {
    std::array::from_fn(|slot| linears[slot].to_autodiff())
}

/// LayerNorm over the last axis.
#[derive(Debug, Clone)]
pub struct LayerNorm<B: Backend> {
    /// Scale.
    pub weight: Tensor<B, 1>,
    /// Shift.
    pub bias: Tensor<B, 1>,
    /// Epsilon.
    pub eps: f64,
}

impl<B: Backend> LayerNorm<B> {
    /// `prefix.weight` and `prefix.bias` of width d.
    pub fn load(
        w: &mut Weights,
        prefix: &str,
        d: usize,
        eps: f64,
        device: &B::Device,
    ) -> Result<Self, LlmError> {
        Ok(Self {
            weight: w.take(&format!("{prefix}.weight"), [d], device)?,
            bias: w.take(&format!("{prefix}.bias"), [d], device)?,
            eps,
        })
    }

    /// A frozen copy on the autodiff backend.
    pub fn to_autodiff(&self) -> LayerNorm<Autodiff<B>> {
        LayerNorm {
            weight: frozen(&self.weight),
            bias: frozen(&self.bias),
            eps: self.eps,
        }
    }

    /// `(x − mean)/sqrt(var + eps) · w + b`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let mean = x.clone().mean_dim(2);
        let centered = x - mean;
        let var = centered.clone().powi_scalar(2).mean_dim(2);
        centered / var.add_scalar(self.eps).sqrt() * self.weight.clone().unsqueeze::<3>()
            + self.bias.clone().unsqueeze::<3>()
    }
}

/// GPT-2's `gelu_new`: `0.5 x (1 + tanh(u))`, `u = √(2/π) (x + 0.044715 x³)`, computed as
/// `x σ(2u)` (the same function): the CPU backend's `tanh` and `powf` are scalar library
/// calls, which took 8% of a Gemma-3 forward, and its sigmoid one `exp`; x³ is two products,
/// as in PyTorch. (`x / (1 + e^(−2u))` is the same too, but its backward is NaN where e^(−2u)
/// overflows.)
pub fn gelu_new<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let c = (2.0f64 / std::f64::consts::PI).sqrt();
    let cube = x.clone() * x.clone() * x.clone();
    let two_u = (x.clone() + cube.mul_scalar(0.044715)).mul_scalar(2.0 * c);
    x * activation::sigmoid(two_u)
}

/// Where a batch's tokens sit: which keys each may attend to, and its position when some row
/// is packed (positions then count from 0 at each sequence's first token).
#[derive(Debug, Clone)]
pub struct Positions<B: Backend> {
    batch: usize,
    time: usize,
    segments: Vec<i64>,
    ids: Option<Tensor<B, 1, Int>>,
    device: B::Device,
}

impl<B: Backend> Positions<B> {
    /// The layout of `batch` (see [`Batch::attention_mask`]).
    pub fn new(batch: &Batch, device: &B::Device) -> Self {
        let ids = batch.packed().then(|| {
            let pos = batch.positions();
            let n = pos.len();
            Tensor::from_data(burn::tensor::TensorData::new(pos, [n]), device)
        });
        Self {
            batch: batch.batch,
            time: batch.time,
            segments: batch.attention_mask.clone(),
            ids,
            device: device.clone(),
        }
    }

    /// Flat (batch·time) positions, or `None` when every row counts 0, 1, … from its start.
    pub fn ids(&self) -> Option<&Tensor<B, 1, Int>> {
        self.ids.as_ref()
    }

    /// The keys a query may not see (batch × 1 × time × time): the future, keys `window` or
    /// more steps back (sliding-window attention), padding, and other sequences of its row.
    pub fn mask(&self, window: Option<usize>) -> Tensor<B, 4, Bool> {
        let (batch, time) = (self.batch, self.time);
        let mut hidden = Vec::with_capacity(batch * time * time);
        for row in self.segments.chunks(time.max(1)) {
            for i in 0..time {
                hidden.extend((0..time).map(|j| {
                    j > i
                        || window.is_some_and(|w| j + w <= i)
                        || row[j] == 0
                        || (row[i] != 0 && row[j] != row[i])
                }));
            }
        }
        Tensor::from_data(
            burn::tensor::TensorData::new(hidden, [batch, 1, time, time]),
            &self.device,
        )
    }
}

/// Scaled dot-product attention over heads: q, k, v are batch × heads × time × head_dim.
///
/// With `softcap`, scores become `cap · tanh(scores / cap)` before masking (Gemma-2).
pub fn attend<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    scale: f64,
    softcap: Option<f64>,
    mask: &Tensor<B, 4, Bool>,
) -> Tensor<B, 4> {
    let [batch, heads, time, _] = q.dims();
    let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
    let mask = mask.clone().expand([batch, heads, time, time]);
    attention_weights(scores, softcap, mask).matmul(v)
}

/// Softmax over the last axis of attention scores, capped first (`cap · tanh(s / cap)`) when
/// `softcap` is set, with the masked keys left out.
fn attention_weights<B: Backend, const D: usize>(
    mut scores: Tensor<B, D>,
    softcap: Option<f64>,
    mask: Tensor<B, D, Bool>,
) -> Tensor<B, D> {
    if let Some(cap) = softcap {
        scores = scores.div_scalar(cap).tanh().mul_scalar(cap);
    }
    softmax(scores.mask_fill(mask, f32::MIN), D - 1)
}

/// [`attend`] for grouped-query attention: query head `i · group + j` attends with key and
/// value head `i`. `q` is batch × heads × time × hd, `k` batch × kv × time × hd and `v`
/// batch × kv × 1 × time × hd ([`split_kv_heads`]). The keys and values are broadcast over
/// each group in the batched products rather than copied once per query head
/// ([`repeat_kv`]): the same products, without the copies (burn-flex walks an expanded
/// view element by element) or their backward.
pub fn attend_grouped<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 5>,
    scale: f64,
    softcap: Option<f64>,
    mask: &Tensor<B, 4, Bool>,
) -> Tensor<B, 4> {
    let [batch, heads, time, hd] = q.dims();
    let kv = k.dims()[1];
    let group = heads / kv;
    let q = q.reshape([batch, kv, group, time, hd]);
    let scores = q
        .matmul(k.unsqueeze_dim::<5>(2).swap_dims(3, 4))
        .mul_scalar(scale);
    let mask = mask.clone().unsqueeze_dim::<5>(1);
    let mask = mask.expand([batch, kv, group, time, time]);
    attention_weights(scores, softcap, mask)
        .matmul(v)
        .reshape([batch, heads, time, hd])
}

/// Splits batch × time × (kv·hd) into batch × kv × 1 × time × hd, the values' layout for
/// [`attend_grouped`]: a view, without a copy, of a contiguous x (a projection's output).
pub fn split_kv_heads<B: Backend>(x: Tensor<B, 3>, kv: usize) -> Tensor<B, 5> {
    let [batch, time, width] = x.dims();
    x.reshape([batch, time, kv, 1, width / kv])
        .permute([0, 2, 3, 1, 4])
}

/// Splits batch × time × (heads·hd) into batch × heads × time × hd.
pub fn split_heads<B: Backend>(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
    let [batch, time, width] = x.dims();
    x.reshape([batch, time, heads, width / heads])
        .swap_dims(1, 2)
}

/// Inverse of [`split_heads`].
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [batch, heads, time, hd] = x.dims();
    x.swap_dims(1, 2).reshape([batch, time, heads * hd])
}

/// A frozen copy of a plain tensor on the autodiff backend (no gradient tracked).
pub fn frozen<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Tensor<Autodiff<B>, D> {
    Tensor::from_inner(t.clone())
}

/// RMSNorm over the last axis: `x / sqrt(mean(x²) + eps) · (offset + w)`.
///
/// `offset` is 0 for LLaMA and 1 for Gemma (which stores `w − 1`).
#[derive(Debug, Clone)]
pub struct RmsNorm<B: Backend> {
    /// Scale as stored.
    pub weight: Tensor<B, 1>,
    /// Epsilon.
    pub eps: f64,
    /// Added to the stored scale.
    pub offset: f64,
}

impl<B: Backend> RmsNorm<B> {
    /// The scale `name` of width d.
    pub fn load(
        w: &mut Weights,
        name: &str,
        d: usize,
        eps: f64,
        offset: f64,
        device: &B::Device,
    ) -> Result<Self, LlmError> {
        Ok(Self {
            weight: w.take(name, [d], device)?,
            eps,
            offset,
        })
    }

    /// A frozen copy on the autodiff backend.
    pub fn to_autodiff(&self) -> RmsNorm<Autodiff<B>> {
        RmsNorm {
            weight: frozen(&self.weight),
            eps: self.eps,
            offset: self.offset,
        }
    }

    /// Normalizes the last axis.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let ms = x.clone().powi_scalar(2).mean_dim(D - 1);
        x / ms.add_scalar(self.eps).sqrt()
            * self.weight.clone().add_scalar(self.offset).unsqueeze::<D>()
    }
}

/// Most positions a rotary table holds (and so the longest sequence a rotary model accepts):
/// 8,192, SmolLM2's context; Gemma-3's 32,768 would cost 128 MiB of tables for prompts of a
/// few dozen tokens.
pub const MAX_ROPE_POSITIONS: usize = 8192;

/// Rotary position embedding in the rotate-half layout (LLaMA, Gemma): pairs (i, i + d/2).
#[derive(Debug, Clone)]
pub struct Rope<B: Backend> {
    /// cos, positions × head_dim.
    cos: Tensor<B, 2>,
    /// sin, positions × head_dim.
    sin: Tensor<B, 2>,
}

impl<B: Backend> Rope<B> {
    /// Tables for `positions` positions (at most [`MAX_ROPE_POSITIONS`]) from the inverse
    /// frequencies (head_dim / 2 of them).
    pub fn new(inv_freq: &[f64], positions: usize, device: &B::Device) -> Self {
        let positions = positions.min(MAX_ROPE_POSITIONS);
        let half = inv_freq.len();
        let mut cos = Vec::with_capacity(positions * 2 * half);
        let mut sin = Vec::with_capacity(positions * 2 * half);
        for p in 0..positions {
            for _ in 0..2 {
                for f in inv_freq {
                    // The reference forms the angle in f32.
                    let angle = (p as f32 * *f as f32) as f64;
                    cos.push(angle.cos() as f32);
                    sin.push(angle.sin() as f32);
                }
            }
        }
        let table = |v: Vec<f32>| {
            Tensor::from_data(
                burn::tensor::TensorData::new(v, [positions, 2 * half]),
                device,
            )
        };
        Self {
            cos: table(cos),
            sin: table(sin),
        }
    }

    /// Tables for the interleaved layout (GPT-J): pairs (2i, 2i + 1), frequency i; at most
    /// [`MAX_ROPE_POSITIONS`] positions.
    pub fn new_interleaved(inv_freq: &[f64], positions: usize, device: &B::Device) -> Self {
        let positions = positions.min(MAX_ROPE_POSITIONS);
        let doubled: Vec<f64> = inv_freq.iter().flat_map(|f| [*f, *f]).collect();
        let width = doubled.len();
        let mut cos = Vec::with_capacity(positions * width);
        let mut sin = Vec::with_capacity(positions * width);
        for p in 0..positions {
            for f in &doubled {
                let angle = (p as f32 * *f as f32) as f64;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let table = |v: Vec<f32>| {
            Tensor::from_data(burn::tensor::TensorData::new(v, [positions, width]), device)
        };
        Self {
            cos: table(cos),
            sin: table(sin),
        }
    }

    /// The table's rows at the positions of `at` (batch·time × width), or `None` when they
    /// are its first `time` rows in every row of the batch.
    fn gathered(table: &Tensor<B, 2>, at: &Positions<B>) -> Option<Tensor<B, 2>> {
        at.ids().map(|ids| table.clone().select(0, ids.clone()))
    }

    /// Rotates x (batch × heads × time × 2k) in the interleaved layout.
    pub fn apply_interleaved(&self, x: Tensor<B, 4>, at: &Positions<B>) -> Tensor<B, 4> {
        let [b, h, time, width] = x.dims();
        let table = |t: &Tensor<B, 2>| match Self::gathered(t, at) {
            Some(rows) => rows.reshape([b, 1, time, width]),
            None => t.clone().narrow(0, 0, time).unsqueeze::<4>(),
        };
        let (cos, sin) = (table(&self.cos), table(&self.sin));
        let pairs = x.clone().reshape([b, h, time, width / 2, 2]);
        let even = pairs.clone().narrow(4, 0, 1);
        let odd = pairs.narrow(4, 1, 1);
        let rotated = Tensor::cat(vec![odd.neg(), even], 4).reshape([b, h, time, width]);
        x * cos + rotated * sin
    }

    /// Rotates x (batch × heads × time × head_dim).
    ///
    /// The products run on (batch·heads) × (time·head_dim) rows against one shared table
    /// row, a shape the CPU backend multiplies with SIMD; broadcasting the 2-D tables over a
    /// 4-D x would take its scalar strided path instead (the same numbers, slower).
    ///
    /// In a packed batch of one row the table rows are gathered at the tokens' positions and
    /// the same shared-row products run. With several packed rows (the editors' usual case,
    /// rows of at most [`crate::PACKED_ROW_TOKENS`]) the heads go first: heads × (batch·time
    /// ·head_dim) rows against the gathered rows as one shared row, and the result is
    /// returned as a batch × heads view of that layout.
    pub fn apply(&self, x: Tensor<B, 4>, at: &Positions<B>) -> Tensor<B, 4> {
        let [b, h, time, hd] = x.dims();
        if let Some(ids) = at.ids().filter(|_| b > 1) {
            let x = x.swap_dims(0, 1);
            let rotated = Self::rotate_half(x.clone()).reshape([h, b * time * hd]);
            let table =
                |t: &Tensor<B, 2>| t.clone().select(0, ids.clone()).reshape([1, b * time * hd]);
            let x = x.reshape([h, b * time * hd]);
            return (x * table(&self.cos) + rotated * table(&self.sin))
                .reshape([h, b, time, hd])
                .swap_dims(0, 1);
        }
        let rotated = Self::rotate_half(x.clone());
        let table = |t: &Tensor<B, 2>| {
            Self::gathered(t, at)
                .unwrap_or_else(|| t.clone().narrow(0, 0, time))
                .reshape([1, time * hd])
        };
        let rotated = rotated.reshape([b * h, time * hd]);
        let x = x.reshape([b * h, time * hd]);
        (x * table(&self.cos) + rotated * table(&self.sin)).reshape([b, h, time, hd])
    }

    /// `[-second half, first half]` along the last axis.
    fn rotate_half(x: Tensor<B, 4>) -> Tensor<B, 4> {
        let hd = x.dims()[3];
        let first = x.clone().narrow(3, 0, hd / 2);
        let second = x.narrow(3, hd / 2, hd / 2);
        Tensor::cat(vec![second.neg(), first], 3)
    }

    /// The tables moved to another backend (same values).
    pub fn map<B2: Backend>(&self, f: impl Fn(&Tensor<B, 2>) -> Tensor<B2, 2>) -> Rope<B2> {
        Rope {
            cos: f(&self.cos),
            sin: f(&self.sin),
        }
    }
}

/// Repeats each of the kv heads `times` times (grouped-query attention).
pub fn repeat_kv<B: Backend>(x: Tensor<B, 4>, times: usize) -> Tensor<B, 4> {
    if times == 1 {
        return x;
    }
    let [batch, kv, time, hd] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .expand([batch, kv, times, time, hd])
        .reshape([batch, kv * times, time, hd])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use emsedit_tensor::{Cpu, cpu};

    fn one_row(time: usize) -> Batch {
        Batch {
            batch: 1,
            time,
            input_ids: vec![0; time],
            attention_mask: vec![1; time],
            labels: vec![crate::IGNORE; time],
        }
    }

    fn t4(v: Vec<f32>, shape: [usize; 4]) -> Tensor<Cpu, 4> {
        Tensor::from_data(TensorData::new(v, shape), &cpu())
    }

    #[test]
    fn softcap_bounds_scores_before_softmax() {
        // One head, two positions; scores q·k = 100 and 0 for the second query.
        let q = t4(vec![0.0, 10.0], [1, 1, 2, 1]);
        let k = t4(vec![10.0, 0.0], [1, 1, 2, 1]);
        let v = t4(vec![1.0, 0.0], [1, 1, 2, 1]);
        let mask = Positions::<Cpu>::new(&one_row(2), &cpu()).mask(None);
        let out = |cap| {
            attend(q.clone(), k.clone(), v.clone(), 1.0, cap, &mask)
                .into_data()
                .into_vec::<f32>()
                .unwrap()
        };
        // Uncapped: the second row weighs key 0 by softmax(100, 0) ≈ 1.
        assert!((out(None)[1] - 1.0).abs() < 1e-6);
        // Capped at 1: scores become tanh(100) ≈ 1 and 0, so the weight is σ(1).
        let want = 1.0 / (1.0 + (-1.0f32).exp());
        assert!(
            (out(Some(1.0))[1] - want).abs() < 1e-6,
            "{:?}",
            out(Some(1.0))
        );
    }

    #[test]
    fn grouped_attention_is_attention_with_repeated_heads() {
        // Two rows of 5, 6 query heads on 2 key/value heads (groups of 3), head width 4.
        let (b, h, kv, t, hd) = (2, 6, 2, 5, 4);
        let data = |n: usize, k: f32| (0..n).map(|i| (i as f32 * k).sin()).collect::<Vec<_>>();
        let q = t4(data(b * h * t * hd, 0.37), [b, h, t, hd]);
        let k = t4(data(b * kv * t * hd, 0.53), [b, kv, t, hd]);
        let v3: Tensor<Cpu, 3> = Tensor::from_data(
            TensorData::new(data(b * t * kv * hd, 0.71), [b, t, kv * hd]),
            &cpu(),
        );
        let mut batch = one_row(t);
        batch.batch = b;
        batch.input_ids = vec![0; b * t];
        batch.attention_mask = vec![1; b * t];
        batch.labels = vec![crate::IGNORE; b * t];
        let mask = Positions::<Cpu>::new(&batch, &cpu()).mask(None);
        let flat = |x: Tensor<Cpu, 4>| x.into_data().into_vec::<f32>().unwrap();
        for cap in [None, Some(2.0)] {
            let want = attend(
                q.clone(),
                repeat_kv(k.clone(), h / kv),
                repeat_kv(split_heads(v3.clone(), kv), h / kv),
                0.5,
                cap,
                &mask,
            );
            let got = attend_grouped(
                q.clone(),
                k.clone(),
                split_kv_heads(v3.clone(), kv),
                0.5,
                cap,
                &mask,
            );
            assert_eq!(flat(got), flat(want), "softcap {cap:?}");
        }
    }

    #[test]
    fn packed_rows_rotate_each_sequence_from_position_zero() {
        // One row holding a sequence of 2 tokens, then one of 3: each part rotates as a
        // batch of its own would, in both layouts, bit for bit.
        let (h, hd) = (2, 4);
        let x = t4(
            (0..2 * 5 * hd).map(|i| i as f32 * 0.37 - 3.0).collect(),
            [1, h, 5, hd],
        );
        let mut packed = one_row(5);
        packed.attention_mask = vec![1, 1, 2, 2, 2];
        let packed = Positions::<Cpu>::new(&packed, &cpu());
        let rope = Rope::<Cpu>::new(&[1.0, 0.3], 16, &cpu());
        let inter = Rope::<Cpu>::new_interleaved(&[1.0, 0.3], 16, &cpu());
        let flat = |t: Tensor<Cpu, 4>| t.into_data().into_vec::<f32>().unwrap();
        for (len, start) in [(2, 0), (3, 2)] {
            let part = x.clone().narrow(2, start, len);
            let alone = Positions::<Cpu>::new(&one_row(len), &cpu());
            assert_eq!(
                flat(rope.apply(x.clone(), &packed).narrow(2, start, len)),
                flat(rope.apply(part.clone(), &alone))
            );
            assert_eq!(
                flat(
                    inter
                        .apply_interleaved(x.clone(), &packed)
                        .narrow(2, start, len)
                ),
                flat(inter.apply_interleaved(part, &alone))
            );
        }
        // Two packed rows take the broadcast path: the same numbers as one row each.
        let mut two = one_row(5);
        two.batch = 2;
        two.time = 5;
        for v in [&mut two.input_ids, &mut two.labels] {
            *v = [v.clone(), v.clone()].concat();
        }
        two.attention_mask = [vec![1, 1, 2, 2, 2], vec![1, 1, 2, 2, 2]].concat();
        let both = Tensor::cat(vec![x.clone(), x.clone()], 0);
        let got = flat(rope.apply(both, &Positions::new(&two, &cpu())));
        let one = flat(rope.apply(x, &packed));
        assert_eq!(got, [one.clone(), one].concat());
    }

    #[test]
    fn head_logits_are_the_transposed_product_bit_for_bit_at_every_row_count() {
        let (vocab, d) = (3001, 72);
        let e = Tensor::<Cpu, 2>::from_data(
            TensorData::new(
                (0..vocab * d)
                    .map(|i| ((i * 37) % 101) as f32 * 0.013 - 0.6)
                    .collect(),
                [vocab, d],
            ),
            &cpu(),
        );
        for rows in [1, 7, 19, 20, 24, 88] {
            let h = Tensor::<Cpu, 3>::from_data(
                TensorData::new(
                    (0..rows * d)
                        .map(|i| ((i * 53) % 97) as f32 * 0.021 - 1.0)
                        .collect(),
                    [1, rows, d],
                ),
                &cpu(),
            );
            let got = lm_logits(h.clone(), &e)
                .into_data()
                .into_vec::<f32>()
                .unwrap();
            let old = e
                .clone()
                .matmul(super::rows(h).transpose())
                .transpose()
                .into_data()
                .into_vec::<f32>()
                .unwrap();
            let same = got
                .iter()
                .zip(&old)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{rows} rows");
        }
    }

    #[test]
    fn packed_rows_hide_other_sequences() {
        let mut batch = one_row(4);
        batch.attention_mask = vec![1, 1, 2, 2];
        let mask = Positions::<Cpu>::new(&batch, &cpu())
            .mask(None)
            .into_data()
            .into_vec::<bool>()
            .unwrap();
        // Row 3 (second sequence) sees keys 2 and 3; row 1 sees keys 0 and 1.
        assert_eq!(&mask[12..16], &[true, true, false, false]);
        assert_eq!(&mask[4..8], &[false, false, true, true]);
    }

    #[test]
    fn sliding_window_hides_old_keys() {
        let at = Positions::<Cpu>::new(&one_row(4), &cpu());
        let mask = at.mask(Some(2)).into_data().into_vec::<bool>().unwrap();
        // Row 3 sees keys 2 and 3 only.
        assert_eq!(&mask[12..16], &[true, true, false, false]);
        let mask = at.mask(None).into_data().into_vec::<bool>().unwrap();
        assert_eq!(&mask[12..16], &[false; 4]);
        assert_eq!(&mask[0..4], &[false, true, true, true]);
    }
}
