//! Passes split by rows into parts run in parallel ([`emsedit_llm::parts`]) give one pass's
//! numbers.

use emsedit_llm::parts::row_parts;
use emsedit_llm::{Batch, CausalLm, IGNORE, Objective};
use emsedit_tensor::{Cpu, cpu};

use crate::golden::{Golden, fixture, rel_diff, values};
use crate::packed::{agree, joined as flat};

/// Row `r` of `batch` as a batch of its own.
fn row(batch: &Batch, r: usize) -> Batch {
    let span = r * batch.time..(r + 1) * batch.time;
    Batch {
        batch: 1,
        time: batch.time,
        input_ids: batch.input_ids[span.clone()].to_vec(),
        attention_mask: batch.attention_mask[span.clone()].to_vec(),
        labels: batch.labels[span].to_vec(),
    }
}

fn check(family: &str) {
    let golden = Golden::load(family);
    let batch = golden.batch();
    let whole = CausalLm::<Cpu>::load(&fixture(family), &cpu()).unwrap();
    let mut whole = whole;
    whole.set_pass_parts(1);
    let mut split = whole.clone();
    split.set_pass_parts(2);
    let modules = golden.module_ids(&whole);
    // Micro-batches of the golden rows, one or two rows each, until they pack into three rows
    // or more; the last micro-batch without labels on its first row.
    let mut micro = Vec::new();
    let mut r = 0;
    while Batch::pack(&micro).map_or(0, |p| p.batch) < 3 {
        let mut b = row(&batch, r % batch.batch);
        if micro.len() % 3 == 2 {
            let next = row(&batch, (r + 1) % batch.batch);
            b.batch = 2;
            b.input_ids.extend(next.input_ids);
            b.attention_mask.extend(next.attention_mask);
            b.labels.extend(next.labels);
            b.labels[..b.time].iter_mut().for_each(|l| *l = IGNORE);
        }
        micro.push(b);
        r += 1;
    }
    let pack = Batch::pack(&micro).unwrap();
    assert!(
        row_parts(&pack, 2).len() == 2,
        "{family}: the packed batch splits in two"
    );

    let want = flat(&whole.edit_gradients_packed(&micro, &modules).unwrap());
    let got = flat(&split.edit_gradients_packed(&micro, &modules).unwrap());
    agree(family, "packed cross-entropy", &got, &want, 1e-5);
    // One mean over every labelled position of a batch of several rows.
    let want = flat(&whole.edit_gradients(&pack, &modules).unwrap());
    let got = flat(&split.edit_gradients(&pack, &modules).unwrap());
    agree(family, "mean cross-entropy", &got, &want, 1e-5);

    // Every logit of a forward pass over several rows.
    let want = values(whole.forward(&pack).unwrap());
    let got = values(split.forward(&pack).unwrap());
    assert_eq!(got.0, want.0, "{family}: forward shape");
    let err = rel_diff(&got.1, &want.1);
    assert!(err <= 1e-5, "{family}: forward logits differ by {err:e}");

    // Label logits, and a KL against them after a shift of the top module.
    let reference = whole.label_logits(&pack).unwrap();
    let got = values(split.label_logits(&pack).unwrap()).1;
    let err = rel_diff(&got, &values(reference.clone()).1);
    assert!(err <= 1e-5, "{family}: label logits differ by {err:e}");
    // The same from the micro-batches, split as their gradient pass splits them.
    for lm in [&whole, &split] {
        let got = values(lm.label_logits_packed(&micro).unwrap());
        assert_eq!(
            got.0,
            values(reference.clone()).0,
            "{family}: packed label logits shape"
        );
        let err = rel_diff(&got.1, &values(reference.clone()).1);
        assert!(
            err <= 1e-5,
            "{family}: packed label logits differ by {err:e}"
        );
    }
    let top = *modules.iter().max_by_key(|m| m.layer).unwrap();
    let shift = whole.weight(top).mul_scalar(2.0);
    for lm in [&mut whole, &mut split] {
        lm.apply_shift(top, &shift).unwrap();
    }
    let kl = Objective::Kl(&reference);
    let want = flat(&whole.gradients_packed(&micro, &[top], kl, None).unwrap());
    assert!(want[0][0] > 1e-6, "{family}: the shift moved nothing");
    let got = flat(&split.gradients_packed(&micro, &[top], kl, None).unwrap());
    agree(family, "KL", &got, &want, 1e-3);

    // A reference of another size is refused.
    let short = reference.clone().narrow(0, 0, reference.dims()[0] - 1);
    let err = split.gradients_packed(&micro, &[top], Objective::Kl(&short), None);
    assert!(err.is_err(), "{family}: a short reference is refused");
}

#[test]
fn split_passes_match_one_pass() {
    for family in ["gpt2", "gptj", "llama", "gemma2"] {
        check(family);
    }
}

#[test]
fn cpu_models_split_by_default() {
    let lm = CausalLm::<Cpu>::load(&fixture("gpt2"), &cpu()).unwrap();
    assert_eq!(lm.pass_parts(), emsedit_llm::parts::CPU_PASS_PARTS);
}
