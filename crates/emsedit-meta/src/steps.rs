//! The building blocks every hypernetwork editor's loops share (spec §2.3, §4.1–4.2): shape
//! groups, CACHE, PREDICT for all modules, APPLY / REVERT, the meta-loss Γ, and the
//! clip-and-Adam update of a set of hypernetworks.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use emsedit_llm::{Batch, CausalLm, EditGrads, ModuleId};
use emsedit_tensor::threads::scoped_map;
use emsedit_tensor::{Adam, AdamConfig, clip_coefficient, grad_norm};
use rayon::prelude::*;

use crate::MetaError;
use crate::hypernet::{HyperConfig, HyperNet, Params};
use crate::predict::{Prediction, Predictor, metagrad, predict};

/// Edited modules grouped by weight shape: one hypernetwork per group (spec §2.2).
#[derive(Debug, Clone)]
pub struct Groups {
    /// The modules in config order.
    pub modules: Vec<ModuleId>,
    /// For each module: (group, index j within the group).
    pub place: Vec<(usize, usize)>,
    /// For each group: (a, b) and its module count.
    pub shapes: Vec<([usize; 2], usize)>,
}

impl Groups {
    /// Groups `modules` of `lm` by their a×b shape, in config order.
    pub fn new<B: Backend>(lm: &CausalLm<B>, modules: Vec<ModuleId>) -> Self {
        let mut shapes: Vec<([usize; 2], usize)> = Vec::new();
        let place = modules
            .iter()
            .map(|&m| {
                let shape = lm.weight(m).dims();
                let g = match shapes.iter().position(|(s, _)| *s == shape) {
                    Some(g) => g,
                    None => {
                        shapes.push((shape, 0));
                        shapes.len() - 1
                    }
                };
                shapes[g].1 += 1;
                (g, shapes[g].1 - 1)
            })
            .collect();
        Self {
            modules,
            place,
            shapes,
        }
    }

    /// One fresh hypernetwork per group.
    pub fn nets<B: Backend>(&self, config: &HyperConfig, device: &B::Device) -> Vec<HyperNet<B>> {
        self.shapes
            .iter()
            .map(|([a, b], n)| HyperNet::new(*a, *b, *n, config, device))
            .collect()
    }
}

/// One module's cache: keys K (N×a) and output gradients G (N×b).
pub type Cache<B> = (Tensor<B, 2>, Tensor<B, 2>);

/// CACHE (spec §2.3): keys and output gradients of every module at answer positions of the
/// edit micro-batches, stacked; each micro-batch's rows also update the normalizer of the
/// module's network, one module after another. The micro-batches run packed together
/// ([`CausalLm::edit_keys_packed`]; on the CPU one pass per core): the same rows as a
/// pass per micro-batch.
pub fn cache<B: Backend>(
    lm: &CausalLm<B>,
    edit: &[Batch],
    groups: &Groups,
    nets: &mut [HyperNet<B>],
) -> Result<Vec<Cache<B>>, MetaError> {
    let grads = lm.edit_keys_packed(edit, &groups.modules)?;
    observe(&grads, edit, groups, nets)
}

/// CACHE's network side: each micro-batch's rows of `grads` (the edit pass over `edit`)
/// update the normalizers; returns the caches. Training that runs the K steps on the same
/// weights runs the pass once and this once per step.
pub fn observe<B: Backend>(
    grads: &EditGrads<B>,
    edit: &[Batch],
    groups: &Groups,
    nets: &mut [HyperNet<B>],
) -> Result<Vec<Cache<B>>, MetaError> {
    let mut start = 0;
    for micro in edit {
        let rows = micro.label_positions().len();
        for (i, (k, g)) in grads.keys.iter().zip(&grads.out_grads).enumerate() {
            let (k, g) = (
                k.clone().narrow(0, start, rows),
                g.clone().narrow(0, start, rows),
            );
            nets[groups.place[i].0].observe(&k, &g)?;
        }
        start += rows;
    }
    Ok(grads
        .keys
        .iter()
        .cloned()
        .zip(grads.out_grads.iter().cloned())
        .collect())
}

/// PREDICT for every module with the networks of one step, the modules in parallel (each
/// module's shift depends only on its own cache and its network: the same numbers as one
/// after another).
pub fn predict_all<B: Backend>(
    caches: &[Cache<B>],
    groups: &Groups,
    nets: &[HyperNet<B>],
    predictor: Predictor,
) -> Result<Vec<Prediction<B>>, MetaError> {
    caches
        .par_iter()
        .zip(&groups.place)
        .map(|((k, g), &(group, j))| predict(&nets[group], predictor, k, g, j))
        .collect()
}

