//! Pre-training a GPT-2 from scratch on token sequences (the embedded default model), and
//! saving it as a Hugging Face directory.

use std::path::Path;

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};
use emsedit_tensor::{Adam, AdamConfig, clip_coefficient, grad_norm, host_rng};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::gpt2::Gpt2;
use crate::layers::Positions;
use crate::lm::cross_entropy;
use crate::taps::Taps;
use crate::{Batch, IGNORE, LlmError};

/// Pre-training hyperparameters: Adam with linear warm-up and cosine decay, global-norm
/// clipping, shuffled mini-batches of whole sequences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainConfig {
    /// Passes over the sequences.
    pub epochs: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Warm-up steps (linear from 0 to `lr`).
    pub warmup: usize,
    /// The cosine decays to `lr · min_lr_ratio` at the last step.
    pub min_lr_ratio: f64,
    /// Global-norm clipping threshold.
    pub max_grad_norm: f32,
    /// Seed of the shuffles.
    pub seed: u64,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            epochs: 40,
            batch_size: 32,
            lr: 3e-3,
            warmup: 100,
            min_lr_ratio: 0.05,
            max_grad_norm: 1.0,
            seed: 0,
        }
    }
}

impl PretrainConfig {
    /// The learning rate at step `step` (0-based) of `total`.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let span = total.saturating_sub(self.warmup).max(1) as f64;
        let t = ((step - self.warmup) as f64 / span).min(1.0);
        let cos = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
        self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cos)
    }
}

/// Where pre-training is, after a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PretrainProgress {
    /// Steps done.
    pub step: usize,
    /// Steps in all.
    pub total: usize,
    /// The current epoch (0-based).
    pub epoch: usize,
    /// This step's mean cross-entropy.
    pub loss: f32,
    /// This step's learning rate.
    pub lr: f64,
}

/// Teacher-forced batch of whole sequences: every next token is a label, right padding with 0.
pub fn sequence_batch(sequences: &[&[u32]]) -> Batch {
    let time = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut batch = Batch {
        batch: sequences.len(),
        time,
        input_ids: vec![0; sequences.len() * time],
        attention_mask: vec![0; sequences.len() * time],
        labels: vec![IGNORE; sequences.len() * time],
    };
    for (row, seq) in sequences.iter().enumerate() {
        for (t, &id) in seq.iter().enumerate() {
            let i = row * time + t;
            batch.input_ids[i] = i64::from(id);
            batch.attention_mask[i] = 1;
            if let Some(&next) = seq.get(t + 1) {
                batch.labels[i] = i64::from(next);
            }
        }
    }
    batch
}

/// Trains every parameter of `model` on `sequences` (each at least two tokens, at most the
/// context) and returns the trained model. `progress` is called after every step.
pub fn pretrain_gpt2<B: Backend>(
    model: &Gpt2<B>,
    sequences: &[Vec<u32>],
    config: &PretrainConfig,
    device: &B::Device,
    progress: &mut dyn FnMut(&PretrainProgress),
) -> Result<Gpt2<B>, LlmError> {
    let (vocab, context) = (model.config().vocab_size, model.config().n_positions);
    if config.batch_size == 0 || config.epochs == 0 {
        return Err(LlmError::Batch(
            "pre-training needs batch_size and epochs of at least 1".into(),
        ));
    }
    if let Some(i) = sequences.iter().position(|s| s.len() < 2) {
        return Err(LlmError::Batch(format!(
            "sequence {i} has fewer than two tokens: nothing to predict"
        )));
    }
    if let Some(i) = sequences.iter().position(|s| s.len() > context) {
        return Err(LlmError::Batch(format!(
            "sequence {i} has {} tokens, more than the context of {context}",
            sequences[i].len()
        )));
    }
    let per_epoch = sequences.len().div_ceil(config.batch_size);
    let total = per_epoch * config.epochs;
    let mut adam = Adam::<B>::new(AdamConfig {
        lr: config.lr,
        ..AdamConfig::default()
    });
    let mut model = model.clone();
    let mut rng = host_rng(config.seed);
    let mut order: Vec<usize> = (0..sequences.len()).collect();
    let mut step = 0;
    for epoch in 0..config.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(config.batch_size) {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| sequences[i].as_slice()).collect();
            let batch = sequence_batch(&rows);
            batch.validate(vocab, context)?;
            let mut leaves = Vec::new();
            let ad: Gpt2<Autodiff<B>> = model.map_params(&mut |_, _, t| {
                let leaf = Tensor::from_inner(t).require_grad();
                leaves.push(leaf.clone());
                leaf
            });
            let logits = ad.forward(
                batch.ids(device),
                &Positions::new(&batch, device),
                &mut Taps::none(),
            );
            let loss = cross_entropy(logits, &batch)?;
            let loss_value: f32 = loss.clone().inner().into_scalar().elem();
            let grads = loss.backward();
            let grads: Vec<Tensor<B, 1>> = leaves
                .iter()
                .map(|l| {
                    l.grad(&grads)
                        .unwrap_or_else(|| l.clone().inner().zeros_like())
                })
                .collect();
            let norms: Vec<f32> = grads.iter().map(grad_norm).collect();
            let (_, coef) = clip_coefficient(&norms, config.max_grad_norm);
            let lr = config.lr_at(step, total);
            adam.set_lr(lr);
            let mut slot = 0;
            let mut failure = None;
            model = model.map_params(&mut |_, _, t| {
                let g = grads[slot].clone().mul_scalar(coef);
                let updated = adam.step(slot, t.clone(), g).unwrap_or_else(|e| {
                    failure = Some(e);
                    t
                });
                slot += 1;
                updated
            });
            if let Some(e) = failure {
                return Err(LlmError::Batch(format!("optimizer: {e}")));
            }
            step += 1;
            progress(&PretrainProgress {
                step,
                total,
                epoch,
                loss: loss_value,
                lr,
            });
        }
    }
    Ok(model)
}

/// Writes `config.json` and `model.safetensors` (f32) of a GPT-2 under `dir`, creating it.
pub fn save_gpt2<B: Backend>(model: &Gpt2<B>, dir: &Path) -> Result<(), LlmError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LlmError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut config = serde_json::to_value(model.config()).map_err(|e| LlmError::Config {
        path: dir.join("config.json"),
        field: "(root)".into(),
        detail: e.to_string(),
    })?;
    if let Some(map) = config.as_object_mut() {
        map.insert("model_type".into(), "gpt2".into());
        map.insert(
            "architectures".into(),
            serde_json::json!(["GPT2LMHeadModel"]),
        );
    }
    let path = dir.join("config.json");
    let text = serde_json::to_string_pretty(&config).expect("a JSON value serializes") + "\n";
    std::fs::write(&path, text).map_err(io(&path))?;

    let params = model.params();
    let bytes: Vec<Vec<u8>> = params
        .iter()
        .map(|(_, _, t)| {
            let values = t.to_data().convert::<f32>();
            let values = values.as_slice::<f32>().expect("converted to f32");
            values.iter().flat_map(|v| v.to_le_bytes()).collect()
        })
        .collect();
    let path = dir.join("model.safetensors");
    let views = params
        .iter()
        .zip(&bytes)
        .map(|((name, dims, _), data)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, dims.clone(), data)
                .map(|view| (name.clone(), view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LlmError::Safetensors {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    let data =
        safetensors::serialize(views, Some(metadata)).map_err(|e| LlmError::Safetensors {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    std::fs::write(&path, data).map_err(io(&path))
}
