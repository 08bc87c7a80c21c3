//! Blocked Cholesky factorization and triangular solves in f64 on the host.
//!
//! Matrices are dense and row-major. The panel work is scalar; the O(n³) trailing
//! updates go through the `gemm` crate (the same kernels as burn's Flex matmul).

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use crate::TensorError;

/// Block size of the blocked algorithms.
const NB: usize = 64;

/// Largest condition-number estimate accepted: beyond it an f32 answer carries no digits.
pub const MAX_CONDITION: f64 = 1e12;

/// Lower-triangular factor `L` of a symmetric positive-definite matrix `A = L Lᵀ`.
#[derive(Debug, Clone)]
pub struct Cholesky {
    n: usize,
    /// Row-major n×n; only the lower triangle is meaningful.
    l: Vec<f64>,
}

fn parallelism(work: usize) -> Parallelism {
    if work >= 1 << 21 {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    }
}

/// `dst[m×n] = dst - lhs[m×k] · rhs[k×n]`, all given as raw strided views.
///
/// # Safety
/// The pointers and strides must describe valid views; `dst` must not overlap the others.
#[allow(clippy::too_many_arguments)]
unsafe fn sub_product(
    m: usize,
    n: usize,
    k: usize,
    dst: (*mut f64, isize, isize),
    lhs: (*const f64, isize, isize),
    rhs: (*const f64, isize, isize),
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    // gemm computes dst = alpha·dst + beta·lhs·rhs; strides are (column, row).
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.0,
            dst.2,
            dst.1,
            true,
            lhs.0,
            lhs.2,
            lhs.1,
            rhs.0,
            rhs.2,
            rhs.1,
            1.0,
            -1.0,
            false,
            false,
            false,
            parallelism(m * n * k),
        );
    }
}

impl Cholesky {
    /// Factors the n×n row-major matrix `a` (only its lower triangle is read).
    ///
    /// Fails with [`TensorError::NotPositiveDefinite`] on a non-positive or non-finite pivot
    /// and with [`TensorError::IllConditioned`] when the pivots span more than
    /// [`MAX_CONDITION`] (as a squared ratio of the largest to the smallest diagonal of `L`).
    pub fn factor(op: &'static str, mut a: Vec<f64>, n: usize) -> Result<Self, TensorError> {
        assert_eq!(a.len(), n * n, "Cholesky::factor: buffer is not n×n");
        let mut k0 = 0;
        while k0 < n {
            let kb = NB.min(n - k0);
            factor_diagonal_block(op, &mut a, n, k0, kb)?;
            let below = k0 + kb;
            if below < n {
                let (top, bottom) = a.split_at_mut(below * n);
                let diag = &top[k0 * n..];
                // Panel: L21 = A21 · L11⁻ᵀ, one independent row at a time.
                bottom.par_chunks_mut(n).for_each(|row| {
                    for j in 0..kb {
                        let lj = &diag[j * n + k0..j * n + k0 + j];
                        let s: f64 = row[k0..k0 + j].iter().zip(lj).map(|(x, y)| x * y).sum();
                        row[k0 + j] = (row[k0 + j] - s) / diag[j * n + k0 + j];
                    }
                });
                // Trailing update: A22 -= L21 · L21ᵀ.
                let m = n - below;
                let base = bottom.as_mut_ptr();
                let ld = n as isize;
                // SAFETY: dst is rows/cols ≥ `below`, the operands are columns k0..below of the
                // same rows: disjoint regions of one allocation, all in bounds.
                unsafe {
                    sub_product(
                        m,
                        m,
                        kb,
                        (base.add(below), ld, 1),
                        (base.add(k0) as *const f64, ld, 1),
                        (base.add(k0) as *const f64, 1, ld),
                    );
                }
            }
            k0 += kb;
        }
        let diag = (0..n).map(|i| a[i * n + i]);
        let (lo, hi) = diag.fold((f64::INFINITY, 0.0f64), |(lo, hi), d| {
            (lo.min(d), hi.max(d))
        });
        let estimate = (hi / lo).powi(2);
        if estimate.is_nan() || estimate > MAX_CONDITION {
            return Err(TensorError::IllConditioned {
                op,
                estimate,
                limit: MAX_CONDITION,
            });
        }
        Ok(Self { n, l: a })
    }

    /// Order of the factored matrix.
    pub fn order(&self) -> usize {
        self.n
    }

    /// The factor `L`, row-major, with the upper triangle left as scratch.
    pub fn factor_rows(&self) -> &[f64] {
        &self.l
    }

    /// Solves `A X = B` in place for a row-major n×m right-hand side.
    pub fn solve_in_place(&self, b: &mut [f64], m: usize) {
        assert_eq!(
            b.len(),
            self.n * m,
            "Cholesky::solve_in_place: rhs is not n×m"
        );
        self.forward(b, m);
        self.backward(b, m);
    }

