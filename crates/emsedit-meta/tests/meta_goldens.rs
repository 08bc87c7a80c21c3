//! One training run of MALMEN (K = 1) and EMSEdit (batch and sequential, K = 2), without and
//! with `reference_quirks`, against the independent PyTorch re-derivation in
//! `scripts/goldens/meta_step.py` (goldens in `fixtures/meta/`): every step's Δ, Γ and
//! meta-gradient, and every Adam update's (clipped) gradient and updated parameters. The
//! error measure and tolerances are in `golden/mod.rs`.

mod golden;

use emsedit_llm::CausalLm;
use emsedit_meta::hypernet::{HyperConfig, Params};
use emsedit_meta::{HyperEditor, HyperEditorConfig};
use emsedit_tensor::{Cpu, cpu};
use golden::{Golden, check_golden, root, values};

const GOLDEN: &str = "fixtures/meta/meta_step";

fn check(case_name: &str) {
    assert!(check_golden(&Golden::load(GOLDEN), case_name));
}

#[test]
fn malmen() {
    check("malmen");
}

#[test]
fn malmen_quirks() {
    check("malmen_quirks");
}

#[test]
fn emsedit_batch() {
    check("emsedit_batch");
}

#[test]
fn emsedit_batch_quirks() {
    check("emsedit_batch_quirks");
}

#[test]
fn emsedit_seq() {
    check("emsedit_seq");
}

#[test]
fn emsedit_seq_quirks() {
    check("emsedit_seq_quirks");
}

/// Sequential training on a real model clips every step's sum by ~1e-5 (gradients of norm
/// ~1e5, max_norm 1): the accumulation must not overflow f32 on the way, or the clip scale
/// becomes 0 and the stream's one Adam step does nothing (as it did on SmolLM2 before the
/// accumulation was folded back at 1e-6). Here max_norm is set to 1e-3 to 1e-8 of the
/// first step's norm to get such ratios on the fixture.
#[test]
fn heavy_clipping_over_a_long_stream_still_moves_the_networks() {
    let golden = Golden::load(GOLDEN);
    let modules = golden.modules();
    let model = root().join(golden.json["model"].as_str().unwrap());
    let stream = golden.batches();
    // Ten batches of K = 2 steps: twenty additions. A large η gives large gradients (entries
    // of 1e3 and more, as on SmolLM2), which is what overflowed.
    const LR: f64 = 10.0;
    let long: Vec<_> = stream.iter().cycle().take(10).cloned().collect();
    let run = |max_grad_norm: f32| {
        let mut config = HyperEditorConfig::emsedit_sequential(modules.clone());
        config.hyper = HyperConfig {
            rank: 8,
            blocks: 1,
            lr: LR,
        };
        config.max_grad_norm = max_grad_norm;
        let mut lm = CausalLm::<Cpu>::load(&model, &cpu()).unwrap();
        let _rng = emsedit_tensor::rng_lock();
        emsedit_tensor::seed::<Cpu>(&cpu(), 0);
        let mut editor = HyperEditor::<Cpu>::new(config);
        editor.train_traced(&mut lm, &long).unwrap()
    };
    let norm = |ps: &[Params<Cpu>]| -> f64 {
        ps.iter()
            .flat_map(|p| p.tensors().into_iter().map(|t| values(t).1))
            .flatten()
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt()
    };
    let first = run(f32::MAX);
    let step = norm(&first.steps[0].grads);
    assert!(step > 0.0);
    for ratio in [1e-3, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7, 1e-8] {
        let max_norm = (step * ratio) as f32;
        let clipped = run(max_norm);
        let update = norm(&clipped.updates[0].grads);
        assert!(
            (update / f64::from(max_norm) - 1.0).abs() < 1e-3,
            "the clipped stream gradient has norm {update:e}, max_norm {max_norm:e}"
        );
    }
}
