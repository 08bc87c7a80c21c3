//! Edit patches and Hugging Face export on a LLaMA fixture (nn.Linear orientation): low-rank
//! changes are stored as factors, apply then revert is the identity bit for bit, a patch is
//! refused where it does not belong, and an export keeps every tensor's dtype.

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use emsedit_llm::export::save_edited;
use emsedit_llm::patch::Patch;
use emsedit_llm::{CausalLm, ModuleId};
use emsedit_tensor::{Cpu, burn, cpu};
use safetensors::{Dtype, SafeTensors};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/llm/llama")
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("emsedit-patch-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bits(lm: &CausalLm<Cpu>, id: ModuleId) -> Vec<u32> {
    let v: Vec<f32> = lm
        .weight(id)
        .into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap();
    v.iter().map(|x| x.to_bits()).collect()
}

/// Adds a rank-`r` change of size `scale` to module `id`.
fn low_rank_edit(lm: &mut CausalLm<Cpu>, id: ModuleId, r: usize, scale: f32) {
    let w = lm.weight(id);
    let [a, b] = w.dims();
    let u: Vec<f32> = (0..a * r)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) * scale)
        .collect();
    let v: Vec<f32> = (0..r * b)
        .map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0)
        .collect();
    let u = Tensor::<Cpu, 2>::from_data(TensorData::new(u, [a, r]), &cpu());
    let v = Tensor::<Cpu, 2>::from_data(TensorData::new(v, [r, b]), &cpu());
    lm.set_weight(id, w + u.matmul(v)).unwrap();
}

#[test]
fn patches_round_trip_compose_and_refuse() {
    let base = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let ids = [
        base.module("model.layers.1.mlp.gate_proj").unwrap(),
        base.module("model.layers.2.mlp.up_proj").unwrap(),
    ];
    let mut edited = base.clone();
    low_rank_edit(&mut edited, ids[0], 2, 1e-3);
    low_rank_edit(&mut edited, ids[1], 3, 2e-3);
    let info = serde_json::json!({"method": "test"});
    let patch = Patch::between(&base, &edited, &ids, info).unwrap();
    assert_eq!(patch.header.ranks, [Some(2), Some(3)]);
    let path = scratch("one").join("p.safetensors");
    patch.save(&path).unwrap();
    let patch = Patch::load(&path).unwrap();

    let mut lm = base.clone();
    patch.apply(&mut lm).unwrap();
    // Per entry within 6 ulps of the weight plus 1e-6 of the largest change.
    for &id in &ids {
        let (x, y, w) = (bits(&lm, id), bits(&edited, id), bits(&base, id));
        let f = f32::from_bits;
        let largest = y
            .iter()
            .zip(&w)
            .fold(0f32, |m, (q, o)| m.max((f(*q) - f(*o)).abs()));
        assert!(
            x.iter().zip(&y).all(|(p, q)| {
                let (p, q) = (f(*p), f(*q));
                (p - q).abs() <= 6.0 * f32::EPSILON * p.abs().max(q.abs()) + 1e-6 * largest
            }),
            "apply reproduces the edit"
        );
    }
    let err = patch.apply(&mut lm).unwrap_err().to_string();
    assert!(err.contains("already applied"), "{err}");

    // A second patch on top composes; reverting both in reverse order gives the base back.
    let mut more = lm.clone();
    low_rank_edit(&mut more, ids[1], 1, 5e-3);
    let second = Patch::between(&lm, &more, &ids[1..], serde_json::json!({})).unwrap();
    assert!(
        second.apply(&mut base.clone()).is_err(),
        "its base is the first's result"
    );
    second.apply(&mut lm).unwrap();
    second.revert(&mut lm).unwrap();
    patch.revert(&mut lm).unwrap();
    for &id in &ids {
        assert!(bits(&lm, id) == bits(&base, id), "revert is exact");
    }
    assert!(patch.revert(&mut lm).is_err(), "not the patch's result");

    // A full-rank change is stored whole.
    let mut noisy = base.clone();
    let w = noisy.weight(ids[0]);
    let noise = w
        .clone()
        .random_like(burn::tensor::Distribution::Uniform(-1e-2, 1e-2));
    noisy.set_weight(ids[0], w + noise).unwrap();
    let full = Patch::between(&base, &noisy, &ids[..1], serde_json::json!({})).unwrap();
    assert_eq!(full.header.ranks, [None]);
}

