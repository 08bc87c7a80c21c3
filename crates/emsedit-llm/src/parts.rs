//! Passes split by rows: a batch of several rows runs as a few parts of consecutive rows (or
//! of the sequences of micro-batches), one pass each, in parallel on scoped threads
//! ([`emsedit_tensor::threads::scoped_map`]), and the parts' results are joined.
//!
//! On the CPU one pass over a small batch leaves the second core mostly idle: the products
//! are 40–260 rows tall and every element-wise operation runs on one thread, so a second
//! thread speeds a pass up by only 1.1–1.3×. Two passes over half the rows each, one per
//! core, take one half to two thirds of the time of one pass over all of them
//! (docs/performance.md). Rows are independent in a forward pass (a packed row's sequences
//! attend only within the row), so each row's outputs are what one pass gives up to float
//! rounding, and a loss that sums weighted positions is the sum of the parts' losses.
//!
//! The split depends on the batch alone, never on the number of threads, so results do not
//! change with it.

use std::ops::Range;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::LlmError;
use crate::batch::{Batch, PACKED_ROW_TOKENS, pack_sequences, sequences};
use crate::lm::EditGrads;

/// Parts a pass is split into on a CPU backend ([`crate::CausalLm::set_pass_parts`]).
pub const CPU_PASS_PARTS: usize = 2;

/// Fewest real tokens a part holds: below it a part's fixed costs outweigh the gain.
pub const MIN_PART_TOKENS: usize = 16;

/// Up to `parts` ranges of consecutive rows with about equal numbers of real tokens, each
/// holding a labelled position and at least [`MIN_PART_TOKENS`] tokens; one range (all rows)
/// when the batch cannot be split that way.
pub fn row_parts(batch: &Batch, parts: usize) -> Vec<Range<usize>> {
    let labelled: Vec<bool> = batch
        .labels
        .chunks(batch.time.max(1))
        .map(|r| r.iter().any(|&l| l != crate::IGNORE))
        .collect();
    match row_tokens(batch) {
        Some(tokens) => balanced(&tokens, &labelled, parts),
        None => std::iter::once(0..batch.batch).collect(),
    }
}

/// [`row_parts`] without the labels: parts of a forward pass over every position.
pub(crate) fn token_parts(batch: &Batch, parts: usize) -> Vec<Range<usize>> {
    match row_tokens(batch) {
        Some(tokens) => balanced(&tokens, &vec![true; tokens.len()], parts),
        None => std::iter::once(0..batch.batch).collect(),
    }
}

/// Real tokens per row, when the mask has the batch's rows.
fn row_tokens(batch: &Batch) -> Option<Vec<usize>> {
    let tokens: Vec<usize> = batch
        .attention_mask
        .chunks(batch.time.max(1))
        .map(|r| r.iter().filter(|&&m| m != 0).count())
        .collect();
    (tokens.len() == batch.batch).then_some(tokens)
}

/// The sequences of `batches` in up to `parts` runs of consecutive sequences with about
/// equal numbers of real tokens, each holding a label and packed on its own ([`Batch::pack`]);
/// one pack when they cannot be split that way. A micro-batch may end in one part and go on
/// in the next: splitting by sequence rather than by micro-batch keeps the parts even when
/// the micro-batches are not (an editor's are sorted by length). The packs' sequences, joined
/// in order, are `Batch::pack(batches)`'s.
pub fn sequence_parts(batches: &[Batch], parts: usize) -> Result<Vec<Batch>, LlmError> {
    let seqs = sequences(batches)?;
    let tokens: Vec<usize> = seqs.iter().map(|s| s.ids.len()).collect();
    let labelled: Vec<bool> = seqs.iter().map(|s| s.labelled()).collect();
    Ok(balanced(&tokens, &labelled, parts)
        .into_iter()
        .map(|range| pack_sequences(&seqs[range], PACKED_ROW_TOKENS))
        .collect())
}

