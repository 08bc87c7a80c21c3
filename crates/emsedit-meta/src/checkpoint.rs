//! Hypernetwork checkpoints: one safetensors file whose metadata holds a small JSON header
//! (format, editor config, model fingerprint, network shapes) and whose tensors are every
//! network's parameters and normalizer state.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use emsedit_llm::CausalLm;
use emsedit_tensor::RunningNorm;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::MetaError;
use crate::hypernet::{HyperNet, Params};
use crate::steps::Groups;

/// The format tag written in every checkpoint.
pub const FORMAT: &str = "emsedit-hypernet/1";

/// The JSON header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header<C> {
    /// [`FORMAT`].
    pub format: String,
    /// The editor's config.
    pub config: C,
    /// [`fingerprint`] of the model and edited modules it was trained for.
    pub fingerprint: String,
    /// Number of step networks and groups.
    pub steps: usize,
    /// Shape groups.
    pub groups: usize,
}

/// A stable hash of the model's config and the edited modules with their shapes: two models
/// that share it can use each other's hypernetworks.
pub fn fingerprint<B: Backend>(lm: &CausalLm<B>, groups: &Groups) -> String {
    let mut text = format!("{:?}", lm.config());
    for &m in &groups.modules {
        text.push_str(&format!("|{}:{:?}", lm.module_name(m), lm.weight(m).dims()));
    }
    // FNV-1a, 64 bit: stable across platforms and Rust versions.
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn bytes<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Vec<u8> {
    let values: Vec<f32> = t
        .clone()
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("f32 data");
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn entries<B: Backend>(nets: &[Vec<HyperNet<B>>]) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    let mut out = Vec::new();
    for (k, step) in nets.iter().enumerate() {
        for (g, net) in step.iter().enumerate() {
            for (i, t) in net.params.tensors().into_iter().enumerate() {
                out.push((
                    format!("net.{k}.{g}.param.{i}"),
                    t.dims().to_vec(),
                    bytes(t),
                ));
            }
            let norm = &net.norm;
            for (name, t) in [
                ("mean", norm.mean()),
                ("m2", norm.m2()),
                ("std", norm.std()),
            ] {
                out.push((
                    format!("net.{k}.{g}.norm.{name}"),
                    t.dims().to_vec(),
                    bytes(t),
                ));
            }
            let count = (norm.count() as f64).to_le_bytes().to_vec();
            out.push((format!("net.{k}.{g}.norm.count"), vec![1], count));
        }
    }
    out
}

/// Writes `nets` with a header for `config`.
pub fn save<B: Backend, C: Serialize>(
    path: &Path,
    config: &C,
    fingerprint: String,
    nets: &[Vec<HyperNet<B>>],
) -> Result<(), MetaError> {
    let fail = |detail: String| MetaError::Checkpoint {
        path: path.to_path_buf(),
        detail,
    };
    let header = Header {
        format: FORMAT.into(),
        config,
        fingerprint,
        steps: nets.len(),
        groups: nets.first().map_or(0, Vec::len),
    };
    let header = serde_json::to_string(&header).map_err(|e| fail(e.to_string()))?;
    let data = entries(nets);
    let views = data
        .iter()
        .map(|(name, shape, raw)| {
            let dtype = if name.ends_with("norm.count") {
                Dtype::F64
            } else {
                Dtype::F32
            };
            TensorView::new(dtype, shape.clone(), raw)
                .map(|v| (name.clone(), v))
                .map_err(|e| fail(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = HashMap::from([("emsedit".to_string(), header)]);
    safetensors::serialize_to_file(views, Some(metadata), path).map_err(|e| fail(e.to_string()))
}

/// The networks a checkpoint stores, read from its tensor directory (nothing allocated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Step networks (`net.K.*`).
    pub steps: usize,
    /// Shape groups per step (`net.0.G.*`).
    pub groups: usize,
    /// Residual blocks per network (5 parameter tensors each, then η and λ̂).
    pub blocks: usize,
    /// Per step, the rank of its networks (columns of the first block's A), 0 without blocks.
    pub ranks: Vec<usize>,
    /// Per group, the width D = a + b of its network (from the normalizer's mean).
    pub dims: Vec<usize>,
}

fn stored(st: &SafeTensors) -> Result<Stored, String> {
    let count = |prefix: &dyn Fn(usize) -> String| {
        (0..).take_while(|&i| st.tensor(&prefix(i)).is_ok()).count()
    };
    let steps = count(&|k| format!("net.{k}.0.norm.mean"));
    let groups = count(&|g| format!("net.0.{g}.norm.mean"));
    let params = count(&|i| format!("net.0.0.param.{i}"));
    if steps == 0 || groups == 0 || params < 2 || (params - 2) % 5 != 0 {
        return Err(format!(
            "{steps} step network(s), {groups} group(s) and {params} parameter tensors: \
             not a complete set of hypernetworks"
        ));
    }
    let blocks = (params - 2) / 5;
    let dim = |name: String| {
        st.tensor(&name)
            .ok()
            .and_then(|v| v.shape().get(1).copied())
    };
    let ranks = (0..steps)
        .map(|k| {
            if blocks == 0 {
                Some(0)
            } else {
                dim(format!("net.{k}.0.param.0"))
            }
        })
        .collect::<Option<Vec<_>>>()
        .ok_or("a step network without its first block")?;
    let dims = (0..groups)
        .map(|g| dim(format!("net.0.{g}.norm.mean")))
        .collect::<Option<Vec<_>>>()
        .ok_or("a normalizer that is not 1 × D")?;
    Ok(Stored {
        steps,
        groups,
        blocks,
        ranks,
        dims,
    })
}

/// Reads a checkpoint. Its header's config goes to `build` together with what the file stores
/// ([`Stored`], read from the tensor directory): `build` must check the config against it
/// before it makes anything, then make the networks (with the shapes the config implies for
/// the current model) and the model's fingerprint; the networks are then filled from the
/// file. Returns the config, the networks and what `build` added.
#[allow(clippy::type_complexity)]
pub fn load<B: Backend, C: for<'de> Deserialize<'de>, T>(
    path: &Path,
    device: &B::Device,
    build: impl FnOnce(&C, &Stored) -> Result<(String, Vec<Vec<HyperNet<B>>>, T), MetaError>,
) -> Result<(C, Vec<Vec<HyperNet<B>>>, T), MetaError> {
    let fail = |detail: String| MetaError::Checkpoint {
        path: path.to_path_buf(),
        detail,
    };
    let raw = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let (_, meta) = SafeTensors::read_metadata(&raw).map_err(|e| fail(e.to_string()))?;
    let header = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("emsedit"))
        .ok_or_else(|| fail("no emsedit header: not a hypernetwork checkpoint".into()))?;
    let header: Header<C> =
        serde_json::from_str(header).map_err(|e| fail(format!("header: {e}")))?;
    if header.format != FORMAT {
        return Err(fail(format!(
            "format `{}`, expected `{FORMAT}`",
            header.format
        )));
    }
    let st = SafeTensors::deserialize(&raw).map_err(|e| fail(e.to_string()))?;
    let layout = stored(&st).map_err(fail)?;
    if (header.steps, header.groups) != (layout.steps, layout.groups) {
        return Err(fail(format!(
            "the header says {} step(s) × {} group(s), the file stores {} × {}",
            header.steps, header.groups, layout.steps, layout.groups
        )));
    }
    let (fingerprint, mut nets, extra) = build(&header.config, &layout)
        .map_err(|e| fail(format!("made for another model or module set: {e}")))?;
    if header.fingerprint != fingerprint {
        return Err(fail(format!(
            "made for another model or module set (fingerprint {}, this model's is {fingerprint})",
            header.fingerprint
        )));
    }
    let read = |name: &str| -> Result<(Vec<usize>, Vec<f64>), MetaError> {
        let view = st
            .tensor(name)
            .map_err(|_| fail(format!("missing tensor `{name}`")))?;
        let values = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
            Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect(),
            other => return Err(fail(format!("tensor `{name}` has dtype {other:?}"))),
        };
        Ok((view.shape().to_vec(), values))
    };
    let tensor = |name: &str, want: [usize; 2]| -> Result<Tensor<B, 2>, MetaError> {
        let (shape, values) = read(name)?;
        if shape != want {
            return Err(fail(format!(
                "tensor `{name}` is {shape:?}, the editor expects {want:?}"
            )));
        }
        Ok(Tensor::from_data(TensorData::new(values, want), device))
    };
    if header.steps != nets.len() || header.groups != nets.first().map_or(0, Vec::len) {
        return Err(fail(format!(
            "{} step(s) × {} group(s), the editor has {} × {}",
            header.steps,
            header.groups,
            nets.len(),
            nets.first().map_or(0, Vec::len)
        )));
    }
    for (k, step) in nets.iter_mut().enumerate() {
        for (g, net) in step.iter_mut().enumerate() {
            let params = net
                .params
                .tensors()
                .into_iter()
                .enumerate()
                .map(|(i, t)| tensor(&format!("net.{k}.{g}.param.{i}"), t.dims()))
                .collect::<Result<Vec<_>, _>>()?;
            net.params = Params::from_tensors(params);
            let d = net.norm.dim();
            let part = |name: &str| tensor(&format!("net.{k}.{g}.norm.{name}"), [1, d]);
            let count = read(&format!("net.{k}.{g}.norm.count"))?
                .1
                .first()
                .copied()
                .unwrap_or(0.0);
            net.norm =
                RunningNorm::from_parts(count as u64, part("mean")?, part("m2")?, part("std")?)?;
        }
    }
    Ok((header.config, nets, extra))
}
