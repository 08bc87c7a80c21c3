//! The running normalizer equals the statistics of every row seen (spec §3.2).

use crate::common::{B, host, tensor};
use emsedit_tensor::{APPLY_EPS, RunningNorm, STD_EPS, cpu};
use proptest::prelude::*;

fn batches() -> impl Strategy<Value = (usize, Vec<Vec<Vec<f64>>>)> {
    (1usize..=6).prop_flat_map(|d| {
        let row = prop::collection::vec(-5.0f64..5.0, d);
        let batch = prop::collection::vec(row, 1..=5);
        (Just(d), prop::collection::vec(batch, 1..=6))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn equals_mean_and_unbiased_std_of_all_rows((d, batches) in batches(), offset in -50.0f64..50.0) {
        let device = cpu();
        let mut norm = RunningNorm::<B>::new(d, &device);
        let mut seen: Vec<Vec<f64>> = Vec::new();
        for batch in &batches {
            let rows: Vec<Vec<f64>> = batch.iter()
                .map(|r| r.iter().map(|x| ((x + offset) as f32) as f64).collect())
                .collect();
            let flat: Vec<f64> = rows.iter().flatten().copied().collect();
            norm.update(&tensor(&flat, rows.len(), d, &device)).unwrap();
            seen.extend(rows);

            let n = seen.len() as f64;
            let mean: Vec<f64> = (0..d).map(|j| seen.iter().map(|r| r[j]).sum::<f64>() / n).collect();
            let std: Vec<f64> = (0..d).map(|j| {
                let m2: f64 = seen.iter().map(|r| (r[j] - mean[j]).powi(2)).sum();
                (m2 / (n - 1.0 + STD_EPS)).sqrt()
            }).collect();
            prop_assert_eq!(norm.count(), seen.len() as u64);
            for (got, want) in host(norm.mean()).iter().zip(&mean) {
                prop_assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "mean {} vs {}", got, want);
            }
            for (got, want) in host(norm.std()).iter().zip(&std) {
                prop_assert!((got - want).abs() <= 1e-4 * (1.0 + want.abs()), "std {} vs {}", got, want);
            }
        }
    }
}

#[test]
fn first_update_sets_batch_statistics_and_apply_normalizes() {
    let device = cpu();
    let mut norm = RunningNorm::<B>::new(2, &device);
    assert_eq!(host(norm.std()), vec![1.0, 1.0]);
    norm.update(&tensor(&[1.0, 10.0, 3.0, 14.0], 2, 2, &device))
        .unwrap();
    assert_eq!(host(norm.mean()), vec![2.0, 12.0]);
    let std = host(norm.std());
    assert!(
        (std[0] - 2f64.sqrt()).abs() < 1e-6 && (std[1] - 8f64.sqrt()).abs() < 1e-5,
        "{std:?}"
    );
    let var = host(&norm.var());
    assert!(
        (var[0] - 1.0).abs() < 1e-6 && (var[1] - 4.0).abs() < 1e-6,
        "{var:?}"
    );
    let out = host(&norm.apply(tensor(&[1.0, 10.0], 1, 2, &device)));
    let expect = (1.0 - 2.0) / (std[0] + APPLY_EPS as f64);
    assert!((out[0] - expect).abs() < 1e-6, "{out:?}");
}

#[test]
fn wrong_width_or_empty_batch_is_an_error() {
    let device = cpu();
    let mut norm = RunningNorm::<B>::new(3, &device);
    assert!(norm.update(&tensor(&[1.0, 2.0], 1, 2, &device)).is_err());
    assert!(norm.update(&tensor(&[], 0, 3, &device)).is_err());
    assert_eq!(norm.count(), 0);
}
