//! The prefix cache and the head at labelled positions give a full pass's numbers.

use emsedit_llm::{CausalLm, EditGrads, ModuleId};
use emsedit_tensor::{Cpu, cpu};

use crate::golden::{Golden, fixture, max_abs_diff, rel_diff, values};

fn flat(g: &EditGrads<Cpu>) -> Vec<Vec<f64>> {
    let mut out = vec![vec![g.loss as f64]];
    for t in g.keys.iter().chain(&g.out_grads).chain(&g.gammas) {
        out.push(values(t.clone()).1);
    }
    out
}

/// Loss, keys, output gradients and Γ agree to float rounding.
fn close(family: &str, got: &[Vec<f64>], want: &[Vec<f64>]) {
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let err = rel_diff(a, b);
        assert!(
            err <= 1e-5,
            "{family}: part {i} differs by {err:e} (relative)"
        );
    }
}

/// `top`: a module of an upper block, edited; `bottom`: one of block 0.
fn check(family: &str, top: &str, bottom: &str) {
    let batch = Golden::load(family).batch();
    let mut lm = CausalLm::<Cpu>::load(&fixture(family), &cpu()).unwrap();
    let (top, bottom): (ModuleId, ModuleId) = (lm.module(top).unwrap(), lm.module(bottom).unwrap());
    assert!(top.layer > 0, "{family}: the test needs an upper block");

    let plain = flat(&lm.edit_gradients(&batch, &[top]).unwrap());
    let logits = values(lm.forward(&batch).unwrap()).1;
    lm.start_prefix_cache(&[top]);
    let miss = flat(&lm.edit_gradients(&batch, &[top]).unwrap());
    let saved = format!("PrefixCache(layer {}, 1 states", top.layer);
    assert!(
        format!("{lm:?}").contains(&saved),
        "{family}: nothing saved"
    );
    let hit = flat(&lm.edit_gradients(&batch, &[top]).unwrap());
    // The saved state is reused as it was computed: a hit repeats a miss bit for bit.
    assert_eq!(hit, miss, "{family}: a hit differs from the miss");
    // The lower blocks ran on the plain backend instead of the autodiff one: rounding only.
    close(family, &miss, &plain);
    assert_eq!(
        values(lm.forward(&batch).unwrap()).1,
        logits,
        "{family}: logits"
    );
    // A module below the cached block is still reached: the pass starts at the embeddings.
    let both = lm.edit_gradients(&batch, &[bottom, top]).unwrap();
    assert_eq!(both.gammas.len(), 2);

    // A weight below the cached block changes: the cache forgets, passes see the new weight.
    let shift = lm.weight(bottom).powf_scalar(2.0).mul_scalar(10.0);
    lm.apply_shift(bottom, &shift).unwrap();
    let cached = flat(&lm.edit_gradients(&batch, &[top]).unwrap());
    lm.stop_prefix_cache();
    let fresh = flat(&lm.edit_gradients(&batch, &[top]).unwrap());
    close(family, &cached, &fresh);
    assert!(
        rel_diff(&fresh[1], &plain[1]) > 1e-3,
        "{family}: the shift changed no key"
    );

    // The head at labelled positions only: the full logits' rows there.
    let at = values(lm.label_logits(&batch).unwrap()).1;
    let (shape, all) = values(lm.forward(&batch).unwrap());
    let v = shape[2];
    let want: Vec<f64> = batch
        .label_positions()
        .iter()
        .flat_map(|&p| all[p as usize * v..(p as usize + 1) * v].to_vec())
        .collect();
    let err = max_abs_diff(&at, &want);
    assert!(err <= 1e-5, "{family}: label logits differ by {err}");
    let (argmax, full) = (lm.label_argmax(&batch).unwrap(), lm.argmax(&batch).unwrap());
    for p in batch.label_positions() {
        assert_eq!(
            argmax[p as usize], full[p as usize],
            "{family}: argmax at {p}"
        );
    }
    scoring(family, top, bottom);
}

/// The scoring cache (`top` edited, `bottom` below it): scoring passes after an edit above
/// the cached block give an uncached model's numbers bit for bit from the saved state; an edit
/// below empties it; gradient passes do not use it.
fn scoring(family: &str, top: ModuleId, bottom: ModuleId) {
    let batch = Golden::load(family).batch();
    let mut plain = CausalLm::<Cpu>::load(&fixture(family), &cpu()).unwrap();
    let mut cached = plain.clone();
    cached.start_scoring_cache(&[top]);
    let logits = |lm: &CausalLm<Cpu>| values(lm.label_logits(&batch).unwrap()).1;
    let held = |lm: &CausalLm<Cpu>, n: usize| {
        format!("{lm:?}").contains(&format!(
            "scoring: PrefixCache(layer {}, {n} states",
            top.layer
        ))
    };
    assert_eq!(logits(&cached), logits(&plain), "{family}: a miss");
    assert!(held(&cached, 1), "{family}: nothing saved");
    let shift = plain.weight(top).mul_scalar(0.5);
    for lm in [&mut plain, &mut cached] {
        lm.apply_shift(top, &shift).unwrap();
    }
    assert!(
        held(&cached, 1),
        "{family}: an edit above emptied the cache"
    );
    let edited = logits(&plain);
    assert_eq!(logits(&cached), edited, "{family}: a hit after an edit");
    assert_eq!(
        flat(&cached.edit_gradients(&batch, &[top]).unwrap()),
        flat(&plain.edit_gradients(&batch, &[top]).unwrap()),
        "{family}: gradients"
    );
    let shift = plain.weight(bottom).mul_scalar(0.5);
    for lm in [&mut plain, &mut cached] {
        lm.apply_shift(bottom, &shift).unwrap();
    }
    assert!(held(&cached, 0), "{family}: an edit below kept the states");
    assert_eq!(
        logits(&cached),
        logits(&plain),
        "{family}: after an edit below"
    );
    assert_ne!(
        logits(&plain),
        edited,
        "{family}: the edit below changed nothing"
    );
    cached.stop_scoring_cache();
    assert!(format!("{cached:?}").contains("scoring: PrefixCache(off)"));
}

#[test]
fn gpt2_prefix_cache_is_exact() {
    check(
        "gpt2",
        "transformer.h.2.mlp.c_proj",
        "transformer.h.0.mlp.c_fc",
    );
}

#[test]
fn gptj_prefix_cache_is_exact() {
    check(
        "gptj",
        "transformer.h.1.mlp.fc_out",
        "transformer.h.0.attn.q_proj",
    );
}

#[test]
fn llama_prefix_cache_is_exact() {
    check(
        "llama",
        "model.layers.2.mlp.up_proj",
        "model.layers.0.mlp.gate_proj",
    );
}

#[test]
fn gemma2_prefix_cache_is_exact() {
    check(
        "gemma2",
        "model.layers.1.mlp.down_proj",
        "model.layers.0.self_attn.v_proj",
    );
}
