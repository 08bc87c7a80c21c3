//! Goldens of one training run and edit made by PyTorch, and the Rust run checked against
//! them. Shared by `meta_goldens.rs` (the project's re-derivation, `fixtures/meta/`) and
//! `reference_goldens.rs` (the reference code itself, `fixtures/reference/`).
//!
//! Error measure, per tensor: max |rust − golden| / max |golden|, i.e. relative to the golden
//! tensor's largest magnitude (absolute where the golden tensor is all zeros). Every tensor must
//! be within 1e-4 (1e-3 for parameters after an Adam step), or within the golden's own
//! `tolerance` where it sets a larger one (a real model, whose passes agree with PyTorch's to
//! less than the fixture's).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use emsedit_llm::{Batch, CausalLm};
use emsedit_meta::hypernet::{HyperConfig, Params};
use emsedit_meta::{
    Backtrack, EditBatch, Editor, HyperEditor, HyperEditorConfig, Locality, UltraEdit,
    UltraEditConfig,
};
use emsedit_tensor::{Cpu, cpu};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

pub const TOL: f64 = 1e-4;
/// Parameters after an Adam step. Adam divides each gradient entry by its own magnitude plus
/// ε = 1e-8, so an entry whose gradient is near ε turns the (checked, ≤ 1e-4) rounding of
/// the gradient into an update error of up to about lr · Δg / ε: the first update of a
/// zero-initialised block then differs by 2e-4 of its largest entry between AVX2 and AVX-512
/// matrix kernels. The gradients Adam is given are held to [`TOL`].
pub const TOL_UPDATED: f64 = 1e-3;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub struct Golden {
    pub json: Value,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Golden {
    /// `{stem}.json` and `{stem}.safetensors`, relative to the repository root.
    pub fn load(stem: &str) -> Self {
        let path = root().join(stem);
        let text = std::fs::read_to_string(path.with_extension("json")).unwrap();
        let bytes = std::fs::read(path.with_extension("safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                assert_eq!(view.dtype(), Dtype::F32, "{name}");
                let data = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                (name, (view.shape().to_vec(), data))
            })
            .collect();
        Self {
            json: serde_json::from_str(&text).unwrap(),
            tensors,
        }
    }

    /// The model: a repository path (`model`) or a directory of the models cache
    /// (`model_cache`); `None`, with a message, when the latter has not been fetched.
    pub fn model(&self) -> Option<PathBuf> {
        if let Some(path) = self.json["model"].as_str() {
            return Some(root().join(path));
        }
        let name = self.json["model_cache"]
            .as_str()
            .expect("model or model_cache");
        emsedit_llm::models_cache::fetched(name)
            .map_err(|why| eprintln!("skipped: {why}"))
            .ok()
    }

    /// A stored tensor; repeats are stored once and aliased.
    pub fn get(&self, name: &str) -> &(Vec<usize>, Vec<f32>) {
        self.find(name)
            .unwrap_or_else(|| panic!("no golden tensor {name}"))
    }

    pub fn find(&self, name: &str) -> Option<&(Vec<usize>, Vec<f32>)> {
        let name = self.json["aliases"][name].as_str().unwrap_or(name);
        self.tensors.get(name)
    }

    pub fn tensor(&self, name: &str) -> Tensor<Cpu, 2> {
        let (shape, data) = self.get(name);
        assert_eq!(shape.len(), 2, "{name}");
        Tensor::from_data(TensorData::new(data.clone(), [shape[0], shape[1]]), &cpu())
    }

    pub fn param_names(&self) -> Vec<String> {
        self.strings("params")
    }

    /// The edited modules the goldens were made with.
    pub fn modules(&self) -> Vec<String> {
        self.strings("modules")
    }

    fn strings(&self, key: &str) -> Vec<String> {
        self.json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    /// Parameters stored as `{prefix}.{a0, b0, bias0, …, eta, log_ridge}`.
    pub fn params(&self, prefix: &str) -> Params<Cpu> {
        Params::from_tensors(
            self.param_names()
                .iter()
                .map(|n| self.tensor(&format!("{prefix}.{n}")))
                .collect(),
        )
    }

    pub fn usize(&self, v: &Value) -> usize {
        v.as_u64().unwrap() as usize
    }

    pub fn case(&self, name: &str) -> &Value {
        self.json["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no case {name}"))
    }

    pub fn batches(&self) -> Vec<EditBatch> {
        let micro = |m: &Value| {
            let ints = |k: &str| -> Vec<i64> {
                m[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap())
                    .collect()
            };
            Batch {
                batch: self.usize(&m["batch"]),
                time: self.usize(&m["time"]),
                input_ids: ints("input_ids"),
                attention_mask: ints("attention_mask"),
                labels: ints("labels"),
            }
        };
        let kind = |b: &Value, k: &str| -> Vec<Batch> {
            b[k].as_array().unwrap().iter().map(micro).collect()
        };
        self.json["batches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| EditBatch {
                records: self.usize(&b["records"]),
                edit: kind(b, "edit"),
                equiv: kind(b, "equiv"),
                unrel: kind(b, "unrel"),
            })
            .collect()
    }

    /// The map the goldens store large tensors through (`reference_step.py`'s `sketch`):
    /// Pᵀ t P, each side only above `sketch_above` rows / columns, P the probe's leading rows.
    fn sketch(&self, t: &Tensor<Cpu, 2>) -> Tensor<Cpu, 2> {
        let Some(above) = self.json["sketch_above"].as_u64() else {
            return t.clone();
        };
        let above = above as usize;
        let probe = self.tensor("probe");
        let [rows, cols] = t.dims();
        let mut t = t.clone();
        if rows > above {
            t = probe.clone().narrow(0, 0, rows).transpose().matmul(t);
        }
        if cols > above {
            t = t.matmul(probe.narrow(0, 0, cols));
        }
        t
    }
}

