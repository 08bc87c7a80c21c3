//! The hypernetwork editors on one set of loops: EMSEdit (spec §4.7: K-step multi-step
//! back-propagation, an L2 penalty, a shared network with step-wise updating for batch
//! editing, step-specific networks with rank decay for sequential editing) and MALMEN /
//! MALMEN2 (spec §4.4: a shared network, a KL locality loss, K = 1 or 2).

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use emsedit_llm::{CausalLm, Objective};
use emsedit_tensor::{clip_coefficient, grad_norm};
use serde::{Deserialize, Serialize};

use crate::MetaError;
use crate::checkpoint::Stored;
use crate::editor::{EditBatch, Editor, Snapshot, resolve_modules, with_prefix_cache};
use crate::hypernet::{HyperConfig, HyperNet, Params};
use crate::predict::{Prediction, Predictor};
use crate::steps::{
    Groups, MetaOptimizer, accumulate, apply, cache, clip, gen_gammas, observe, predict_all,
    revert, revert_keep,
};

/// How the step networks are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// One network per group shared by every step, updated after each step ("step-wise
    /// updating", batch editing).
    Shared,
    /// One network per group and step, trained by one Adam step after the whole stream
    /// (sequential editing).
    StepSpecific,
}

/// The locality term of the meta-loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Locality {
    /// EMSEdit: `ρ‖Δ‖²` (batch) or `ρ‖W − W_orig‖²` (sequential), `reg_coef` = ρ.
    L2 {
        /// ρ.
        reg_coef: f64,
    },
    /// MALMEN: `α · KL(f_orig(u) ‖ f_{W+Δ}(u))` over the unrelated tuples.
    Kl {
        /// α (`loc_coef`, 0.6).
        loc_coef: f64,
    },
}

/// A hypernetwork editor's hyperparameters (spec §6.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HyperEditorConfig {
    /// The name in reports (`EMSEdit`, `MALMEN2`, ...).
    pub name: String,
    /// HF names of the edited modules.
    pub modules: Vec<String>,
    /// Rank r, blocks, initial η.
    pub hyper: HyperConfig,
    /// Back-propagation steps K.
    pub steps: usize,
    /// Network layout.
    pub layout: Layout,
    /// Step k's rank is ⌊r/(k+1)⌋ (with [`Layout::StepSpecific`]).
    pub rank_decay: bool,
    /// Adam learning rate of the hypernetworks.
    pub meta_lr: f64,
    /// Global-norm clipping threshold.
    pub max_grad_norm: f32,
    /// The locality term.
    pub locality: Locality,
    /// The shift predictor: least squares (EMSEdit, MALMEN) or MEND's sum.
    pub predictor: Predictor,
    /// With [`Layout::Shared`]: update the network after every back-propagation step (EMSEdit's
    /// step-wise updating, and the reference's MALMEN2). `false` sums the K steps' gradients
    /// into one update per batch (the ablation).
    pub stepwise_update: bool,
    /// RLEdit's backtracking memory: losses of the last `depth` training batches, the i-th
    /// most recent weighted by `decay^i` (spec §4.5). `None` elsewhere.
    pub backtrack: Option<Backtrack>,
    /// Reproduce the reference: ρ applied twice in sequential training (ρ²), K Adam updates
    /// per step with a shared network (duplicated parameter registration), and in RLEdit the
    /// last step's Γ for every step, no L2 term and the locality gradient through the
    /// unedited weights (docs/data-and-metrics.md lists them all).
    pub reference_quirks: bool,
    /// The reference's `editor.max_steps` for editors trained by its one-shot loop (MALMEN 1,
    /// MEND 100): train on that many batches whatever the edit stream's length. `None` trains
    /// on as many batches as the stream has (EMSEdit, RLEdit). See [`Editor::train_batches`].
    #[serde(default)]
    pub max_train_batches: Option<usize>,
}

impl HyperEditorConfig {
    /// EMSEdit for batch editing: shared network, K = 2, rank 1024, ρ = 0.5.
    pub fn emsedit_batch(modules: Vec<String>) -> Self {
        Self {
            name: "EMSEdit".into(),
            modules,
            hyper: HyperConfig::default(),
            steps: 2,
            layout: Layout::Shared,
            rank_decay: false,
            meta_lr: 1e-5,
            max_grad_norm: 1.0,
            locality: Locality::L2 { reg_coef: 0.5 },
            predictor: Predictor::LeastSquares,
            stepwise_update: true,
            backtrack: None,
            reference_quirks: false,
            max_train_batches: None,
        }
    }

