//! The editing scenarios as one driver over an [`Editor`] (spec §4.0, §4.2, §5).
//!
//! Sequential editing is `num_seq` batches of `n_edits = 1`, batch editing one batch of n,
//! sequential-batch T batches of n. The driver trains the editor on the train split, restores
//! the pristine weights, applies the eval stream cumulatively and scores every tuple at the end
//! (and, in curve mode, after every batch). Scoring passes start from the hidden states the
//! first scoring saved below the editor's lowest edited block ([`CausalLm::start_scoring_cache`]).

use std::path::PathBuf;
use std::time::Instant;

use emsedit_llm::{Batch, CausalLm, LlmError, LmTokenizer};
use emsedit_meta::{EditBatch, Editor, MetaError, resolve_modules};
use emsedit_tensor::burn::tensor::backend::Backend;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::DataError;
use crate::data::{EditRecord, MicroBatch, Skipped, Tuple, collate, tokenize};
use crate::glue::{GlueScore, GlueSet, glue_scores};
use crate::metrics::{counterfact_scores, mean, old_tokens, sequence_logprob, token_accuracy};
use crate::ripple::{RippleReport, ripple_report};

/// Errors of a scenario run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Reading or tokenizing data.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The model.
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// The editor.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// A scenario that cannot be run on the data given.
    #[error("scenario: {0}")]
    Config(String),
}

/// How a run is laid out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioConfig {
    /// Records per edit batch n.
    pub n_edits: usize,
    /// Number of edit batches T applied one after another.
    pub num_seq: usize,
    /// Training batches (of n records) given to the editor; `None` gives each editor as many
    /// as the reference does ([`Editor::train_batches`]: `num_seq` for EMSEdit and RLEdit,
    /// 1 for MALMEN, 100 for MEND, none for FT and UltraEdit).
    #[serde(default)]
    pub train_batches: Option<usize>,
    /// Passes of [`Editor::train`] over the training batches, each from the pristine model
    /// (the reference: 1). Editors keep their optimizer state between passes.
    #[serde(default = "one")]
    pub train_epochs: usize,
    /// LLM micro-batch size c (spec: 4).
    pub chunk: usize,
    /// Seed of the shuffles that pick the train and eval streams.
    pub seed: u64,
    /// Also score all tuples seen so far after every batch.
    pub curve: bool,
    /// Reproduce the reference's quirks (CounterFact old labels padded with token 0).
    pub reference_quirks: bool,
    /// Score the general-capability tasks of [`Run::glue`] on the unedited model and after
    /// every this many edit batches (and after the last); `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glue_every: Option<usize>,
}

impl ScenarioConfig {
    /// Sequential editing: `num_seq` batches of `n_edits`, each editor trained on as many train
    /// batches as the reference trains it.
    pub fn sequential(n_edits: usize, num_seq: usize) -> Self {
        Self {
            n_edits,
            num_seq,
            train_batches: None,
            train_epochs: 1,
            chunk: 4,
            seed: 0,
            curve: false,
            reference_quirks: false,
            glue_every: None,
        }
    }

    /// Batch editing: one batch of `n_edits` (EMSEdit, RLEdit and MALMEN train on one batch).
    pub fn batch(n_edits: usize) -> Self {
        Self::sequential(n_edits, 1)
    }
}

fn one() -> usize {
    1
}

