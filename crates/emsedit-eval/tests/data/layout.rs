//! Token layout of tuples (spec §1.2) and micro-batches (spec §1.3).

use std::path::Path;

use emsedit_eval::data::{Tuple, collate, tokenize};
use emsedit_llm::{IGNORE, LmTokenizer};
use proptest::prelude::*;

fn tokenizer(family: &str) -> LmTokenizer {
    LmTokenizer::load_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/llm")
            .join(family),
    )
    .unwrap()
}

fn tuple(prompt: &str, target: &str, old: Option<&str>) -> Tuple {
    Tuple {
        prompt: prompt.into(),
        target: target.into(),
        old_target: old.map(str::to_string),
    }
}

#[test]
fn hand_computed_layout_gpt2_and_llama() {
    // Ids from the fixtures' golden.json: "The capital of Veltria is" / " Orsk" / " 1923".
    let gpt2 = tokenizer("gpt2");
    let t = tokenize(&gpt2, &tuple("The capital of Veltria is", "Orsk", None)).unwrap();
    assert_eq!(t.input_ids, vec![282, 320, 290, 401, 259]);
    assert_eq!(t.labels, vec![IGNORE, IGNORE, IGNORE, IGNORE, 433]);
    assert_eq!(t.answer_len(), 1);
    let t = tokenize(
        &gpt2,
        &tuple("Orskworks was founded in", "1923", Some("Orsk")),
    )
    .unwrap();
    assert_eq!(t.input_ids, vec![46, 384, 86, 396, 293, 436, 257, 327, 17]);
    assert_eq!(
        t.labels,
        vec![IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, 327, 17, 18]
    );
    assert_eq!(
        t.old_labels.unwrap(),
        vec![IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, 433]
    );
    // LLaMA-3's tokenizer prepends <|begin_of_text|> (480) to the prompt only.
    let llama = tokenizer("llama");
    let t = tokenize(&llama, &tuple("The capital of Veltria is", "Orsk", None)).unwrap();
    assert_eq!(t.input_ids, vec![480, 281, 320, 289, 401, 259]);
    assert_eq!(t.labels, vec![IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, 432]);
}

#[test]
fn a_target_that_encodes_to_nothing_is_an_error() {
    let gpt2 = tokenizer("gpt2");
    assert!(tokenize(&gpt2, &tuple("", "x", None)).is_err());
}

fn text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 ,.?'é]{1,40}".prop_filter("has a non-space", |s| !s.trim().is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn labels_are_the_inputs_shifted(prompt in text(), target in "[a-z]{1,12}( [a-z]{1,8}){0,2}", family in prop::sample::select(vec!["gpt2", "llama", "gemma2"])) {
        let tok = tokenizer(family);
        let p = tok.encode_prompt(&prompt).unwrap();
        let t = tok.encode_target(&target).unwrap();
        prop_assume!(!p.is_empty());
        let tt = tokenize(&tok, &tuple(&prompt, &target, None)).unwrap();
        let (np, a) = (p.len(), t.len());
        prop_assert_eq!(tt.input_ids.len(), np + a - 1);
        prop_assert_eq!(tt.labels.len(), tt.input_ids.len());
        prop_assert!(tt.labels[..np - 1].iter().all(|&l| l == IGNORE));
        let t64: Vec<i64> = t.iter().map(|&x| x as i64).collect();
        prop_assert_eq!(&tt.labels[np - 1..], t64.as_slice());
        // Teacher forcing: position np-1+j is fed target token j-1 and predicts token j.
        prop_assert_eq!(&tt.input_ids[np..], &t64[..a - 1]);
        prop_assert_eq!(tt.answer_len(), a);
    }

    #[test]
    fn micro_batches_are_sorted_chunked_and_padded(
        lens in prop::collection::vec((1usize..12, 1usize..5, 1usize..5), 1..14),
        chunk in 1usize..6,
        quirks in any::<bool>(),
    ) {
        let tuples: Vec<_> = lens.iter().enumerate().map(|(k, &(p, a, o))| emsedit_eval::data::TokenizedTuple {
            input_ids: (0..p + a - 1).map(|i| (k * 100 + i + 1) as i64).collect(),
            labels: std::iter::repeat_n(IGNORE, p - 1).chain((0..a).map(|i| (k * 100 + 50 + i) as i64)).collect(),
            old_labels: Some(std::iter::repeat_n(IGNORE, p - 1).chain((0..o).map(|i| (k * 100 + 80 + i) as i64)).collect()),
        }).collect();
        let batches = collate(&tuples, chunk, quirks);
        prop_assert_eq!(batches.len(), tuples.len().div_ceil(chunk));
        let mut seen = Vec::new();
        let mut last_len = usize::MAX;
        for mb in &batches {
            let b = &mb.batch;
            prop_assert!(b.batch <= chunk);
            prop_assert_eq!(b.time, mb.rows.iter().map(|&r| tuples[r].len()).max().unwrap());
            for (i, &r) in mb.rows.iter().enumerate() {
                let t = &tuples[r];
                prop_assert!(t.len() <= last_len, "longest first");
                last_len = t.len();
                let row = |v: &[i64]| v[i * b.time..(i + 1) * b.time].to_vec();
                let pad = b.time - t.len();
                prop_assert_eq!(row(&b.input_ids), [t.input_ids.clone(), vec![0; pad]].concat());
                prop_assert_eq!(row(&b.attention_mask), [vec![1; t.len()], vec![0; pad]].concat());
                prop_assert_eq!(row(&b.labels), [t.labels.clone(), vec![IGNORE; pad]].concat());
                let old = mb.old_labels.as_ref().unwrap();
                let o = t.old_labels.as_ref().unwrap();
                let pad_old = if quirks { 0 } else { IGNORE };
                prop_assert_eq!(
                    old[i * mb.old_width..(i + 1) * mb.old_width].to_vec(),
                    [o.clone(), vec![pad_old; mb.old_width - o.len()]].concat()
                );
                seen.push(r);
            }
        }
        seen.sort();
        prop_assert_eq!(seen, (0..tuples.len()).collect::<Vec<_>>());
    }
}