    /// EMSEdit for sequential editing: step-specific networks with rank decay.
    pub fn emsedit_sequential(modules: Vec<String>) -> Self {
        Self {
            layout: Layout::StepSpecific,
            rank_decay: true,
            ..Self::emsedit_batch(modules)
        }
    }

    /// MALMEN with `steps` back-propagation steps (MALMEN2 is 2): shared network, KL
    /// locality with α = 0.6, trained on one batch (`max_steps` = 1) in every scenario.
    pub fn malmen(modules: Vec<String>, steps: usize) -> Self {
        Self {
            name: if steps == 1 {
                "MALMEN".into()
            } else {
                format!("MALMEN{steps}")
            },
            steps,
            locality: Locality::Kl { loc_coef: 0.6 },
            max_train_batches: Some(1),
            ..Self::emsedit_batch(modules)
        }
    }
}

/// Largest accepted back-propagation steps K, rank r and blocks (far above the paper's 2–3,
/// 1920 and 4): larger values are a config error, not an allocation failure.
pub const MAX_STEPS: usize = 64;
/// See [`MAX_STEPS`].
pub const MAX_RANK: usize = 16_384;
/// See [`MAX_STEPS`].
pub const MAX_BLOCKS: usize = 64;

impl HyperEditorConfig {
    /// Refuses absurd or impossible settings, naming the key.
    pub fn check(&self) -> Result<(), MetaError> {
        let bad = |key: &str, detail: String| {
            Err(MetaError::Config(format!(
                "{}: `{key}` {detail}",
                self.name
            )))
        };
        if self.steps == 0 || self.steps > MAX_STEPS {
            return bad(
                "steps",
                format!("= {} (must be 1 to {MAX_STEPS})", self.steps),
            );
        }
        if self.hyper.rank == 0 || self.hyper.rank > MAX_RANK {
            return bad(
                "rank",
                format!("= {} (must be 1 to {MAX_RANK})", self.hyper.rank),
            );
        }
        if self.hyper.blocks > MAX_BLOCKS {
            return bad(
                "blocks",
                format!("= {} (at most {MAX_BLOCKS})", self.hyper.blocks),
            );
        }
        for (key, v) in [("lr", self.hyper.lr), ("meta_lr", self.meta_lr)] {
            if !v.is_finite() || v < 0.0 {
                return bad(key, format!("= {v} (must be finite and not negative)"));
            }
        }
        if self.max_train_batches == Some(0) {
            return bad("max_train_batches", "= 0 (must be at least 1)".into());
        }
        if !self.max_grad_norm.is_finite() || self.max_grad_norm <= 0.0 {
            return bad(
                "max_grad_norm",
                format!("= {} (must be finite and positive)", self.max_grad_norm),
            );
        }
        Ok(())
    }

    /// Step networks per shape group: 1 shared, or one per step.
    pub fn networks(&self) -> usize {
        match self.layout {
            Layout::Shared => 1,
            Layout::StepSpecific => self.steps,
        }
    }

    /// Rank of step network k: ⌊r/(k+1)⌋ with rank decay (at least 1), else r.
    pub fn rank(&self, k: usize) -> usize {
        if self.rank_decay {
            (self.hyper.rank / (k + 1)).max(1)
        } else {
            self.hyper.rank
        }
    }
}

/// RLEdit's memory of past training batches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Backtrack {
    /// β (`time_decay`, 0.95).
    pub decay: f64,
    /// How many batches, the current one included (`back_depth`, 10).
    pub depth: usize,
    /// ρ of the L2 term on each step's shift (`reg_coef`, 1e-4). The reference computes it on a
    /// detached shift, so it has no effect there; `reference_quirks` reproduces that.
    pub reg_coef: f64,
}

impl HyperEditorConfig {
    /// RLEdit (spec §4.5) with `steps` back-propagation steps (RLEdit2 is 2): step-specific
    /// networks with rank decay, KL locality α = 0.6 against the model before each step's edit,
    /// backtracking over the last 10 batches with decay 0.95, one Adam step after the stream.
    pub fn rledit(modules: Vec<String>, steps: usize) -> Self {
        Self {
            name: if steps == 1 {
                "RLEdit".into()
            } else {
                format!("RLEdit{steps}")
            },
            layout: Layout::StepSpecific,
            rank_decay: true,
            backtrack: Some(Backtrack {
                decay: 0.95,
                depth: 10,
                reg_coef: 1e-4,
            }),
            max_train_batches: None,
            ..Self::malmen(modules, steps)
        }
    }

