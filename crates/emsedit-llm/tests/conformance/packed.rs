//! Micro-batches packed into one row ([`Batch::pack`]) give the separate passes' numbers.

use emsedit_llm::{Batch, CausalLm, EditGrads, IGNORE, Objective};
use emsedit_tensor::{Cpu, cpu};

use crate::golden::{Golden, fixture, rel_diff, values};

/// Row `r` of `batch` as a batch of its own, right-padded with `pad` more columns.
fn row(batch: &Batch, r: usize, pad: usize) -> Batch {
    let span = r * batch.time..(r + 1) * batch.time;
    let grow = |v: &[i64], fill: i64| {
        let mut v = v[span.clone()].to_vec();
        v.extend(std::iter::repeat_n(fill, pad));
        v
    };
    Batch {
        batch: 1,
        time: batch.time + pad,
        input_ids: grow(&batch.input_ids, 0),
        attention_mask: grow(&batch.attention_mask, 0),
        labels: grow(&batch.labels, IGNORE),
    }
}

/// Rows `a` and `b` as one batch of two (the golden batch's own padding).
fn rows(batch: &Batch, a: usize, b: usize) -> Batch {
    let (x, y) = (row(batch, a, 0), row(batch, b, 0));
    let cat = |p: &[i64], q: &[i64]| [p, q].concat();
    Batch {
        batch: 2,
        time: batch.time,
        input_ids: cat(&x.input_ids, &y.input_ids),
        attention_mask: cat(&x.attention_mask, &y.attention_mask),
        labels: cat(&x.labels, &y.labels),
    }
}

/// Loss, stacked keys and output gradients, summed Γ of separate passes.
fn separate(grads: &[EditGrads<Cpu>]) -> Vec<Vec<f64>> {
    let mut out = vec![vec![grads.iter().map(|g| g.loss as f64).sum()]];
    for m in 0..grads[0].gammas.len() {
        let stack = |part: fn(&EditGrads<Cpu>) -> &Vec<burn::tensor::Tensor<Cpu, 2>>| {
            grads
                .iter()
                .flat_map(|g| values(part(g)[m].clone()).1)
                .collect::<Vec<_>>()
        };
        out.push(stack(|g| &g.keys));
        out.push(stack(|g| &g.out_grads));
        let mut gamma = values(grads[0].gammas[m].clone()).1;
        for g in &grads[1..] {
            for (s, x) in gamma.iter_mut().zip(values(g.gammas[m].clone()).1) {
                *s += x;
            }
        }
        out.push(gamma);
    }
    out
}

/// The same parts of one packed pass.
pub fn joined(g: &EditGrads<Cpu>) -> Vec<Vec<f64>> {
    let mut out = vec![vec![g.loss as f64]];
    for m in 0..g.gammas.len() {
        out.push(values(g.keys[m].clone()).1);
        out.push(values(g.out_grads[m].clone()).1);
        out.push(values(g.gammas[m].clone()).1);
    }
    out
}

pub fn agree(family: &str, what: &str, got: &[Vec<f64>], want: &[Vec<f64>], tol: f64) {
    assert_eq!(want.len(), got.len());
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            a.len(),
            b.len(),
            "{family} {what}: part {i} has another size"
        );
        let err = rel_diff(a, b);
        assert!(
            err <= tol,
            "{family} {what}: part {i} differs by {err:e} (relative)"
        );
    }
}