pub fn values(t: &Tensor<Cpu, 2>) -> (Vec<usize>, Vec<f64>) {
    let data = t.clone().into_data().convert::<f64>();
    (data.shape.to_vec(), data.into_vec::<f64>().unwrap())
}

/// Largest relative error per quantity, and the tensors above the tolerance.
#[derive(Default)]
pub struct Report {
    worst: BTreeMap<String, f64>,
    failures: Vec<String>,
}

impl Report {
    pub fn compare(&mut self, golden: &Golden, quantity: &str, name: &str, rust: &Tensor<Cpu, 2>) {
        let (shape, want) = golden.get(name);
        let (rust_shape, got) = values(&golden.sketch(rust));
        assert_eq!(&rust_shape, shape, "{name}: shape");
        let scale = want.iter().fold(0f64, |m, &x| m.max(f64::from(x).abs()));
        let diff = want
            .iter()
            .zip(&got)
            .fold(0f64, |m, (&w, &g)| m.max((g - f64::from(w)).abs()));
        let err = if scale > 0.0 { diff / scale } else { diff };
        let worst = self.worst.entry(quantity.to_string()).or_insert(0.0);
        *worst = worst.max(err);
        let tol = if quantity.starts_with("updated") {
            TOL_UPDATED
        } else {
            TOL
        };
        let tol = tol.max(golden.json["tolerance"].as_f64().unwrap_or(0.0));
        if err > tol || err.is_nan() {
            self.failures.push(format!("{name}: {err:.3e}"));
        }
    }

    pub fn compare_params(
        &mut self,
        golden: &Golden,
        quantity: &str,
        prefix: &str,
        params: &Params<Cpu>,
    ) {
        for (name, t) in golden.param_names().iter().zip(params.tensors()) {
            // One line per parameter kind: a0 and a1 both count as `a`.
            let kind = name.trim_end_matches(|c: char| c.is_ascii_digit());
            let full = format!("{prefix}.{name}");
            self.compare(golden, &format!("{quantity} {kind}"), &full, t);
        }
    }

    /// Prints the largest error per quantity and fails on any tensor above its tolerance.
    pub fn finish(&self, case_name: &str) {
        println!("{case_name}: largest relative error per quantity");
        for (quantity, err) in &self.worst {
            println!("  {quantity:<20} {err:.2e}");
        }
        assert!(
            self.failures.is_empty(),
            "{case_name}: above the tolerance ({TOL:e}, {TOL_UPDATED:e} for updated parameters, or \
             the golden's):\n{}",
            self.failures.join("\n")
        );
    }
}

/// The Rust editor a golden case describes, with the golden's settings.
fn editor_config(golden: &Golden, case: &Value) -> HyperEditorConfig {
    let modules = golden.modules();
    let steps = golden.usize(&case["steps"]);
    let mut config = match case["editor"].as_str().unwrap() {
        "malmen" => HyperEditorConfig::malmen(modules, steps),
        "emsedit_batch" => HyperEditorConfig::emsedit_batch(modules),
        "emsedit_sequential" => HyperEditorConfig::emsedit_sequential(modules),
        "rledit" => {
            let mut c = HyperEditorConfig::rledit(modules, steps);
            let r = &golden.json["rledit"];
            c.backtrack = Some(Backtrack {
                decay: r["time_decay"].as_f64().unwrap(),
                depth: golden.usize(&r["back_depth"]),
                reg_coef: r["reg_coef"].as_f64().unwrap(),
            });
            c
        }
        other => panic!("unknown editor {other}"),
    };
    assert_eq!(config.steps, steps);
    config.hyper = HyperConfig {
        rank: golden.usize(&golden.json["rank"]),
        blocks: golden.usize(&golden.json["blocks"]),
        lr: 1e-6,
    };
    config.meta_lr = golden.json["meta_lr"].as_f64().unwrap();
    config.max_grad_norm = golden.json["max_grad_norm"].as_f64().unwrap() as f32;
    config.locality = match config.locality {
        Locality::L2 { .. } => Locality::L2 {
            reg_coef: golden.json["reg_coef"].as_f64().unwrap(),
        },
        Locality::Kl { .. } => Locality::Kl {
            loc_coef: golden.json["loc_coef"].as_f64().unwrap(),
        },
    };
    config.reference_quirks = case["quirks"].as_bool().unwrap();
    config
}

