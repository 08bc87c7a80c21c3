//! The ridge solve against an independent f64 reference, its two forms, its gradient, errors.

use crate::common::{host, random, reference_ridge, rel_err, tensor};
use emsedit_tensor::{RidgeForm, TensorError, cpu, ridge_solve};
use proptest::prelude::*;

fn log_uniform(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    (lo.ln()..hi.ln()).prop_map(f64::exp)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Both forms match the f64 definition to 1e-5 relative and agree with each other.
    #[test]
    fn matches_f64_reference(
        n in 1usize..=512,
        a in 1usize..=1024,
        b in 1usize..=24,
        lambda in log_uniform(1e-2, 1e2),
        seed in any::<u64>(),
    ) {
        let device = cpu();
        let k = random(n, a, seed);
        let v = random(n, b, seed ^ 0x5eed);
        let expected = reference_ridge(&k, &v, n, a, b, lambda);
        let (kt, vt) = (tensor(&k, n, a, &device), tensor(&v, n, b, &device));
        let primal = host(ridge_solve(&kt, &vt, lambda, RidgeForm::Primal).unwrap().delta());
        let dual = host(ridge_solve(&kt, &vt, lambda, RidgeForm::Dual).unwrap().delta());
        let auto = ridge_solve(&kt, &vt, lambda, RidgeForm::Auto).unwrap();
        prop_assert_eq!(auto.form(), if n < a { RidgeForm::Dual } else { RidgeForm::Primal });
        prop_assert!(rel_err(&primal, &expected) <= 1e-5, "primal {}", rel_err(&primal, &expected));
        prop_assert!(rel_err(&dual, &expected) <= 1e-5, "dual {}", rel_err(&dual, &expected));
        prop_assert!(rel_err(&dual, &primal) <= 1e-5, "forms {}", rel_err(&dual, &primal));
    }

    /// ∂⟨Γ, Δ⟩/∂(K, V, λ) from `backward` equals central finite differences of the reference.
    #[test]
    fn gradients_match_finite_differences(
        n in 1usize..=6,
        a in 1usize..=7,
        b in 1usize..=4,
        lambda in log_uniform(0.1, 10.0),
        seed in any::<u64>(),
        dual in any::<bool>(),
    ) {
        let device = cpu();
        let k = random(n, a, seed);
        let v = random(n, b, seed ^ 1);
        let gamma = random(a, b, seed ^ 2);
        let loss = |k: &[f64], v: &[f64], lambda: f64| {
            let d = reference_ridge(k, v, n, a, b, lambda);
            d.iter().zip(&gamma).map(|(x, g)| x * g).sum::<f64>()
        };
        let h = 1e-6;
        let fd = |x: &[f64], f: &dyn Fn(&[f64]) -> f64| -> Vec<f64> {
            (0..x.len()).map(|i| {
                let (mut up, mut down) = (x.to_vec(), x.to_vec());
                up[i] += h;
                down[i] -= h;
                (f(&up) - f(&down)) / (2.0 * h)
            }).collect()
        };
        let fd_k = fd(&k, &|kk| loss(kk, &v, lambda));
        let fd_v = fd(&v, &|vv| loss(&k, vv, lambda));
        let fd_l = (loss(&k, &v, lambda + h) - loss(&k, &v, lambda - h)) / (2.0 * h);

        let form = if dual { RidgeForm::Dual } else { RidgeForm::Primal };
        let ridge = ridge_solve(&tensor(&k, n, a, &device), &tensor(&v, n, b, &device), lambda, form).unwrap();
        let grads = ridge.backward(&tensor(&gamma, a, b, &device), true).unwrap();
        let gk = host(grads.keys.as_ref().unwrap());
        let gv = host(&grads.values);
        prop_assert!(rel_err(&gk, &fd_k) <= 1e-5, "∂K {} ({:?})", rel_err(&gk, &fd_k), form);
        prop_assert!(rel_err(&gv, &fd_v) <= 1e-5, "∂V {} ({:?})", rel_err(&gv, &fd_v), form);
        prop_assert!((grads.lambda - fd_l).abs() <= 1e-6 * (1.0 + fd_l.abs()), "∂λ {} vs {}", grads.lambda, fd_l);
    }
}