    /// MEND as the reference runs it (spec §4.3): the MALMEN network with rank 1920 and 2 blocks,
    /// the sum predictor, KL locality α = 0.6, one step, trained on 100 batches (`max_steps`).
    pub fn mend(modules: Vec<String>) -> Self {
        Self {
            name: "MEND".into(),
            hyper: HyperConfig {
                rank: 1920,
                blocks: 2,
                lr: 1e-6,
            },
            predictor: Predictor::Sum,
            max_train_batches: Some(100),
            ..Self::malmen(modules, 1)
        }
    }
}

/// What [`HyperEditor::train_traced`] records of a training run, to check it against an
/// independent implementation.
#[derive(Debug, Clone)]
pub struct TrainTrace<B: Backend> {
    /// Every back-propagation step, in order (batch by batch, step k within a batch).
    pub steps: Vec<StepTrace<B>>,
    /// Every Adam update, in order.
    pub updates: Vec<UpdateTrace<B>>,
}

/// One back-propagation step of a [`TrainTrace`].
#[derive(Debug, Clone)]
pub struct StepTrace<B: Backend> {
    /// Δ of every edited module (a×b), in config order.
    pub deltas: Vec<Tensor<B, 2>>,
    /// The Γ = ∂𝓛/∂W the step's meta-gradient used, per module.
    pub gammas: Vec<Tensor<B, 2>>,
    /// The step's meta-gradient before any clipping, per group (of this step's networks).
    pub grads: Vec<Params<B>>,
}

/// One Adam update of a [`TrainTrace`].
#[derive(Debug, Clone)]
pub struct UpdateTrace<B: Backend> {
    /// The clipped gradients Adam was given, per updated network (`nets[k][g]`, flattened).
    pub grads: Vec<Params<B>>,
    /// Those networks' parameters after the update.
    pub params: Vec<Params<B>>,
}

impl<B: Backend> TrainTrace<B> {
    /// Records a step; its meta-gradient is computed again (only when tracing), so that the
    /// training's own sums are untouched.
    fn step(
        &mut self,
        nets: &[HyperNet<B>],
        groups: &Groups,
        preds: &[Prediction<B>],
        gammas: &[Tensor<B, 2>],
    ) -> Result<(), MetaError> {
        let mut grads: Vec<Params<B>> = nets.iter().map(|n| n.params.zeros_like()).collect();
        accumulate(&mut grads, nets, groups, preds, gammas)?;
        self.steps.push(StepTrace {
            deltas: preds.iter().map(|p| p.delta.clone()).collect(),
            gammas: gammas.to_vec(),
            grads,
        });
        Ok(())
    }

    fn update<'a>(&mut self, grads: &[Params<B>], nets: impl Iterator<Item = &'a HyperNet<B>>)
    where
        B: 'a,
    {
        self.updates.push(UpdateTrace {
            grads: grads.to_vec(),
            params: nets.map(|n| n.params.clone()).collect(),
        });
    }
}

/// A hypernetwork editor (EMSEdit, MALMEN, MEND, RLEdit).
#[derive(Debug)]
pub struct HyperEditor<B: Backend> {
    config: HyperEditorConfig,
    state: Option<State<B>>,
}

#[derive(Debug)]
struct State<B: Backend> {
    groups: Groups,
    /// `nets[k][g]`; a single entry when shared.
    nets: Vec<Vec<HyperNet<B>>>,
    /// One Adam per network (flattened `nets[k][g]`), kept across [`Editor::train`] calls so
    /// that training can go on over several passes.
    opt: MetaOptimizer<B>,
}

impl<B: Backend> State<B> {
    fn step(&self, k: usize) -> usize {
        k.min(self.nets.len() - 1)
    }
}

impl<B: Backend> HyperEditor<B> {
    /// An untrained editor; networks are built on first use (they need the model's shapes).
    pub fn new(config: HyperEditorConfig) -> Self {
        Self {
            config,
            state: None,
        }
    }

    /// The step networks, once built: `nets()[k][group]`.
    pub fn nets(&self) -> Option<&[Vec<HyperNet<B>>]> {
        self.state.as_ref().map(|s| s.nets.as_slice())
    }

