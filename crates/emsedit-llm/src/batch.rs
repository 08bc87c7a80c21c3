//! A right-padded, teacher-forced batch on the host.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use crate::LlmError;

/// The label value of positions that carry no loss.
pub const IGNORE: i64 = -100;

/// Token ids, attention mask and already-shifted labels, each batch × time, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Rows.
    pub batch: usize,
    /// Columns.
    pub time: usize,
    /// Token ids (pads are any id; conventionally 0).
    pub input_ids: Vec<i64>,
    /// 1 on real tokens, 0 on right padding.
    pub attention_mask: Vec<i64>,
    /// `labels[i]` is the token the logits at position i must predict, or [`IGNORE`].
    pub labels: Vec<i64>,
}

impl Batch {
    /// Checks the shapes and values against a model's vocabulary and context.
    pub fn validate(&self, vocab: usize, context: usize) -> Result<(), LlmError> {
        let n = self.batch * self.time;
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
        if n == 0 {
            return Err(LlmError::Batch("the batch is empty".into()));
        }
        if self.time > context {
            return Err(LlmError::Batch(format!(
                "sequence length {} exceeds the model's context of {context} tokens",
                self.time
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

    pub(crate) fn valid<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2, Bool> {
        let mask: Vec<bool> = self.attention_mask.iter().map(|&m| m != 0).collect();
        Tensor::from_data(TensorData::new(mask, [self.batch, self.time]), device)
    }
}
