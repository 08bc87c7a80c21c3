//! The editing metrics of spec §5, on host arrays so that each is testable by hand.

use emsedit_llm::{Batch, IGNORE};

/// Token top-1 accuracy of each row (ZsRE, RippleEdits; spec §5.1): the share of its label
/// positions where the argmax equals the label. `argmax` is batch × time.
pub fn token_accuracy(batch: &Batch, argmax: &[i64]) -> Vec<f64> {
    (0..batch.batch)
        .map(|i| {
            let row = i * batch.time..(i + 1) * batch.time;
            let (hit, total) = batch.labels[row.clone()]
                .iter()
                .zip(&argmax[row])
                .filter(|(l, _)| **l != IGNORE)
                .fold((0usize, 0usize), |(h, t), (l, a)| {
                    (h + usize::from(l == a), t + 1)
                });
            if total == 0 {
                0.0
            } else {
                hit as f64 / total as f64
            }
        })
        .collect()
}

/// The old-target token to compare with at each position (batch × time): `Z` cut to the
/// batch width, with ignored and missing positions set to token 0 (their logits go unused).
pub fn old_tokens(batch: &Batch, old_labels: &[i64], old_width: usize) -> Vec<i64> {
    let w = old_width.min(batch.time);
    let mut out = vec![0; batch.batch * batch.time];
    for i in 0..batch.batch {
        for q in 0..w {
            let z = old_labels[i * old_width + q];
            out[i * batch.time + q] = if z == IGNORE { 0 } else { z };
        }
    }
    out
}

/// CounterFact's per-token new-vs-old comparison of each row (spec §5.2).
///
/// `new_logits[i·T + q]` is the logit of the label `Y_iq`, `old_logits[i·T + q]` that of the
/// old label `Z_iq` (both batch × time, e.g. from [`old_tokens`]). With w = min(T, old width):
/// `score_i = #{q < w : Y ≠ −100, Z ≠ −100, logit(Y) > logit(Z)} / #{q < w : Y ≠ −100}`, 0 when
/// the denominator is 0. Whether padded old positions compare against token 0 depends on how
/// the old labels were padded (`collate`'s `reference_quirks`).
pub fn counterfact_scores(
    batch: &Batch,
    old_labels: &[i64],
    old_width: usize,
    new_logits: &[f32],
    old_logits: &[f32],
) -> Vec<f64> {
    let w = old_width.min(batch.time);
    (0..batch.batch)
        .map(|i| {
            let (mut ok, mut total) = (0usize, 0usize);
            for q in 0..w {
                let y = batch.labels[i * batch.time + q];
                if y == IGNORE {
                    continue;
                }
                total += 1;
                let z = old_labels[i * old_width + q];
                let p = i * batch.time + q;
                if z != IGNORE && new_logits[p] > old_logits[p] {
                    ok += 1;
                }
            }
            if total == 0 {
                0.0
            } else {
                ok as f64 / total as f64
            }
        })
        .collect()
}

/// Sum of the label log-probabilities of each row (batch × time input, IGNORE skipped).
pub fn sequence_logprob(batch: &Batch, label_logprobs: &[f32]) -> Vec<f64> {
    (0..batch.batch)
        .map(|i| {
            (0..batch.time)
                .filter(|&q| batch.labels[i * batch.time + q] != IGNORE)
                .map(|q| f64::from(label_logprobs[i * batch.time + q]))
                .sum()
        })
        .collect()
}

/// Mean of a pool of per-prompt scores (0 for an empty pool).
pub fn mean(scores: &[f64]) -> f64 {
    if scores.is_empty() {
        0.0
    } else {
        scores.iter().sum::<f64>() / scores.len() as f64
    }
}