    /// The step networks for `lm`, built if needed, to modify (e.g. to start training from
    /// given parameters).
    pub fn nets_mut(&mut self, lm: &CausalLm<B>) -> Result<&mut [Vec<HyperNet<B>>], MetaError> {
        self.ensure(lm)?;
        Ok(&mut self.state.as_mut().expect("built").nets)
    }

    /// [`Editor::train`], also recording every step's Δ, Γ and meta-gradient and every Adam
    /// update. The training itself is the same.
    pub fn train_traced(
        &mut self,
        lm: &mut CausalLm<B>,
        stream: &[EditBatch],
    ) -> Result<TrainTrace<B>, MetaError> {
        let mut trace = TrainTrace {
            steps: Vec::new(),
            updates: Vec::new(),
        };
        self.train_with(lm, stream, Some(&mut trace), &mut |_| {})?;
        Ok(trace)
    }

    fn train_with(
        &mut self,
        lm: &mut CausalLm<B>,
        stream: &[EditBatch],
        trace: Option<&mut TrainTrace<B>>,
        done: &mut dyn FnMut(usize),
    ) -> Result<(), MetaError> {
        self.ensure(lm)?;
        let modules = self.state.as_ref().expect("built").groups.modules.clone();
        // Training edits the model as it goes; it hands it back as it came.
        let snapshot = Snapshot::take(lm, &modules);
        with_prefix_cache(lm, &modules, |lm| {
            snapshot.around(lm, |lm| match self.config.layout {
                Layout::Shared => self.train_shared(lm, stream, trace, done),
                Layout::StepSpecific if self.config.backtrack.is_some() => {
                    self.train_rl(lm, stream, trace, done)
                }
                Layout::StepSpecific => self.train_step_specific(lm, stream, trace, done),
            })
        })
    }

    /// Adam steps the (first) hypernetwork has taken over all [`Editor::train`] calls: the
    /// optimizer state carries over from one call to the next (0 before training).
    pub fn meta_steps(&self) -> u32 {
        self.state.as_ref().map_or(0, |s| s.opt.steps())
    }

    /// The config.
    pub fn config(&self) -> &HyperEditorConfig {
        &self.config
    }

    /// Saves the (trained) networks and the config to a checkpoint for `lm`'s model.
    pub fn save(&mut self, lm: &CausalLm<B>, path: &std::path::Path) -> Result<(), MetaError> {
        self.ensure(lm)?;
        let state = self.state.as_ref().expect("built");
        let print = crate::checkpoint::fingerprint(lm, &state.groups);
        crate::checkpoint::save(path, &self.config, print, &state.nets)
    }

    /// Loads an editor saved by [`HyperEditor::save`], refusing a checkpoint made for another
    /// model or module set.
    pub fn load(lm: &CausalLm<B>, path: &std::path::Path) -> Result<Self, MetaError> {
        let (config, nets, groups) = crate::checkpoint::load(
            path,
            lm.device(),
            |config: &HyperEditorConfig, stored: &Stored| {
                config.check()?;
                // The header must describe the stored networks before any is built from it.
                let groups = Groups::new(lm, resolve_modules(lm, &config.modules)?);
                let expected = Stored {
                    steps: config.networks(),
                    groups: groups.shapes.len(),
                    blocks: config.hyper.blocks,
                    ranks: (0..config.networks())
                        .map(|k| {
                            if config.hyper.blocks == 0 {
                                0
                            } else {
                                config.rank(k)
                            }
                        })
                        .collect(),
                    dims: groups.shapes.iter().map(|([a, b], _)| a + b).collect(),
                };
                if *stored != expected {
                    return Err(MetaError::Config(format!(
                        "the header's config implies {expected:?}, the file stores {stored:?}"
                    )));
                }
                let mut editor = Self::new(config.clone());
                editor.ensure(lm)?;
                let state = editor.state.expect("built");
                let print = crate::checkpoint::fingerprint(lm, &state.groups);
                Ok((print, state.nets, state.groups))
            },
        )?;
        let opt = MetaOptimizer::new(nets.iter().map(Vec::len).sum(), config.meta_lr);
        Ok(Self {
            config,
            state: Some(State { groups, nets, opt }),
        })
    }