/// APPLY: adds every shift; returns the previous weights for an exact REVERT.
pub fn apply<B: Backend>(
    lm: &mut CausalLm<B>,
    groups: &Groups,
    preds: &[Prediction<B>],
) -> Result<Vec<Tensor<B, 2>>, MetaError> {
    groups
        .modules
        .iter()
        .zip(preds)
        .map(|(&m, p)| Ok(lm.apply_shift(m, &p.delta)?))
        .collect()
}

/// REVERT: restores the weights [`apply`] returned.
pub fn revert<B: Backend>(
    lm: &mut CausalLm<B>,
    groups: &Groups,
    old: Vec<Tensor<B, 2>>,
) -> Result<(), MetaError> {
    for (&m, w) in groups.modules.iter().zip(old) {
        lm.set_weight(m, w)?;
    }
    Ok(())
}

/// REVERT that hands back the edited weights, so that they can be put back later.
pub fn revert_keep<B: Backend>(
    lm: &mut CausalLm<B>,
    groups: &Groups,
    old: Vec<Tensor<B, 2>>,
) -> Result<Vec<Tensor<B, 2>>, MetaError> {
    let edited = groups.modules.iter().map(|&m| lm.weight(m)).collect();
    revert(lm, groups, old)?;
    Ok(edited)
}

/// Γ_m of the generalization loss: the sum over micro-batches of their mean cross-entropy,
/// from a pass over them packed together ([`CausalLm::edit_gradients_packed`]).
pub fn gen_gammas<B: Backend>(
    lm: &CausalLm<B>,
    equiv: &[Batch],
    groups: &Groups,
) -> Result<Vec<Tensor<B, 2>>, MetaError> {
    if equiv.is_empty() {
        return Err(MetaError::Config(
            "an edit batch without equivalence tuples".into(),
        ));
    }
    Ok(lm.edit_gradients_packed(equiv, &groups.modules)?.gammas)
}

/// Adds every module's meta-gradient to its network's accumulator (computed in parallel,
/// added in module order).
pub fn accumulate<B: Backend>(
    acc: &mut [Params<B>],
    nets: &[HyperNet<B>],
    groups: &Groups,
    preds: &[Prediction<B>],
    gammas: &[Tensor<B, 2>],
) -> Result<(), MetaError> {
    // The modules' meta-gradients in parallel (each runs a backward pass: scoped threads,
    // not rayon's workers), added in module order (the same sums).
    let jobs: Vec<_> = preds.iter().zip(gammas).zip(&groups.place).collect();
    let grads = scoped_map(jobs, |((pred, gamma), &(group, _))| {
        metagrad(&nets[group], pred, gamma)
    })
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    for (g, &(group, _)) in grads.iter().zip(&groups.place) {
        acc[group] = acc[group].add(g);
    }
    Ok(())
}

/// CLIP (spec §4.1) over all the given gradients at once: torch's global-norm rule.
pub fn clip<B: Backend>(grads: &mut [Params<B>], max_norm: f32) {
    let norms: Vec<f32> = grads
        .iter()
        .flat_map(|p| p.tensors().into_iter().map(grad_norm))
        .collect();
    let (_, coef) = clip_coefficient(&norms, max_norm);
    for p in grads.iter_mut() {
        *p = p.map(|t| t.clone().mul_scalar(coef));
    }
}

/// One Adam step per network (`repeats` times with the same gradient: the reference's
/// duplicated parameter registration, spec §7.2).
#[derive(Debug)]
pub struct MetaOptimizer<B: Backend> {
    adams: Vec<Adam<B>>,
}

impl<B: Backend> MetaOptimizer<B> {
    /// One Adam per network.
    pub fn new(nets: usize, lr: f64) -> Self {
        Self {
            adams: (0..nets)
                .map(|_| {
                    Adam::new(AdamConfig {
                        lr,
                        ..AdamConfig::default()
                    })
                })
                .collect(),
        }
    }

    /// Adam steps taken so far (by the first network's first parameter).
    pub fn steps(&self) -> u32 {
        self.adams.first().map_or(0, |a| a.steps(0))
    }

    /// Updates every network's parameters with its gradient.
    pub fn step(
        &mut self,
        nets: &mut [&mut HyperNet<B>],
        grads: &[Params<B>],
        repeats: usize,
    ) -> Result<(), MetaError> {
        for ((net, g), adam) in nets.iter_mut().zip(grads).zip(&mut self.adams) {
            for _ in 0..repeats.max(1) {
                let updated = net
                    .params
                    .tensors()
                    .into_iter()
                    .zip(g.tensors())
                    .enumerate()
                    .map(|(slot, (p, g))| adam.step(slot, p.clone(), g.clone()))
                    .collect::<Result<Vec<_>, _>>()?;
                net.params = Params::from_tensors(updated);
            }
        }
        Ok(())
    }
}
