//! Adam and clipping against PyTorch's formulas.

use burn::tensor::{Tensor as T, TensorData};
use emsedit_tensor::{Adam, AdamConfig, clip_coefficient, cpu, grad_norm};
use proptest::prelude::*;

use crate::common::B;

type Tensor<const D: usize> = T<B, D>;

fn vec1(v: &[f32]) -> Tensor<1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &cpu())
}

fn read(t: Tensor<2>) -> Vec<f32> {
    t.into_data().into_vec::<f32>().unwrap()
}

/// torch.optim.Adam's single-tensor update, written out in f64.
fn torch_adam(c: &AdamConfig, grads: &[f64]) -> f64 {
    let (mut p, mut m, mut v) = (0.0f64, 0.0f64, 0.0f64);
    for (t, g) in grads.iter().enumerate() {
        let step = (t + 1) as i32;
        m += (g - m) * (1.0 - c.beta1);
        v = v * c.beta2 + (1.0 - c.beta2) * g * g;
        let denom = v.sqrt() / (1.0 - c.beta2.powi(step)).sqrt() + c.eps;
        p -= c.lr / (1.0 - c.beta1.powi(step)) * m / denom;
    }
    p
}

proptest! {
    #[test]
    fn first_step_is_lr_times_sign(g in prop::collection::vec(prop_oneof![-1e3f32..1e3, -1e-6f32..1e-6, Just(0.0f32)], 1..40)) {
        let c = AdamConfig::default();
        let mut adam = Adam::<B>::new(c);
        let n = g.len();
        let p = Tensor::<2>::zeros([1, n], &cpu());
        let grad = vec1(&g).reshape([1, n]);
        let out = read(adam.step(0, p, grad).unwrap());
        for (x, g) in out.iter().zip(&g) {
            let g = *g as f64;
            let want = -c.lr * g / (g.abs() + c.eps);
            prop_assert!((*x as f64 - want).abs() <= 1e-6 * c.lr + 1e-6 * want.abs(), "{} vs {}", x, want);
        }
    }

    #[test]
    fn several_steps_follow_torch(grads in prop::collection::vec(-2.0f64..2.0, 1..8)) {
        let c = AdamConfig { lr: 1e-2, ..AdamConfig::default() };
        let mut adam = Adam::<B>::new(c);
        let mut p = Tensor::<2>::zeros([1, 1], &cpu());
        for g in &grads {
            p = adam.step(3, p, Tensor::<2>::full([1, 1], *g, &cpu())).unwrap();
        }
        let got = read(p)[0] as f64;
        let want = torch_adam(&c, &grads);
        prop_assert!((got - want).abs() <= 1e-5 * (c.lr * grads.len() as f64), "{} vs {}", got, want);
        prop_assert_eq!(adam.steps(3), grads.len() as u32);
    }
}

#[test]
fn zero_gradient_still_advances_the_step() {
    let mut adam = Adam::<B>::new(AdamConfig::default());
    let p = Tensor::<2>::ones([2, 2], &cpu());
    let p = adam.step(0, p, Tensor::zeros([2, 2], &cpu())).unwrap();
    assert_eq!(read(p), vec![1.0; 4]);
    assert_eq!(adam.steps(0), 1);
    assert_eq!(adam.steps(1), 0);
}

#[test]
fn mismatched_gradient_is_an_error() {
    let mut adam = Adam::<B>::new(AdamConfig::default());
    let err = adam.step(
        0,
        Tensor::<2>::ones([2, 2], &cpu()),
        Tensor::zeros([4, 1], &cpu()),
    );
    assert!(err.is_err());
    adam.step(
        0,
        Tensor::<2>::ones([2, 2], &cpu()),
        Tensor::zeros([2, 2], &cpu()),
    )
    .unwrap();
    assert!(
        adam.step(
            0,
            Tensor::<2>::ones([3, 2], &cpu()),
            Tensor::zeros([3, 2], &cpu())
        )
        .is_err()
    );
}

#[test]
fn clipping_matches_torch_formula() {
    let g1 = vec1(&[3.0, 0.0]);
    let g2 = Tensor::<2>::from_floats([[0.0, 4.0], [0.0, 0.0]], &cpu());
    let norms = [grad_norm(&g1), grad_norm(&g2)];
    assert_eq!(norms, [3.0, 4.0]);
    let (total, coef) = clip_coefficient(&norms, 1.0);
    assert_eq!(total, 5.0);
    assert_eq!(coef, 1.0f32 / (5.0f32 + 1e-6));
    // Below the threshold the factor is exactly 1.
    assert_eq!(clip_coefficient(&[0.3, 0.4], 1.0), (0.5, 1.0));
    assert_eq!(clip_coefficient(&[], 1.0), (0.0, 1.0));
}
