//! The hypernetwork and the decoupled meta-gradients against finite differences.

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};
use emsedit_meta::hypernet::{HyperConfig, HyperNet, Params};
use emsedit_meta::predict::{Predictor, metagrad, predict};
use emsedit_tensor::{Cpu, rng_lock, seed};

type B = Cpu;
/// Finite differences need f64 end to end: burn's ndarray backend in double precision.
type F64 = burn::backend::NdArray<f64>;

const A: usize = 6;
const BV: usize = 4;
const N: usize = 5;

fn random<X: Backend>(shape: [usize; 2], std: f64) -> Tensor<X, 2> {
    Tensor::random(shape, Distribution::Normal(0.0, std), &Default::default())
}

fn values<X: Backend>(t: &Tensor<X, 2>) -> Vec<f64> {
    t.clone().into_data().convert::<f64>().into_vec().unwrap()
}

/// A network with observed statistics, a cache (K, G) and a Γ.
fn setup<X: Backend>(s: u64, lr: f64) -> (HyperNet<X>, Tensor<X, 2>, Tensor<X, 2>, Tensor<X, 2>) {
    let device = Default::default();
    seed::<X>(&device, s);
    let config = HyperConfig {
        rank: 3,
        blocks: 2,
        lr,
    };
    let mut net = HyperNet::<X>::new(A, BV, 2, &config, &device);
    let (k, g) = (random::<X>([N, A], 1.0), random::<X>([N, BV], 1.0));
    net.observe(&k, &g).unwrap();
    net.observe(&random::<X>([3, A], 2.0), &random::<X>([3, BV], 0.5))
        .unwrap();
    (net, k, g, random::<X>([A, BV], 1.0))
}

#[test]
fn a_fresh_network_returns_exactly_the_normalized_input() {
    let _rng = rng_lock();
    let (net, k, g, _) = setup::<B>(1, 1e-6);
    let (kt, gt) = net.pseudo(&k, &g, 1);
    let y = net.normalized(&k, &g);
    assert_eq!([values(&kt), values(&gt)].concat(), {
        let v = values(&y);
        let mut out = Vec::new();
        for r in 0..N {
            out.extend_from_slice(&v[r * (A + BV)..r * (A + BV) + A]);
        }
        for r in 0..N {
            out.extend_from_slice(&v[r * (A + BV) + A..(r + 1) * (A + BV)]);
        }
        out
    });
}

#[test]
fn first_step_gradients_follow_the_inclusive_clamp() {
    let _rng = rng_lock();
    // At initialization Z ≡ 0: B, β, Sh, η and λ̂ get gradient, A and Sc exactly none (§3.4).
    let (net, k, g, gamma) = setup::<B>(2, 1e-6);
    let pred = predict(&net, Predictor::LeastSquares, &k, &g, 1).unwrap();
    let grads = metagrad(&net, &pred, &gamma).unwrap();
    let max = |t: &Tensor<B, 2>| values(t).iter().fold(0f64, |m, x| m.max(x.abs()));
    for l in 0..2 {
        assert_eq!(max(&grads.a[l]), 0.0, "A_{l}");
        assert_eq!(max(&grads.scale[l]), 0.0, "Sc_{l}");
        assert!(
            max(&grads.b[l]) > 0.0 && max(&grads.bias[l]) > 0.0 && max(&grads.shift[l]) > 0.0,
            "block {l}"
        );
        // Only row j = 1 of the per-module tables is touched.
        assert_eq!(
            values(&grads.shift[l])[..A + BV]
                .iter()
                .fold(0f64, |m, x| m.max(x.abs())),
            0.0
        );
    }
    assert_eq!(values(&grads.eta)[0], 0.0);
    assert!(values(&grads.eta)[1] != 0.0 && values(&grads.log_ridge)[1] != 0.0);
}

/// Moves every parameter away from its initial value so that every gradient is non-zero.
/// The biases alternate ±6 by column, so every pre-activation Z sits far from the clamp's
/// kink (finite differences across it would be meaningless) while both sides are exercised.
fn perturbed(net: &HyperNet<F64>) -> Params<F64> {
    let p = &net.params;
    let count = p.tensors().len();
    let t = p.tensors().into_iter().enumerate().map(|(i, t)| {
        let noise = Tensor::random(
            t.dims(),
            Distribution::Normal(0.0, 0.3),
            &Default::default(),
        );
        if i + 2 >= count {
            return t.clone() + noise.mul_scalar(0.1);
        }
        if i % 5 == 2 {
            let [_, d] = t.dims();
            let signs: Vec<f64> = (0..d)
                .map(|c| if c % 2 == 0 { 6.0 } else { -6.0 })
                .collect();
            return Tensor::from_data(TensorData::new(signs, [1, d]), &Default::default()) + noise;
        }
        t.clone() + noise
    });
    Params::from_tensors(t.collect())
}

fn loss(
    net: &HyperNet<F64>,
    predictor: Predictor,
    k: &Tensor<F64, 2>,
    g: &Tensor<F64, 2>,
    gamma: &Tensor<F64, 2>,
) -> f64 {
    let d = predict(net, predictor, k, g, 0).unwrap().delta;
    values(&(d * gamma.clone()).sum().reshape([1, 1]))[0]
}

fn check_finite_differences(predictor: Predictor) {
    let (mut net, k, g, gamma) = setup::<F64>(3, 0.5);
    net.params = perturbed(&net);
    let pred = predict(&net, predictor, &k, &g, 0).unwrap();
    let grads = metagrad(&net, &pred, &gamma).unwrap();
    let base = net
        .params
        .tensors()
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    let analytic = grads.tensors().into_iter().cloned().collect::<Vec<_>>();
    let h = 1e-5;
    for (i, t) in base.iter().enumerate() {
        let dir = Tensor::<F64, 2>::random(
            t.dims(),
            Distribution::Normal(0.0, 1.0),
            &Default::default(),
        );
        let at = |sign: f64| {
            let mut moved = base.clone();
            moved[i] = t.clone() + dir.clone().mul_scalar(sign * h);
            let mut n = net.clone();
            n.params = Params::from_tensors(moved);
            loss(&n, predictor, &k, &g, &gamma)
        };
        let fd = (at(1.0) - at(-1.0)) / (2.0 * h);
        let an = values(&(analytic[i].clone() * dir).sum().reshape([1, 1]))[0];
        let err = (fd - an).abs() / an.abs().max(1e-3);
        assert!(
            err < 1e-5,
            "{predictor:?} tensor {i}: finite difference {fd}, analytic {an}"
        );
    }
}

#[test]
fn metagrad_ls_matches_finite_differences() {
    let _rng = rng_lock();
    check_finite_differences(Predictor::LeastSquares);
}

#[test]
fn metagrad_sum_matches_finite_differences() {
    let _rng = rng_lock();
    check_finite_differences(Predictor::Sum);
}

#[test]
fn params_round_trip_through_their_tensor_list() {
    let _rng = rng_lock();
    let (net, ..) = setup::<B>(4, 1e-6);
    let again = Params::from_tensors(net.params.tensors().into_iter().cloned().collect());
    assert_eq!(again.tensors().len(), 2 * 5 + 2);
    for (x, y) in net.params.tensors().into_iter().zip(again.tensors()) {
        assert_eq!(values(x), values(y));
    }
    let doubled = net.params.add(&net.params);
    assert_eq!(values(&doubled.eta), vec![f64::from(2e-6f32); 2]);
}
