//! Sorting, chunking and right-padding tuples into micro-batches (spec §1.3).

use emsedit_llm::{Batch, IGNORE};

use crate::data::tokenize::TokenizedTuple;

/// A padded micro-batch plus CounterFact's old labels, padded to their own width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicroBatch {
    /// Ids (pad 0), mask (pad 0), labels (pad −100).
    pub batch: Batch,
    /// For each row, the index of its tuple in the slice given to [`collate`].
    pub rows: Vec<usize>,
    /// Old labels, rows × `old_width`, when the tuples carry them.
    pub old_labels: Option<Vec<i64>>,
    /// Width of `old_labels`.
    pub old_width: usize,
}

fn pad(rows: &[&[i64]], width: usize, value: i64) -> Vec<i64> {
    rows.iter()
        .flat_map(|r| {
            r.iter()
                .copied()
                .chain(std::iter::repeat_n(value, width - r.len()))
        })
        .collect()
}

/// Sorts `tuples` by length, longest first (stable), cuts them into chunks of `chunk` and pads
/// each chunk to its own longest member.
///
/// Old labels are padded with −100; `reference_quirks` pads them with token 0 as the reference
/// does (spec §5.2), which makes the CounterFact metric compare against token 0.
pub fn collate(tuples: &[TokenizedTuple], chunk: usize, reference_quirks: bool) -> Vec<MicroBatch> {
    let mut order: Vec<usize> = (0..tuples.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tuples[i].len()));
    order
        .chunks(chunk.max(1))
        .map(|index| {
            let rows: Vec<&TokenizedTuple> = index.iter().map(|&i| &tuples[i]).collect();
            let time = rows.iter().map(|t| t.len()).max().unwrap_or(0);
            let ids: Vec<&[i64]> = rows.iter().map(|t| t.input_ids.as_slice()).collect();
            let labels: Vec<&[i64]> = rows.iter().map(|t| t.labels.as_slice()).collect();
            let mask: Vec<Vec<i64>> = rows.iter().map(|t| vec![1; t.len()]).collect();
            let mask: Vec<&[i64]> = mask.iter().map(Vec::as_slice).collect();
            let old: Option<Vec<&[i64]>> = rows.iter().map(|t| t.old_labels.as_deref()).collect();
            let old_width = old
                .as_ref()
                .map_or(0, |o| o.iter().map(|r| r.len()).max().unwrap_or(0));
            let old_pad = if reference_quirks { 0 } else { IGNORE };
            MicroBatch {
                rows: index.to_vec(),
                batch: Batch {
                    batch: rows.len(),
                    time,
                    input_ids: pad(&ids, time, 0),
                    attention_mask: pad(&mask, time, 0),
                    labels: pad(&labels, time, IGNORE),
                },
                old_labels: old.map(|o| pad(&o, old_width, old_pad)),
                old_width,
            }
        })
        .collect()
}
