//! Writing an edited model back as a Hugging Face directory that `transformers` loads: the
//! source directory's files, with the edited modules' tensors replaced in the source's dtype
//! (f32, f16 or bf16) and layout (GPT-2's `Conv1D` a×b, `nn.Linear` b×a).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::{CausalLm, LlmError, ModelConfig, ModuleId};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LlmError + '_ {
    move |source| LlmError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Values (row-major, the stored layout) as bytes of `dtype`.
fn encode(values: &[f32], dtype: Dtype) -> Option<Vec<u8>> {
    Some(match dtype {
        Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Dtype::F16 => values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
        Dtype::BF16 => values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect(),
        Dtype::F64 => values
            .iter()
            .flat_map(|v| f64::from(*v).to_le_bytes())
            .collect(),
        _ => return None,
    })
}

/// Writes `lm` to `out` as a copy of the directory it was loaded from, with the weights of
/// `modules` taken from `lm`. Other files (config, tokenizer, generation config) are copied
/// unchanged; every safetensors shard is rewritten, keeping each tensor's dtype.
pub fn save_edited<B: Backend>(
    lm: &CausalLm<B>,
    modules: &[ModuleId],
    out: &Path,
) -> Result<(), LlmError> {
    let src = lm.dir().to_path_buf();
    if src.as_os_str().is_empty() {
        return Err(LlmError::Patch(
            "the model was not loaded from a directory; use CausalLm::save".into(),
        ));
    }
    if out.canonicalize().ok() == src.canonicalize().ok() && out.exists() {
        return Err(LlmError::Patch(format!(
            "{}: refusing to overwrite the model's own directory",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let conv1d = matches!(lm.config(), ModelConfig::Gpt2(_));
    let mut edited: HashMap<String, (Vec<f32>, [usize; 2])> = HashMap::new();
    for &m in modules {
        let w = lm.weight(m);
        let [a, b] = w.dims();
        let values: Vec<f32> = w
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("converted to f32");
        let (values, shape) = if conv1d {
            (values, [a, b])
        } else {
            // nn.Linear stores Wᵀ (b×a).
            let mut t = vec![0f32; a * b];
            for i in 0..a {
                for j in 0..b {
                    t[j * a + i] = values[i * b + j];
                }
            }
            (t, [b, a])
        };
        edited.insert(format!("{}.weight", lm.module_name(m)), (values, shape));
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(&src)
        .map_err(io(&src))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    for path in entries {
        let name = path.file_name().unwrap_or_default();
        let target = out.join(name);
        if path.extension().is_some_and(|x| x == "safetensors") {
            rewrite(&path, &target, &mut edited)?;
        } else {
            std::fs::copy(&path, &target).map_err(io(&path))?;
        }
    }
    if let Some(name) = edited.keys().next() {
        return Err(LlmError::MissingTensor {
            path: src,
            name: name.clone(),
        });
    }
    Ok(())
}

/// Copies one safetensors file, replacing the tensors named in `edited` (and removing them
/// from it).
fn rewrite(
    src: &Path,
    dst: &Path,
    edited: &mut HashMap<String, (Vec<f32>, [usize; 2])>,
) -> Result<(), LlmError> {
    let raw = std::fs::read(src).map_err(io(src))?;
    let bad = |detail: String| LlmError::Safetensors {
        path: src.to_path_buf(),
        detail,
    };
    let st = SafeTensors::deserialize(&raw).map_err(|e| bad(e.to_string()))?;
    let (_, meta) = SafeTensors::read_metadata(&raw).map_err(|e| bad(e.to_string()))?;
    let mut replaced: HashMap<String, Vec<u8>> = HashMap::new();
    for (name, view) in st.tensors() {
        if let Some((values, shape)) = edited.remove(&name) {
            if view.shape() != shape {
                return Err(LlmError::TensorShape {
                    path: src.to_path_buf(),
                    name,
                    expected: shape.to_vec(),
                    found: view.shape().to_vec(),
                });
            }
            let bytes = encode(&values, view.dtype()).ok_or_else(|| LlmError::TensorDtype {
                path: src.to_path_buf(),
                name: name.clone(),
                dtype: format!("{:?}", view.dtype()),
            })?;
            replaced.insert(name, bytes);
        }
    }
    let tensors = st.tensors();
    let views = tensors
        .iter()
        .map(|(name, view)| {
            let data = replaced.get(name).map_or(view.data(), Vec::as_slice);
            TensorView::new(view.dtype(), view.shape().to_vec(), data)
                .map(|v| (name.clone(), v))
                .map_err(|e| bad(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize_to_file(views, meta.metadata().clone(), dst)
        .map_err(|e| bad(e.to_string()))
}