/// The edited modules' weights.
fn weights(lm: &CausalLm<Cpu>, golden: &Golden) -> Vec<Tensor<Cpu, 2>> {
    golden
        .modules()
        .iter()
        .map(|name| lm.weight(lm.module(name).unwrap()))
        .collect()
}

/// Edits the case's `edits` batches in turn and compares each module's total shift with
/// `{case}.shift.{m}`.
fn compare_shifts(
    golden: &Golden,
    case_name: &str,
    editor: &mut dyn Editor<Cpu>,
    lm: &mut CausalLm<Cpu>,
    report: &mut Report,
) {
    let case = golden.case(case_name);
    let stream = golden.batches();
    let before = weights(lm, golden);
    for e in case["edits"].as_array().unwrap() {
        editor.edit(lm, &stream[golden.usize(e)]).unwrap();
    }
    for (m, (after, before)) in weights(lm, golden).into_iter().zip(before).enumerate() {
        report.compare(
            golden,
            "edit shift",
            &format!("{case_name}.shift.{m}"),
            &(after - before),
        );
    }
}

/// Trains the case's editor from the golden initialisation on the golden batches, compares
/// every step and Adam update and, where the golden has them, the shifts of the edit that
/// follows. `false` (with a message) when the model is not available.
pub fn check_golden(golden: &Golden, case_name: &str) -> bool {
    let Some(model) = golden.model() else {
        return false;
    };
    let case = golden.case(case_name);
    let mut lm = CausalLm::<Cpu>::load(&model, &cpu()).unwrap();
    let mut report = Report::default();
    if case["editor"] == "ultraedit" {
        let config = UltraEditConfig {
            modules: golden.modules(),
            lr: golden.json["ultraedit_lr"].as_f64().unwrap(),
            steps: golden.usize(&case["steps"]),
            reference_quirks: case["quirks"].as_bool().unwrap(),
        };
        let mut editor = UltraEdit::<Cpu>::new(config);
        compare_shifts(golden, case_name, &mut editor, &mut lm, &mut report);
        report.finish(case_name);
        return true;
    }

    let mut editor = HyperEditor::<Cpu>::new(editor_config(golden, case));
    let inits = case["init"].as_array().unwrap();
    let nets = editor.nets_mut(&lm).unwrap();
    assert_eq!(nets.len(), inits.len(), "networks per step");
    for (step_nets, init) in nets.iter_mut().zip(inits) {
        let params = golden.params(&format!("init.{}", init.as_str().unwrap()));
        let dims = |p: &Params<Cpu>| p.tensors().iter().map(|t| t.dims()).collect::<Vec<_>>();
        assert_eq!(dims(&step_nets[0].params), dims(&params), "{init}");
        step_nets[0].params = params;
    }
    let stream = golden.batches();
    let trace = editor
        .train_traced(&mut lm, &stream[..golden.usize(&case["batches"])])
        .unwrap();

    assert_eq!(trace.steps.len(), golden.usize(&case["n_steps"]));
    assert_eq!(trace.updates.len(), golden.usize(&case["n_updates"]));
    for (s, step) in trace.steps.iter().enumerate() {
        let at = format!("{case_name}.step{s}");
        for (m, (delta, gamma)) in step.deltas.iter().zip(&step.gammas).enumerate() {
            report.compare(golden, "Δ", &format!("{at}.delta.{m}"), delta);
            report.compare(golden, "Γ", &format!("{at}.gamma.{m}"), gamma);
        }
        assert_eq!(step.grads.len(), 1, "one shape group");
        report.compare_params(golden, "step grad", &format!("{at}.grad.0"), &step.grads[0]);
    }
    for (u, update) in trace.updates.iter().enumerate() {
        let at = format!("{case_name}.update{u}");
        for (n, (grads, params)) in update.grads.iter().zip(&update.params).enumerate() {
            report.compare_params(golden, "Adam grad", &format!("{at}.grad.{n}"), grads);
            report.compare_params(golden, "updated", &format!("{at}.param.{n}"), params);
        }
    }
    if case.get("edits").is_some() {
        compare_shifts(golden, case_name, &mut editor, &mut lm, &mut report);
    }
    report.finish(case_name);
    true
}
