//! A loaded causal LM of any supported architecture, with the editors' interface.

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use emsedit_tensor::threads::scoped_map;

use crate::LlmError;
use crate::batch::Batch;
use crate::config::ModelConfig;
use crate::gemma2::Gemma2;
use crate::gemma3::Gemma3;
use crate::gpt2::{self, Gpt2};
use crate::gptj::{self, Gptj};
use crate::head_loss::{HEAD_BLOCK_ROWS, head_nll};
use crate::layers::{self, Affine, Input, Positions};
use crate::llama::{self, Llama};
use crate::parts::{
    CPU_PASS_PARTS, join, position_weights, row_parts, sequence_parts, token_parts,
};
use crate::prefix::{MAX_SCORING_BYTES, PrefixCache};
use crate::taps::{ModuleId, Taps};
use crate::weights::Weights;

#[derive(Debug, Clone)]
enum Arch<B: Backend> {
    Gpt2(Gpt2<B>),
    Gptj(Gptj<B>),
    Llama(Llama<B>),
    Gemma2(Gemma2<B>),
    Gemma3(Gemma3<B>),
}

/// Runs the same code on whichever architecture `$arch` holds, bound to `$m`.
macro_rules! each_arch {
    ($arch:expr, $m:ident => $body:expr) => {
        match $arch {
            Arch::Gpt2($m) => $body,
            Arch::Gptj($m) => $body,
            Arch::Llama($m) => $body,
            Arch::Gemma2($m) => $body,
            Arch::Gemma3($m) => $body,
        }
    };
}

/// What one backward pass gives the editors for each requested module (spec §2.3–2.4).
#[derive(Debug, Clone)]
pub struct EditGrads<B: Backend> {
    /// The loss: mean cross-entropy over labelled positions (of a packed pass: the sum of
    /// the micro-batches' means).
    pub loss: f32,
    /// Module inputs at labelled positions (N×a), batch-major.
    pub keys: Vec<Tensor<B, 2>>,
    /// ∂loss/∂(module output) at labelled positions (N×b).
    pub out_grads: Vec<Tensor<B, 2>>,
    /// ∂loss/∂W (a×b), summed over all positions.
    pub gammas: Vec<Tensor<B, 2>>,
}

/// The loss whose gradients [`CausalLm::gradients`] returns.
#[derive(Debug, Clone, Copy)]
pub enum Objective<'a, B: Backend> {
    /// Mean cross-entropy of the labels over labelled positions.
    CrossEntropy,
    /// `KL(p_ref ‖ p)` averaged over labelled positions, `p_ref` from reference logits at the
    /// batch's labelled positions (N × V, [`CausalLm::label_logits`]), taken without gradient.
    Kl(&'a Tensor<B, 2>),
}

/// Labelled flat positions and the logits there (N × V).
type LabelLogits<B> = (Vec<i64>, Tensor<B, 2>);

/// A causal language model loaded from a Hugging Face directory.
#[derive(Debug, Clone)]
pub struct CausalLm<B: Backend> {
    dir: PathBuf,
    config: ModelConfig,
    arch: Arch<B>,
    device: B::Device,
    prefix: PrefixCache<B>,
    /// States for scoring passes (no gradient), kept across edits: [`CausalLm::start_scoring_cache`].
    scoring: PrefixCache<B>,
    /// Parts a pass over several rows is split into: [`CausalLm::set_pass_parts`].
    parts: usize,
    /// Whether cross-entropy passes take the head in one sweep: [`CausalLm::set_head_sweep`].
    head_sweep: bool,
}

