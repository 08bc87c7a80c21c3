//! A right-padded, teacher-forced batch on the host.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::LlmError;

/// The label value of positions that carry no loss.
pub const IGNORE: i64 = -100;

/// Most tokens [`Batch::pack`] puts in one row. Attention over a row costs per token about
/// 2·len·d multiply-adds plus len softmax entries, so long rows trade the products' fixed
/// costs for attention: on SmolLM2, batch MALMEN with 100 edits took 138 s a cell at 256, 102
/// at 96 and 97 at 64 (docs/performance.md).
pub const PACKED_ROW_TOKENS: usize = 64;

/// Token ids, attention mask and already-shifted labels, each batch × time, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Rows.
    pub batch: usize,
    /// Columns.
    pub time: usize,
    /// Token ids (pads are any id; conventionally 0).
    pub input_ids: Vec<i64>,
    /// 1 on real tokens, 0 on right padding. A packed row ([`Batch::pack`]) numbers its
    /// sequences 1, 2, …: a token attends only to earlier tokens of its own sequence, and
    /// positions count from 0 at each sequence's first token.
    pub attention_mask: Vec<i64>,
    /// `labels[i]` is the token the logits at position i must predict, or [`IGNORE`].
    pub labels: Vec<i64>,
}

impl Batch {
    /// Checks the shapes and values against a model's vocabulary and context.
    pub fn validate(&self, vocab: usize, context: usize) -> Result<(), LlmError> {
        let n = self.check_layout()?;
        if n == 0 {
            return Err(LlmError::Batch("the batch is empty".into()));
        }
        let longest = if self.packed() {
            self.segment_starts()
                .into_iter()
                .map(|(_, len)| len)
                .max()
                .unwrap_or(0)
        } else {
            self.time
        };
        if longest > context {
            return Err(LlmError::Batch(format!(
                "sequence length {longest} exceeds the model's context of {context} tokens"
            )));
        }
        let in_vocab = |t: i64| t >= 0 && (t as usize) < vocab;
        if let Some(i) = self.input_ids.iter().position(|&t| !in_vocab(t)) {
            return Err(LlmError::Batch(format!(
                "input_ids[{}][{}] = {} is outside the vocabulary of {vocab}",
                i / self.time,
                i % self.time,
                self.input_ids[i]
            )));
        }
        if let Some(i) = self
            .labels
            .iter()
            .position(|&t| t != IGNORE && !in_vocab(t))
        {
            return Err(LlmError::Batch(format!(
                "labels[{}][{}] = {} is outside the vocabulary of {vocab}",
                i / self.time,
                i % self.time,
                self.labels[i]
            )));
        }
        Ok(())
    }

    /// Checks the fields' lengths (returning batch × time) and that every row holds its
    /// sequences numbered 1, 2, … in order, each in one run, then its right padding (0).
    fn check_layout(&self) -> Result<usize, LlmError> {
        let n = self
            .batch
            .checked_mul(self.time)
            .ok_or_else(|| LlmError::Batch(format!("{} × {} overflows", self.batch, self.time)))?;
        for (field, len) in [
            ("input_ids", self.input_ids.len()),
            ("attention_mask", self.attention_mask.len()),
            ("labels", self.labels.len()),
        ] {
            if len != n {
                return Err(LlmError::Batch(format!(
                    "`{field}` has {len} entries, expected {} × {}",
                    self.batch, self.time
                )));
            }
        }
        for (r, row) in self.attention_mask.chunks(self.time.max(1)).enumerate() {
            let mut last = 0;
            for (t, &m) in row.iter().enumerate() {
                let fits = match (last, m) {
                    (0, 0) => true,
                    (0, m) => t == 0 && m == 1,
                    (_, 0) => true,
                    (l, m) => m == l || m == l + 1,
                };
                if !fits {
                    return Err(LlmError::Batch(format!(
                        "attention_mask[{r}][{t}] = {m}: a row holds sequences numbered 1, 2, … \
                         in order, then right padding (0)"
                    )));
                }
                last = m;
            }
        }
        Ok(n)
    }

    /// Whether some row holds more than one sequence.
    pub fn packed(&self) -> bool {
        self.attention_mask.iter().any(|&m| m > 1)
    }

