//! UltraEdit's shift equals its closed form (spec §4.6) computed independently from the cache.

use std::path::Path;

use emsedit_eval::scenario::{Run, ScenarioConfig, edit_batches, run};
use emsedit_eval::synthetic::{FactWorld, Split, WorldConfig};
use emsedit_llm::{CausalLm, LmTokenizer};
use emsedit_meta::{Editor, UltraEdit, UltraEditConfig};
use emsedit_tensor::burn::tensor::{Tensor, TensorData};
use emsedit_tensor::{Cpu, RidgeForm, cpu, ridge_solve};

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/llm/gpt2")
}

fn host(t: &Tensor<Cpu, 2>) -> Vec<f64> {
    t.clone()
        .into_data()
        .convert::<f64>()
        .into_vec::<f64>()
        .unwrap()
}

fn records() -> Vec<emsedit_eval::data::EditRecord> {
    let world = FactWorld::generate(WorldConfig {
        seed: 5,
        subjects: 30,
        train_records: 8,
        eval_records: 8,
    });
    world.zsre_records(Split::Eval)
}

const MODULES: [&str; 2] = ["transformer.h.1.mlp.c_proj", "transformer.h.2.mlp.c_proj"];

#[test]
fn first_edit_matches_the_closed_form() {
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let batches = edit_batches(&tok, &records(), 6, 4, false).unwrap();
    let batch = &batches[0].batch;
    let eta = 0.5;
    let mut config = UltraEditConfig::new(MODULES.iter().map(|s| s.to_string()).collect());
    config.lr = eta;
    let mut editor = UltraEdit::<Cpu>::new(config);
    let mut edited = lm.clone();
    editor.edit(&mut edited, batch).unwrap();

    // Independent computation: cache on the pristine model, one normalizer over both modules'
    // rows (they share a shape group), then c = −η‖k̂‖², V = c ĝ, Δ = (KᵀK + I)⁻¹KᵀV.
    let ids: Vec<_> = MODULES.iter().map(|m| lm.module(m).unwrap()).collect();
    let mut keys = vec![Vec::new(); 2];
    let mut outs = vec![Vec::new(); 2];
    for micro in &batch.edit {
        let g = lm.edit_gradients(micro, &ids).unwrap();
        for m in 0..2 {
            keys[m].push(g.keys[m].clone());
            outs[m].push(g.out_grads[m].clone());
        }
    }
    let k: Vec<Tensor<Cpu, 2>> = keys.into_iter().map(|v| Tensor::cat(v, 0)).collect();
    let g: Vec<Tensor<Cpu, 2>> = outs.into_iter().map(|v| Tensor::cat(v, 0)).collect();
    let rows: Vec<Vec<f64>> = (0..2)
        .flat_map(|m| {
            let (kh, gh) = (host(&k[m]), host(&g[m]));
            let (n, a, b) = (k[m].dims()[0], k[m].dims()[1], g[m].dims()[1]);
            (0..n).map(move |r| [&kh[r * a..(r + 1) * a], &gh[r * b..(r + 1) * b]].concat())
        })
        .collect();
    let d = rows[0].len();
    let total = rows.len() as f64;
    let mean: Vec<f64> = (0..d)
        .map(|c| rows.iter().map(|r| r[c]).sum::<f64>() / total)
        .collect();
    let std: Vec<f64> = (0..d)
        .map(|c| {
            (rows.iter().map(|r| (r[c] - mean[c]).powi(2)).sum::<f64>() / (total - 1.0 + 1e-8))
                .sqrt()
        })
        .collect();
    let m = 1;
    let (n, a) = (k[m].dims()[0], k[m].dims()[1]);
    let b = d - a;
    let (kh, gh) = (host(&k[m]), host(&g[m]));
    let mut v = vec![0.0; n * b];
    for r in 0..n {
        let khat: f64 = (0..a)
            .map(|c| ((kh[r * a + c] - mean[c]) / (std[c] + f32::EPSILON as f64)).powi(2))
            .sum();
        for c in 0..b {
            let ghat = (gh[r * b + c] - mean[a + c]) / (std[a + c] + f32::EPSILON as f64);
            v[r * b + c] = -eta * khat * ghat;
        }
    }
    let v = Tensor::<Cpu, 2>::from_data(TensorData::new(v, [n, b]), &cpu());
    let want = host(
        ridge_solve(&k[m], &v, 1.0, RidgeForm::Auto)
            .unwrap()
            .delta(),
    );
    let got: Vec<f64> = host(&edited.weight(ids[m]))
        .iter()
        .zip(host(&lm.weight(ids[m])))
        .map(|(x, y)| x - y)
        .collect();
    let err = got
        .iter()
        .zip(&want)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
        / want.iter().map(|y| y * y).sum::<f64>().sqrt();
    assert!(err < 1e-3, "relative error {err}");
    assert_eq!(
        editor.nets().unwrap()[0][0].norm.count() as usize,
        rows.len()
    );
}

#[test]
fn ultraedit2_runs_through_the_driver() {
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let recs = records();
    let input = Run {
        model: &lm,
        tokenizer: &tok,
        train: &recs,
        eval: &recs,
        source: None,
        skipped: Vec::new(),
        glue: &[],
    };
    let mut config = UltraEditConfig::new(MODULES.iter().map(|s| s.to_string()).collect());
    config.steps = 2;
    config.reference_quirks = true;
    let mut editor = UltraEdit::<Cpu>::new(config);
    let report = run(&mut editor, &input, &ScenarioConfig::sequential(3, 2)).unwrap();
    assert_eq!(report.method, "UltraEdit2");
    assert_eq!(
        editor.nets().unwrap().len(),
        2,
        "one normalizer set per step"
    );
    assert!(report.edit_seconds_per_edit > 0.0);
}