/// Efficacy, generalization and specificity (fractions in [0, 1]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Scores {
    /// Mean over edit tuples.
    pub efficacy: f64,
    /// Mean over equivalence tuples.
    pub generalization: f64,
    /// Mean over locality tuples.
    pub specificity: f64,
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The editor's name.
    pub method: String,
    /// The layout.
    pub scenario: ScenarioConfig,
    /// Scores of the unedited model on the same tuples.
    pub before: Scores,
    /// Scores after the whole stream.
    pub after: Scores,
    /// Training records the editor trained on, over all epochs.
    #[serde(default)]
    pub train_records: usize,
    /// Training wall time ÷ training records consumed (spec §5.3), seconds.
    pub train_seconds_per_edit: f64,
    /// Editing wall time ÷ edits (spec §5.3), seconds.
    pub edit_seconds_per_edit: f64,
    /// Peak resident memory of the process at the end of the run, bytes (0 where unknown).
    pub peak_memory_bytes: u64,
    /// In curve mode, the scores of all tuples seen so far after each batch.
    pub curve: Vec<Scores>,
    /// For data with competing targets (CounterFact): the share of tuples where the whole new
    /// target is more probable than the old one, P(new) > P(old), after editing.
    pub sequence: Option<Scores>,
    /// Records the loaders skipped (blank prompts or targets), from [`Run::skipped`].
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// What the run could not do as configured (e.g. fewer training records than asked).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// For RippleEdits records in the original format: every test family, before and after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ripple: Option<RippleReport>,
    /// The step sizes η the editor learned, per step network and edited module, after
    /// training (editors with a learned η only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_sizes: Vec<Vec<f64>>,
    /// With [`ScenarioConfig::glue_every`]: the general-capability scores along the stream,
    /// the unedited model's first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub glue: Vec<GluePoint>,
}

/// The general-capability scores after some edit batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GluePoint {
    /// Edit batches applied (0: the unedited model).
    pub batches: usize,
    /// Edits applied.
    pub edits: usize,
    /// One score per task.
    pub scores: Vec<GlueScore>,
}