    fn ensure(&mut self, lm: &CausalLm<B>) -> Result<(), MetaError> {
        if self.state.is_some() {
            return Ok(());
        }
        self.config.check()?;
        let groups = Groups::new(lm, resolve_modules(lm, &self.config.modules)?);
        let count = self.config.networks();
        let nets = (0..count)
            .map(|k| {
                let hyper = HyperConfig {
                    rank: self.config.rank(k),
                    ..self.config.hyper
                };
                groups.nets(&hyper, lm.device())
            })
            .collect::<Vec<_>>();
        let opt = MetaOptimizer::new(count * groups.shapes.len(), self.config.meta_lr);
        self.state = Some(State { groups, nets, opt });
        Ok(())
    }

    /// ρ of the L2 penalty as applied (0 for a KL locality).
    fn reg(&self) -> f64 {
        match (
            self.config.locality,
            self.config.layout,
            self.config.reference_quirks,
        ) {
            (Locality::Kl { .. }, ..) => 0.0,
            (Locality::L2 { reg_coef }, Layout::StepSpecific, true) => reg_coef * reg_coef,
            (Locality::L2 { reg_coef }, ..) => reg_coef,
        }
    }

    /// Shared-network training (EMSEdit `train_batch`, MALMEN `TRAIN_ONE_SHOT`): every step
    /// caches on the original weights, and the network takes one clipped Adam step per step.
    fn train_shared(
        &mut self,
        lm: &mut CausalLm<B>,
        stream: &[EditBatch],
        mut trace: Option<&mut TrainTrace<B>>,
        done: &mut dyn FnMut(usize),
    ) -> Result<(), MetaError> {
        let reg = self.reg();
        let kl = match self.config.locality {
            Locality::Kl { loc_coef } => Some(loc_coef),
            Locality::L2 { .. } => None,
        };
        let (steps, max_norm) = (self.config.steps, self.config.max_grad_norm);
        let repeats = if self.config.reference_quirks {
            steps
        } else {
            1
        };
        let predictor = self.config.predictor;
        let stepwise = self.config.stepwise_update;
        let state = self.state.as_mut().expect("built");
        let zeros = |nets: &[HyperNet<B>]| -> Vec<Params<B>> {
            nets.iter().map(|n| n.params.zeros_like()).collect()
        };
        for (t, batch) in stream.iter().enumerate() {
            // Without step-wise updating the K steps' gradients are summed into one update.
            let mut acc = zeros(&state.nets[0]);
            // Every step starts from the same weights (each reverts its shift), so the edit
            // pass and the KL reference are the same each step: run once, used K times (the
            // reference recomputes them; the same numbers).
            let grads = lm.edit_keys_packed(&batch.edit, &state.groups.modules)?;
            let reference = match kl {
                Some(_) if !batch.unrel.is_empty() => Some(lm.label_logits_packed(&batch.unrel)?),
                _ => None,
            };
            for step in 0..steps {
                let caches = observe(&grads, &batch.edit, &state.groups, &mut state.nets[0])?;
                let preds = predict_all(&caches, &state.groups, &state.nets[0], predictor)?;
                // Both losses are taken on the edited model: one apply, one revert.
                let old = apply(lm, &state.groups, &preds)?;
                let gammas = gen_gammas(lm, &batch.equiv, &state.groups);
                let loc = match (kl, &reference) {
                    // The reference distribution is the original model's, without gradient;
                    // one packed pass sums the micro-batches' mean KL terms.
                    (Some(alpha), Some(reference)) => {
                        let objective = Objective::Kl(reference);
                        let modules = &state.groups.modules;
                        Some((
                            alpha,
                            lm.gradients_packed(&batch.unrel, modules, objective, None),
                        ))
                    }
                    _ => None,
                };
                revert(lm, &state.groups, old)?;
                let mut gammas = gammas?;
                for (g, p) in gammas.iter_mut().zip(&preds) {
                    // ∂(ρ‖Δ‖²)/∂W = 2ρΔ
                    *g = g.clone() + p.delta.clone().mul_scalar(2.0 * reg);
                }
                if let Some((alpha, loc)) = loc {
                    for (g, l) in gammas.iter_mut().zip(loc?.gammas) {
                        *g = g.clone() + l.mul_scalar(alpha);
                    }
                }
                accumulate(&mut acc, &state.nets[0], &state.groups, &preds, &gammas)?;
                if let Some(t) = trace.as_deref_mut() {
                    t.step(&state.nets[0], &state.groups, &preds, &gammas)?;
                }
                if stepwise || step + 1 == steps {
                    clip(&mut acc, max_norm);
                    let mut nets: Vec<&mut HyperNet<B>> = state.nets[0].iter_mut().collect();
                    state.opt.step(&mut nets, &acc, repeats)?;
                    if let Some(t) = trace.as_deref_mut() {
                        t.update(&acc, state.nets[0].iter());
                    }
                    acc = zeros(&state.nets[0]);
                }
            }
            done(t + 1);
        }
        Ok(())
    }

