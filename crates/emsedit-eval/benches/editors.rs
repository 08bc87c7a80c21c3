//! Train and edit time per edit of every editor on the embedded default model
//! (`fixtures/model`: GPT-2, 4 layers, d = 128; the 2 edited modules of the main job and the
//! CPU scale's rank-128 two-block networks), and the share of an EMSEdit edit spent in the
//! hypernetwork and the ridge solve versus the LLM's cache pass.
//!
//! `cargo bench -p emsedit-eval --bench editors`; each iteration covers one batch of 8 edits.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use emsedit_eval::scenario::edit_batches;
use emsedit_eval::synthetic::{FactWorld, Split, WorldConfig};
use emsedit_llm::{CausalLm, LmTokenizer};
use emsedit_meta::hypernet::HyperConfig;
use emsedit_meta::predict::Predictor;
use emsedit_meta::steps::{Groups, apply, cache, predict_all};
use emsedit_meta::{
    EditBatch, Editor, Ft, FtConfig, HyperEditor, HyperEditorConfig, UltraEdit, UltraEditConfig,
};
use emsedit_tensor::{Cpu, cpu, seed};

const N: usize = 8;

fn setup() -> (CausalLm<Cpu>, Vec<EditBatch>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/model");
    let lm = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&dir).unwrap();
    // The world the model was pre-trained on, so the edits are real counterfactuals.
    let world = FactWorld::generate(WorldConfig::default());
    let records = world.zsre_records(Split::Eval);
    let batches = edit_batches(&tok, &records, N, 4, false)
        .unwrap()
        .into_iter()
        .map(|b| b.batch)
        .collect();
    (lm, batches)
}

fn modules() -> Vec<String> {
    vec![
        "transformer.h.2.mlp.c_proj".into(),
        "transformer.h.3.mlp.c_proj".into(),
    ]
}

/// The CPU scale's networks (`Overrides::cpu_scale`: rank 128, 2 blocks, η = 1e-2).
const HYPER: HyperConfig = HyperConfig {
    rank: 128,
    blocks: 2,
    lr: 1e-2,
};

fn small(mut c: HyperEditorConfig) -> HyperEditorConfig {
    c.hyper = HYPER;
    c
}

fn editors() -> Vec<(&'static str, Box<dyn Editor<Cpu>>)> {
    let hyper = |c| -> Box<dyn Editor<Cpu>> { Box::new(HyperEditor::<Cpu>::new(small(c))) };
    vec![
        ("FT", Box::new(Ft::new(FtConfig::new(modules())))),
        (
            "EMSEdit-batch",
            hyper(HyperEditorConfig::emsedit_batch(modules())),
        ),
        (
            "EMSEdit-seq",
            hyper(HyperEditorConfig::emsedit_sequential(modules())),
        ),
        ("MALMEN", hyper(HyperEditorConfig::malmen(modules(), 1))),
        ("MALMEN2", hyper(HyperEditorConfig::malmen(modules(), 2))),
        ("MEND", hyper(HyperEditorConfig::mend(modules()))),
        ("RLEdit", hyper(HyperEditorConfig::rledit(modules(), 1))),
        ("RLEdit2", hyper(HyperEditorConfig::rledit(modules(), 2))),
        (
            "UltraEdit",
            Box::new(UltraEdit::<Cpu>::new(UltraEditConfig::new(modules()))),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    emsedit_tensor::reuse_freed_memory();
    seed::<Cpu>(&cpu(), 0);
    let (lm, batches) = setup();
    let mut group = c.benchmark_group("editors_per_batch_of_8");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for (label, mut editor) in editors() {
        group.bench_function(format!("train/{label}"), |b| {
            b.iter(|| {
                let mut model = lm.clone();
                editor.train(&mut model, &batches[..1]).unwrap();
                black_box(model)
            })
        });
        group.bench_function(format!("edit/{label}"), |b| {
            b.iter(|| {
                let mut model = lm.clone();
                editor.edit(&mut model, &batches[1]).unwrap();
                black_box(model)
            })
        });
    }
    group.finish();

    // Where an EMSEdit edit step goes: CACHE (LLM forward/backward) vs PREDICT (hypernetwork
    // and ridge solve) vs APPLY, summed over 20 repetitions.
    let groups = Groups::new(
        &lm,
        modules().iter().map(|m| lm.module(m).unwrap()).collect(),
    );
    let mut nets = groups.nets::<Cpu>(&HYPER, &cpu());
    let (mut t_cache, mut t_predict, mut t_apply) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..20 {
        let mut model = lm.clone();
        let t = Instant::now();
        let caches = cache(&model, &batches[1].edit, &groups, &mut nets).unwrap();
        t_cache += t.elapsed();
        let t = Instant::now();
        let preds = predict_all(&caches, &groups, &nets, Predictor::LeastSquares).unwrap();
        preds.iter().for_each(|p| {
            black_box(p.delta.clone().into_data());
        });
        t_predict += t.elapsed();
        let t = Instant::now();
        apply(&mut model, &groups, &preds).unwrap();
        t_apply += t.elapsed();
    }
    let total = (t_cache + t_predict + t_apply).as_secs_f64();
    println!(
        "EMSEdit edit step breakdown (20 runs): cache {:.1}%, hypernetwork + solve {:.1}%, apply {:.1}% of {:.2} ms per step",
        100.0 * t_cache.as_secs_f64() / total,
        100.0 * t_predict.as_secs_f64() / total,
        100.0 * t_apply.as_secs_f64() / total,
        1e3 * total / 20.0
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
