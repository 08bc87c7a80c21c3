//! Reading Hugging Face safetensors checkpoints (single file or sharded index) into f32.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::LlmError;

/// Tensors a checkpoint may hold that the computation does not read: GPT-2's causal-mask
/// buffers, rotary frequency buffers (recomputed from the config), and an `lm_head.weight`
/// next to tied embeddings.
pub const IGNORED: &[&str] = &[
    ".attn.bias",
    ".attn.masked_bias",
    ".rotary_emb.inv_freq",
    "lm_head.weight",
];

/// One tensor as stored, converted to f32.
#[derive(Debug, Clone)]
struct Stored {
    file: PathBuf,
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// All tensors of a checkpoint, by name. Tensors are removed as the model takes them.
#[derive(Debug)]
pub struct Weights {
    origin: PathBuf,
    tensors: HashMap<String, Stored>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LlmError + '_ {
    move |source| LlmError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn to_f32(path: &Path, name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>, LlmError> {
    let words = |n: usize| bytes.chunks_exact(n);
    Ok(match dtype {
        Dtype::F32 => words(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => words(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => words(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::F64 => words(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8-byte chunk")) as f32)
            .collect(),
        other => {
            return Err(LlmError::TensorDtype {
                path: path.to_path_buf(),
                name: name.to_string(),
                dtype: format!("{other:?}"),
            });
        }
    })
}

impl Weights {
    /// Reads `model.safetensors`, or every shard named by `model.safetensors.index.json`.
    pub fn load_dir(dir: &Path) -> Result<Self, LlmError> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let files = if single.exists() {
            vec![single.clone()]
        } else if index.exists() {
            shards(&index)?
        } else {
            return Err(LlmError::Io {
                path: single,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "neither model.safetensors nor model.safetensors.index.json exists",
                ),
            });
        };
        let mut tensors = HashMap::new();
        for file in &files {
            let bytes = std::fs::read(file).map_err(io(file))?;
            let st = SafeTensors::deserialize(&bytes).map_err(|e| LlmError::Safetensors {
                path: file.clone(),
                detail: e.to_string(),
            })?;
            for (name, view) in st.tensors() {
                let data = to_f32(file, &name, view.dtype(), view.data())?;
                let stored = Stored {
                    file: file.clone(),
                    shape: view.shape().to_vec(),
                    data,
                };
                tensors.insert(name, stored);
            }
        }
        let origin = if files.len() == 1 { single } else { index };
        Ok(Self { origin, tensors })
    }

    /// True when the checkpoint has a tensor of this name.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Takes the tensor `name`, checking it has `shape`.
    pub fn take<B: Backend, const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Result<Tensor<B, D>, LlmError> {
        let stored = self
            .tensors
            .remove(name)
            .ok_or_else(|| LlmError::MissingTensor {
                path: self.origin.clone(),
                name: name.to_string(),
            })?;
        if stored.shape != shape {
            return Err(LlmError::TensorShape {
                path: stored.file,
                name: name.to_string(),
                expected: shape.to_vec(),
                found: stored.shape,
            });
        }
        if stored.data.iter().any(|v| !v.is_finite()) {
            return Err(LlmError::NonFiniteTensor {
                path: stored.file,
                name: name.to_string(),
            });
        }
        Ok(Tensor::from_data(
            TensorData::new(stored.data, shape),
            device,
        ))
    }

    /// Ends loading: a tensor the architecture did not take is an error that lists them, except
    /// the buffers Hugging Face checkpoints may carry ([`IGNORED`]).
    pub fn finish(self) -> Result<(), LlmError> {
        let mut left: Vec<String> = self
            .tensors
            .into_keys()
            .filter(|n| !IGNORED.iter().any(|s| n.ends_with(s)))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        left.sort();
        Err(LlmError::UnusedTensors {
            path: self.origin,
            names: left,
        })
    }

    /// Takes an `nn.Linear` weight (stored b×a) and returns it in the a×b orientation.
    pub fn take_linear<B: Backend>(
        &mut self,
        name: &str,
        a: usize,
        b: usize,
        device: &B::Device,
    ) -> Result<Tensor<B, 2>, LlmError> {
        Ok(self.take::<B, 2>(name, [b, a], device)?.transpose())
    }
}

fn shards(index: &Path) -> Result<Vec<PathBuf>, LlmError> {
    let text = std::fs::read_to_string(index).map_err(io(index))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| LlmError::Config {
        path: index.to_path_buf(),
        field: "weight_map".into(),
        detail: e.to_string(),
    })?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| LlmError::Config {
            path: index.to_path_buf(),
            field: "weight_map".into(),
            detail: "missing or not an object".into(),
        })?;
    let mut files: Vec<String> = map
        .values()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    files.sort();
    files.dedup();
    let dir = index.parent().unwrap_or(Path::new("."));
    Ok(files.into_iter().map(|f| dir.join(f)).collect())
}