fn check(family: &str) {
    let golden = Golden::load(family);
    let batch = golden.batch();
    assert!(batch.batch >= 2, "{family}: the test needs two rows");
    let lm = CausalLm::<Cpu>::load(&fixture(family), &cpu()).unwrap();
    let modules = golden.module_ids(&lm);
    // Micro-batches of different widths and padding, as an editor's are.
    let last = batch.batch - 1;
    let micro = vec![
        row(&batch, last, 3),
        rows(&batch, 0, last),
        row(&batch, 0, 0),
    ];
    let pack = Batch::pack(&micro).unwrap();
    assert!(pack.packed() && pack.batch == 1, "{family}: one packed row");
    let real: usize = micro
        .iter()
        .flat_map(|b| &b.attention_mask)
        .filter(|&&m| m != 0)
        .count();
    assert_eq!(pack.time, real, "{family}: no padding is kept");

    let each: Vec<_> = micro
        .iter()
        .map(|b| lm.edit_gradients(b, &modules).unwrap())
        .collect();
    let packed = lm.edit_gradients_packed(&micro, &modules).unwrap();
    agree(
        family,
        "cross-entropy",
        &joined(&packed),
        &separate(&each),
        1e-5,
    );
    // Without Γ: the same loss, keys and output gradients, bit for bit.
    let keys = lm.edit_keys_packed(&micro, &modules).unwrap();
    assert!(keys.gammas.is_empty(), "{family}: Γ computed");
    assert_eq!(keys.loss, packed.loss, "{family}: loss without Γ");
    let both = [
        (&keys.keys, &packed.keys),
        (&keys.out_grads, &packed.out_grads),
    ];
    for (got, want) in both {
        for (m, (g, w)) in got.iter().zip(want).enumerate() {
            let (g, w) = (values(g.clone()), values(w.clone()));
            assert_eq!(g, w, "{family}: module {m} without Γ");
        }
    }

    // KL against the model before a shift of the top module, with the shifted weight in the
    // backward pass or (stale) the unshifted one.
    let top = *modules.iter().max_by_key(|m| m.layer).unwrap();
    let refs: Vec<_> = micro.iter().map(|b| lm.label_logits(b).unwrap()).collect();
    let packed_ref = lm.label_logits(&pack).unwrap();
    let shifts = vec![lm.weight(top).mul_scalar(2.0)];
    for stale in [false, true] {
        let mut lm = lm.clone();
        if !stale {
            lm.apply_shift(top, &shifts[0]).unwrap();
        }
        let each: Vec<_> = micro
            .iter()
            .zip(&refs)
            .map(|(b, r)| match stale {
                true => lm.gradients_stale(b, &[top], Objective::Kl(r), &shifts),
                false => lm.gradients(b, &[top], Objective::Kl(r)),
            })
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(each[0].loss > 1e-6, "{family}: the shift moved nothing");
        let kl = Objective::Kl(&packed_ref);
        let packed = lm
            .gradients_packed(&micro, &[top], kl, stale.then_some(shifts.as_slice()))
            .unwrap();
        // A KL between nearby distributions is a difference of nearly equal log-probabilities,
        // which magnifies f32 rounding (the tiny Gemma-2's KL is 1e-3 here).
        let what = format!("KL (stale: {stale})");
        agree(family, &what, &joined(&packed), &separate(&each), 1e-3);
    }

    // The forward pass: the packed row's logits at its labelled positions are the separate
    // batches' at theirs, in order.
    let want: Vec<f64> = micro
        .iter()
        .flat_map(|b| values(lm.label_logits(b).unwrap()).1)
        .collect();
    let got = values(lm.label_logits(&pack).unwrap()).1;
    let err = rel_diff(&got, &want);
    assert!(err <= 1e-5, "{family}: label logits differ by {err:e}");
    // Shorter rows: several packed rows in one batch, one of them holding two sequences.
    let several = (1..pack.time)
        .map(|cap| Batch::pack_rows(&micro, cap).unwrap())
        .find(|b| b.batch > 1 && b.packed())
        .expect("a cap that packs two rows");
    let got = values(lm.label_logits(&several).unwrap()).1;
    let err = rel_diff(&got, &want);
    assert!(
        err <= 1e-5,
        "{family}: {} packed rows differ by {err:e}",
        several.batch
    );

    // The prefix cache keys a packed row like any batch: a hit repeats the miss.
    let mut lm = lm;
    lm.start_prefix_cache(&[top]);
    let miss = joined(&lm.edit_gradients_packed(&micro, &[top]).unwrap());
    let hit = joined(&lm.edit_gradients_packed(&micro, &[top]).unwrap());
    assert_eq!(hit, miss, "{family}: a cache hit differs");
}

