//! Metrics on hand-built logits, including CounterFact's edge cases (spec §5.2).

use emsedit_eval::metrics::{
    counterfact_scores, mean, old_tokens, sequence_logprob, token_accuracy,
};
use emsedit_llm::{Batch, IGNORE};

const I: i64 = IGNORE;

fn batch(time: usize, labels: Vec<i64>) -> Batch {
    let n = labels.len();
    Batch {
        batch: n / time,
        time,
        input_ids: vec![1; n],
        attention_mask: vec![1; n],
        labels,
    }
}

#[test]
fn token_accuracy_is_per_prompt_over_answer_tokens() {
    let b = batch(4, vec![I, 5, 6, 7, I, I, 9, I]);
    let argmax = vec![0, 5, 0, 7, 3, 3, 9, 3];
    assert_eq!(token_accuracy(&b, &argmax), vec![2.0 / 3.0, 1.0]);
    assert_eq!(mean(&[0.5, 1.0]), 0.75);
    assert_eq!(mean(&[]), 0.0);
}

#[test]
fn counterfact_compares_new_and_old_token_logits() {
    // Row 0: new target 2 tokens, old 2 tokens; row 1: new 1 token, old 3 tokens.
    let b = batch(4, vec![I, I, 10, 11, I, I, 12, I]);
    let old_width = 5;
    let old = vec![I, I, 20, 21, I, I, I, 22, 23, 24];
    let new_logits = vec![0.0, 0.0, 3.0, 1.0, 0.0, 0.0, 5.0, 0.0];
    let old_logits = vec![0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 9.0, 0.0];
    // w = min(4, 5) = 4. Row 0: q=2 wins (3 > 2), q=3 loses (1 < 2) → 1/2.
    // Row 1: only q=2 has a label; 5 < 9 loses → 0. Its old tokens past w are cut.
    let s = counterfact_scores(&b, &old, old_width, &new_logits, &old_logits);
    assert_eq!(s, vec![0.5, 0.0]);
    let tokens = old_tokens(&b, &old, old_width);
    assert_eq!(tokens, vec![0, 0, 20, 21, 0, 0, 22, 23]);
}

#[test]
fn counterfact_quirk_of_padding_old_labels_with_token_zero() {
    // One row whose new target (2 tokens) is longer than its old target (1 token), next to a
    // row with a 2-token old target, so the old-label matrix reaches position 3.
    let b = batch(4, vec![I, I, 10, 11, I, I, 12, 13]);
    let old_correct = vec![I, I, 20, I, I, I, 22, 23];
    let old_quirk = vec![I, I, 20, 0, I, I, 22, 23];
    let new_logits = vec![0.0, 0.0, 3.0, 1.0, 0.0, 0.0, 3.0, 3.0];
    // Token 0's logit at position 3 is low, the reference counts it as a win.
    let old_logits = vec![0.0, 0.0, 2.0, -5.0, 0.0, 0.0, 2.0, 2.0];
    assert_eq!(
        counterfact_scores(&b, &old_correct, 4, &new_logits, &old_logits),
        vec![0.5, 1.0]
    );
    assert_eq!(
        counterfact_scores(&b, &old_quirk, 4, &new_logits, &old_logits),
        vec![1.0, 1.0]
    );
    // When the old labels are narrower than the batch, positions past them drop out of both
    // numerator and denominator.
    let old_narrow = vec![I, I, 20, I, I, 22];
    assert_eq!(
        counterfact_scores(&b, &old_narrow, 3, &new_logits, &old_logits),
        vec![1.0, 1.0]
    );
    // A row with no label before w scores 0 instead of 0/0.
    let late = batch(4, vec![I, I, I, 10]);
    assert_eq!(
        counterfact_scores(&late, &[I, I], 2, &[0.0; 4], &[0.0; 4]),
        vec![0.0]
    );
}

#[test]
fn sequence_logprob_sums_answer_positions() {
    let b = batch(3, vec![I, 4, 5, I, I, 6]);
    let lp = vec![-9.0, -0.5, -0.25, -9.0, -9.0, -2.0];
    assert_eq!(sequence_logprob(&b, &lp), vec![-0.75, -2.0]);
}
