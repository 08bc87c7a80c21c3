//! The interface every editor implements, and what it edits with.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use emsedit_llm::{Batch, CausalLm, ModuleId};

use crate::MetaError;

/// One edit batch ("sequence step") of n records as padded micro-batches of each tuple kind
/// (spec §1.3): the edit requests, their paraphrases, and unrelated prompts.
#[derive(Debug, Clone, Default)]
pub struct EditBatch {
    /// Number of records n.
    pub records: usize,
    /// Edit tuples (prompt, new target).
    pub edit: Vec<Batch>,
    /// Equivalence tuples (paraphrase, new target).
    pub equiv: Vec<Batch>,
    /// Locality tuples (unrelated prompt, its answer).
    pub unrel: Vec<Batch>,
}

/// A knowledge editor: optionally trained on a stream of edit batches, then applied to edit
/// batches one after another (edits accumulate in the model).
pub trait Editor<B: Backend> {
    /// A short name for reports (`FT`, `MALMEN2`, `EMSEdit`, ...).
    fn name(&self) -> String;

    /// The HF names of the only modules whose weights the editor changes; none (the default)
    /// says it may change any. Scoring reuses the hidden states below the lowest of them
    /// ([`CausalLm::start_scoring_cache`]; a weight set lower down still empties that cache,
    /// so a wrong list costs time, not correctness).
    fn modules(&self) -> &[String] {
        &[]
    }

    /// Trains the editor on `stream` (a no-op for training-free editors). The model comes back
    /// exactly as it was given, whether training succeeds or fails.
    fn train(&mut self, lm: &mut CausalLm<B>, stream: &[EditBatch]) -> Result<(), MetaError>;

    /// [`Editor::train`], calling `done(k)` once the first k batches of `stream` are through,
    /// for progress output on long training. Editors that train batch by batch report each
    /// batch; the default trains, then reports the whole stream (nothing for an empty one).
    fn train_with_progress(
        &mut self,
        lm: &mut CausalLm<B>,
        stream: &[EditBatch],
        done: &mut dyn FnMut(usize),
    ) -> Result<(), MetaError> {
        self.train(lm, stream)?;
        if !stream.is_empty() {
            done(stream.len());
        }
        Ok(())
    }

    /// How many training batches the editor trains on when the edit stream has `num_seq`
    /// batches, as the reference trains it: the stream's length (EMSEdit, RLEdit), a fixed
    /// `max_steps` (MALMEN 1, MEND 100), or none (training-free editors).
    fn train_batches(&self, num_seq: usize) -> usize {
        num_seq
    }

    /// The step sizes η the editor has learned, per step network and edited module (empty for
    /// editors without a learned η, and before training builds the networks).
    fn step_sizes(&self) -> Vec<Vec<f64>> {
        Vec::new()
    }

    /// Applies one edit batch to `lm`, on top of whatever it already holds. An edit that fails
    /// (e.g. a non-finite update) leaves `lm` as it was.
    fn edit(&mut self, lm: &mut CausalLm<B>, batch: &EditBatch) -> Result<(), MetaError>;
}

/// The weights of some modules, to put back exactly.
pub struct Snapshot<B: Backend> {
    saved: Vec<(ModuleId, Tensor<B, 2>)>,
}

impl<B: Backend> Snapshot<B> {
    /// The current weights of `modules`.
    pub fn take(lm: &CausalLm<B>, modules: &[ModuleId]) -> Self {
        Self {
            saved: modules.iter().map(|&m| (m, lm.weight(m))).collect(),
        }
    }

    /// Puts the weights back, bit for bit.
    pub fn restore(self, lm: &mut CausalLm<B>) -> Result<(), MetaError> {
        for (m, w) in self.saved {
            lm.set_weight(m, w)?;
        }
        Ok(())
    }

    /// Runs `f`; when it fails, restores the weights before returning its error.
    pub fn or_restore<T>(
        self,
        lm: &mut CausalLm<B>,
        f: impl FnOnce(&mut CausalLm<B>) -> Result<T, MetaError>,
    ) -> Result<T, MetaError> {
        match f(lm) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.restore(lm)?;
                Err(e)
            }
        }
    }

    /// Runs `f`, then restores the weights whatever its outcome.
    pub fn around<T>(
        self,
        lm: &mut CausalLm<B>,
        f: impl FnOnce(&mut CausalLm<B>) -> Result<T, MetaError>,
    ) -> Result<T, MetaError> {
        let out = f(lm);
        self.restore(lm)?;
        out
    }
}

/// Runs `f` with `lm`'s prefix cache on for an editing session that changes only `modules`
/// ([`CausalLm::start_prefix_cache`]: the same numbers up to float rounding, less work), and
/// off again afterwards whatever the outcome.
pub fn with_prefix_cache<B: Backend, T>(
    lm: &mut CausalLm<B>,
    modules: &[ModuleId],
    f: impl FnOnce(&mut CausalLm<B>) -> Result<T, MetaError>,
) -> Result<T, MetaError> {
    lm.start_prefix_cache(modules);
    let out = f(lm);
    lm.stop_prefix_cache();
    out
}

/// Resolves HF module names against a model.
pub fn resolve_modules<B: Backend>(
    lm: &CausalLm<B>,
    names: &[String],
) -> Result<Vec<ModuleId>, MetaError> {
    if names.is_empty() {
        return Err(MetaError::Config("no edited modules given".into()));
    }
    if let Some((i, n)) = names
        .iter()
        .enumerate()
        .find(|(i, n)| names[..*i].contains(n))
    {
        return Err(MetaError::Config(format!(
            "module `{n}` is listed twice (entries {} and {i})",
            names.iter().position(|m| m == n).unwrap_or(0)
        )));
    }
    Ok(names
        .iter()
        .map(|n| lm.module(n))
        .collect::<Result<_, _>>()?)
}
