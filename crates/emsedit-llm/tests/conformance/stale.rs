//! `gradients_stale`: the forward pass of W + Δ, input gradients through W.

use emsedit_llm::{CausalLm, EditGrads, LlmError, Objective};
use emsedit_tensor::{Cpu, cpu};

use crate::golden::{Golden, fixture, rel_diff, values};

fn parts(g: &EditGrads<Cpu>) -> (f64, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let all =
        |ts: &[burn::tensor::Tensor<Cpu, 2>]| ts.iter().map(|t| values(t.clone()).1).collect();
    (f64::from(g.loss), all(&g.keys), all(&g.gammas))
}

/// `bottom` below `top`, both edited.
fn check(family: &str, bottom: &str, top: &str) {
    let batch = Golden::load(family).batch();
    let mut lm = CausalLm::<Cpu>::load(&fixture(family), &cpu()).unwrap();
    let modules = [lm.module(bottom).unwrap(), lm.module(top).unwrap()];
    let shifts: Vec<_> = modules
        .iter()
        .map(|&m| lm.weight(m).powf_scalar(2.0).mul_scalar(20.0))
        .collect();
    let ce = || Objective::CrossEntropy;

    // No shift: the exact gradient.
    let zeros: Vec<_> = shifts.iter().map(|s| s.zeros_like()).collect();
    let (loss, keys, gammas) = parts(&lm.gradients(&batch, &modules, ce()).unwrap());
    let (loss0, keys0, gammas0) =
        parts(&lm.gradients_stale(&batch, &modules, ce(), &zeros).unwrap());
    assert!((loss - loss0).abs() <= 1e-6 * loss.abs(), "{family}: loss");
    for (a, b) in keys.iter().chain(&gammas).zip(keys0.iter().chain(&gammas0)) {
        assert!(
            rel_diff(a, b) <= 1e-5,
            "{family}: a zero shift changed a tensor"
        );
    }

    // Shifted: the forward pass (loss, keys) and the top module's Γ are those at W + Δ; the
    // bottom module's Γ is not, since its output gradient passes through the top module's W.
    let stale = parts(&lm.gradients_stale(&batch, &modules, ce(), &shifts).unwrap());
    let before: Vec<_> = modules
        .iter()
        .zip(&shifts)
        .map(|(&m, s)| lm.apply_shift(m, s).unwrap())
        .collect();
    let exact = parts(&lm.gradients(&batch, &modules, ce()).unwrap());
    for (&m, w) in modules.iter().zip(before) {
        lm.set_weight(m, w).unwrap();
    }
    assert!(
        (stale.0 - exact.0).abs() <= 1e-5 * exact.0.abs(),
        "{family}: loss"
    );
    for (a, b) in stale.1.iter().zip(&exact.1) {
        assert!(rel_diff(a, b) <= 1e-5, "{family}: keys");
    }
    assert!(
        rel_diff(&stale.2[1], &exact.2[1]) <= 1e-5,
        "{family}: top Γ"
    );
    let moved = rel_diff(&stale.2[0], &exact.2[0]);
    assert!(
        moved > 1e-4,
        "{family}: the bottom Γ did not change ({moved:e})"
    );
    assert!(
        rel_diff(&stale.2[0], &gammas[0]) > 1e-4,
        "{family}: the bottom Γ ignored the shift"
    );

    // One shift per module, of the module's shape.
    let err = lm
        .gradients_stale(&batch, &modules, ce(), &shifts[..1])
        .unwrap_err();
    assert!(matches!(err, LlmError::Batch(_)), "{err}");
    let wrong = [shifts[0].clone().narrow(0, 0, 1), shifts[1].clone()];
    let err = lm
        .gradients_stale(&batch, &modules, ce(), &wrong)
        .unwrap_err();
    assert!(matches!(err, LlmError::ShiftShape { .. }), "{err}");
}

#[test]
fn gpt2_stale_gradients() {
    check(
        "gpt2",
        "transformer.h.0.mlp.c_fc",
        "transformer.h.2.mlp.c_proj",
    );
}

#[test]
fn llama_stale_gradients() {
    check(
        "llama",
        "model.layers.0.mlp.gate_proj",
        "model.layers.2.mlp.up_proj",
    );
}