/// Scoring packs a padded batch's rows: its numbers are the padded pass's at the labels.
fn check_scoring(family: &str) {
    let batch = Golden::load(family).batch();
    assert!(
        batch.attention_mask.contains(&0),
        "{family}: the test needs padding"
    );
    let lm = CausalLm::<Cpu>::load(&fixture(family), &cpu()).unwrap();
    let labelled = batch.label_positions();
    let at = |v: &[f64]| -> Vec<f64> { labelled.iter().map(|&p| v[p as usize]).collect() };
    let f64s = |v: Vec<f32>| -> Vec<f64> { v.into_iter().map(f64::from).collect() };

    let new: Vec<i64> = batch.labels.iter().map(|&l| l.max(0)).collect();
    let old: Vec<i64> = new.iter().map(|&t| (t + 1) % 8).collect();
    let both = lm.label_token_logits(&batch, &[&new, &old]).unwrap();
    for (set, got) in [&new, &old].into_iter().zip(both) {
        let want = f64s(lm.token_logits(&batch, set).unwrap());
        let got = f64s(got);
        let err = rel_diff(&at(&got), &at(&want));
        assert!(err <= 1e-5, "{family}: token logits differ by {err:e}");
        assert!(
            (0..got.len()).all(|p| labelled.contains(&(p as i64)) || got[p] == 0.0),
            "{family}: a logit outside the labels"
        );
    }

    // log p(label) from the full, padded forward.
    let (shape, logits) = values(lm.forward(&batch).unwrap());
    let v = shape[2];
    let want: Vec<f64> = labelled
        .iter()
        .map(|&p| {
            let row = &logits[p as usize * v..(p as usize + 1) * v];
            let max = row.iter().cloned().fold(f64::MIN, f64::max);
            let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
            row[batch.labels[p as usize] as usize] - lse
        })
        .collect();
    let got = at(&f64s(lm.label_logprobs(&batch).unwrap()));
    let err = rel_diff(&got, &want);
    assert!(
        err <= 1e-5,
        "{family}: label log-probabilities differ by {err:e}"
    );
}

#[test]
fn scoring_packs_padded_rows_without_changing_the_numbers() {
    for family in ["gpt2", "gptj", "llama", "gemma2"] {
        check_scoring(family);
    }
}

#[test]
fn gpt2_packed_micro_batches_match_separate_passes() {
    check("gpt2");
}

#[test]
fn gptj_packed_micro_batches_match_separate_passes() {
    check("gptj");
}

#[test]
fn llama_packed_micro_batches_match_separate_passes() {
    check("llama");
}

#[test]
fn gemma2_packed_micro_batches_match_separate_passes() {
    check("gemma2");
}

#[test]
fn packing_refuses_what_it_cannot_keep() {
    let one = |mask: Vec<i64>, labels: Vec<i64>| Batch {
        batch: 1,
        time: mask.len(),
        input_ids: vec![1; mask.len()],
        attention_mask: mask,
        labels,
    };
    let ok = one(vec![1, 1, 0], vec![IGNORE, 2, IGNORE]);
    let pack = Batch::pack(&[ok.clone(), ok.clone()]).unwrap();
    assert_eq!(pack.attention_mask, vec![1, 1, 2, 2]);
    assert_eq!(pack.labels, vec![IGNORE, 2, IGNORE, 2]);
    assert_eq!(pack.positions(), vec![0, 1, 0, 1]);
    let err = Batch::pack(&[ok.clone(), one(vec![1, 0, 0], vec![IGNORE, 5, IGNORE])]);
    assert!(format!("{}", err.unwrap_err()).contains("batch 1: labels[0][1] lies on padding"));
    let err = Batch::pack(std::slice::from_ref(&pack)).unwrap_err();
    assert!(format!("{err}").contains("packed already"), "{err}");
    // Sequences out of order or split, or padding inside a row, are not a layout.
    for mask in [vec![2, 2, 0], vec![1, 2, 1], vec![1, 0, 1], vec![0, 1, 1]] {
        let err = one(mask.clone(), vec![IGNORE; 3])
            .validate(10, 10)
            .unwrap_err();
        assert!(
            format!("{err}").contains("attention_mask[0]"),
            "{mask:?}: {err}"
        );
    }
    // Rows of at most 4 tokens: sequences of 2, 2 | 3 | 2, each row padded to the longest.
    let three = one(vec![1, 1, 1], vec![IGNORE, 7, 7]);
    let rows = Batch::pack_rows(&[ok.clone(), ok.clone(), three.clone(), ok.clone()], 4).unwrap();
    assert_eq!((rows.batch, rows.time), (3, 4));
    assert_eq!(
        rows.attention_mask,
        vec![1, 1, 2, 2, 1, 1, 1, 0, 1, 1, 0, 0]
    );
    assert_eq!(rows.positions(), vec![0, 1, 0, 1, 0, 1, 2, 0, 0, 1, 0, 0]);
    assert_eq!(rows.label_positions(), vec![1, 3, 5, 6, 9]);
    // A sequence longer than the cap gets a row of its own.
    assert_eq!(
        Batch::pack_rows(&[three.clone(), ok.clone()], 2)
            .unwrap()
            .batch,
        2
    );
    // A packed row may be longer than the context as long as each sequence fits.
    let long = Batch::pack(&vec![one(vec![1; 4], vec![IGNORE, 1, 1, 1]); 3]).unwrap();
    long.validate(10, 4).unwrap();
    assert!(long.validate(10, 3).is_err());
}