    /// (flat index of the first token, length) of every sequence, row after row.
    fn segment_starts(&self) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for (i, &m) in self.attention_mask.iter().enumerate() {
            let t = i % self.time;
            let continues = m != 0 && t > 0 && self.attention_mask[i - 1] == m;
            if continues {
                if let Some(last) = out.last_mut() {
                    last.1 += 1;
                }
            } else if m != 0 {
                out.push((i, 1));
            }
        }
        out
    }

    /// Each token's position, counted from 0 at the first token of its sequence (0 on
    /// padding), row-major.
    pub fn positions(&self) -> Vec<i64> {
        let mut pos = vec![0; self.attention_mask.len()];
        for (start, len) in self.segment_starts() {
            for (p, slot) in pos[start..start + len].iter_mut().enumerate() {
                *slot = p as i64;
            }
        }
        pos
    }

    /// The rows of `batches` as the sequences of packed rows, in order, without their
    /// padding: one pass over them computes at every real token what the separate passes
    /// do, with no work spent on padding. A row takes sequences until the next would carry it
    /// past [`PACKED_ROW_TOKENS`] (a longer sequence gets a row of its own), so that attention,
    /// quadratic in a row's length, stays a small part of a pass. A label on a padding
    /// position is refused.
    pub fn pack(batches: &[Batch]) -> Result<Batch, LlmError> {
        Self::pack_rows(batches, PACKED_ROW_TOKENS)
    }

    /// [`Batch::pack`] with rows of at most `row_tokens` tokens (but at least one sequence).
    pub fn pack_rows(batches: &[Batch], row_tokens: usize) -> Result<Batch, LlmError> {
        Ok(pack_sequences(&sequences(batches)?, row_tokens))
    }

    /// Rows `rows` as a batch of their own.
    pub(crate) fn rows(&self, rows: std::ops::Range<usize>) -> Batch {
        let span = rows.start * self.time..rows.end * self.time;
        Batch {
            batch: rows.len(),
            time: self.time,
            input_ids: self.input_ids[span.clone()].to_vec(),
            attention_mask: self.attention_mask[span.clone()].to_vec(),
            labels: self.labels[span].to_vec(),
        }
    }

    /// The batch without the columns past the last real token or label of every row
    /// (padding only).
    pub(crate) fn trimmed(self) -> Batch {
        let time = self.time.max(1);
        let used = |t: usize| {
            (0..self.batch).any(|r| {
                let i = r * time + t;
                self.attention_mask[i] != 0 || self.labels[i] != IGNORE
            })
        };
        let width = (0..self.time)
            .rev()
            .find(|&t| used(t))
            .map_or(self.time.min(1), |t| t + 1);
        if width == self.time {
            return self;
        }
        let take = |v: &[i64]| -> Vec<i64> {
            v.chunks(time)
                .flat_map(|row| row[..width].iter().copied())
                .collect()
        };
        Batch {
            batch: self.batch,
            time: width,
            input_ids: take(&self.input_ids),
            attention_mask: take(&self.attention_mask),
            labels: take(&self.labels),
        }
    }

    /// Flat indices (row-major) of the positions with a label.
    pub fn label_positions(&self) -> Vec<i64> {
        (0..self.labels.len())
            .filter(|&i| self.labels[i] != IGNORE)
            .map(|i| i as i64)
            .collect()
    }

    pub(crate) fn ids<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2, Int> {
        Tensor::from_data(
            TensorData::new(self.input_ids.clone(), [self.batch, self.time]),
            device,
        )
    }
}

/// One sequence of a batch without its padding: its ids and labels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sequence<'a> {
    pub ids: &'a [i64],
    pub labels: &'a [i64],
}

impl Sequence<'_> {
    /// Whether some position carries a label.
    pub(crate) fn labelled(&self) -> bool {
        self.labels.iter().any(|&l| l != IGNORE)
    }
}

/// The sequences of `batches`, batch after batch and row after row, without empty rows; a
/// batch that is packed already, ill-formed or labelled on padding is refused, named by its
/// index.
pub(crate) fn sequences(batches: &[Batch]) -> Result<Vec<Sequence<'_>>, LlmError> {
    let mut out = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        batch.check_layout().map_err(|e| match e {
            LlmError::Batch(why) => LlmError::Batch(format!("batch {b}: {why}")),
            e => e,
        })?;
        if batch.packed() {
            return Err(LlmError::Batch(format!("batch {b} is packed already")));
        }
        for (r, mask) in batch.attention_mask.chunks(batch.time.max(1)).enumerate() {
            let len = mask.iter().take_while(|&&m| m != 0).count();
            let row = r * batch.time;
            if let Some(t) = (len..batch.time).find(|&t| batch.labels[row + t] != IGNORE) {
                return Err(LlmError::Batch(format!(
                    "batch {b}: labels[{r}][{t}] lies on padding"
                )));
            }
            if len > 0 {
                out.push(Sequence {
                    ids: &batch.input_ids[row..row + len],
                    labels: &batch.labels[row..row + len],
                });
            }
        }
    }
    Ok(out)
}

/// `seqs` in packed rows, in order: a row takes sequences until the next would carry it past
/// `row_tokens` (a longer sequence gets a row of its own).
pub(crate) fn pack_sequences(seqs: &[Sequence<'_>], row_tokens: usize) -> Batch {
    let mut rows: Vec<&[Sequence<'_>]> = Vec::new();
    let (mut start, mut fill) = (0, 0);
    for (i, seq) in seqs.iter().enumerate() {
        if i > start && fill + seq.ids.len() > row_tokens {
            rows.push(&seqs[start..i]);
            (start, fill) = (i, 0);
        }
        fill += seq.ids.len();
    }
    if start < seqs.len() {
        rows.push(&seqs[start..]);
    }
    let row_len = |row: &[Sequence<'_>]| row.iter().map(|s| s.ids.len()).sum::<usize>();
    let time = rows.iter().map(|r| row_len(r)).max().unwrap_or(0);
    let mut out = Batch {
        batch: rows.len(),
        time,
        input_ids: Vec::with_capacity(rows.len() * time),
        attention_mask: Vec::with_capacity(rows.len() * time),
        labels: Vec::with_capacity(rows.len() * time),
    };
    for row in rows {
        for (segment, seq) in (1..).zip(row) {
            out.input_ids.extend(seq.ids);
            out.labels.extend(seq.labels);
            out.attention_mask
                .extend(std::iter::repeat_n(segment, seq.ids.len()));
        }
        let pad = time - row_len(row);
        out.input_ids.extend(std::iter::repeat_n(0, pad));
        out.labels.extend(std::iter::repeat_n(IGNORE, pad));
        out.attention_mask.extend(std::iter::repeat_n(0, pad));
    }
    out
}