    /// Sequential training (spec §4.7 `train_seq`): edits accumulate over steps and batches,
    /// gradients are summed (and re-clipped after each step) over the whole stream, and every
    /// network takes one Adam step at the end.
    fn train_step_specific(
        &mut self,
        lm: &mut CausalLm<B>,
        stream: &[EditBatch],
        mut trace: Option<&mut TrainTrace<B>>,
        done: &mut dyn FnMut(usize),
    ) -> Result<(), MetaError> {
        if let Locality::Kl { .. } = self.config.locality {
            return Err(MetaError::Config(
                "step-specific networks with a KL locality need a backtracking memory (RLEdit)"
                    .into(),
            ));
        }
        let reg = self.reg();
        let max_norm = self.config.max_grad_norm;
        let predictor = self.config.predictor;
        let state = self.state.as_mut().expect("built");
        let original: Vec<_> = state.groups.modules.iter().map(|&m| lm.weight(m)).collect();
        let mut acc = StreamGrads::new(&state.nets, max_norm);
        for (t, batch) in stream.iter().enumerate() {
            let mut preds = Vec::with_capacity(state.nets.len());
            for nets in state.nets.iter_mut() {
                let caches = cache(lm, &batch.edit, &state.groups, nets)?;
                let p = predict_all(&caches, &state.groups, nets, predictor)?;
                apply(lm, &state.groups, &p)?;
                preds.push(p);
            }
            let mut gammas = gen_gammas(lm, &batch.equiv, &state.groups)?;
            for ((g, &m), w0) in gammas.iter_mut().zip(&state.groups.modules).zip(&original) {
                // ∂(ρ‖W − W_orig‖²)/∂W on the cumulative deviation.
                *g = g.clone() + (lm.weight(m) - w0.clone()).mul_scalar(2.0 * reg);
            }
            for (k, p) in preds.iter().enumerate() {
                acc.add(k, &state.nets, &state.groups, p, &gammas)?;
                if let Some(t) = trace.as_deref_mut() {
                    t.step(&state.nets[k], &state.groups, p, &gammas)?;
                }
            }
            done(t + 1);
        }
        acc.apply(&mut state.nets, &mut state.opt, trace)
    }

