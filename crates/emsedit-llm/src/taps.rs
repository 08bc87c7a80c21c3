//! Taps on edited modules: record their inputs and add gradient probes to their outputs.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::layers::Affine;

/// A linear module of a model: block `layer`, slot `slot` of the architecture's slot table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleId {
    /// Block index.
    pub layer: usize,
    /// Index into the architecture's table of linear modules per block.
    pub slot: usize,
}

/// Per-forward recorder for a set of watched modules.
///
/// For each watched module it keeps the input `x` (batch × time × a) and, when probing, a
/// zero tensor `z` that requires grad and is added to the output, so that `∂𝓛/∂z` is the
/// gradient with respect to the module's output.
#[derive(Debug)]
pub struct Taps<B: Backend> {
    watched: Vec<ModuleId>,
    probe: bool,
    /// Recorded inputs, one per watched module.
    pub inputs: Vec<Option<Tensor<B, 3>>>,
    /// Output probes, one per watched module (only when probing).
    pub probes: Vec<Option<Tensor<B, 3>>>,
}

impl<B: Backend> Taps<B> {
    /// Taps nothing.
    pub fn none() -> Self {
        Self::new(&[], false)
    }

    /// Taps `watched`; with `probe`, adds gradient probes.
    pub fn new(watched: &[ModuleId], probe: bool) -> Self {
        Self {
            watched: watched.to_vec(),
            probe,
            inputs: vec![None; watched.len()],
            probes: vec![None; watched.len()],
        }
    }

    /// Runs `affine` on `x`, recording it when `id` is watched.
    pub fn run(&mut self, id: ModuleId, affine: &Affine<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let Some(i) = self.watched.iter().position(|w| *w == id) else {
            return affine.forward(x);
        };
        self.inputs[i] = Some(x.clone());
        let y = affine.forward(x);
        if !self.probe {
            return y;
        }
        let z = y.zeros_like().require_grad();
        self.probes[i] = Some(z.clone());
        y + z
    }
}
