//! Edit patches: the weight change of a set of edits as a file of its own.
//!
//! A patch holds, per edited module, the change Δ (a×b, the orientation of
//! [`CausalLm::weight`]) as low-rank factors U (a×r) and V (r×b) where Δ has low rank (the
//! hypernetwork editors' shifts do: their rank is at most the number of target tokens times K),
//! else as the full matrix. Applying computes `W' = W + UV` on the host in a fixed order, so
//! every machine gets the same bits; reverting computes `W' − UV` and puts back, from the patch,
//! the few entries where that rounding does not give W back, so that apply then revert returns
//! the base weights bit for bit.
//!
//! The JSON header names the model (a fingerprint of the config and of the edited modules'
//! weights before and after), the modules, and free-form `info` (method, facts). A patch is
//! refused for a model whose modules do not hold the expected weights, so patches compose in
//! order: the second one's base is the first one's result.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::{CausalLm, LlmError, ModuleId};

/// The format tag of every patch.
pub const FORMAT: &str = "emsedit-patch/1";

/// A module's change is stored as factors when `r (a + b) ≤ FACTOR_SHARE · a b`.
const FACTOR_SHARE: f64 = 0.5;

/// The JSON header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchHeader {
    /// [`FORMAT`].
    pub format: String,
    /// Fingerprint of the config and the modules' weights the patch applies to.
    pub base: String,
    /// The same fingerprint after applying.
    pub result: String,
    /// HF names of the modules, in tensor order.
    pub modules: Vec<String>,
    /// Per module: the rank of the stored factors, or `None` for a full matrix.
    pub ranks: Vec<Option<usize>>,
    /// Free-form description: method, facts, tool version.
    pub info: serde_json::Value,
}

/// One module's change.
#[derive(Debug, Clone, PartialEq)]
struct ModulePatch {
    a: usize,
    b: usize,
    /// U (a×r) and V (r×b), or the full Δ as U with `rank: None` (V empty).
    u: Vec<f32>,
    v: Vec<f32>,
    rank: Option<usize>,
    /// Entries (row-major index) whose base value `W' − Δ` does not give back, and that value.
    fix_index: Vec<u32>,
    fix_value: Vec<f32>,
}

/// An edit patch (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// The header.
    pub header: PatchHeader,
    mods: Vec<ModulePatch>,
}

fn host<B: Backend>(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("converted to f32")
}

/// FNV-1a (64 bit) of the config and the modules' names and weight bits.
fn fingerprint<B: Backend>(lm: &CausalLm<B>, modules: &[ModuleId]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(format!("{:?}", lm.config()).as_bytes());
    for &m in modules {
        eat(lm.module_name(m).as_bytes());
        for v in host(lm.weight(m)) {
            eat(&v.to_le_bytes());
        }
    }
    format!("{h:016x}")
}

/// Δ (row-major a×b) from the stored form, in a fixed order (f64 sums, one rounding).
fn delta(m: &ModulePatch) -> Vec<f32> {
    let Some(r) = m.rank else {
        return m.u.clone();
    };
    let mut out = vec![0f32; m.a * m.b];
    for i in 0..m.a {
        for j in 0..m.b {
            let mut s = 0f64;
            for k in 0..r {
                s += f64::from(m.u[i * r + k]) * f64::from(m.v[k * m.b + j]);
            }
            out[i * m.b + j] = s as f32;
        }
    }
    out
}

