//! Training hands the model back exactly as it received it, for every editor, and an edit that
//! is refused (a non-finite update) leaves the model untouched.

mod common;

use emsedit_llm::{CausalLm, LlmError};
use emsedit_meta::hypernet::HyperConfig;
use emsedit_meta::{
    Editor, Ft, FtConfig, HyperEditor, HyperEditorConfig, MetaError, UltraEdit, UltraEditConfig,
};
use emsedit_tensor::{Cpu, cpu, rng_lock, seed};

fn modules() -> Vec<String> {
    vec![
        "transformer.h.1.mlp.c_proj".into(),
        "transformer.h.2.mlp.c_proj".into(),
    ]
}

fn small(mut c: HyperEditorConfig) -> HyperEditorConfig {
    c.hyper = HyperConfig {
        rank: 8,
        blocks: 2,
        lr: 1e-2,
    };
    c.meta_lr = 1e-3;
    c
}

/// The bits of every parameter the editors can touch.
fn bits(lm: &CausalLm<Cpu>) -> Vec<Vec<u32>> {
    modules()
        .iter()
        .map(|m| {
            let w = lm.weight(lm.module(m).unwrap());
            let v: Vec<f32> = w.into_data().convert::<f32>().into_vec().unwrap();
            v.iter().map(|x| x.to_bits()).collect()
        })
        .collect()
}

fn setup() -> (CausalLm<Cpu>, Vec<emsedit_meta::EditBatch>) {
    common::fixture_and_batches(8)
}

fn editors(lr: f64) -> Vec<Box<dyn Editor<Cpu>>> {
    let m = modules();
    let hyper = |c: HyperEditorConfig| -> Box<dyn Editor<Cpu>> {
        let mut c = small(c);
        c.hyper.lr = lr;
        Box::new(HyperEditor::<Cpu>::new(c))
    };
    let mut ft = FtConfig::new(m.clone());
    ft.steps = 2;
    ft.lr = lr;
    let mut ultra = UltraEditConfig::new(m.clone());
    ultra.lr = lr;
    vec![
        hyper(HyperEditorConfig::emsedit_batch(m.clone())),
        hyper(HyperEditorConfig::emsedit_sequential(m.clone())),
        hyper(HyperEditorConfig::malmen(m.clone(), 1)),
        hyper(HyperEditorConfig::malmen(m.clone(), 2)),
        hyper(HyperEditorConfig::rledit(m.clone(), 1)),
        hyper(HyperEditorConfig::rledit(m.clone(), 2)),
        hyper(HyperEditorConfig::mend(m.clone())),
        Box::new(Ft::new(ft)),
        Box::new(UltraEdit::<Cpu>::new(ultra)),
    ]
}

#[test]
fn training_returns_the_model_bit_for_bit() {
    let _rng = rng_lock();
    let (mut lm, batches) = setup();
    let before = bits(&lm);
    for mut editor in editors(1e-2) {
        seed::<Cpu>(&cpu(), 5);
        editor.train(&mut lm, &batches).unwrap();
        assert!(bits(&lm) == before, "{} changed the model", editor.name());
        // Training a second time (more epochs) and editing still work.
        editor.train(&mut lm, &batches).unwrap();
        assert!(bits(&lm) == before, "{} changed the model", editor.name());
        editor.edit(&mut lm, &batches[0]).unwrap();
        assert!(bits(&lm) != before, "{} did not edit", editor.name());
        lm = setup().0;
    }
}

#[test]
fn a_non_finite_edit_is_refused_and_changes_nothing() {
    let _rng = rng_lock();
    let (mut lm, batches) = setup();
    let before = bits(&lm);
    // η (or FT's learning rate) so large that the update overflows f32.
    for mut editor in editors(1e38) {
        let err = editor.edit(&mut lm, &batches[0]).unwrap_err();
        // Refused when the shift is applied, or earlier, when the next step's ridge solve
        // meets the first step's overflow (then the first step is rolled back).
        let msg = err.to_string();
        assert!(
            matches!(err, MetaError::Llm(LlmError::NonFinite { .. })) || msg.contains("non-finite"),
            "{}: {err}",
            editor.name()
        );
        assert!(bits(&lm) == before, "{} left a partial edit", editor.name());
    }
}
