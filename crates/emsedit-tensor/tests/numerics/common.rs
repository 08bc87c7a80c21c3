//! Test helpers: random matrices and an independent f64 ridge reference.

use burn::tensor::{Tensor, TensorData};
use emsedit_tensor::{Cpu, host_rng};

pub type B = Cpu;
pub type Device = burn::tensor::Device<B>;
use rand::Rng;

/// A row-major f64 matrix with entries uniform in [-1, 1), rounded to f32.
pub fn random(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
    let mut rng = host_rng(seed);
    (0..rows * cols)
        .map(|_| rng.random_range(-1.0f32..1.0) as f64)
        .collect()
}

pub fn tensor(data: &[f64], rows: usize, cols: usize, device: &Device) -> Tensor<B, 2> {
    let v: Vec<f32> = data.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

pub fn host(t: &Tensor<B, 2>) -> Vec<f64> {
    t.clone()
        .into_data()
        .convert::<f64>()
        .into_vec::<f64>()
        .unwrap()
}

/// ‖x − y‖ / ‖y‖ (or ‖x‖ when y is 0).
pub fn rel_err(x: &[f64], y: &[f64]) -> f64 {
    let diff: f64 = x
        .iter()
        .zip(y)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = y.iter().map(|b| b * b).sum::<f64>().sqrt();
    if norm == 0.0 { diff } else { diff / norm }
}

/// Δ = (KᵀK + λI)⁻¹ KᵀV straight from the definition: normal equations solved by Gaussian
/// elimination with partial pivoting, in f64.
pub fn reference_ridge(
    k: &[f64],
    v: &[f64],
    n: usize,
    a: usize,
    b: usize,
    lambda: f64,
) -> Vec<f64> {
    let mut s = vec![0.0; a * a];
    for p in 0..n {
        let row = &k[p * a..p * a + a];
        for i in 0..a {
            let ki = row[i];
            if ki != 0.0 {
                for j in 0..a {
                    s[i * a + j] += ki * row[j];
                }
            }
        }
    }
    for i in 0..a {
        s[i * a + i] += lambda;
    }
    let mut rhs = vec![0.0; a * b];
    for p in 0..n {
        for i in 0..a {
            let ki = k[p * a + i];
            for j in 0..b {
                rhs[i * b + j] += ki * v[p * b + j];
            }
        }
    }
    for col in 0..a {
        let piv = (col..a)
            .max_by(|&x, &y| s[x * a + col].abs().total_cmp(&s[y * a + col].abs()))
            .unwrap();
        if piv != col {
            for j in 0..a {
                s.swap(col * a + j, piv * a + j);
            }
            for j in 0..b {
                rhs.swap(col * b + j, piv * b + j);
            }
        }
        let d = s[col * a + col];
        for r in col + 1..a {
            let f = s[r * a + col] / d;
            if f != 0.0 {
                for j in col..a {
                    s[r * a + j] -= f * s[col * a + j];
                }
                for j in 0..b {
                    rhs[r * b + j] -= f * rhs[col * b + j];
                }
            }
        }
    }
    for col in (0..a).rev() {
        for j in 0..b {
            let mut x = rhs[col * b + j];
            for c in col + 1..a {
                x -= s[col * a + c] * rhs[c * b + j];
            }
            rhs[col * b + j] = x / s[col * a + col];
        }
    }
    rhs
}
