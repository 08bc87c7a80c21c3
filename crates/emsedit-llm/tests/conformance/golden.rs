//! Reading `golden.safetensors` / `golden.json` and comparing tensors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use emsedit_llm::{Batch, CausalLm, ModuleId};
use safetensors::{Dtype, SafeTensors};

pub fn fixture(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/llm")
        .join(family)
}

/// A golden tensor: shape and values (f64 for floats and ints alike).
pub struct Golden {
    pub tensors: HashMap<String, (Vec<usize>, Vec<f64>)>,
    pub json: serde_json::Value,
}

impl Golden {
    pub fn load(family: &str) -> Self {
        let dir = fixture(family);
        let bytes = std::fs::read(dir.join("golden.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let data: Vec<f64> = match view.dtype() {
                    Dtype::F32 => view
                        .data()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
                        .collect(),
                    Dtype::I64 => view
                        .data()
                        .chunks_exact(8)
                        .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
                        .collect(),
                    other => panic!("unexpected dtype {other:?} for {name}"),
                };
                (name, (view.shape().to_vec(), data))
            })
            .collect();
        let json = serde_json::from_str(&std::fs::read_to_string(dir.join("golden.json")).unwrap())
            .unwrap();
        Self { tensors, json }
    }

    pub fn get(&self, name: &str) -> &(Vec<usize>, Vec<f64>) {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("golden tensor `{name}` missing"))
    }

    fn ints(&self, name: &str) -> Vec<i64> {
        self.get(name).1.iter().map(|&x| x as i64).collect()
    }

    pub fn batch(&self) -> Batch {
        let shape = &self.get("input_ids").0;
        Batch {
            batch: shape[0],
            time: shape[1],
            input_ids: self.ints("input_ids"),
            attention_mask: self.ints("attention_mask"),
            labels: self.ints("labels"),
        }
    }

    pub fn edited_modules(&self) -> Vec<String> {
        self.json["edited_modules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    /// [`Golden::edited_modules`] resolved in `lm`.
    pub fn module_ids<B: burn::tensor::backend::Backend>(&self, lm: &CausalLm<B>) -> Vec<ModuleId> {
        self.edited_modules()
            .iter()
            .map(|n| lm.module(n).unwrap())
            .collect()
    }
}

pub fn values<B: burn::tensor::backend::Backend, const D: usize>(
    t: burn::tensor::Tensor<B, D>,
) -> (Vec<usize>, Vec<f64>) {
    let shape = t.dims().to_vec();
    (
        shape,
        t.into_data().convert::<f64>().into_vec::<f64>().unwrap(),
    )
}

pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// ‖a − b‖ / ‖b‖.
pub fn rel_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let n: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    d / n.max(f64::MIN_POSITIVE)
}
