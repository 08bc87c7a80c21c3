//! The fine-tuning baseline (EasyEdit's FT-L style): Adam on the edited modules' weights,
//! minimizing the cross-entropy of the edit tuples' targets.

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
}

impl FtConfig {
    /// EasyEdit FT-L's defaults on the given modules.
    pub fn new(modules: Vec<String>) -> Self {
        Self {
            modules,
            lr: 5e-4,
            steps: 25,
            norm_constraint: None,
        }
    }
}

/// Fine-tuning: no training phase; each edit batch runs its own fresh Adam.
#[derive(Debug, Clone)]
pub struct Ft {
    config: FtConfig,
}

impl Ft {
    /// An FT editor.
    pub fn new(config: FtConfig) -> Self {
        Self { config }
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
        &self,
        lm: &mut CausalLm<B>,
        batch: &EditBatch,
        modules: &[ModuleId],
        start: &[Tensor<B, 2>],
    ) -> Result<(), MetaError> {
        let mut adam = Adam::<B>::new(AdamConfig {
            lr: self.config.lr,
            ..AdamConfig::default()
        });
        for _ in 0..self.config.steps {
            for micro in &batch.edit {
                let grads = lm.edit_gradients(micro, modules)?;
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
        }
        Ok(())
    }
}
