//! UltraEdit (spec §4.6): training-free lifelong editing. Each step has its own running
//! normalizer per shape group; the shift is the ridge solve (λ = 1) of
//! `V = diag(−η‖k̂‖²) Ĝ` with (K̂, Ĝ) the normalized cache.

use burn::tensor::backend::Backend;
use emsedit_llm::CausalLm;
use serde::{Deserialize, Serialize};

use crate::MetaError;
use crate::editor::{EditBatch, Editor, Snapshot, resolve_modules, with_prefix_cache};
use crate::hypernet::{HyperConfig, HyperNet};
use crate::predict::Predictor;
use crate::steps::{Groups, apply, cache, predict_all};

/// UltraEdit's hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UltraEditConfig {
    /// HF names of the edited modules.
    pub modules: Vec<String>,
    /// The constant step size η (`editor.lr`, 1e-6).
    pub lr: f64,
    /// Back-propagation steps K (UltraEdit2: 2).
    pub steps: usize,
    /// Reproduce the reference's micro-batch misalignment (spec §4.6): when the last edit
    /// micro-batch is partial, its rows get zero output gradients.
    pub reference_quirks: bool,
}

impl UltraEditConfig {
    /// Defaults: η = 1e-6, one step.
    pub fn new(modules: Vec<String>) -> Self {
        Self {
            modules,
            lr: 1e-6,
            steps: 1,
            reference_quirks: false,
        }
    }
}

/// The UltraEdit editor.
#[derive(Debug)]
pub struct UltraEdit<B: Backend> {
    config: UltraEditConfig,
    state: Option<(Groups, Vec<Vec<HyperNet<B>>>)>,
}

impl<B: Backend> UltraEdit<B> {
    /// A fresh editor (normalizers are built on first use).
    pub fn new(config: UltraEditConfig) -> Self {
        Self {
            config,
            state: None,
        }
    }

    /// The per-step normalizers (as block-free networks), once built: `nets()[k][group]`.
    pub fn nets(&self) -> Option<&[Vec<HyperNet<B>>]> {
        self.state.as_ref().map(|(_, n)| n.as_slice())
    }
}

impl<B: Backend> Editor<B> for UltraEdit<B> {
    fn name(&self) -> String {
        match self.config.steps {
            1 => "UltraEdit".into(),
            k => format!("UltraEdit{k}"),
        }
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
        if self.state.is_none() {
            let groups = Groups::new(lm, resolve_modules(lm, &self.config.modules)?);
            let hyper = HyperConfig {
                rank: 1,
                blocks: 0,
                lr: self.config.lr,
            };
            let nets = (0..self.config.steps.max(1))
                .map(|_| groups.nets(&hyper, lm.device()))
                .collect();
            self.state = Some((groups, nets));
        }
        let quirk = self.config.reference_quirks && !batch.records.is_multiple_of(4);
        let (groups, nets) = self.state.as_mut().expect("built");
        let snapshot = Snapshot::take(lm, &groups.modules);
        let modules = groups.modules.clone();
        with_prefix_cache(lm, &modules, |lm| {
            snapshot.or_restore(lm, |lm| {
                for step in nets.iter_mut() {
                    let mut caches = cache(lm, &batch.edit, groups, step)?;
                    if quirk {
                        let last = batch.edit.last().map_or(0, |b| b.label_positions().len());
                        for (_, g) in caches.iter_mut() {
                            let [n, w] = g.dims();
                            *g = g.clone().slice_assign(
                                [n - last..n, 0..w],
                                g.clone().slice([n - last..n, 0..w]).zeros_like(),
                            );
                        }
                    }
                    let preds = predict_all(&caches, groups, step, Predictor::Normalized)?;
                    apply(lm, groups, &preds)?;
                }
                Ok(())
            })
        })
    }
}