/// Up to `parts` ranges of consecutive items (`tokens` each) with about equal token counts,
/// each holding a `labelled` item and at least [`MIN_PART_TOKENS`] tokens; else one range.
fn balanced(tokens: &[usize], labelled: &[bool], parts: usize) -> Vec<Range<usize>> {
    let items = tokens.len();
    let total: usize = tokens.iter().sum();
    if parts < 2 || items < 2 || labelled.len() != items || total < 2 * MIN_PART_TOKENS {
        return std::iter::once(0..items).collect();
    }
    let mut out = Vec::with_capacity(parts);
    let (mut start, mut seen, mut held) = (0, 0, 0);
    for r in 0..items - 1 {
        seen += tokens[r];
        held += tokens[r];
        let closing = out.len() + 1;
        // Close at the item that leaves this part's share nearest its target.
        let (target, here) = (total * closing, seen * parts);
        let next = (seen + tokens[r + 1]) * parts;
        let nearest = here >= target || (next > target && target - here <= next - target);
        if closing < parts
            && nearest
            && held >= MIN_PART_TOKENS
            && total - seen >= MIN_PART_TOKENS
            && labelled[start..=r].iter().any(|&l| l)
            && labelled[r + 1..].iter().any(|&l| l)
        {
            out.push(start..r + 1);
            start = r + 1;
            held = 0;
        }
    }
    out.push(start..items);
    out
}

/// One over each position's micro-batch size (`counts` of consecutive labelled positions
/// each), or one over `n` without micro-batches: the weights whose sum with the positions'
/// losses is the sum of the micro-batches' mean losses.
pub(crate) fn position_weights(n: usize, counts: Option<&[usize]>) -> Result<Vec<f32>, LlmError> {
    let Some(counts) = counts else {
        return Ok(vec![1.0 / n as f32; n]);
    };
    if counts.iter().sum::<usize>() != n {
        return Err(LlmError::Batch(format!(
            "micro-batches with {} labelled positions in all, the packed batch has {n}",
            counts.iter().sum::<usize>()
        )));
    }
    Ok(counts
        .iter()
        .flat_map(|&c| std::iter::repeat_n(1.0 / c as f32, c))
        .collect())
}

