//! Moving matrices between burn tensors and host f64 buffers.

use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::TensorError;

/// Reads a tensor into a row-major f64 buffer.
pub fn to_f64<const D: usize>(op: &'static str, t: Tensor<D>) -> Result<Vec<f64>, TensorError> {
    t.try_into_vec_as::<f64>().map_err(|e| TensorError::Read {
        op,
        detail: e.to_string(),
    })
}

/// Builds an f64 tensor of the given shape from a row-major buffer.
pub fn from_f64<const D: usize>(data: Vec<f64>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data, shape), (device, DType::F64))
}

/// `Σ x_i y_i` in f64.
pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

/// True when every entry is finite.
pub fn all_finite(x: &[f64]) -> bool {
    x.iter().all(|v| v.is_finite())
}
