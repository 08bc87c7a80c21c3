//! Dense row-major f64 matrices on the host, with `gemm` products.
//!
//! The ridge solve runs here whatever the backend: the data are moved once, every product is
//! a multi-threaded `gemm`, and f64 keeps the answer exact to an f32 rounding.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use gemm::{Parallelism, gemm};

use crate::TensorError;

/// A dense row-major f64 matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Mat {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Row-major entries.
    pub data: Vec<f64>,
}

/// Which operand of a product is transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// As stored.
    N,
    /// Transposed.
    T,
}

impl Mat {
    /// Wraps a row-major buffer.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "Mat::new: buffer is not {rows}×{cols}"
        );
        Self { rows, cols, data }
    }

    /// An all-zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self::new(rows, cols, vec![0.0; rows * cols])
    }

    /// Reads a 2-D tensor of any backend.
    pub fn from_tensor<B: Backend>(op: &'static str, t: Tensor<B, 2>) -> Result<Self, TensorError> {
        let [rows, cols] = t.dims();
        let data = t
            .into_data()
            .convert::<f64>()
            .into_vec::<f64>()
            .map_err(|e| TensorError::Read {
                op,
                detail: format!("{e:?}"),
            })?;
        Ok(Self::new(rows, cols, data))
    }

    /// A tensor on `device`, rounded once to the backend's float type (f32 on [`crate::Cpu`]).
    pub fn to_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        Tensor::from_data(
            TensorData::new(self.data.clone(), [self.rows, self.cols]),
            device,
        )
    }

    /// True when every entry is finite.
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }

    /// The Frobenius inner product `⟨self, other⟩`.
    pub fn dot(&self, other: &Self) -> f64 {
        self.data.iter().zip(&other.data).map(|(a, b)| a * b).sum()
    }

    /// `self += alpha · other`.
    pub fn axpy(&mut self, alpha: f64, other: &Self) {
        assert_eq!(
            (self.rows, self.cols),
            (other.rows, other.cols),
            "Mat::axpy: shapes differ"
        );
        self.data
            .iter_mut()
            .zip(&other.data)
            .for_each(|(y, x)| *y += alpha * x);
    }

    /// Adds `value` to the diagonal of a square matrix.
    pub fn add_diagonal(&mut self, value: f64) {
        for i in 0..self.rows.min(self.cols) {
            self.data[i * self.cols + i] += value;
        }
    }

    fn view(&self, op: Op) -> (usize, usize, isize, isize) {
        match op {
            Op::N => (self.rows, self.cols, self.cols as isize, 1),
            Op::T => (self.cols, self.rows, 1, self.cols as isize),
        }
    }

    /// `op(self) · op(other)`.
    pub fn matmul(&self, a: Op, other: &Self, b: Op) -> Self {
        let (m, k, lrs, lcs) = self.view(a);
        let (k2, n, rrs, rcs) = other.view(b);
        assert_eq!(k, k2, "Mat::matmul: inner dimensions {k} and {k2} differ");
        let mut out = Self::zeros(m, n);
        if m == 0 || n == 0 || k == 0 {
            return out;
        }
        let par = if m * n * k >= 1 << 18 {
            Parallelism::Rayon(0)
        } else {
            Parallelism::None
        };
        // SAFETY: the views describe exactly the buffers' extents; `out` is a fresh buffer.
        unsafe {
            gemm(
                m,
                n,
                k,
                out.data.as_mut_ptr(),
                1,
                n as isize,
                false,
                self.data.as_ptr(),
                lcs,
                lrs,
                other.data.as_ptr(),
                rcs,
                rrs,
                0.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
        out
    }
}