/// A deterministic pseudo-random number in [−1, 1) (xorshift).
fn noise(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// Factors U (a×r), V (r×b) of the change `d` of the weights `w` (both row-major a×b), when
/// `d` has low rank up to the rounding of `w`'s entries: a randomized range finder with a
/// growing sketch, sketch columns at the level of that rounding dropped, then checked entry
/// by entry (|UV − d| within 4 ulps of the weight plus 10⁻⁶ of the largest change). `None` when no factorization with
/// `r (a + b) ≤ FACTOR_SHARE · a b` passes the check.
fn factorize(d: &[f32], w: &[f32], a: usize, b: usize) -> Option<(Vec<f32>, Vec<f32>, usize)> {
    let scale = d.iter().fold(0f32, |m, x| m.max(x.abs()));
    if scale == 0.0 {
        return Some((Vec::new(), Vec::new(), 0));
    }
    let budget = ((FACTOR_SHARE * (a * b) as f64) / (a + b) as f64) as usize;
    let mut k = 16.min(budget.max(1));
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    loop {
        // Y = D Ω (a×k): its columns span D's range, up to noise.
        let omega: Vec<f64> = (0..b * k).map(|_| noise(&mut seed)).collect();
        let ys: Vec<Vec<f64>> = (0..k)
            .map(|c| {
                (0..a)
                    .map(|i| {
                        (0..b)
                            .map(|j| f64::from(d[i * b + j]) * omega[j * k + c])
                            .sum()
                    })
                    .collect()
            })
            .collect();
        // What rounding the weights leaves in `d` contributes to a column of Y: entries of
        // about ulp/√12 summed over b sketch weights of mean square 1/3, over a rows.
        let ulp_rms = (w
            .iter()
            .zip(d)
            .map(|(x, y)| f64::from(x.abs().max((x + y).abs())).powi(2))
            .sum::<f64>()
            / (a * b) as f64)
            .sqrt()
            * f64::from(f32::EPSILON);
        let floor = 3.0 * ulp_rms / 12f64.sqrt() * ((a * b) as f64 / 3.0).sqrt();
        // Orthonormal columns Q by Gram–Schmidt (twice), dropping what is noise.
        let mut q: Vec<Vec<f64>> = Vec::new();
        for mut y in ys {
            for _ in 0..2 {
                for col in &q {
                    let dot: f64 = col.iter().zip(&y).map(|(p, x)| p * x).sum();
                    for (x, p) in y.iter_mut().zip(col) {
                        *x -= dot * p;
                    }
                }
            }
            let norm = y.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm > floor {
                q.push(y.into_iter().map(|x| x / norm).collect());
            }
        }
        let r = q.len();
        if r < k {
            // V = Qᵀ D (r×b), then the entry-by-entry check.
            let v: Vec<f32> = (0..r)
                .flat_map(|c| {
                    let col = &q[c];
                    (0..b).map(move |j| {
                        (0..a)
                            .map(|i| col[i] * f64::from(d[i * b + j]))
                            .sum::<f64>() as f32
                    })
                })
                .collect();
            let u: Vec<f32> = (0..a)
                .flat_map(|i| q.iter().map(move |col| col[i] as f32))
                .collect();
            let trial = ModulePatch {
                a,
                b,
                u,
                v,
                rank: Some(r),
                fix_index: Vec::new(),
                fix_value: Vec::new(),
            };
            let close = delta(&trial).iter().zip(d).zip(w).all(|((x, y), w0)| {
                (x - y).abs() <= 4.0 * f32::EPSILON * w0.abs().max((w0 + y).abs()) + 1e-6 * scale
            });
            if close {
                return Some((trial.u, trial.v, r));
            }
        }
        if k >= budget {
            return None;
        }
        k = (2 * k).min(budget);
    }
}

impl Patch {
    /// The patch that turns `before` into `after` on `modules` (the same model before and
    /// after an edit). The stored change reproduces `after` to f32 precision.
    pub fn between<B: Backend>(
        before: &CausalLm<B>,
        after: &CausalLm<B>,
        modules: &[ModuleId],
        info: serde_json::Value,
    ) -> Result<Self, LlmError> {
        let mut mods = Vec::new();
        for &m in modules {
            let w0 = host(before.weight(m));
            let w1 = host(after.weight(m));
            let [a, b] = before.weight(m).dims();
            let d: Vec<f32> = w1.iter().zip(&w0).map(|(x, y)| x - y).collect();
            if d.iter().any(|x| !x.is_finite()) {
                return Err(LlmError::NonFinite {
                    name: before.module_name(m),
                    what: "patch",
                });
            }
            let (u, v, rank) = match factorize(&d, &w0, a, b) {
                Some((u, v, r)) => (u, v, Some(r)),
                None => (d, Vec::new(), None),
            };
            mods.push(ModulePatch {
                a,
                b,
                u,
                v,
                rank,
                fix_index: Vec::new(),
                fix_value: Vec::new(),
            });
        }
        let mut patch = Self {
            header: PatchHeader {
                format: FORMAT.into(),
                base: fingerprint(before, modules),
                result: String::new(),
                modules: modules.iter().map(|&m| before.module_name(m)).collect(),
                ranks: mods.iter().map(|m| m.rank).collect(),
                info,
            },
            mods,
        };
        // The result and the revert fixes come from applying the patch to `before` itself.
        let mut probe = before.clone();
        patch.write(&mut probe, modules, true)?;
        patch.header.result = fingerprint(&probe, modules);
        Ok(patch)
    }

    fn resolve<B: Backend>(&self, lm: &CausalLm<B>) -> Result<Vec<ModuleId>, LlmError> {
        let ids = self
            .header
            .modules
            .iter()
            .map(|n| lm.module(n))
            .collect::<Result<Vec<_>, _>>()?;
        for (&id, m) in ids.iter().zip(&self.mods) {
            if lm.weight(id).dims() != [m.a, m.b] {
                return Err(LlmError::Patch(format!(
                    "module `{}` is {:?} in this model, {}×{} in the patch",
                    lm.module_name(id),
                    lm.weight(id).dims(),
                    m.a,
                    m.b
                )));
            }
        }
        Ok(ids)
    }

    /// `W ← W + Δ` on every module; with `record`, stores the entries revert must fix.
    fn write<B: Backend>(
        &mut self,
        lm: &mut CausalLm<B>,
        ids: &[ModuleId],
        record: bool,
    ) -> Result<(), LlmError> {
        for (&id, m) in ids.iter().zip(self.mods.iter_mut()) {
            let w = host(lm.weight(id));
            let d = delta(m);
            let new: Vec<f32> = w.iter().zip(&d).map(|(x, y)| x + y).collect();
            if record {
                m.fix_index.clear();
                m.fix_value.clear();
                for (i, ((n, y), x)) in new.iter().zip(&d).zip(&w).enumerate() {
                    if (n - y).to_bits() != x.to_bits() {
                        m.fix_index.push(i as u32);
                        m.fix_value.push(*x);
                    }
                }
            }
            let t = Tensor::from_data(TensorData::new(new, [m.a, m.b]), lm.device());
            lm.set_weight(id, t)?;
        }
        Ok(())
    }

    /// Applies the patch to `lm`, which must hold the base weights (or the result of the
    /// patches this one was made after).
    pub fn apply<B: Backend>(&self, lm: &mut CausalLm<B>) -> Result<(), LlmError> {
        let ids = self.resolve(lm)?;
        let print = fingerprint(lm, &ids);
        if print != self.header.base {
            let hint = if print == self.header.result {
                "it is already applied"
            } else {
                "it was made for another model, or for other weights of these modules"
            };
            return Err(LlmError::Patch(format!(
                "the modules' weights (fingerprint {print}) are not the patch's base ({}): {hint}",
                self.header.base
            )));
        }
        let mut me = self.clone();
        me.write(lm, &ids, false)
    }

    /// Undoes [`Patch::apply`]: `lm` must hold the patch's result; afterwards it holds the
    /// base weights bit for bit.
    pub fn revert<B: Backend>(&self, lm: &mut CausalLm<B>) -> Result<(), LlmError> {
        let ids = self.resolve(lm)?;
        let print = fingerprint(lm, &ids);
        if print != self.header.result {
            return Err(LlmError::Patch(format!(
                "the modules' weights (fingerprint {print}) are not the patch's result ({}): \
                 revert patches in the reverse order of applying them",
                self.header.result
            )));
        }
        for (&id, m) in ids.iter().zip(&self.mods) {
            let w = host(lm.weight(id));
            let mut old: Vec<f32> = w.iter().zip(delta(m)).map(|(x, y)| x - y).collect();
            for (&i, &v) in m.fix_index.iter().zip(&m.fix_value) {
                old[i as usize] = v;
            }
            let t = Tensor::from_data(TensorData::new(old, [m.a, m.b]), lm.device());
            lm.set_weight(id, t)?;
        }
        Ok(())
    }

    /// Bytes the patch's tensors take in its file.
    pub fn tensor_bytes(&self) -> usize {
        self.mods
            .iter()
            .map(|m| 4 * (m.u.len() + m.v.len() + 2 * m.fix_index.len()))
            .sum()
    }

    /// Writes the patch as safetensors with the header in its metadata.
    pub fn save(&self, path: &Path) -> Result<(), LlmError> {
        let fail = |detail: String| LlmError::Patch(format!("{}: {detail}", path.display()));
        let header = serde_json::to_string(&self.header).map_err(|e| fail(e.to_string()))?;
        let le = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut data: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (i, m) in self.mods.iter().enumerate() {
            match m.rank {
                Some(r) => {
                    data.push((format!("{i}.u"), Dtype::F32, vec![m.a, r], le(&m.u)));
                    data.push((format!("{i}.v"), Dtype::F32, vec![r, m.b], le(&m.v)));
                }
                None => data.push((format!("{i}.delta"), Dtype::F32, vec![m.a, m.b], le(&m.u))),
            }
            let idx: Vec<u8> = m.fix_index.iter().flat_map(|x| x.to_le_bytes()).collect();
            let n = m.fix_index.len();
            data.push((format!("{i}.fix_index"), Dtype::U32, vec![n], idx));
            data.push((
                format!("{i}.fix_value"),
                Dtype::F32,
                vec![n],
                le(&m.fix_value),
            ));
        }
        let views = data
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| fail(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let meta = HashMap::from([("emsedit-patch".to_string(), header)]);
        safetensors::serialize_to_file(views, Some(meta), path).map_err(|e| fail(e.to_string()))
    }

    /// Reads a patch written by [`Patch::save`]; every size in the header is checked against
    /// the stored tensors before anything is built from it.
    pub fn load(path: &Path) -> Result<Self, LlmError> {
        let fail = |detail: String| LlmError::Patch(format!("{}: {detail}", path.display()));
        let raw = std::fs::read(path).map_err(|source| LlmError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let st = SafeTensors::deserialize(&raw).map_err(|e| fail(e.to_string()))?;
        let (_, meta) = SafeTensors::read_metadata(&raw).map_err(|e| fail(e.to_string()))?;
        let header = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("emsedit-patch"))
            .ok_or_else(|| fail("no emsedit-patch header: not an edit patch".into()))?;
        let header: PatchHeader =
            serde_json::from_str(header).map_err(|e| fail(format!("header: {e}")))?;
        if header.format != FORMAT {
            return Err(fail(format!(
                "format `{}`, expected `{FORMAT}`",
                header.format
            )));
        }
        if header.ranks.len() != header.modules.len() {
            return Err(fail("`ranks` and `modules` differ in length".into()));
        }
        let tensor = |name: &str, dtype: Dtype| -> Result<(Vec<usize>, &[u8]), LlmError> {
            let v = st
                .tensor(name)
                .map_err(|_| fail(format!("missing tensor `{name}`")))?;
            if v.dtype() != dtype {
                return Err(fail(format!(
                    "tensor `{name}` is {:?}, not {dtype:?}",
                    v.dtype()
                )));
            }
            Ok((v.shape().to_vec(), v.data()))
        };
        let f32s = |b: &[u8]| -> Vec<f32> {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let mut mods = Vec::new();
        for (i, rank) in header.ranks.iter().enumerate() {
            let (a, b, u, v) = match rank {
                Some(r) => {
                    let (su, u) = tensor(&format!("{i}.u"), Dtype::F32)?;
                    let (sv, v) = tensor(&format!("{i}.v"), Dtype::F32)?;
                    match (su.as_slice(), sv.as_slice()) {
                        ([a, ru], [rv, b]) if ru == r && rv == r => (*a, *b, f32s(u), f32s(v)),
                        _ => {
                            return Err(fail(format!(
                                "module {i}: factors {su:?} and {sv:?} do not have rank {r}"
                            )));
                        }
                    }
                }
                None => {
                    let (s, d) = tensor(&format!("{i}.delta"), Dtype::F32)?;
                    let [a, b] = s[..] else {
                        return Err(fail(format!("module {i}: delta of shape {s:?}")));
                    };
                    (a, b, f32s(d), Vec::new())
                }
            };
            let (si, idx) = tensor(&format!("{i}.fix_index"), Dtype::U32)?;
            let (sv, val) = tensor(&format!("{i}.fix_value"), Dtype::F32)?;
            let fix_index: Vec<u32> = idx
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if si != sv || fix_index.iter().any(|&x| x as usize >= a.saturating_mul(b)) {
                return Err(fail(format!("module {i}: revert fixes out of range")));
            }
            mods.push(ModulePatch {
                a,
                b,
                u,
                v,
                rank: *rank,
                fix_index,
                fix_value: f32s(val),
            });
        }
        Ok(Self { header, mods })
    }
}
