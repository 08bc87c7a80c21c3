//! Each family against its transformers model.

use emsedit_llm::CausalLm;
use emsedit_tensor::{Cpu, cpu};

use crate::golden::{Golden, fixture, max_abs_diff, rel_diff, values};

fn check_family(family: &str) {
    let golden = Golden::load(family);
    let lm = CausalLm::<Cpu>::load(&fixture(family), &cpu()).unwrap();
    let batch = golden.batch();

    let (shape, logits) = values(lm.forward(&batch).unwrap());
    let (want_shape, want) = golden.get("logits");
    assert_eq!(&shape, want_shape);
    let err = max_abs_diff(&logits, want);
    eprintln!("{family}: logits max-abs error {err:.2e}");
    assert!(err <= 1e-4, "{family}: logits max-abs error {err}");

    let modules = golden.module_ids(&lm);
    let grads = lm.edit_gradients(&batch, &modules).unwrap();
    let want_loss = golden.get("loss").1[0];
    assert!(
        (grads.loss as f64 - want_loss).abs() <= 1e-5,
        "{family}: loss {} vs {want_loss}",
        grads.loss
    );
    for (i, name) in golden.edited_modules().iter().enumerate() {
        for (what, got) in [
            ("keys", &grads.keys[i]),
            ("out_grads", &grads.out_grads[i]),
            ("gamma", &grads.gammas[i]),
        ] {
            let (shape, got) = values(got.clone());
            let (want_shape, want) = golden.get(&format!("{what}.{name}"));
            assert_eq!(&shape, want_shape, "{family}: {what}.{name} shape");
            let err = rel_diff(&got, want);
            eprintln!("{family}: {what}.{name} relative error {err:.2e}");
            assert!(err <= 1e-4, "{family}: {what}.{name} relative error {err}");
        }
    }
}

#[test]
fn gpt2_matches_transformers() {
    check_family("gpt2");
}

#[test]
fn gptj_matches_transformers() {
    check_family("gptj");
}

#[test]
fn llama_matches_transformers() {
    check_family("llama");
}

#[test]
fn gemma2_matches_transformers() {
    check_family("gemma2");
}

/// The head's one sweep ([`emsedit_llm::head_loss`]) and autodiff through the logits give the
/// same loss, keys, output gradients and Γ, on the families with a plain head; GPT-J's biased
/// head and Gemma-2's soft-capped one keep autodiff.
#[test]
fn head_sweep_matches_autodiff_through_the_logits() {
    for family in ["gptj", "gemma2"] {
        let lm = CausalLm::<Cpu>::load(&fixture(family), &cpu()).unwrap();
        assert!(lm.plain_head().is_none(), "{family}: no plain head");
    }
    for family in ["gpt2", "llama"] {
        let golden = Golden::load(family);
        let mut lm = CausalLm::<Cpu>::load(&fixture(family), &cpu()).unwrap();
        assert!(lm.plain_head().is_some(), "{family}: a plain head");
        let batch = golden.batch();
        let modules = golden.module_ids(&lm);
        let sweep = lm.edit_gradients(&batch, &modules).unwrap();
        lm.set_head_sweep(false);
        let autodiff = lm.edit_gradients(&batch, &modules).unwrap();
        assert!((sweep.loss - autodiff.loss).abs() <= 1e-5 * autodiff.loss.abs().max(1.0));
        for (what, got, want) in [
            ("keys", &sweep.keys, &autodiff.keys),
            ("out_grads", &sweep.out_grads, &autodiff.out_grads),
            ("gammas", &sweep.gammas, &autodiff.gammas),
        ] {
            for (g, w) in got.iter().zip(want) {
                let err = rel_diff(&values(g.clone()).1, &values(w.clone()).1);
                assert!(err <= 1e-5, "{family}: {what} relative difference {err}");
            }
        }
    }
}