/// Per tuple, 1 when `log P(target) > log P(old_target)` under teacher forcing, else 0.
pub fn sequence_preference<B: Backend>(
    lm: &CausalLm<B>,
    tok: &LmTokenizer,
    tuples: &[Tuple],
    chunk: usize,
) -> Result<Vec<f64>, RunError> {
    let logprob = |targets: Vec<Tuple>| -> Result<Vec<f64>, RunError> {
        let tokenized = targets
            .iter()
            .map(|t| tokenize(tok, t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = vec![0.0; targets.len()];
        let batches = collate(&tokenized, chunk, false);
        for group in batches.chunks(LOGPROB_MICRO_BATCHES) {
            for (mb, lp) in group.iter().zip(label_logprobs(lm, group)?) {
                for (row, value) in mb.rows.iter().zip(sequence_logprob(&mb.batch, &lp)) {
                    out[*row] = value;
                }
            }
        }
        Ok(out)
    };
    let with_old: Vec<&Tuple> = tuples.iter().filter(|t| t.old_target.is_some()).collect();
    let plain = |t: &Tuple, target: &str| Tuple {
        prompt: t.prompt.clone(),
        target: target.to_string(),
        old_target: None,
    };
    let new = logprob(with_old.iter().map(|t| plain(t, &t.target)).collect())?;
    let old = logprob(
        with_old
            .iter()
            .map(|t| plain(t, t.old_target.as_deref().unwrap_or_default()))
            .collect(),
    )?;
    Ok(new
        .iter()
        .zip(&old)
        .map(|(n, o)| f64::from(u8::from(n > o)))
        .collect())
}

/// Micro-batches whose log-probabilities one packed pass computes: a bound on the
/// log-softmax it holds (labelled positions × vocabulary).
const LOGPROB_MICRO_BATCHES: usize = 8;

/// [`CausalLm::label_logprobs`] of each micro-batch (in its own batch × time layout), from
/// one pass over them packed together ([`Batch::pack`]).
fn label_logprobs<B: Backend>(
    lm: &CausalLm<B>,
    batches: &[MicroBatch],
) -> Result<Vec<Vec<f32>>, LlmError> {
    let rows: Vec<Batch> = batches.iter().map(|mb| mb.batch.clone()).collect();
    let Ok(packed) = Batch::pack(&rows) else {
        return batches
            .iter()
            .map(|mb| lm.label_logprobs(&mb.batch))
            .collect();
    };
    Ok(unpack(batches, &packed, &lm.label_logprobs(&packed)?))
}

/// One edit batch: what the editor gets, and the micro-batches (with old labels and row
/// indices) that score it, per kind: edit, equivalence, locality.
#[derive(Debug, Clone)]
pub struct ScoredBatch {
    /// The editor's input.
    pub batch: EditBatch,
    /// Edit, equivalence and locality micro-batches.
    pub kinds: [Vec<MicroBatch>; 3],
}

/// Tokenized, collated edit batches of `n_edits` records each (a trailing partial batch is
/// dropped, as the reference's `drop_last`). `n_edits` and `chunk` must be at least 1.
pub fn edit_batches(
    tok: &LmTokenizer,
    records: &[EditRecord],
    n_edits: usize,
    chunk: usize,
    reference_quirks: bool,
) -> Result<Vec<ScoredBatch>, RunError> {
    if n_edits == 0 || chunk == 0 {
        return Err(RunError::Config(format!(
            "edit batches need n_edits ≥ 1 and chunk ≥ 1 (got {n_edits} and {chunk})"
        )));
    }
    records
        .chunks_exact(n_edits)
        .map(|group| {
            let kind =
                |pick: &dyn Fn(&EditRecord) -> Vec<&Tuple>| -> Result<Vec<MicroBatch>, DataError> {
                    let tuples = group
                        .iter()
                        .flat_map(pick)
                        .map(|t| tokenize(tok, t))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(collate(&tuples, chunk, reference_quirks))
                };
            let edit = kind(&|r| vec![&r.edit])?;
            let equiv = kind(&|r| r.equiv.iter().collect())?;
            let unrel = kind(&|r| r.unrel.iter().collect())?;
            let plain = |m: &[MicroBatch]| m.iter().map(|b| b.batch.clone()).collect();
            let batch = EditBatch {
                records: group.len(),
                edit: plain(&edit),
                equiv: plain(&equiv),
                unrel: plain(&unrel),
            };
            Ok(ScoredBatch {
                batch,
                kinds: [edit, equiv, unrel],
            })
        })
        .collect()
}

/// Per-prompt scores of micro-batches: CounterFact's comparison where old labels exist,
/// token top-1 accuracy otherwise. The micro-batches run packed together into rows
/// ([`Batch::pack`]): a few passes instead of one per micro-batch, the same scores up to
/// float rounding.
pub fn score<B: Backend>(lm: &CausalLm<B>, batches: &[MicroBatch]) -> Result<Vec<f64>, LlmError> {
    let counterfact = batches.iter().all(|mb| mb.old_labels.is_some());
    let plain = batches.iter().all(|mb| mb.old_labels.is_none());
    if batches.is_empty() || !(counterfact || plain) {
        return score_each(lm, batches);
    }
    let rows: Vec<Batch> = batches.iter().map(|mb| mb.batch.clone()).collect();
    let Ok(packed) = Batch::pack(&rows) else {
        return score_each(lm, batches);
    };
    let mut out = Vec::new();
    if plain {
        let argmax = lm.label_argmax(&packed)?;
        for (mb, argmax) in batches.iter().zip(unpack(batches, &packed, &argmax)) {
            out.extend(token_accuracy(&mb.batch, &argmax));
        }
        return Ok(out);
    }
    // The old target's token at each labelled position, micro-batch after micro-batch.
    let at = packed.label_positions();
    let mut old_at = Vec::with_capacity(at.len());
    for mb in batches {
        let old = mb.old_labels.as_deref().unwrap_or_default();
        let tokens = old_tokens(&mb.batch, old, mb.old_width);
        old_at.extend(
            mb.batch
                .label_positions()
                .iter()
                .map(|&p| tokens[p as usize]),
        );
    }
    let new: Vec<i64> = packed.labels.iter().map(|&l| l.max(0)).collect();
    let mut old = vec![0; new.len()];
    for (&p, &t) in at.iter().zip(&old_at) {
        old[p as usize] = t;
    }
    let logits = lm.label_token_logits(&packed, &[&new, &old])?;
    let per_batch = unpack(batches, &packed, &logits[0])
        .into_iter()
        .zip(unpack(batches, &packed, &logits[1]));
    for (mb, (new, old)) in batches.iter().zip(per_batch) {
        let labels = mb.old_labels.as_deref().unwrap_or_default();
        out.extend(counterfact_scores(
            &mb.batch,
            labels,
            mb.old_width,
            &new,
            &old,
        ));
    }
    Ok(out)
}

/// Values at the labelled positions of `packed` (one per flat position of it; `batches`
/// packed together, [`Batch::pack`]), laid back into each micro-batch's own batch × time
/// layout (default elsewhere).
fn unpack<T: Copy + Default>(batches: &[MicroBatch], packed: &Batch, values: &[T]) -> Vec<Vec<T>> {
    let at = packed.label_positions();
    let mut rest = at.iter().map(|&p| &values[p as usize]);
    batches
        .iter()
        .map(|mb| {
            let mut flat = vec![T::default(); mb.batch.batch * mb.batch.time];
            for (p, v) in mb.batch.label_positions().into_iter().zip(&mut rest) {
                flat[p as usize] = *v;
            }
            flat
        })
        .collect()
}

/// [`score`] one micro-batch at a time.
fn score_each<B: Backend>(lm: &CausalLm<B>, batches: &[MicroBatch]) -> Result<Vec<f64>, LlmError> {
    let mut out = Vec::new();
    for mb in batches {
        let b = &mb.batch;
        match &mb.old_labels {
            Some(old) => {
                let new_tokens: Vec<i64> = b.labels.iter().map(|&l| l.max(0)).collect();
                let old_tokens = old_tokens(b, old, mb.old_width);
                let logits = lm.label_token_logits(b, &[&new_tokens, &old_tokens])?;
                out.extend(counterfact_scores(
                    b,
                    old,
                    mb.old_width,
                    &logits[0],
                    &logits[1],
                ));
            }
            None => out.extend(token_accuracy(b, &lm.label_argmax(b)?)),
        }
    }
    Ok(out)
}

/// Mean token top-1 accuracy of `lm` on the targets of `tuples` (teacher forcing, spec §5.1),
/// for example on [`crate::synthetic::FactWorld::fact_tuples`] to check what a model knows.
pub fn answer_accuracy<B: Backend>(
    lm: &CausalLm<B>,
    tok: &LmTokenizer,
    tuples: &[Tuple],
) -> Result<f64, RunError> {
    let tokenized = tuples
        .iter()
        .map(|t| tokenize(tok, t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(mean(&score(lm, &collate(&tokenized, 32, false))?))
}

/// Efficacy, generalization and specificity of `lm` on `records` as they stand (no editing),
/// scored as [`run`] scores them; `progress` is called with the share of records done.
pub fn evaluate<B: Backend>(
    lm: &CausalLm<B>,
    tok: &LmTokenizer,
    records: &[EditRecord],
    progress: &mut dyn FnMut(f64),
) -> Result<Scores, RunError> {
    const GROUP: usize = 32;
    let (mut all, mut done) = ([Vec::new(), Vec::new(), Vec::new()], 0);
    for group in records.chunks(GROUP) {
        for batch in edit_batches(tok, group, group.len(), 4, false)? {
            for (k, kind) in batch.kinds.iter().enumerate() {
                all[k].extend(score(lm, kind)?);
            }
        }
        done += group.len();
        progress(done as f64 / records.len() as f64);
    }
    Ok(Scores {
        efficacy: mean(&all[0]),
        generalization: mean(&all[1]),
        specificity: mean(&all[2]),
    })
}

fn scores<B: Backend>(
    lm: &CausalLm<B>,
    seen: &[&[Vec<MicroBatch>; 3]],
) -> Result<Scores, LlmError> {
    let pool = |k: usize| -> Result<f64, LlmError> {
        let mut all = Vec::new();
        for kinds in seen {
            all.extend(score(lm, &kinds[k])?);
        }
        Ok(mean(&all))
    };
    Ok(Scores {
        efficacy: pool(0)?,
        generalization: pool(1)?,
        specificity: pool(2)?,
    })
}

/// Peak resident set size of this process (Linux `VmHWM`), 0 elsewhere.
pub fn peak_memory_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The inputs of a run.
pub struct Run<'a, B: Backend> {
    /// The pristine model (restored after training).
    pub model: &'a CausalLm<B>,
    /// Its tokenizer.
    pub tokenizer: &'a LmTokenizer,
    /// Train split records.
    pub train: &'a [EditRecord],
    /// Eval split records.
    pub eval: &'a [EditRecord],
    /// Where the data came from, for the report's readers.
    pub source: Option<PathBuf>,
    /// Records the loaders skipped, carried into the [`Report`].
    pub skipped: Vec<Skipped>,
    /// General-capability tasks, scored when [`ScenarioConfig::glue_every`] is set.
    pub glue: &'a [GlueSet],
}

impl<'a, B: Backend> Run<'a, B> {
    /// The inputs of a run, with no data source named and nothing skipped.
    pub fn new(
        model: &'a CausalLm<B>,
        tokenizer: &'a LmTokenizer,
        train: &'a [EditRecord],
        eval: &'a [EditRecord],
    ) -> Self {
        Self {
            model,
            tokenizer,
            train,
            eval,
            source: None,
            skipped: Vec::new(),
            glue: &[],
        }
    }
}

/// Every tuple of the chosen records tokenizes and fits the model's context; an error names
/// the split, the record's index in it and the prompt.
fn check_lengths<B: Backend>(
    input: &Run<B>,
    split: &str,
    records: &[EditRecord],
    at: &[usize],
) -> Result<(), RunError> {
    let context = input.model.context_len();
    for &i in at {
        let r = &records[i];
        for t in std::iter::once(&r.edit).chain(&r.equiv).chain(&r.unrel) {
            let len = tokenize(input.tokenizer, t)
                .map_err(|e| RunError::Config(format!("{split} record {i}: {e}")))?
                .len();
            if len > context {
                return Err(RunError::Config(format!(
                    "{split} record {i}: prompt {:?} with its target is {len} tokens, more than \
                     the model's context of {context}",
                    t.prompt
                )));
            }
        }
    }
    Ok(())
}

/// The records and batches a scenario run uses: which records it draws (seeded by
/// `config.seed`) and how it batches them.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The training records, in training order.
    pub train: Vec<EditRecord>,
    /// The edited (eval) records, in edit order.
    pub eval: Vec<EditRecord>,
    /// Training batches of `n_edits`.
    pub train_batches: Vec<EditBatch>,
    /// Edit batches with the micro-batches that score them.
    pub eval_batches: Vec<ScoredBatch>,
    /// Warnings for the report (e.g. fewer training records than asked for).
    pub warnings: Vec<String>,
}

/// Draws and batches the records of a run of `config` for an editor that trains on
/// `train_batches` batches, as [`run`] does (after the same checks).
pub fn prepare<B: Backend>(
    input: &Run<B>,
    config: &ScenarioConfig,
    train_batches: usize,
) -> Result<Prepared, RunError> {
    input.tokenizer.check_vocab(input.model.vocab_size())?;
    let n = config.n_edits;
    if n == 0 || config.num_seq == 0 {
        return Err(RunError::Config(
            "n_edits and num_seq must be at least 1".into(),
        ));
    }
    if config.glue_every == Some(0) {
        return Err(RunError::Config("glue_every must be at least 1".into()));
    }
    let product = |a: usize, b: usize, what: &str| {
        a.checked_mul(b).ok_or_else(|| {
            RunError::Config(format!("{what}: {a} × {b} does not fit in a machine word"))
        })
    };
    let need = product(config.num_seq, n, "num_seq × n_edits")?;
    let want_train = product(train_batches, n, "train_batches × n_edits")?;
    product(
        config.train_epochs,
        want_train,
        "train_epochs × training records",
    )?;
    if input.eval.len() < need {
        return Err(RunError::Config(format!(
            "{} × {} edits need {need} eval records, the data has {}",
            config.num_seq,
            n,
            input.eval.len()
        )));
    }
    let mut warnings = Vec::new();
    if input.train.len() < want_train {
        warnings.push(format!(
            "{train_batches} training batches of {n} need {want_train} train records, the data \
             has {}: training on {} batches",
            input.train.len(),
            input.train.len() / n
        ));
    }
    let mut rng = emsedit_tensor::host_rng(config.seed);
    let mut pick = |records: &[EditRecord], count: usize| {
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.shuffle(&mut rng);
        order.truncate(count);
        order
    };
    let (train_at, eval_at) = (pick(input.train, want_train), pick(input.eval, need));
    check_lengths(input, "train", input.train, &train_at)?;
    check_lengths(input, "eval", input.eval, &eval_at)?;
    let take = |records: &[EditRecord], at: &[usize]| -> Vec<EditRecord> {
        at.iter().map(|&i| records[i].clone()).collect()
    };
    let (train, eval) = (take(input.train, &train_at), take(input.eval, &eval_at));
    let (tok, chunk, quirks) = (input.tokenizer, config.chunk, config.reference_quirks);
    let train_batches: Vec<EditBatch> = edit_batches(tok, &train, n, chunk, quirks)?
        .into_iter()
        .map(|b| b.batch)
        .collect();
    let eval_batches = edit_batches(tok, &eval, n, chunk, quirks)?;
    Ok(Prepared {
        train,
        eval,
        train_batches,
        eval_batches,
        warnings,
    })
}

/// Where a [`run_with_progress`] is, for progress output on long runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Training the editor: epoch `epoch` (from 1) of `epochs`, on `batches` batches.
    Training {
        /// This epoch, from 1.
        epoch: usize,
        /// Epochs in all.
        epochs: usize,
        /// Training batches per epoch.
        batches: usize,
    },
    /// Training batch `batch` (from 1) of `of` is through, in epoch `epoch` of `epochs`.
    Trained {
        /// This epoch, from 1.
        epoch: usize,
        /// Epochs in all.
        epochs: usize,
        /// Training batches through so far in this epoch.
        batch: usize,
        /// Training batches per epoch.
        of: usize,
    },
    /// Scoring the unedited model on the eval records (after training).
    ScoringBefore,
    /// Edit batch `batch` (from 1) of `of` is applied (and, in curve mode, scored).
    Edited {
        /// Batches applied so far.
        batch: usize,
        /// Edit batches in all.
        of: usize,
    },
    /// Scoring the edited model.
    ScoringAfter,
    /// Comparing the new and old targets' probabilities on the edited model (CounterFact).
    ScoringSequences,
    /// Scoring the RippleEdits tests on the unedited and the edited model.
    ScoringRipple,
}

impl std::fmt::Display for Phase {
    /// The phase in words, for progress output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::ScoringBefore => f.write_str("scoring the unedited model"),
            Self::Training { batches: 0, .. } => f.write_str("no training"),
            Self::Training {
                epoch,
                epochs,
                batches,
            } if epochs > 1 => write!(f, "training on {batches} batches, epoch {epoch}/{epochs}"),
            Self::Training { batches, .. } => write!(f, "training on {batches} batches"),
            Self::Trained {
                epoch,
                epochs,
                batch,
                of,
            } if epochs > 1 => write!(f, "trained on {batch}/{of} batches, epoch {epoch}/{epochs}"),
            Self::Trained { batch, of, .. } => write!(f, "trained on {batch}/{of} batches"),
            Self::Edited { batch, of } => write!(f, "edited {batch}/{of} batches"),
            Self::ScoringAfter => f.write_str("scoring the edited model"),
            Self::ScoringSequences => f.write_str("comparing new and old targets"),
            Self::ScoringRipple => f.write_str("scoring the RippleEdits tests"),
        }
    }
}