    /// RLEdit training (spec §4.5 `TRAIN_RL`): training edits accumulate; after each step's
    /// APPLY the losses over the backtracking memory give Γ; one Adam step after the stream.
    ///
    /// Each step is trained with its own Γ and the L2 term counts; with `reference_quirks`
    /// every step uses the last step's Γ, the L2 term is dropped and the locality term's
    /// gradient passes through the unedited weights, as in the reference.
    fn train_rl(
        &mut self,
        lm: &mut CausalLm<B>,
        stream: &[EditBatch],
        mut trace: Option<&mut TrainTrace<B>>,
        done: &mut dyn FnMut(usize),
    ) -> Result<(), MetaError> {
        let back = self.config.backtrack.expect("RLEdit has a memory");
        let alpha = match self.config.locality {
            Locality::Kl { loc_coef } => loc_coef,
            Locality::L2 { .. } => 0.0,
        };
        let quirks = self.config.reference_quirks;
        let (predictor, max_norm) = (self.config.predictor, self.config.max_grad_norm);
        let state = self.state.as_mut().expect("built");
        let mut acc = StreamGrads::new(&state.nets, max_norm);
        for t in 0..stream.len() {
            let memory: Vec<(f64, &EditBatch)> = (0..back.depth.min(t + 1))
                .map(|i| (back.decay.powi(i as i32), &stream[t - i]))
                .collect();
            let mut steps = Vec::with_capacity(state.nets.len());
            for nets in state.nets.iter_mut() {
                let caches = cache(lm, &stream[t].edit, &state.groups, nets)?;
                let preds = predict_all(&caches, &state.groups, nets, predictor)?;
                let before = apply(lm, &state.groups, &preds)?;
                let mut gammas: Option<Vec<_>> = None;
                let mut add = |g: Vec<burn::tensor::Tensor<B, 2>>, w: f64| {
                    let g: Vec<_> = g.into_iter().map(|x| x.mul_scalar(w)).collect();
                    gammas = Some(match gammas.take() {
                        None => g,
                        Some(s) => s.into_iter().zip(g).map(|(a, b)| a + b).collect(),
                    });
                };
                for (w, batch) in &memory {
                    add(gen_gammas(lm, &batch.equiv, &state.groups)?, *w);
                }
                // KL against the model before this step's edit (it holds all earlier edits).
                let after = revert_keep(lm, &state.groups, before)?;
                let modules = &state.groups.modules;
                let deltas: Vec<_> = preds.iter().map(|p| p.delta.clone()).collect();
                for (w, batch) in memory.iter().filter(|(_, b)| !b.unrel.is_empty()) {
                    // One packed pass over the batch's micro-batches sums their mean KL terms.
                    let reference = lm.label_logits_packed(&batch.unrel)?;
                    let kl = Objective::Kl(&reference);
                    let loc = if quirks {
                        // The reference back-propagates these terms after reverting the
                        // edit in place, so autograd's saved weights are the unedited ones.
                        lm.gradients_packed(&batch.unrel, modules, kl, Some(&deltas))?
                    } else {
                        let undo = apply(lm, &state.groups, &preds)?;
                        let loc = lm.gradients_packed(&batch.unrel, modules, kl, None);
                        revert(lm, &state.groups, undo)?;
                        loc?
                    };
                    add(loc.gammas, alpha * w);
                }
                let mut gammas = gammas.expect("the memory holds the current batch");
                if !quirks {
                    for (g, p) in gammas.iter_mut().zip(&preds) {
                        *g = g.clone() + p.delta.clone().mul_scalar(2.0 * back.reg_coef);
                    }
                }
                for (&m, w) in state.groups.modules.iter().zip(after) {
                    lm.set_weight(m, w)?;
                }
                steps.push((preds, gammas));
            }
            let last = steps
                .last()
                .map(|(_, g)| g.clone())
                .expect("at least one step");
            for (k, (preds, gammas)) in steps.iter().enumerate() {
                let gammas = if quirks { &last } else { gammas };
                acc.add(k, &state.nets, &state.groups, preds, gammas)?;
                if let Some(t) = trace.as_deref_mut() {
                    t.step(&state.nets[k], &state.groups, preds, gammas)?;
                }
            }
            done(t + 1);
        }
        acc.apply(&mut state.nets, &mut state.opt, trace)
    }
}

/// Hyper-gradients summed over a training stream, one per step network and group, re-clipped
/// after every step's addition (spec §4.5, §4.7: "clips the gradient summed so far").
struct StreamGrads<B: Backend> {
    /// Per step and group, the accumulated gradients divided by `scale`: the clipped
    /// accumulation is `scale · acc`. Clipping then rescales one number instead of every
    /// network's gradients, so a step costs O(its own network), not O(K networks).
    acc: Vec<Vec<Params<B>>>,
    /// Per step, the norm of each tensor of `acc[k]` (all groups, in order).
    norms: Vec<Vec<f32>>,
    scale: f32,
    max_norm: f32,
}

/// Below this scale the accumulation is folded back to true size before the next addition,
/// so that a step's gradients enter it multiplied by at most 1/FOLD_BELOW: with clip
/// coefficients of 1e-5 per step (real models), an unfolded accumulation reaches 1e19 within
/// four steps, its squared norms overflow f32, and the clip scale becomes 0.
const FOLD_BELOW: f32 = 1e-6;

impl<B: Backend> StreamGrads<B> {
    /// Multiplies the accumulation by the scale, which becomes 1.
    fn fold(&mut self) {
        let s = self.scale;
        for step in &mut self.acc {
            for p in step.iter_mut() {
                *p = p.map(|t| t.clone().mul_scalar(s));
            }
        }
        for n in self.norms.iter_mut().flatten() {
            *n *= s;
        }
        self.scale = 1.0;
    }

    fn new(nets: &[Vec<HyperNet<B>>], max_norm: f32) -> Self {
        let acc: Vec<Vec<Params<B>>> = nets
            .iter()
            .map(|n| n.iter().map(|x| x.params.zeros_like()).collect())
            .collect();
        let norms = acc
            .iter()
            .map(|a: &Vec<Params<B>>| vec![0.0; a.iter().map(|p| p.tensors().len()).sum()])
            .collect();
        Self {
            acc,
            norms,
            scale: 1.0,
            max_norm,
        }
    }