#[test]
fn edit_then_revert_is_bit_identical() {
    let mut lm = CausalLm::<Cpu>::load(&fixture("gpt2"), &cpu()).unwrap();
    let id = lm.module("transformer.h.1.mlp.c_proj").unwrap();
    let before = values(lm.weight(id));
    let delta = lm.weight(id).mul_scalar(0.37).add_scalar(1e-3);
    let old = lm.apply_shift(id, &delta).unwrap();
    assert_ne!(values(lm.weight(id)).1, before.1);
    lm.set_weight(id, old).unwrap();
    let after = values(lm.weight(id));
    assert!(
        after
            .1
            .iter()
            .zip(&before.1)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
}

#[test]
fn argmax_token_logits_and_generation_agree_with_the_logits() {
    let golden = Golden::load("llama");
    let lm = CausalLm::<Cpu>::load(&fixture("llama"), &cpu()).unwrap();
    let batch = golden.batch();
    let (shape, logits) = golden.get("logits");
    let v = shape[2];
    let argmax = lm.argmax(&batch).unwrap();
    let tokens: Vec<i64> = batch.input_ids.clone();
    let picked = lm.token_logits(&batch, &tokens).unwrap();
    for p in 0..shape[0] * shape[1] {
        let row = &logits[p * v..(p + 1) * v];
        let best = row.iter().cloned().fold(f64::MIN, f64::max);
        assert!(
            (row[argmax[p] as usize] - best).abs() < 1e-5,
            "argmax at {p}"
        );
        assert!(
            (picked[p] as f64 - row[tokens[p] as usize]).abs() < 1e-4,
            "token logit at {p}"
        );
    }
    // Greedy generation continues the first prompt with its argmax tokens.
    let prompt: Vec<u32> = golden.json["batch"][0]["prompt_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    let new = lm.generate(&prompt, 3, None).unwrap();
    assert_eq!(new.len(), 3);
    assert_eq!(new[0] as i64, argmax[prompt.len() - 1]);
    assert!(lm.token_logits(&batch, &tokens[1..]).is_err());
    // Label log-probabilities average to the golden loss.
    let lp = lm.label_logprobs(&batch).unwrap();
    let n = batch.labels.iter().filter(|&&l| l != -100).count() as f64;
    let mean = -lp.iter().map(|&x| x as f64).sum::<f64>() / n;
    assert!((mean - golden.get("loss").1[0]).abs() < 1e-5, "{mean}");
}

#[test]
fn kl_objective_matches_a_host_computation_and_vanishes_at_the_reference() {
    use emsedit_llm::Objective;
    let golden = Golden::load("gpt2");
    let batch = golden.batch();
    let mut lm = CausalLm::<Cpu>::load(&fixture("gpt2"), &cpu()).unwrap();
    let id = lm.module("transformer.h.2.mlp.c_proj").unwrap();
    let reference = lm.forward(&batch).unwrap();
    let reference_at = lm.label_logits(&batch).unwrap();
    // Against itself: zero loss and zero gradient.
    let same = lm
        .gradients(&batch, &[id], Objective::Kl(&reference_at))
        .unwrap();
    assert!(same.loss.abs() < 1e-6, "{}", same.loss);
    assert!(
        values(same.gammas[0].clone())
            .1
            .iter()
            .all(|g| g.abs() < 1e-6)
    );
    // After a shift: the mean over labelled positions of Σ p_ref (log p_ref − log p).
    let shift = lm.weight(id).mul_scalar(0.5);
    lm.apply_shift(id, &shift).unwrap();
    let moved = lm
        .gradients(&batch, &[id], Objective::Kl(&reference_at))
        .unwrap();
    let (shape, r) = values(reference);
    let (_, c) = values(lm.forward(&batch).unwrap());
    let v = shape[2];
    let log_softmax = |x: &[f64]| {
        let m = x.iter().cloned().fold(f64::MIN, f64::max);
        let z = x.iter().map(|a| (a - m).exp()).sum::<f64>().ln() + m;
        x.iter().map(|a| a - z).collect::<Vec<_>>()
    };
    let positions = batch.label_positions();
    let want = positions
        .iter()
        .map(|&p| {
            let p = p as usize;
            let (lr, lc) = (
                log_softmax(&r[p * v..(p + 1) * v]),
                log_softmax(&c[p * v..(p + 1) * v]),
            );
            lr.iter()
                .zip(&lc)
                .map(|(a, b)| a.exp() * (a - b))
                .sum::<f64>()
        })
        .sum::<f64>()
        / positions.len() as f64;
    assert!(
        want > 1e-4 && (moved.loss as f64 - want).abs() < 1e-5 * (1.0 + want),
        "{} vs {want}",
        moved.loss
    );
    assert!(
        values(moved.gammas[0].clone())
            .1
            .iter()
            .any(|g| g.abs() > 1e-6)
    );
}
