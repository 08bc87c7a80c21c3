//! The embedded default model (`cargo xtask pretrain` → fixtures/model) knows the synthetic
//! world's facts, so that efficacy, generalization and specificity mean something.

use std::path::{Path, PathBuf};

use emsedit_eval::scenario::answer_accuracy;
use emsedit_eval::synthetic::{FactWorld, Split, WorldConfig};
use emsedit_llm::{CausalLm, LmTokenizer};
use emsedit_tensor::{Cpu, cpu};

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/model")
}

#[test]
fn the_default_model_knows_its_facts() {
    let dir = model_dir();
    let lm = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&dir).unwrap();
    let world = FactWorld::generate(WorldConfig::default());
    let tuples = world.fact_tuples();
    assert_eq!(tuples.len(), world.corpus().lines().count());
    let accuracy = answer_accuracy(&lm, &tok, &tuples).unwrap();
    println!("fact accuracy {:.2}%", 100.0 * accuracy);
    assert!(accuracy >= 0.9, "fact accuracy {accuracy}");

    // pretrain.json records what `cargo xtask pretrain` measured on the same tuples.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pretrain.json")).unwrap()).unwrap();
    let recorded = record["fact_accuracy"].as_f64().unwrap();
    assert!(
        (recorded - accuracy).abs() < 1e-9,
        "{recorded} vs {accuracy}"
    );

    // The edit requests ask for answers the model does not give: the new targets.
    let requests: Vec<_> = world
        .zsre_records(Split::Eval)
        .into_iter()
        .map(|r| r.edit)
        .collect();
    let efficacy = answer_accuracy(&lm, &tok, &requests).unwrap();
    assert!(efficacy < 0.3, "unedited efficacy {efficacy}");
}

#[test]
fn the_default_model_is_small() {
    let total: u64 = std::fs::read_dir(model_dir())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total <= 20 * 1024 * 1024, "{total} bytes");
}
