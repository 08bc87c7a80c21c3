//! The cross-entropy at an embedding-shaped head and its gradient, in one sweep over the head.
//!
//! A gradient pass needs the head only at its labelled rows (8–24 of them), where the product
//! with the V × d head is a thin one that reads all of E for little arithmetic; autodiff reads E
//! a second time for the input gradient. [`head_nll`] takes E in blocks of vocabulary rows and
//! uses each block for both products while it is still in cache.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// Vocabulary rows per block of [`head_nll`]: 576–640 KiB of a 576–640-wide head, within a
/// core's L2 cache (blocks of 128 to 1,024 rows timed within 4% of each other).
pub const HEAD_BLOCK_ROWS: usize = 256;

/// For rows `h` (n × d) under the head `e` (V × d) and targets `t` (n ids below V): each
/// row's negative log-likelihood `-log softmax(h Eᵀ)[t]` (n) and its gradient with respect
/// to the row, `softmax(h Eᵀ) E − E[t]` (n × d).
///
/// The logits are taken `block` vocabulary rows at a time; each block's exponentials (shifted
/// by the block's maximum) are summed and multiplied into E's block at once, and the blocks
/// are rescaled to the overall maximum at the end, as a log-sum-exp over the whole row.
pub fn head_nll<B: Backend>(
    h: Tensor<B, 2>,
    e: &Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    block: usize,
) -> (Tensor<B, 1>, Tensor<B, 2>) {
    let [n, _] = h.dims();
    let [vocab, _] = e.dims();
    let block = block.max(1);
    let mut maxes = Vec::new();
    let mut sums = Vec::new();
    let mut weighted = Vec::new();
    let mut start = 0;
    while start < vocab {
        let len = block.min(vocab - start);
        let rows = e.clone().narrow(0, start, len);
        let logits = h.clone().matmul(rows.clone().transpose());
        let max = logits.clone().max_dim(1);
        let exp = (logits - max.clone()).exp();
        sums.push(exp.clone().sum_dim(1));
        weighted.push(exp.matmul(rows));
        maxes.push(max);
        start += len;
    }
    // An empty head: no probability anywhere.
    let empty = || (h.zeros_like().sum_dim(1).reshape([n]), h.zeros_like());
    let Some(max) = maxes.iter().cloned().reduce(|a, b| a.max_pair(b)) else {
        return empty();
    };
    let scales: Vec<_> = maxes.into_iter().map(|m| (m - max.clone()).exp()).collect();
    let rescaled = |parts: Vec<Tensor<B, 2>>| {
        parts
            .into_iter()
            .zip(&scales)
            .map(|(p, k)| p * k.clone())
            .reduce(|a, b| a + b)
    };
    let (Some(total), Some(acc)) = (rescaled(sums), rescaled(weighted)) else {
        return empty();
    };
    let target_rows = e.clone().select(0, targets);
    let target_logit = (h * target_rows.clone()).sum_dim(1);
    let nll = (max + total.clone().log() - target_logit).reshape([n]);
    let grad = acc / total - target_rows;
    (nll, grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;
    use burn::tensor::TensorData;
    use burn::tensor::activation::log_softmax;
    use emsedit_tensor::{Cpu, cpu};

    fn tensor<B: Backend>(rows: usize, cols: usize, seed: usize) -> Tensor<B, 2> {
        let v = (0..rows * cols)
            .map(|i| (((i * 7919 + seed * 104_729) % 1009) as f32 / 1009.0 - 0.5) * 3.0)
            .collect();
        Tensor::from_data(TensorData::new(v, [rows, cols]), &Default::default())
    }

    #[test]
    fn matches_autodiff_through_log_softmax_at_every_block_size() {
        let (n, d, vocab) = (11, 24, 1003);
        let e = tensor::<Cpu>(vocab, d, 1);
        let ids: Vec<i64> = (0..n as i64).map(|i| (i * 97 + 5) % vocab as i64).collect();
        let targets =
            || Tensor::<Cpu, 1, Int>::from_data(TensorData::new(ids.clone(), [n]), &cpu());

        let h = tensor::<Autodiff<Cpu>>(n, d, 2).require_grad();
        let e_ad = Tensor::<Autodiff<Cpu>, 2>::from_inner(e.clone());
        let logp = log_softmax(h.clone().matmul(e_ad.transpose()), 1);
        let targets_ad = Tensor::<Autodiff<Cpu>, 2, Int>::from_data(
            TensorData::new(ids.clone(), [n, 1]),
            &cpu(),
        );
        let nll = logp.gather(1, targets_ad).neg().reshape([n]);
        let want_nll = nll.clone().inner().into_data().into_vec::<f32>().unwrap();
        let grads = nll.sum().backward();
        let want_grad = h
            .grad(&grads)
            .unwrap()
            .into_data()
            .into_vec::<f32>()
            .unwrap();

        for block in [1, 7, 256, 1003, 5000] {
            let (got_nll, got_grad) = head_nll(h.clone().inner(), &e, targets(), block);
            let close = |got: Vec<f32>, want: &[f32], what: &str| {
                for (i, (g, w)) in got.iter().zip(want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                        "{what} {i} at block {block}: {g} against {w}"
                    );
                }
            };
            close(got_nll.into_data().into_vec().unwrap(), &want_nll, "nll");
            close(
                got_grad.into_data().into_vec().unwrap(),
                &want_grad,
                "gradient",
            );
        }
    }

    #[test]
    fn an_empty_head_gives_zeros() {
        let e = Tensor::<Cpu, 2>::from_data(TensorData::new(Vec::<f32>::new(), [0, 4]), &cpu());
        let h = tensor::<Cpu>(3, 4, 5);
        let targets = Tensor::<Cpu, 1, Int>::from_data(TensorData::new(vec![0i64; 3], [3]), &cpu());
        let (nll, grad) = head_nll(h, &e, targets, 16);
        assert_eq!(nll.into_data().into_vec::<f32>().unwrap(), vec![0.0; 3]);
        assert_eq!(grad.into_data().into_vec::<f32>().unwrap(), vec![0.0; 12]);
    }

    #[test]
    fn large_logits_stay_finite() {
        let e = tensor::<Cpu>(50, 4, 3) * 1000.0;
        let h = tensor::<Cpu>(3, 4, 4);
        let targets =
            Tensor::<Cpu, 1, Int>::from_data(TensorData::new(vec![0i64, 17, 49], [3]), &cpu());
        let (nll, grad) = head_nll(h, &e, targets, 16);
        assert!(
            nll.into_data()
                .into_vec::<f32>()
                .unwrap()
                .iter()
                .all(|x| x.is_finite() && *x >= 0.0)
        );
        assert!(
            grad.into_data()
                .into_vec::<f32>()
                .unwrap()
                .iter()
                .all(|x| x.is_finite())
        );
    }
}