#[test]
fn singular_system_is_an_error_not_nans() {
    let device = cpu();
    // Two identical key columns and no ridge: KᵀK is singular.
    let k = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0];
    let v = [1.0, 2.0, 3.0];
    let err = ridge_solve(
        &tensor(&k, 3, 2, &device),
        &tensor(&v, 3, 1, &device),
        0.0,
        RidgeForm::Primal,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            TensorError::NotPositiveDefinite { .. } | TensorError::IllConditioned { .. }
        ),
        "{err}"
    );
    // The same keys with N < a in dual form: KKᵀ (rank 1 of 3) is singular too.
    let k = [1.0, 2.0, 3.0, 4.0, 2.0, 4.0, 6.0, 8.0];
    let err = ridge_solve(
        &tensor(&k, 2, 4, &device),
        &tensor(&v[..2], 2, 1, &device),
        0.0,
        RidgeForm::Dual,
    )
    .unwrap_err();
    assert!(err.to_string().contains("ridge solve"), "{err}");
}

#[test]
fn non_finite_inputs_are_errors() {
    let device = cpu();
    let good = [1.0, 0.5, -0.25, 2.0];
    let v = [1.0, 2.0];
    for form in [RidgeForm::Primal, RidgeForm::Dual] {
        let k = tensor(&[1.0, f64::NAN, -0.25, 2.0], 2, 2, &device);
        let err = ridge_solve(&k, &tensor(&v, 2, 1, &device), 1.0, form).unwrap_err();
        assert!(
            matches!(err, TensorError::NonFinite { what: "keys", .. }),
            "{err}"
        );
        let vt = tensor(&[f64::INFINITY, 1.0], 2, 1, &device);
        let err = ridge_solve(&tensor(&good, 2, 2, &device), &vt, 1.0, form).unwrap_err();
        assert!(
            matches!(err, TensorError::NonFinite { what: "values", .. }),
            "{err}"
        );
    }
    let (k, vt) = (tensor(&good, 2, 2, &device), tensor(&v, 2, 1, &device));
    for lambda in [-1.0, f64::NAN, f64::INFINITY] {
        let err = ridge_solve(&k, &vt, lambda, RidgeForm::Auto).unwrap_err();
        assert!(matches!(err, TensorError::InvalidRidge { .. }), "{err}");
    }
    let ridge = ridge_solve(&k, &vt, 1.0, RidgeForm::Auto).unwrap();
    let err = ridge
        .backward(&tensor(&[f64::NAN, 0.0], 2, 1, &device), false)
        .unwrap_err();
    assert!(matches!(err, TensorError::NonFinite { .. }), "{err}");
}

#[test]
fn mismatched_shapes_are_errors() {
    let device = cpu();
    let k = tensor(&[1.0, 2.0, 3.0, 4.0], 2, 2, &device);
    let v = tensor(&[1.0, 2.0, 3.0], 3, 1, &device);
    let err = ridge_solve(&k, &v, 1.0, RidgeForm::Auto).unwrap_err();
    assert!(matches!(err, TensorError::Shape { .. }), "{err}");
    let ridge = ridge_solve(
        &k,
        &tensor(&[1.0, 2.0], 2, 1, &device),
        1.0,
        RidgeForm::Auto,
    )
    .unwrap();
    let err = ridge
        .backward(&tensor(&[1.0, 2.0, 3.0], 3, 1, &device), false)
        .unwrap_err();
    assert!(matches!(err, TensorError::Shape { .. }), "{err}");
}

#[test]
fn runs_on_an_autodiff_backend_and_agrees() {
    use burn::tensor::Tensor;
    use emsedit_tensor::CpuTrain;
    let device = cpu();
    let (k, v) = (random(5, 9, 3), random(5, 2, 4));
    let plain = host(
        ridge_solve(
            &tensor(&k, 5, 9, &device),
            &tensor(&v, 5, 2, &device),
            0.5,
            RidgeForm::Auto,
        )
        .unwrap()
        .delta(),
    );
    let kt = Tensor::<CpuTrain, 2>::from_inner(tensor(&k, 5, 9, &device)).require_grad();
    let vt = Tensor::<CpuTrain, 2>::from_inner(tensor(&v, 5, 2, &device));
    let ridge = ridge_solve(&kt, &vt, 0.5, RidgeForm::Auto).unwrap();
    assert_eq!(host(&ridge.delta().clone().inner()), plain);
}