    /// Adds step `k`'s meta-gradients, then clips everything accumulated (the total norm over
    /// every step's networks, as `clip_grad_norm_` over all parameters).
    fn add(
        &mut self,
        k: usize,
        nets: &[Vec<HyperNet<B>>],
        groups: &Groups,
        preds: &[Prediction<B>],
        gammas: &[Tensor<B, 2>],
    ) -> Result<(), MetaError> {
        if self.scale < FOLD_BELOW {
            self.fold();
        }
        let mut g: Vec<Params<B>> = self.acc[k].iter().map(Params::zeros_like).collect();
        accumulate(&mut g, &nets[k], groups, preds, gammas)?;
        let inv = 1.0 / self.scale;
        for (a, g) in self.acc[k].iter_mut().zip(&g) {
            *a = if inv == 1.0 {
                a.add(g)
            } else {
                a.add(&g.map(|t| t.clone().mul_scalar(inv)))
            };
        }
        self.norms[k] = self.acc[k]
            .iter()
            .flat_map(|p| p.tensors().into_iter().map(grad_norm))
            .collect();
        let scaled: Vec<f32> = self
            .norms
            .iter()
            .flatten()
            .map(|n| n * self.scale)
            .collect();
        let (_, coef) = clip_coefficient(&scaled, self.max_norm);
        self.scale *= coef;
        Ok(())
    }

    /// The single Adam step after the stream.
    fn apply(
        self,
        nets: &mut [Vec<HyperNet<B>>],
        opt: &mut MetaOptimizer<B>,
        trace: Option<&mut TrainTrace<B>>,
    ) -> Result<(), MetaError> {
        let mut flat: Vec<&mut HyperNet<B>> = nets.iter_mut().flatten().collect();
        let scale = self.scale;
        let grads: Vec<Params<B>> = self
            .acc
            .concat()
            .into_iter()
            .map(|p| {
                if scale == 1.0 {
                    p
                } else {
                    p.map(|t| t.clone().mul_scalar(scale))
                }
            })
            .collect();
        opt.step(&mut flat, &grads, 1)?;
        if let Some(t) = trace {
            t.update(&grads, flat.iter().map(|n| &**n));
        }
        Ok(())
    }
}

impl<B: Backend> Editor<B> for HyperEditor<B> {
    fn name(&self) -> String {
        self.config.name.clone()
    }

    fn modules(&self) -> &[String] {
        &self.config.modules
    }

    fn train(&mut self, lm: &mut CausalLm<B>, stream: &[EditBatch]) -> Result<(), MetaError> {
        self.train_with(lm, stream, None, &mut |_| {})
    }

    fn train_with_progress(
        &mut self,
        lm: &mut CausalLm<B>,
        stream: &[EditBatch],
        done: &mut dyn FnMut(usize),
    ) -> Result<(), MetaError> {
        self.train_with(lm, stream, None, done)
    }

    fn train_batches(&self, num_seq: usize) -> usize {
        self.config.max_train_batches.unwrap_or(num_seq)
    }

    fn step_sizes(&self) -> Vec<Vec<f64>> {
        self.nets().map_or_else(Vec::new, |nets| {
            nets.iter()
                .map(|step| step.iter().flat_map(HyperNet::step_sizes).collect())
                .collect()
        })
    }

    /// EDIT_STREAM for one batch (spec §4.2): K cumulative steps, each caching on the model
    /// as the previous step left it.
    fn edit(&mut self, lm: &mut CausalLm<B>, batch: &EditBatch) -> Result<(), MetaError> {
        self.ensure(lm)?;
        let steps = self.config.steps;
        let predictor = self.config.predictor;
        let state = self.state.as_mut().expect("built");
        let snapshot = Snapshot::take(lm, &state.groups.modules);
        let modules = state.groups.modules.clone();
        with_prefix_cache(lm, &modules, |lm| {
            snapshot.or_restore(lm, |lm| {
                for k in 0..steps {
                    let s = state.step(k);
                    let caches = cache(lm, &batch.edit, &state.groups, &mut state.nets[s])?;
                    let preds = predict_all(&caches, &state.groups, &state.nets[s], predictor)?;
                    apply(lm, &state.groups, &preds)?;
                }
                Ok(())
            })
        })
    }
}