/// Turns `lm`'s scoring cache on below the modules `editor` changes; off when it names none or
/// names them wrongly (its edit then reports that).
fn start_scoring_cache<B: Backend>(lm: &mut CausalLm<B>, editor: &dyn Editor<B>) {
    match resolve_modules(lm, editor.modules()) {
        Ok(modules) => lm.start_scoring_cache(&modules),
        Err(_) => lm.stop_scoring_cache(),
    }
}

/// Runs `editor` through the scenario and scores it.
pub fn run<B: Backend>(
    editor: &mut dyn Editor<B>,
    input: &Run<B>,
    config: &ScenarioConfig,
) -> Result<Report, RunError> {
    run_with_progress(editor, input, config, &mut |_| {})
}

/// [`run`], calling `progress` as each [`Phase`] begins (and after each edit batch).
pub fn run_with_progress<B: Backend>(
    editor: &mut dyn Editor<B>,
    input: &Run<B>,
    config: &ScenarioConfig,
    progress: &mut dyn FnMut(Phase),
) -> Result<Report, RunError> {
    let train_batches = config
        .train_batches
        .unwrap_or_else(|| editor.train_batches(config.num_seq));
    let Prepared {
        eval,
        train_batches,
        eval_batches,
        warnings,
        ..
    } = prepare(input, config, train_batches)?;
    let (n, need) = (config.n_edits, config.num_seq * config.n_edits);
    let (tok, chunk) = (input.tokenizer, config.chunk);

    let mut lm = input.model.clone();
    let start = Instant::now();
    for epoch in 1..=config.train_epochs {
        progress(Phase::Training {
            epoch,
            epochs: config.train_epochs,
            batches: train_batches.len(),
        });
        let of = train_batches.len();
        let mut done = |batch| {
            progress(Phase::Trained {
                epoch,
                epochs: config.train_epochs,
                batch,
                of,
            })
        };
        editor.train_with_progress(&mut lm, &train_batches, &mut done)?;
        lm = input.model.clone();
    }
    let train_seconds = start.elapsed().as_secs_f64();

    // The scores before editing come after training, on the model that is then edited, so
    // that every later scoring pass reuses their states below the edited blocks.
    start_scoring_cache(&mut lm, &*editor);
    let all: Vec<&[Vec<MicroBatch>; 3]> = eval_batches.iter().map(|b| &b.kinds).collect();
    progress(Phase::ScoringBefore);
    let before = scores(&lm, &all)?;
    let step_sizes = editor.step_sizes();
    // A training-free editor (FT, UltraEdit) is handed an experiment's training batches too,
    // and trains on none of them.
    let trained_records = if editor.train_batches(config.num_seq) == 0 {
        0
    } else {
        config.train_epochs * train_batches.iter().map(|b| b.records).sum::<usize>()
    };

    let glue_every = config.glue_every.filter(|_| !input.glue.is_empty());
    let mut glue = Vec::new();
    let mut glue_at = |lm: &CausalLm<B>, batches: usize| -> Result<(), RunError> {
        glue.push(GluePoint {
            batches,
            edits: batches * n,
            scores: glue_scores(lm, tok, input.glue, chunk)?,
        });
        Ok(())
    };
    if glue_every.is_some() {
        glue_at(&lm, 0)?;
    }
    let mut edit_seconds = 0.0;
    let mut curve = Vec::new();
    for (t, scored) in eval_batches.iter().enumerate() {
        let start = Instant::now();
        editor.edit(&mut lm, &scored.batch)?;
        edit_seconds += start.elapsed().as_secs_f64();
        if config.curve {
            curve.push(scores(&lm, &all[..=t])?);
        }
        if glue_every.is_some_and(|k| (t + 1) % k == 0 || t + 1 == eval_batches.len()) {
            glue_at(&lm, t + 1)?;
        }
        progress(Phase::Edited {
            batch: t + 1,
            of: eval_batches.len(),
        });
    }
    progress(Phase::ScoringAfter);
    // A curve's last point already scores every batch on the final model.
    let after = match curve.last() {
        Some(last) if curve.len() == eval_batches.len() => *last,
        _ => scores(&lm, &all)?,
    };
    let sequence = if eval.iter().any(|r| r.edit.old_target.is_some()) {
        progress(Phase::ScoringSequences);
        let pool = |pick: &dyn Fn(&EditRecord) -> Vec<Tuple>| -> Result<f64, RunError> {
            let tuples: Vec<Tuple> = eval.iter().flat_map(pick).collect();
            Ok(mean(&sequence_preference(&lm, tok, &tuples, chunk)?))
        };
        Some(Scores {
            efficacy: pool(&|r| vec![r.edit.clone()])?,
            generalization: pool(&|r| r.equiv.clone())?,
            specificity: pool(&|r| r.unrel.clone())?,
        })
    } else {
        None
    };
    if eval.iter().any(|r| r.ripple.is_some()) {
        progress(Phase::ScoringRipple);
    }
    let ripple = ripple_report(input.model, &lm, tok, &eval, chunk)?;
    Ok(Report {
        glue,
        sequence,
        skipped: input.skipped.clone(),
        warnings,
        ripple,
        step_sizes,
        method: editor.name(),
        scenario: config.clone(),
        before,
        after,
        train_records: trained_records,
        train_seconds_per_edit: if trained_records == 0 {
            0.0
        } else {
            train_seconds / trained_records as f64
        },
        edit_seconds_per_edit: edit_seconds / need as f64,
        peak_memory_bytes: peak_memory_bytes(),
        curve,
    })
}