#[test]
fn a_damaged_patch_is_refused_with_its_file_named() {
    let base = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let id = base.module("model.layers.1.mlp.gate_proj").unwrap();
    let mut edited = base.clone();
    low_rank_edit(&mut edited, id, 2, 1e-3);
    let dir = scratch("damaged");
    let path = dir.join("p.safetensors");
    Patch::between(&base, &edited, &[id], serde_json::json!({}))
        .unwrap()
        .save(&path)
        .unwrap();
    let mut raw = std::fs::read(&path).unwrap();
    let needle = b"\\\"ranks\\\":[2]";
    let at = raw
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("ranks in the header");
    raw[at + needle.len() - 2] = b'7';
    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, raw).unwrap();
    let err = Patch::load(&bad).unwrap_err().to_string();
    assert!(
        err.contains("bad.safetensors") && err.contains("rank 7"),
        "{err}"
    );
    let err = Patch::load(&fixture().join("model.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an edit patch"), "{err}");
}

/// The fixture's weights rewritten in bf16.
fn bf16_copy() -> PathBuf {
    let dir = scratch("bf16-src");
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixture().join(f), dir.join(f)).unwrap();
    }
    let raw = std::fs::read(fixture().join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&raw).unwrap();
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, v)| {
            let bytes = v
                .data()
                .chunks_exact(4)
                .flat_map(|c| {
                    half::bf16::from_f32(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes()
                })
                .collect();
            (name, v.shape().to_vec(), bytes)
        })
        .collect();
    let views: Vec<_> = data
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(Dtype::BF16, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    dir
}

#[test]
fn export_keeps_dtypes_and_loads_back() {
    let src = bf16_copy();
    let mut lm = CausalLm::<Cpu>::load(&src, &cpu()).unwrap();
    let id = lm.module("model.layers.0.mlp.up_proj").unwrap();
    low_rank_edit(&mut lm, id, 2, 0.05);
    let out = scratch("bf16-out");
    save_edited(&lm, &[id], &out).unwrap();
    let raw = std::fs::read(out.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&raw).unwrap();
    assert!(st.tensors().iter().all(|(_, v)| v.dtype() == Dtype::BF16));
    assert!(out.join("tokenizer.json").is_file() && out.join("config.json").is_file());
    // Loaded back: the edited module is the edit rounded to bf16, the others unchanged.
    let back = CausalLm::<Cpu>::load(&out, &cpu()).unwrap();
    let round = |x: f32| half::bf16::from_f32(x).to_f32();
    let want: Vec<f32> = lm
        .weight(id)
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(round)
        .collect();
    let got: Vec<f32> = back
        .weight(id)
        .into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap();
    assert_eq!(got, want);
    let other = lm.module("model.layers.1.mlp.up_proj").unwrap();
    assert!(bits(&back, other) == bits(&lm, other));
    // Never over the source directory.
    assert!(save_edited(&back, &[id], &out).is_err());
}

/// An exported, edited copy of a fixture family in `target/tmp/export/<family>` (what
/// `scripts/goldens/export_check.py` loads in transformers).
fn exported(family: &str, module: &str) -> (PathBuf, CausalLm<Cpu>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/llm")
        .join(family);
    let mut lm = CausalLm::<Cpu>::load(&src, &cpu()).unwrap();
    let id = lm.module(module).unwrap();
    low_rank_edit(&mut lm, id, 2, 0.05);
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("export")
        .join(family);
    let _ = std::fs::remove_dir_all(&out);
    save_edited(&lm, &[id], &out).unwrap();
    (out, lm)
}

#[test]
fn exported_models_give_transformers_logits() {
    let families = [
        ("gpt2", "transformer.h.1.mlp.c_proj"),
        ("llama", "model.layers.1.mlp.gate_proj"),
    ];
    // Every directory first: the Python script reads them all.
    let models: Vec<_> = families.iter().map(|(f, m)| exported(f, m)).collect();
    for ((family, _), (dir, edited)) in families.iter().zip(models) {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/export")
            .join(format!("{family}.json"));
        let text = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run this test once, then scripts/goldens/export_check.py",
                golden.display()
            )
        });
        let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ids: Vec<i64> = serde_json::from_value(golden["ids"].clone()).unwrap();
        let want: Vec<f64> = serde_json::from_value(golden["logits"].clone()).unwrap();
        let batch = emsedit_llm::Batch {
            batch: 1,
            time: ids.len(),
            attention_mask: vec![1; ids.len()],
            labels: vec![emsedit_llm::IGNORE; ids.len()],
            input_ids: ids,
        };
        let back = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
        for lm in [&back, &edited] {
            let got: Vec<f32> = lm.forward(&batch).unwrap().into_data().into_vec().unwrap();
            assert_eq!(got.len(), want.len());
            let scale = want.iter().fold(0f64, |m, x| m.max(x.abs()));
            let worst = got
                .iter()
                .zip(&want)
                .fold(0f64, |m, (g, w)| m.max((f64::from(*g) - w).abs()));
            eprintln!("{family}: largest logit difference {worst:.2e} (logits up to {scale:.2})");
            assert!(
                worst <= 1e-4 * scale.max(1.0),
                "{family}: {worst} (scale {scale})"
            );
        }
    }
}
