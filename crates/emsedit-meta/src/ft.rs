//! The fine-tuning baseline (EasyEdit's FT-L style): Adam on the edited modules' weights,
//! minimizing the cross-entropy of the edit tuples' targets, with EasyEdit's loss threshold:
//! no step on a micro-batch whose loss is already below it, and no further pass once a
//! pass's mean loss is below it.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use emsedit_llm::{CausalLm, LlmError, ModuleId, all_finite};
use emsedit_tensor::{Adam, AdamConfig};
use serde::{Deserialize, Serialize};

use crate::MetaError;
use crate::editor::{EditBatch, Editor, Snapshot, resolve_modules, with_prefix_cache};

/// FT hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FtConfig {
    /// HF names of the fine-tuned modules.
    pub modules: Vec<String>,
    /// Adam learning rate (EasyEdit FT-L: 5e-4).
    pub lr: f64,
    /// Passes over the edit batch's micro-batches (EasyEdit FT-L: 25).
    pub steps: usize,
    /// Keep every weight within ± this of its value before the edit batch (EasyEdit's
    /// `norm_constraint`); `None` leaves the weights free.
    pub norm_constraint: Option<f64>,
    /// EasyEdit FT-L's threshold (1e-2): a micro-batch whose loss is below it takes no Adam
    /// step, and fine-tuning stops after the first pass whose mean micro-batch loss
    /// (weighted by their sequences) is below it. `None` runs every step of every pass.
    #[serde(default = "default_stop_loss")]
    pub stop_loss: Option<f32>,
}

fn default_stop_loss() -> Option<f32> {
    Some(1e-2)
}

impl FtConfig {
    /// EasyEdit FT-L's defaults on the given modules.
    pub fn new(modules: Vec<String>) -> Self {
        Self {
            modules,
            lr: 5e-4,
            steps: 25,
            norm_constraint: None,
            stop_loss: default_stop_loss(),
        }
    }
}

/// Fine-tuning: no training phase; each edit batch runs its own fresh Adam.
#[derive(Debug, Clone)]
pub struct Ft {
    config: FtConfig,
    passes: usize,
}

impl Ft {
    /// An FT editor.
    pub fn new(config: FtConfig) -> Self {
        Self { config, passes: 0 }
    }

    /// How many passes over its micro-batches the last edit ran (at most `steps`; fewer when
    /// the loss threshold stopped it).
    pub fn last_passes(&self) -> usize {
        self.passes
    }
}

impl<B: Backend> Editor<B> for Ft {
    fn name(&self) -> String {
        "FT".into()
    }

    fn modules(&self) -> &[String] {
        &self.config.modules
    }

    fn train(&mut self, _lm: &mut CausalLm<B>, _stream: &[EditBatch]) -> Result<(), MetaError> {
        Ok(())
    }

    fn train_batches(&self, _num_seq: usize) -> usize {
        0
    }

    fn edit(&mut self, lm: &mut CausalLm<B>, batch: &EditBatch) -> Result<(), MetaError> {
        let modules = resolve_modules(lm, &self.config.modules)?;
        let start: Vec<_> = modules.iter().map(|&m| lm.weight(m)).collect();
        let snapshot = Snapshot::take(lm, &modules);
        with_prefix_cache(lm, &modules, |lm| {
            snapshot.or_restore(lm, |lm| self.fine_tune(lm, batch, &modules, &start))
        })
    }
}

impl Ft {
    fn fine_tune<B: Backend>(
        &mut self,
        lm: &mut CausalLm<B>,
        batch: &EditBatch,
        modules: &[ModuleId],
        start: &[Tensor<B, 2>],
    ) -> Result<(), MetaError> {
        let mut adam = Adam::<B>::new(AdamConfig {
            lr: self.config.lr,
            ..AdamConfig::default()
        });
        let stop_loss = self.config.stop_loss;
        let below = |loss: f32| stop_loss.is_some_and(|t| loss < t);
        self.passes = 0;
        for _ in 0..self.config.steps {
            self.passes += 1;
            let (mut sum, mut count) = (0.0f64, 0usize);
            for micro in &batch.edit {
                let grads = lm.edit_gradients(micro, modules)?;
                let n = micro.batch;
                sum += f64::from(grads.loss) * n as f64;
                count += n;
                if below(grads.loss) {
                    continue;
                }
                for (slot, (&m, gamma)) in modules.iter().zip(grads.gammas).enumerate() {
                    let mut w = adam.step(slot, lm.weight(m), gamma)?;
                    if let Some(eps) = self.config.norm_constraint {
                        let w0 = &start[slot];
                        w = w
                            .clone()
                            .max_pair(w0.clone().sub_scalar(eps))
                            .min_pair(w0.clone().add_scalar(eps));
                    }
                    if !all_finite(&w) {
                        return Err(MetaError::Llm(LlmError::NonFinite {
                            name: lm.module_name(m),
                            what: "fine-tuned weight",
                        }));
                    }
                    lm.set_weight(m, w)?;
                }
            }
            if count > 0 && below((sum / count as f64) as f32) {
                break;
            }
        }
        Ok(())
    }
}