    /// `L Y = B`.
    fn forward(&self, b: &mut [f64], m: usize) {
        let (n, l) = (self.n, &self.l);
        let mut k0 = 0;
        while k0 < n {
            let kb = NB.min(n - k0);
            let (done, rest) = b.split_at_mut(k0 * m);
            let block = &mut rest[..kb * m];
            // B_k -= L[k, 0..k0] · Y[0..k0]
            // SAFETY: `block` and `done` are disjoint slices of `b`; `l` is separate.
            unsafe {
                sub_product(
                    kb,
                    m,
                    k0,
                    (block.as_mut_ptr(), m as isize, 1),
                    (l.as_ptr().add(k0 * n), n as isize, 1),
                    (done.as_ptr(), m as isize, 1),
                );
            }
            for i in 0..kb {
                let (prev, cur) = block.split_at_mut(i * m);
                let cur = &mut cur[..m];
                for p in 0..i {
                    let lip = l[(k0 + i) * n + k0 + p];
                    axpy(cur, -lip, &prev[p * m..p * m + m]);
                }
                let inv = 1.0 / l[(k0 + i) * n + k0 + i];
                cur.iter_mut().for_each(|x| *x *= inv);
            }
            k0 += kb;
        }
    }

    /// `Lᵀ X = Y`.
    fn backward(&self, b: &mut [f64], m: usize) {
        let (n, l) = (self.n, &self.l);
        let mut end = n;
        while end > 0 {
            let kb = NB.min(end);
            let k0 = end - kb;
            let (head, done) = b.split_at_mut(end * m);
            let block = &mut head[k0 * m..];
            // X_k -= L[end.., k]ᵀ · X[end..]
            // SAFETY: `block` and `done` are disjoint slices of `b`; `l` is separate.
            unsafe {
                sub_product(
                    kb,
                    m,
                    n - end,
                    (block.as_mut_ptr(), m as isize, 1),
                    (l.as_ptr().add(end * n + k0), 1, n as isize),
                    (done.as_ptr(), m as isize, 1),
                );
            }
            for i in (0..kb).rev() {
                let (cur, after) = block.split_at_mut((i + 1) * m);
                let cur = &mut cur[i * m..];
                for p in i + 1..kb {
                    let lpi = l[(k0 + p) * n + k0 + i];
                    axpy(cur, -lpi, &after[(p - i - 1) * m..(p - i) * m]);
                }
                let inv = 1.0 / l[(k0 + i) * n + k0 + i];
                cur.iter_mut().for_each(|x| *x *= inv);
            }
            end = k0;
        }
    }
}

fn axpy(y: &mut [f64], alpha: f64, x: &[f64]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += alpha * x);
}

/// Unblocked Cholesky of the kb×kb diagonal block starting at (k0, k0).
fn factor_diagonal_block(
    op: &'static str,
    a: &mut [f64],
    n: usize,
    k0: usize,
    kb: usize,
) -> Result<(), TensorError> {
    for j in k0..k0 + kb {
        let row_j = j * n;
        let s: f64 = a[row_j + k0..row_j + j].iter().map(|x| x * x).sum();
        let pivot = a[row_j + j] - s;
        if pivot.is_nan() || pivot <= 0.0 || !pivot.is_finite() {
            return Err(TensorError::NotPositiveDefinite {
                op,
                index: j,
                order: n,
                pivot,
            });
        }
        let d = pivot.sqrt();
        a[row_j + j] = d;
        for i in j + 1..k0 + kb {
            let row_i = i * n;
            let s: f64 = (k0..j).map(|p| a[row_i + p] * a[row_j + p]).sum();
            a[row_i + j] = (a[row_i + j] - s) / d;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(n: usize, seed: u64) -> Vec<f64> {
        // A = B Bᵀ + n I with a deterministic B.
        let mut state = seed;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let b: Vec<f64> = (0..n * n).map(|_| next()).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                let s: f64 = (0..n).map(|p| b[i * n + p] * b[j * n + p]).sum();
                a[i * n + j] = s + if i == j { n as f64 } else { 0.0 };
            }
        }
        a
    }

    #[test]
    fn solves_across_block_boundaries() {
        for n in [1, 5, 63, 64, 65, 130, 200] {
            let a = spd(n, n as u64);
            let m = 3;
            let x: Vec<f64> = (0..n * m).map(|i| (i as f64 * 0.37).sin()).collect();
            let mut b = vec![0.0; n * m];
            for i in 0..n {
                for c in 0..m {
                    b[i * m + c] = (0..n).map(|p| a[i * n + p] * x[p * m + c]).sum();
                }
            }
            let chol = Cholesky::factor("test", a, n).unwrap();
            chol.solve_in_place(&mut b, m);
            let err = b
                .iter()
                .zip(&x)
                .map(|(u, v)| (u - v).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-10, "n = {n}: max error {err}");
        }
    }

    #[test]
    fn rejects_indefinite_and_singular() {
        let a = vec![1.0, 2.0, 2.0, 1.0];
        assert!(matches!(
            Cholesky::factor("test", a, 2),
            Err(TensorError::NotPositiveDefinite { index: 1, .. })
        ));
        let a = vec![1.0, 0.0, 0.0, 1e-14];
        assert!(matches!(
            Cholesky::factor("test", a, 2),
            Err(TensorError::IllConditioned { .. })
        ));
        let a = vec![f64::NAN];
        assert!(Cholesky::factor("test", a, 1).is_err());
    }
}