/// The parts' gradients as one pass's: losses and Γ summed, keys and output gradients
/// stacked part after part.
pub(crate) fn join<B: Backend>(parts: Vec<EditGrads<B>>) -> Result<EditGrads<B>, LlmError> {
    let mut parts = parts.into_iter();
    let first = parts
        .next()
        .ok_or_else(|| LlmError::Batch("a pass split into no parts".into()))?;
    let mut keys: Vec<Vec<Tensor<B, 2>>> = first.keys.into_iter().map(|k| vec![k]).collect();
    let mut out_grads: Vec<Vec<Tensor<B, 2>>> =
        first.out_grads.into_iter().map(|g| vec![g]).collect();
    let (mut loss, mut gammas) = (first.loss, first.gammas);
    for part in parts {
        loss += part.loss;
        for (all, k) in keys.iter_mut().zip(part.keys) {
            all.push(k);
        }
        for (all, g) in out_grads.iter_mut().zip(part.out_grads) {
            all.push(g);
        }
        gammas = gammas
            .into_iter()
            .zip(part.gammas)
            .map(|(a, b)| a + b)
            .collect();
    }
    Ok(EditGrads {
        loss,
        keys: keys.into_iter().map(|k| Tensor::cat(k, 0)).collect(),
        out_grads: out_grads.into_iter().map(|g| Tensor::cat(g, 0)).collect(),
        gammas,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IGNORE;

    /// Rows of `lens` real tokens (right-padded to the longest), the last one labelled.
    fn batch(lens: &[usize]) -> Batch {
        let time = lens.iter().copied().max().unwrap_or(0);
        let mut b = Batch {
            batch: lens.len(),
            time,
            input_ids: Vec::new(),
            attention_mask: Vec::new(),
            labels: Vec::new(),
        };
        for &len in lens {
            for t in 0..time {
                b.input_ids.push(if t < len { 5 } else { 0 });
                b.attention_mask.push(i64::from(t < len));
                b.labels.push(if t + 1 == len { 7 } else { IGNORE });
            }
        }
        b
    }

    #[test]
    fn rows_split_into_parts_of_about_equal_tokens() {
        assert_eq!(row_parts(&batch(&[20, 20, 20, 20]), 2), vec![0..2, 2..4]);
        assert_eq!(
            row_parts(&batch(&[60, 10, 10, 10, 10]), 2),
            vec![0..1, 1..5]
        );
        assert_eq!(
            row_parts(&batch(&[20, 20, 20, 20]), 4),
            vec![0..1, 1..2, 2..3, 3..4]
        );
        assert_eq!(row_parts(&batch(&[64, 61, 5]), 2), vec![0..1, 1..3]);
    }

    #[test]
    fn small_or_single_row_batches_stay_whole() {
        assert_eq!(row_parts(&batch(&[64]), 2), vec![0..1]);
        assert_eq!(row_parts(&batch(&[10, 10]), 2), vec![0..2]);
        assert_eq!(row_parts(&batch(&[20, 20]), 1), vec![0..2]);
        assert_eq!(row_parts(&batch(&[40, 10]), 2), vec![0..2]);
    }

    #[test]
    fn every_part_holds_a_label() {
        let mut b = batch(&[20, 20, 20]);
        b.labels[..2 * b.time].iter_mut().for_each(|l| *l = IGNORE);
        assert_eq!(row_parts(&b, 2), vec![0..3]);
        let mut b = batch(&[20, 20, 20, 20]);
        b.labels[..2 * b.time].iter_mut().for_each(|l| *l = IGNORE);
        assert_eq!(row_parts(&b, 2), vec![0..3, 3..4]);
    }

    /// The real tokens' ids of each sequence of `b`, row after row.
    fn segments(b: &Batch) -> Vec<Vec<i64>> {
        let mut out: Vec<Vec<i64>> = Vec::new();
        for (r, row) in b.attention_mask.chunks(b.time).enumerate() {
            let mut last = 0;
            for (t, &m) in row.iter().enumerate().filter(|(_, m)| **m != 0) {
                if m != last {
                    out.push(Vec::new());
                    last = m;
                }
                out.last_mut().unwrap().push(b.input_ids[r * b.time + t]);
            }
        }
        out
    }

    #[test]
    fn micro_batches_split_by_sequence() {
        let tokens = |packs: &[Batch]| -> Vec<usize> {
            packs.iter().map(|p| segments(p).concat().len()).collect()
        };
        // An edit batch's two micro-batches: 4 × 12 and 4 × 7 tokens, every sequence's ids
        // its own. By whole micro-batches the parts would hold 48 and 28 tokens; by sequence
        // the split falls inside the first.
        let mut micro = [batch(&[12; 4]), batch(&[7; 4])];
        for (i, id) in micro
            .iter_mut()
            .flat_map(|b| b.input_ids.iter_mut())
            .enumerate()
        {
            *id = i as i64;
        }
        let packs = sequence_parts(&micro, 2).unwrap();
        assert_eq!(tokens(&packs), vec![36, 40]);
        // Joined, the parts hold `pack`'s sequences in order, and every label.
        let joined: Vec<Vec<i64>> = packs.iter().flat_map(segments).collect();
        assert_eq!(joined, segments(&Batch::pack(&micro).unwrap()));
        let labels: usize = packs.iter().map(|p| p.label_positions().len()).sum();
        assert_eq!(labels, 8);
        assert_eq!(tokens(&sequence_parts(&micro, 1).unwrap()), vec![76]);
        assert_eq!(
            tokens(&sequence_parts(&[batch(&[40])], 2).unwrap()),
            vec![40]
        );
        let packed = Batch::pack(&micro).unwrap();
        assert!(sequence_parts(&[micro[0].clone(), packed], 2).is_err());
    }

    #[test]
    fn a_part_drops_the_columns_only_padding_fills() {
        let b = batch(&[6, 3, 2]);
        let part = b.rows(1..3);
        assert_eq!((part.batch, part.time), (2, 6));
        let part = part.trimmed();
        assert_eq!((part.batch, part.time), (2, 3));
        assert_eq!(part.attention_mask, vec![1, 1, 1, 1, 1, 0]);
        assert_eq!(part.labels, vec![IGNORE, IGNORE, 7, IGNORE, 7, IGNORE]);
        let whole = b.clone().trimmed();
        assert_eq!(whole, b);
    }

    #[test]
    fn weights_are_one_over_each_micro_batch() {
        assert_eq!(position_weights(4, None).unwrap(), vec![0.25; 4]);
        assert_eq!(
            position_weights(3, Some(&[1, 2])).unwrap(),
            vec![1.0, 0.5, 0.5]
        );
        assert!(position_weights(3, Some(&[1, 1])).is_err());
    }
}