impl<B: Backend> CausalLm<B> {
    /// Loads `config.json` and the safetensors weights of `dir`.
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self, LlmError> {
        let config = ModelConfig::load(&dir.join("config.json"))?;
        let mut weights = Weights::load_dir(dir)?;
        let arch = match &config {
            ModelConfig::Gpt2(c) => Arch::Gpt2(Gpt2::load(c, &mut weights, device)?),
            ModelConfig::Gptj(c) => Arch::Gptj(Gptj::load(c, &mut weights, device)?),
            ModelConfig::Llama(c) => Arch::Llama(Llama::load(c, &mut weights, device)?),
            ModelConfig::Gemma2(c) if c.gemma3 => {
                Arch::Gemma3(Gemma3::load(c, &mut weights, device)?)
            }
            ModelConfig::Gemma2(c) => Arch::Gemma2(Gemma2::load(c, &mut weights, device)?),
        };
        weights.finish()?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            arch,
            device: device.clone(),
            prefix: PrefixCache::off(),
            scoring: PrefixCache::off(),
            parts: default_parts::<B>(),
            head_sweep: on_cpu::<B>(),
        })
    }

    /// A randomly initialized GPT-2 (for pre-training and benchmarks); seed the backend first.
    pub fn init_gpt2(config: crate::config::Gpt2Config, device: &B::Device) -> Self {
        Self {
            dir: PathBuf::new(),
            arch: Arch::Gpt2(Gpt2::init(&config, device)),
            config: ModelConfig::Gpt2(config),
            device: device.clone(),
            prefix: PrefixCache::off(),
            scoring: PrefixCache::off(),
            parts: default_parts::<B>(),
            head_sweep: on_cpu::<B>(),
        }
    }

    /// Pre-trains every parameter on `sequences` (GPT-2 only; see [`crate::pretrain`]).
    pub fn pretrain(
        &mut self,
        sequences: &[Vec<u32>],
        config: &crate::pretrain::PretrainConfig,
        progress: &mut dyn FnMut(&crate::pretrain::PretrainProgress),
    ) -> Result<(), LlmError> {
        let Arch::Gpt2(model) = &self.arch else {
            return Err(self.unsupported("pre-training"));
        };
        let trained =
            crate::pretrain::pretrain_gpt2(model, sequences, config, &self.device, progress)?;
        self.arch = Arch::Gpt2(trained);
        self.weight_changed(0);
        Ok(())
    }

    /// Writes the model as a Hugging Face directory (`config.json`, `model.safetensors`;
    /// GPT-2 only). Save the tokenizer next to it to make a directory [`CausalLm::load`] reads.
    pub fn save(&self, dir: &Path) -> Result<(), LlmError> {
        match &self.arch {
            Arch::Gpt2(model) => crate::pretrain::save_gpt2(model, dir),
            _ => Err(self.unsupported("saving")),
        }
    }

    fn unsupported(&self, operation: &'static str) -> LlmError {
        LlmError::Unsupported {
            operation,
            arch: self.arch_name(),
            supported: "gpt2",
        }
    }

    /// The directory it was loaded from (empty for an initialized model).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed config.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        match &self.config {
            ModelConfig::Gpt2(c) => c.vocab_size,
            ModelConfig::Gptj(c) => c.vocab_size,
            ModelConfig::Llama(c) => c.vocab_size,
            ModelConfig::Gemma2(c) => c.vocab_size,
        }
    }

    /// Longest sequence the model accepts: GPT-2's position table, or the rotary models'
    /// context capped at [`crate::layers::MAX_ROPE_POSITIONS`].
    pub fn context_len(&self) -> usize {
        self.config.context_len()
    }

    fn arch_name(&self) -> &'static str {
        match self.arch {
            Arch::Gpt2(_) => "gpt2",
            Arch::Gptj(_) => "gptj",
            Arch::Llama(_) => "llama",
            Arch::Gemma2(_) => "gemma2",
            Arch::Gemma3(_) => "gemma3",
        }
    }

    fn layers_and_slots(&self) -> (usize, &'static [&'static str], &'static str) {
        match &self.config {
            ModelConfig::Gpt2(c) => (c.n_layer, &gpt2::SLOTS, "transformer.h"),
            ModelConfig::Gptj(c) => (c.n_layer, &gptj::SLOTS, "transformer.h"),
            ModelConfig::Llama(c) => (c.num_hidden_layers, &llama::SLOTS, "model.layers"),
            ModelConfig::Gemma2(c) => (c.num_hidden_layers, &llama::SLOTS, "model.layers"),
        }
    }

    /// Resolves an HF module name such as `transformer.h.6.mlp.c_proj`.
    pub fn module(&self, name: &str) -> Result<ModuleId, LlmError> {
        let (layers, slots, prefix) = self.layers_and_slots();
        let parsed = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(layer, slot)| {
                let layer: usize = layer.parse().ok()?;
                let slot = slots.iter().position(|s| *s == slot)?;
                (layer < layers).then_some(ModuleId { layer, slot })
            });
        parsed.ok_or_else(|| LlmError::UnknownModule {
            name: name.to_string(),
            arch: self.arch_name(),
            example: format!(
                "{prefix}.{}.{}",
                layers.saturating_sub(1),
                slots[slots.len() - 1]
            ),
        })
    }

    /// The HF name of a module.
    pub fn module_name(&self, id: ModuleId) -> String {
        let (_, slots, prefix) = self.layers_and_slots();
        format!("{prefix}.{}.{}", id.layer, slots[id.slot])
    }

    fn linear(&self, id: ModuleId) -> &Affine<B> {
        each_arch!(&self.arch, m => m.linear(id))
    }

    /// The weight of a module in the a×b orientation.
    pub fn weight(&self, id: ModuleId) -> Tensor<B, 2> {
        self.linear(id).weight.clone()
    }

    /// Replaces a module's weight (a×b).
    pub fn set_weight(&mut self, id: ModuleId, weight: Tensor<B, 2>) -> Result<(), LlmError> {
        self.check_shape(id, &weight)?;
        each_arch!(&mut self.arch, m => m.linear_mut(id).weight = weight);
        self.weight_changed(id.layer);
        Ok(())
    }

    /// Both caches forget their states when a weight of block `layer` below theirs changes.
    fn weight_changed(&self, layer: usize) {
        self.prefix.weight_changed(layer);
        self.scoring.weight_changed(layer);
    }

    /// Refuses a weight or shift for module `id` whose shape is not the module's a×b.
    fn check_shape(&self, id: ModuleId, t: &Tensor<B, 2>) -> Result<(), LlmError> {
        let expected = self.linear(id).shape();
        if t.dims() != expected {
            return Err(LlmError::ShiftShape {
                name: self.module_name(id),
                expected,
                found: t.dims(),
            });
        }
        Ok(())
    }

    /// Turns the prefix cache on for an editing session that changes only `modules`: passes
    /// over a batch seen before start at the lowest of their blocks from the saved hidden
    /// state (see [`crate::prefix`]). Setting a weight below that block empties the cache; a
    /// clone starts with it off.
    pub fn start_prefix_cache(&mut self, modules: &[ModuleId]) {
        match modules.iter().map(|m| m.layer).min() {
            Some(layer) => self.prefix.start(layer),
            None => self.prefix.stop(),
        }
    }

    /// Splits each forward, label-logit and gradient pass over several rows (or micro-batches)
    /// into up to `parts` passes over consecutive ones, run in parallel (1: never split). The default is
    /// [`crate::parts::CPU_PASS_PARTS`] on the CPU backends, where one pass over a small batch
    /// leaves a core mostly idle, and 1 on others. Rows are independent, so the results are
    /// one pass's up to float rounding (Γ and losses are sums over the parts); they depend on
    /// this setting, never on the number of threads.
    pub fn set_pass_parts(&mut self, parts: usize) {
        self.parts = parts.max(1);
    }

    /// Whether a cross-entropy gradient pass takes a plain head (`h Eᵀ`: every architecture but
    /// GPT-J's biased head and Gemma-2's soft-capped one) in one sweep over E
    /// ([`crate::head_loss::head_nll`]) instead of through autodiff, which reads E twice. On by
    /// default on the CPU backends (off on a GPU, where its many small products cost more
    /// launches than the second read); the same loss and gradients up to float rounding (the
    /// sums run in another order).
    pub fn set_head_sweep(&mut self, on: bool) {
        self.head_sweep = on;
    }

    /// The V × d matrix of a plain head (`h Eᵀ`), if the model has one.
    pub fn plain_head(&self) -> Option<Tensor<B, 2>> {
        each_arch!(&self.arch, m => m.plain_head().cloned())
    }

    /// The parts a pass is split into: [`CausalLm::set_pass_parts`].
    pub fn pass_parts(&self) -> usize {
        self.parts
    }

    /// Turns the prefix cache off and frees what it holds.
    pub fn stop_prefix_cache(&mut self) {
        self.prefix.stop();
    }

    /// Turns the scoring cache on for a run in which only `modules` change: scoring passes
    /// (logits, argmax, label scores; not gradient passes) over prompts seen before start at
    /// the lowest of their blocks from the saved hidden state, edit after edit. The same
    /// numbers bit for bit; at most [`crate::prefix::MAX_SCORING_BYTES`] of states (the first
    /// prompts scored keep theirs). Setting a weight below that block empties it; the prefix
    /// cache, when on, is used instead; a clone starts with it off.
    pub fn start_scoring_cache(&mut self, modules: &[ModuleId]) {
        match modules.iter().map(|m| m.layer).min() {
            Some(layer) => self.scoring.start_with(layer, MAX_SCORING_BYTES, true),
            None => self.scoring.stop(),
        }
    }

    /// Turns the scoring cache off and frees what it holds.
    pub fn stop_scoring_cache(&mut self) {
        self.scoring.stop();
    }

    /// Where a pass over `batch` that taps `modules` starts: at the block of `cache` when it is
    /// on and no tapped module lies below it, else at the embeddings.
    fn input<Bk: Backend<Device = B::Device>>(
        &self,
        cache: &PrefixCache<B>,
        batch: &Batch,
        modules: &[ModuleId],
        lift: impl Fn(Tensor<B, 3>) -> Tensor<Bk, 3>,
    ) -> Input<Bk> {
        let Some(layer) = cache.layer() else {
            return Input::Ids(batch.ids(&self.device));
        };
        if modules.iter().any(|m| m.layer < layer) {
            return Input::Ids(batch.ids(&self.device));
        }
        let state = cache.get(batch).unwrap_or_else(|| {
            let (ids, at) = (batch.ids(&self.device), Positions::new(batch, &self.device));
            let h = each_arch!(&self.arch, m => m.hidden(Input::Ids(ids), &at, layer, &mut Taps::none()));
            cache.put(batch, h.clone());
            h
        });
        Input::Hidden(layer, lift(state))
    }

    /// Logits at every position (batch × time × V), or at the flat rows `at` (1 × N × V).
    fn logits(&self, batch: &Batch, at: Option<&[i64]>) -> Result<Tensor<B, 3>, LlmError> {
        let h = self.last_hidden(batch)?;
        let at = at.map(|rows| flat_rows(rows, &self.device));
        Ok(each_arch!(&self.arch, m => m.head(h, at)))
    }

    /// The hidden states entering the head (batch × time × d).
    fn last_hidden(&self, batch: &Batch) -> Result<Tensor<B, 3>, LlmError> {
        batch.validate(self.vocab_size(), self.context_len())?;
        let cache = match self.prefix.layer() {
            Some(_) => &self.prefix,
            None => &self.scoring,
        };
        let input = self.input(cache, batch, &[], |h| h);
        let layout = Positions::new(batch, &self.device);
        Ok(each_arch!(&self.arch, m => m.hidden(input, &layout, m.depth(), &mut Taps::none())))
    }

    /// Logits at the batch's labelled positions (N × V, in [`Batch::label_positions`]
    /// order): the head runs only there.
    pub fn label_logits(&self, batch: &Batch) -> Result<Tensor<B, 2>, LlmError> {
        let positions = labelled(batch)?;
        let parts = row_parts(batch, self.parts);
        if parts.len() < 2 {
            return self.logits_at(batch, &positions);
        }
        batch.validate(self.vocab_size(), self.context_len())?;
        let logits = scoped_map(parts, |rows| {
            let part = batch.rows(rows).trimmed();
            self.logits_at(&part, &part.label_positions())
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
        Ok(Tensor::cat(logits, 0))
    }

    /// [`CausalLm::label_logits`] of `Batch::pack(micro)` (the KL reference of
    /// [`CausalLm::gradients_packed`] over the same micro-batches), split into the same parts
    /// as that gradient pass: with the prefix cache on, the gradient pass then starts each
    /// part from the hidden states this pass saved.
    pub fn label_logits_packed(&self, micro: &[Batch]) -> Result<Tensor<B, 2>, LlmError> {
        let packed = self.packed_parts(micro)?;
        if let [one] = packed.as_slice() {
            return self.label_logits(one);
        }
        let logits = scoped_map(packed, |part| self.logits_at(&part, &labelled(&part)?))
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Tensor::cat(logits, 0))
    }

    /// Logits at the flat rows `positions` (N × V).
    fn logits_at(&self, batch: &Batch, positions: &[i64]) -> Result<Tensor<B, 2>, LlmError> {
        let logits = self.logits(batch, Some(positions))?;
        let [_, n, vocab] = logits.dims();
        Ok(logits.reshape([n, vocab]))
    }

    /// `W ← W + Δ`; returns the previous weight, which [`CausalLm::set_weight`] restores
    /// bit for bit. A Δ (or a sum) with NaN or infinite entries is refused and changes nothing.
    pub fn apply_shift(
        &mut self,
        id: ModuleId,
        delta: &Tensor<B, 2>,
    ) -> Result<Tensor<B, 2>, LlmError> {
        self.check_shape(id, delta)?;
        let old = self.weight(id);
        let new = old.clone() + delta.clone();
        if !all_finite(&new) {
            return Err(LlmError::NonFinite {
                name: self.module_name(id),
                what: "shift",
            });
        }
        self.set_weight(id, new)?;
        Ok(old)
    }

    /// Logits (batch × time × V); the blocks split by rows into [`CausalLm::set_pass_parts`]
    /// passes run in parallel when the batch has several rows, the head one product over all
    /// rows (each part's own head read and packed all of E, and their logits were copied
    /// again to join them).
    pub fn forward(&self, batch: &Batch) -> Result<Tensor<B, 3>, LlmError> {
        let parts = token_parts(batch, self.parts);
        if parts.len() < 2 {
            return self.logits(batch, None);
        }
        batch.validate(self.vocab_size(), self.context_len())?;
        let hidden = scoped_map(parts, |rows| self.last_hidden(&batch.rows(rows)))
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let h = Tensor::cat(hidden, 0);
        Ok(each_arch!(&self.arch, m => m.head(h, None)))
    }

    /// The most likely next token at every position (batch × time, row-major).
    pub fn argmax(&self, batch: &Batch) -> Result<Vec<i64>, LlmError> {
        let logits = self.forward(batch)?;
        let ids = logits.argmax(2).into_data().convert::<i64>();
        Ok(ids.into_vec::<i64>().expect("converted to i64"))
    }

    /// [`CausalLm::argmax`] at the labelled positions only (0 elsewhere), with the head run
    /// only there.
    pub fn label_argmax(&self, batch: &Batch) -> Result<Vec<i64>, LlmError> {
        let mut out = vec![0; batch.batch * batch.time];
        let Some((positions, logits)) = self.scoring_logits(batch)? else {
            return Ok(out);
        };
        let ids = logits.argmax(1).into_data().convert::<i64>();
        for (&p, id) in positions
            .iter()
            .zip(ids.into_vec::<i64>().expect("converted to i64"))
        {
            out[p as usize] = id;
        }
        Ok(out)
    }

    /// Logits at the batch's labelled positions (N × V, with those positions) for scoring, or
    /// `None` without labels: several rows are packed together without their padding first
    /// ([`Batch::pack`]) and the head runs only at the labels. The numbers of
    /// [`CausalLm::label_logits`] up to float rounding, for less work.
    fn scoring_logits(&self, batch: &Batch) -> Result<Option<LabelLogits<B>>, LlmError> {
        let positions = batch.label_positions();
        if positions.is_empty() {
            return Ok(None);
        }
        let packed = (batch.batch > 1 && !batch.packed())
            .then(|| Batch::pack(std::slice::from_ref(batch)).ok())
            .flatten();
        let logits = self.label_logits(packed.as_ref().unwrap_or(batch))?;
        Ok(Some((positions, logits)))
    }

    /// For each set `tokens[k]` (batch × time), the logit of `tokens[k][i]` at every labelled
    /// flat position i (0 elsewhere), from one pass with the head at the labels only: what
    /// [`CausalLm::token_logits`] gives there, for CounterFact's new-vs-old comparison.
    pub fn label_token_logits(
        &self,
        batch: &Batch,
        tokens: &[&[i64]],
    ) -> Result<Vec<Vec<f32>>, LlmError> {
        let n = batch.batch * batch.time;
        for set in tokens {
            self.check_tokens(n, set)?;
        }
        let mut out = vec![vec![0.0; n]; tokens.len()];
        let Some((positions, logits)) = self.scoring_logits(batch)? else {
            return Ok(out);
        };
        for (set, out) in tokens.iter().zip(&mut out) {
            let at: Vec<i64> = positions.iter().map(|&p| set[p as usize]).collect();
            let index = Tensor::<B, 2, Int>::from_data(
                TensorData::new(at, [positions.len(), 1]),
                &self.device,
            );
            scatter(logits.clone().gather(1, index), &positions, out);
        }
        Ok(out)
    }

    /// Refuses `tokens` unless it holds `n` ids inside the vocabulary.
    fn check_tokens(&self, n: usize, tokens: &[i64]) -> Result<(), LlmError> {
        let vocab = self.vocab_size();
        if tokens.len() != n || tokens.iter().any(|&t| t < 0 || t as usize >= vocab) {
            return Err(LlmError::Batch(format!(
                "need {n} token ids inside the vocabulary of {vocab}"
            )));
        }
        Ok(())
    }

    /// The logit of `tokens[i]` at flat position `i` (batch × time, row-major).
    pub fn token_logits(&self, batch: &Batch, tokens: &[i64]) -> Result<Vec<f32>, LlmError> {
        let n = batch.batch * batch.time;
        self.check_tokens(n, tokens)?;
        let logits = self.forward(batch)?;
        let index =
            Tensor::<B, 2, Int>::from_data(TensorData::new(tokens.to_vec(), [n, 1]), &self.device);
        let picked = logits.reshape([n, self.vocab_size()]).gather(1, index);
        Ok(picked
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("converted to f32"))
    }

    /// Greedy decoding: appends up to `max_new` argmax tokens to `prompt`, stopping after
    /// `stop` when given or when the context is full, and returns only the new tokens (what
    /// was generated before the context filled up is kept). A prompt longer than the context
    /// is an error.
    pub fn generate(
        &self,
        prompt: &[u32],
        max_new: usize,
        stop: Option<u32>,
    ) -> Result<Vec<u32>, LlmError> {
        let mut ids: Vec<i64> = prompt.iter().map(|&t| t as i64).collect();
        let mut out = Vec::new();
        if ids.len() > self.context_len() {
            return Err(LlmError::Batch(format!(
                "the prompt has {} tokens, more than the model's context of {}",
                ids.len(),
                self.context_len()
            )));
        }
        for _ in 0..max_new {
            let time = ids.len();
            if time >= self.context_len() {
                break;
            }
            let batch = Batch {
                batch: 1,
                time,
                input_ids: ids.clone(),
                attention_mask: vec![1; time],
                labels: vec![crate::IGNORE; time],
            };
            let next = *self
                .argmax(&batch)?
                .last()
                .ok_or_else(|| LlmError::Batch("empty prompt".into()))?;
            out.push(next as u32);
            ids.push(next);
            if stop == Some(next as u32) {
                break;
            }
        }
        Ok(out)
    }

    /// `log p(label)` at every position (batch × time, row-major; 0 where the label is
    /// [`crate::IGNORE`]).
    pub fn label_logprobs(&self, batch: &Batch) -> Result<Vec<f32>, LlmError> {
        let mut out = vec![0.0; batch.batch * batch.time];
        let Some((positions, logits)) = self.scoring_logits(batch)? else {
            return Ok(out);
        };
        let logp = log_softmax(logits, 1).gather(1, label_targets(batch, &positions, &self.device));
        scatter(logp, &positions, &mut out);
        Ok(out)
    }

    /// Mean cross-entropy over labelled positions.
    pub fn loss(&self, batch: &Batch) -> Result<f32, LlmError> {
        let positions = labelled(batch)?;
        let logits = self.label_logits(batch)?;
        Ok(label_cross_entropy(logits, batch, &positions)
            .into_scalar()
            .elem())
    }

    /// Keys, output gradients and Γ of `modules` for the batch's mean cross-entropy.
    ///
    /// Only the output probes of the edited modules track gradients, so the backward stops at
    /// the lowest edited module and computes no weight gradient; Γ is `Xᵀ Ġ` from the module's
    /// input X and output gradient Ġ at every position.
    pub fn edit_gradients(
        &self,
        batch: &Batch,
        modules: &[ModuleId],
    ) -> Result<EditGrads<B>, LlmError> {
        self.gradients(batch, modules, Objective::CrossEntropy)
    }

    /// [`CausalLm::edit_gradients`] for any [`Objective`].
    pub fn gradients(
        &self,
        batch: &Batch,
        modules: &[ModuleId],
        objective: Objective<B>,
    ) -> Result<EditGrads<B>, LlmError> {
        self.gradients_with(batch, modules, objective, None, None, Gammas::Compute)
    }

    /// [`CausalLm::edit_gradients`] of several micro-batches in one pass over them packed
    /// into rows without padding ([`Batch::pack`]): the loss is the sum of their mean
    /// cross-entropies, so each position's output gradient is the one its own micro-batch's
    /// pass gives, Γ is the sum of theirs, and keys and output gradients come micro-batch
    /// after micro-batch, as the separate passes' stacked. The same numbers up to float
    /// rounding, for one pass's fixed costs and no padding. With [`CausalLm::set_pass_parts`]
    /// above 1 (the CPU default) their sequences are split into that many runs of about
    /// equal tokens (a micro-batch may straddle two), each packed and passed on its own, in
    /// parallel ([`crate::parts::sequence_parts`]).
    pub fn edit_gradients_packed(
        &self,
        micro: &[Batch],
        modules: &[ModuleId],
    ) -> Result<EditGrads<B>, LlmError> {
        self.gradients_packed(micro, modules, Objective::CrossEntropy, None)
    }

    /// [`CausalLm::edit_gradients_packed`] without Γ (`gammas` is empty): the keys and output
    /// gradients the editors' CACHE needs, the same numbers, without the 12 (or so) a×b
    /// products of Γ.
    pub fn edit_keys_packed(
        &self,
        micro: &[Batch],
        modules: &[ModuleId],
    ) -> Result<EditGrads<B>, LlmError> {
        self.packed_pass(micro, modules, Objective::CrossEntropy, None, Gammas::Skip)
    }

    /// [`CausalLm::gradients`] (or, with `shifts`, [`CausalLm::gradients_stale`]) of several
    /// micro-batches in one packed pass, as [`CausalLm::edit_gradients_packed`]: the loss is
    /// the sum of the micro-batches' losses. A KL objective's reference logits are those at
    /// the packed rows' labels: [`CausalLm::label_logits`] of `Batch::pack(micro)`.
    pub fn gradients_packed(
        &self,
        micro: &[Batch],
        modules: &[ModuleId],
        objective: Objective<B>,
        shifts: Option<&[Tensor<B, 2>]>,
    ) -> Result<EditGrads<B>, LlmError> {
        self.packed_pass(micro, modules, objective, shifts, Gammas::Compute)
    }

    /// [`CausalLm::gradients_packed`], with or without Γ.
    fn packed_pass(
        &self,
        micro: &[Batch],
        modules: &[ModuleId],
        objective: Objective<B>,
        shifts: Option<&[Tensor<B, 2>]>,
        gammas: Gammas,
    ) -> Result<EditGrads<B>, LlmError> {
        let counts = micro
            .iter()
            .enumerate()
            .map(|(i, b)| match b.label_positions().len() {
                0 => Err(LlmError::Batch(format!(
                    "micro-batch {i}: no position carries a label"
                ))),
                n => Ok(n),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(shifts) = shifts {
            self.check_shifts(modules, shifts)?;
        }
        let parts = self.packed_parts(micro)?;
        if let [packed] = parts.as_slice() {
            let counts = Some(counts.as_slice());
            return self.gradients_with(packed, modules, objective, shifts, counts, gammas);
        }
        let n = counts.iter().sum();
        let reference = kl_reference(objective, n)?;
        // A micro-batch may span two parts: each position is weighted by one over its own
        // micro-batch's labels, so the parts' losses add up to the sum of the means.
        let weights = position_weights(n, Some(&counts))?;
        let mut jobs = Vec::with_capacity(parts.len());
        let mut at = 0;
        for packed in parts {
            let count = packed.label_positions().len();
            let weights = weights
                .get(at..at + count)
                .ok_or_else(|| LlmError::Batch("a part's labels past the batch's".into()))?;
            jobs.push(Part {
                reference: reference.map(|r| r.clone().narrow(0, at, count)),
                batch: packed,
                loss: Weighting::Each(weights.to_vec()),
            });
            at += count;
        }
        self.gradient_parts(jobs, modules, shifts, gammas)
    }

    /// The parts of a packed pass over `micro` ([`sequence_parts`]): runs of its sequences,
    /// each packed on its own (no row is padded to another part's longest) and validated;
    /// one pack (`Batch::pack(micro)`, validated by the pass that takes it) when the pass is
    /// not split. The KL reference pass and its gradient pass both split here, so the prefix
    /// cache serves one from the other.
    fn packed_parts(&self, micro: &[Batch]) -> Result<Vec<Batch>, LlmError> {
        let parts = sequence_parts(micro, self.parts)?;
        if parts.len() > 1 {
            for packed in &parts {
                packed.validate(self.vocab_size(), self.context_len())?;
            }
        }
        Ok(parts)
    }

    /// [`CausalLm::gradients`] of the model with `shifts` added to `modules` (one a×b shift
    /// each), where the input gradient of each shifted module passes through its unshifted
    /// weight: the forward pass is that of W + Δ, the backward pass uses W.
    ///
    /// This is what PyTorch computes when a loss built at W + Δ is back-propagated after the
    /// weight was reverted in place through `.data` (autograd's saved weight then holds W):
    /// the reference's RLEdit locality term ([`Self::gradients`] is the exact gradient).
    pub fn gradients_stale(
        &self,
        batch: &Batch,
        modules: &[ModuleId],
        objective: Objective<B>,
        shifts: &[Tensor<B, 2>],
    ) -> Result<EditGrads<B>, LlmError> {
        self.check_shifts(modules, shifts)?;
        self.gradients_with(
            batch,
            modules,
            objective,
            Some(shifts),
            None,
            Gammas::Compute,
        )
    }

    fn check_shifts(&self, modules: &[ModuleId], shifts: &[Tensor<B, 2>]) -> Result<(), LlmError> {
        if shifts.len() != modules.len() {
            return Err(LlmError::Batch(format!(
                "{} shifts for {} modules",
                shifts.len(),
                modules.len()
            )));
        }
        for (&id, shift) in modules.iter().zip(shifts) {
            self.check_shape(id, shift)?;
        }
        Ok(())
    }

    /// The gradients of the loss `groups` defines (the sum of consecutive groups' means, or
    /// one mean), in one pass or split by rows ([`crate::parts`]) with each position weighted
    /// by one over its group's size.
    fn gradients_with(
        &self,
        batch: &Batch,
        modules: &[ModuleId],
        objective: Objective<B>,
        stale: Option<&[Tensor<B, 2>]>,
        groups: Option<&[usize]>,
        gammas: Gammas,
    ) -> Result<EditGrads<B>, LlmError> {
        batch.validate(self.vocab_size(), self.context_len())?;
        let parts = row_parts(batch, self.parts);
        if parts.len() < 2 {
            let weighting = Weighting::Groups(groups.map(<[usize]>::to_vec));
            return self.gradient_pass(batch, modules, objective, stale, &weighting, gammas);
        }
        let n = labelled(batch)?.len();
        let weights = position_weights(n, groups)?;
        let reference = kl_reference(objective, n)?;
        let mut jobs = Vec::with_capacity(parts.len());
        let mut at = 0;
        for rows in parts {
            let part = batch.rows(rows).trimmed();
            let count = part.label_positions().len();
            let weights = weights
                .get(at..at + count)
                .ok_or_else(|| LlmError::Batch("a part's labels past the batch's".into()))?;
            jobs.push(Part {
                reference: reference.map(|r| r.clone().narrow(0, at, count)),
                batch: part,
                loss: Weighting::Each(weights.to_vec()),
            });
            at += count;
        }
        self.gradient_parts(jobs, modules, stale, gammas)
    }

    /// The parts' passes in parallel, joined as one pass's gradients.
    fn gradient_parts(
        &self,
        parts: Vec<Part<B>>,
        modules: &[ModuleId],
        stale: Option<&[Tensor<B, 2>]>,
        gammas: Gammas,
    ) -> Result<EditGrads<B>, LlmError> {
        let grads = scoped_map(parts, |part| {
            let objective = match &part.reference {
                Some(r) => Objective::Kl(r),
                None => Objective::CrossEntropy,
            };
            self.gradient_pass(&part.batch, modules, objective, stale, &part.loss, gammas)
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
        join(grads)
    }

    /// One forward and backward pass over `batch` for [`CausalLm::gradients_with`].
    fn gradient_pass(
        &self,
        batch: &Batch,
        modules: &[ModuleId],
        objective: Objective<B>,
        stale: Option<&[Tensor<B, 2>]>,
        weighting: &Weighting,
        gammas: Gammas,
    ) -> Result<EditGrads<B>, LlmError> {
        let device = &self.device;
        let positions = labelled(batch)?;
        let mut taps = Taps::<Autodiff<B>>::new(modules, true);
        let input = self.input(&self.prefix, batch, modules, Tensor::from_inner);
        let at = flat_rows(&positions, device);
        let sweep = self.head_sweep && matches!(objective, Objective::CrossEntropy);
        // No weight tracks gradients: the output probes give Ġ, and Γ = Xᵀ Ġ below.
        let head = each_arch!(&self.arch, m => {
            let mut ad = m.to_autodiff();
            for (&id, shift) in modules.iter().zip(stale.unwrap_or_default()) {
                ad.linear_mut(id).stale_shift = Some(Tensor::from_inner(shift.clone()));
            }
            let h = ad.hidden(input, &Positions::new(batch, device), ad.depth(), &mut taps);
            match ad.plain_head() {
                Some(e) if sweep => Head::Rows(ad.head_norm(h, Some(at)), e.clone().inner()),
                _ => Head::Logits(ad.head(h, Some(at))),
            }
        });
        let (loss, loss_value) = match head {
            Head::Logits(logits) => {
                let [_, n, vocab] = logits.dims();
                let logits = logits.reshape([n, vocab]);
                let per_row = match objective {
                    Objective::CrossEntropy => {
                        label_log_likelihood(logits, batch, &positions).neg()
                    }
                    Objective::Kl(reference) => kl_rows(logits, reference)?,
                };
                let loss = match weighting {
                    Weighting::Groups(None) => per_row.mean(),
                    Weighting::Groups(Some(counts)) => group_means(per_row, counts),
                    Weighting::Each(w) => {
                        let w = TensorData::new(w.to_vec(), [w.len()]);
                        (per_row * Tensor::from_data(w, device)).sum()
                    }
                };
                let value: f32 = loss.clone().inner().into_scalar().elem();
                (loss, value)
            }
            Head::Rows(rows, e) => {
                let [_, n, d] = rows.dims();
                let rows = rows.reshape([n, d]);
                let targets = label_targets(batch, &positions, device).reshape([n]);
                let (nll, grad) = head_nll(rows.clone().inner(), &e, targets, HEAD_BLOCK_ROWS);
                let w = weighting.per_position(n)?;
                let w = Tensor::<B, 1>::from_data(TensorData::new(w, [n]), device);
                let value: f32 = (nll * w.clone()).sum().into_scalar().elem();
                // The weighted gradient at the rows, back-propagated from there.
                let seed = Tensor::from_inner(grad * w.unsqueeze_dim(1));
                ((rows * seed).sum(), value)
            }
        };
        let grads = loss.backward();
        let rows = flat_rows::<B>(&positions, device);
        let flat = |t: Tensor<B, 3>| {
            let [b, time, w] = t.dims();
            t.reshape([b * time, w]).select(0, rows.clone())
        };
        let mut out = EditGrads {
            loss: loss_value,
            keys: Vec::new(),
            out_grads: Vec::new(),
            gammas: Vec::new(),
        };
        for (i, module) in modules.iter().enumerate() {
            let missing = || LlmError::Batch(format!("module {module:?} was not reached"));
            let input = taps.inputs[i].clone().ok_or_else(missing)?;
            let probe = taps.probes[i].clone().ok_or_else(missing)?;
            let out_grad = probe
                .grad(&grads)
                .unwrap_or_else(|| probe.clone().inner().zeros_like());
            let input = input.inner();
            if gammas == Gammas::Compute {
                // ∂loss/∂W of y = x W: Xᵀ Ġ over every position (what autograd computes for
                // the weight, here as one a×b product in the weight's orientation).
                let (x, g) = (layers::rows(input.clone()), layers::rows(out_grad.clone()));
                out.gammas.push(x.transpose().matmul(g));
            }
            out.keys.push(flat(input));
            out.out_grads.push(flat(out_grad));
        }
        Ok(out)
    }
}

/// What a gradient pass's head gives: the logits at the labelled rows, or those rows before a
/// plain head E for [`head_nll`].
enum Head<B: Backend> {
    Logits(Tensor<Autodiff<B>, 3>),
    Rows(Tensor<Autodiff<B>, 3>, Tensor<B, 2>),
}

/// Whether a gradient pass computes Γ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gammas {
    Compute,
    Skip,
}

/// How a pass's per-position losses make its loss.
enum Weighting {
    /// The sum of consecutive groups' means (`counts` positions each), or one mean.
    Groups(Option<Vec<usize>>),
    /// The sum weighted position by position.
    Each(Vec<f32>),
}

impl Weighting {
    /// Each of the `n` positions' weight in the loss ([`position_weights`] for group means).
    fn per_position(&self, n: usize) -> Result<Vec<f32>, LlmError> {
        match self {
            Self::Groups(counts) => position_weights(n, counts.as_deref()),
            Self::Each(w) if w.len() == n => Ok(w.clone()),
            Self::Each(w) => Err(LlmError::Batch(format!(
                "{} loss weights for {n} labelled positions",
                w.len()
            ))),
        }
    }
}

/// One part of a split gradient pass: its rows, how its positions' losses add up, and (KL)
/// its rows of the reference logits.
struct Part<B: Backend> {
    batch: Batch,
    loss: Weighting,
    reference: Option<Tensor<B, 2>>,
}

/// A KL objective's reference logits, checked against the `n` labelled positions.
fn kl_reference<'a, B: Backend>(
    objective: Objective<'a, B>,
    n: usize,
) -> Result<Option<&'a Tensor<B, 2>>, LlmError> {
    match objective {
        Objective::Kl(r) if r.dims()[0] != n => Err(LlmError::Batch(format!(
            "reference logits for {} positions, the batch labels {n}",
            r.dims()[0]
        ))),
        Objective::Kl(r) => Ok(Some(r)),
        Objective::CrossEntropy => Ok(None),
    }
}

/// The parts a pass is split into by default: [`crate::parts::CPU_PASS_PARTS`] on the CPU
/// backends, 1 elsewhere (a GPU runs one pass's work in parallel already).
fn default_parts<B: Backend>() -> usize {
    if on_cpu::<B>() { CPU_PASS_PARTS } else { 1 }
}

/// Whether `B` is one of the CPU backends.
fn on_cpu<B: Backend>() -> bool {
    use std::any::TypeId;
    let cpu = [
        TypeId::of::<emsedit_tensor::Cpu>(),
        TypeId::of::<emsedit_tensor::NdArrayCpu>(),
    ];
    cpu.contains(&TypeId::of::<B>())
}

/// `KL(p_ref ‖ p)` per labelled position (full softmax over the vocabulary), averaged, from
/// the logits at the labelled positions (N × V) of the model and of the reference.
pub fn kl_divergence<B: Backend, R: Backend>(
    logits: Tensor<B, 2>,
    reference: &Tensor<R, 2>,
) -> Result<Tensor<B, 1>, LlmError> {
    Ok(kl_rows(logits, reference)?.mean())
}

/// `KL(p_ref ‖ p)` at each of the N rows (N).
fn kl_rows<B: Backend, R: Backend>(
    logits: Tensor<B, 2>,
    reference: &Tensor<R, 2>,
) -> Result<Tensor<B, 1>, LlmError> {
    if reference.dims() != logits.dims() {
        return Err(LlmError::Batch(format!(
            "reference logits are {:?}, the batch's are {:?}",
            reference.dims(),
            logits.dims()
        )));
    }
    let n = logits.dims()[0];
    let reference: Tensor<B, 2> = Tensor::from_data(reference.to_data(), &logits.device());
    let (log_ref, log_cur) = (log_softmax(reference, 1), log_softmax(logits, 1));
    let kl = (log_ref.clone().exp() * (log_ref - log_cur)).sum_dim(1);
    Ok(kl.reshape([n]))
}

/// Writes the N values of `picked` (N × 1) to the flat `positions` of `out`.
fn scatter<B: Backend>(picked: Tensor<B, 2>, positions: &[i64], out: &mut [f32]) {
    let values = picked
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("converted to f32");
    for (&p, v) in positions.iter().zip(values) {
        out[p as usize] = v;
    }
}

/// The batch's labelled positions; none is an error (no loss to take).
fn labelled(batch: &Batch) -> Result<Vec<i64>, LlmError> {
    let positions = batch.label_positions();
    if positions.is_empty() {
        return Err(LlmError::Batch("no position carries a label".into()));
    }
    Ok(positions)
}

fn flat_rows<B: Backend>(rows: &[i64], device: &B::Device) -> Tensor<B, 1, Int> {
    Tensor::from_data(TensorData::new(rows.to_vec(), [rows.len()]), device)
}

/// The labels at `positions`, N × 1.
fn label_targets<B: Backend>(
    batch: &Batch,
    positions: &[i64],
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let targets: Vec<i64> = positions
        .iter()
        .map(|&p| batch.labels[p as usize])
        .collect();
    Tensor::from_data(TensorData::new(targets, [positions.len(), 1]), device)
}

/// Mean cross-entropy over positions whose label is not [`crate::IGNORE`] (labels already shifted).
pub fn cross_entropy<B: Backend>(
    logits: Tensor<B, 3>,
    batch: &Batch,
) -> Result<Tensor<B, 1>, LlmError> {
    let [b, time, vocab] = logits.dims();
    let positions = labelled(batch)?;
    let rows = flat_rows(&positions, &logits.device());
    let at = logits.reshape([b * time, vocab]).select(0, rows);
    Ok(label_cross_entropy(at, batch, &positions))
}

/// Mean cross-entropy of the logits at `positions` (N × V) against the labels there.
fn label_cross_entropy<B: Backend>(
    logits: Tensor<B, 2>,
    batch: &Batch,
    positions: &[i64],
) -> Tensor<B, 1> {
    label_log_likelihood(logits, batch, positions).mean().neg()
}

/// `log p(label)` at each of the N rows of the logits at `positions` (N).
fn label_log_likelihood<B: Backend>(
    logits: Tensor<B, 2>,
    batch: &Batch,
    positions: &[i64],
) -> Tensor<B, 1> {
    let targets = label_targets(batch, positions, &logits.device());
    log_softmax(logits, 1)
        .gather(1, targets)
        .reshape([positions.len()])
}

/// The sum over consecutive groups of rows (`counts` of them each, in order) of each group's
/// mean.
fn group_means<B: Backend>(rows: Tensor<B, 1>, counts: &[usize]) -> Tensor<B, 1> {
    let mut start = 0;
    let mut means = Vec::with_capacity(counts.len());
    for &n in counts {
        means.push(rows.clone().narrow(0, start, n).mean());
        start += n;
    }
    Tensor::cat(means, 0).sum()
}

/// Whether every entry of `t` is finite: its sum is (a NaN or infinity anywhere makes the sum
/// NaN or infinite; so does a sum that overflows f32, which no sane weight reaches).
pub fn all_finite<B: Backend, const D: usize>(t: &Tensor<B, D>) -> bool {
    t.clone().sum().into_scalar().elem::<f32>().is_finite()
}

#[cfg(test)]
mod tests {
    use emsedit_tensor::{Cpu, cpu};

    use super::*;

    /// One row of `len` tokens whose last two are labelled.
    fn row(first: i64, len: usize) -> Batch {
        let ids: Vec<i64> = (0..len as i64).map(|i| 1 + (first + i) % 400).collect();
        let mut labels = vec![crate::IGNORE; len];
        labels[len - 2..].copy_from_slice(&ids[len - 2..]);
        Batch {
            batch: 1,
            time: len,
            input_ids: ids,
            attention_mask: vec![1; len],
            labels,
        }
    }

    #[test]
    fn packed_label_logits_leave_the_states_the_kl_pass_starts_from() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/llm/gpt2");
        let mut lm = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
        lm.set_pass_parts(2);
        let top = lm.module("transformer.h.2.mlp.c_proj").unwrap();
        let micro: Vec<Batch> = (0..4).map(|i| row(7 * i, 10)).collect();
        let parts = sequence_parts(&micro, 2).unwrap();
        assert_eq!(parts.len(), 2);
        lm.start_prefix_cache(&[top]);
        lm.label_logits_packed(&micro).unwrap();
        for part in parts {
            assert!(
                lm.prefix.get(&part).is_some(),
                "the part's states are saved"
            );
        }
    }
}
