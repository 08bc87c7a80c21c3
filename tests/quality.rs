//! The paper's quality claims on the embedded default model (docs/results.md), at the CPU
//! scale ([`Overrides::cpu_scale`]), averaged over three seeds of the same data and
//! initialization:
//!
//! - sequential editing: EMSEdit beats RLEdit on efficacy and generalization;
//! - batch editing: EMSEdit beats MALMEN on efficacy and generalization;
//! - multi-step back-propagation: K = 2 beats K = 1 for MALMEN (batch) and RLEdit (sequential).

use std::path::Path;

use emsedit::eval::synthetic::{FactWorld, Split, WorldConfig};
use emsedit::methods::{MethodSpec, Mode, Overrides, default_modules};
use emsedit::tensor::rng_lock;
use emsedit::{CausalLm, Cpu, LmTokenizer, Run, ScenarioConfig, Scores, cpu, run, seed};

const SEEDS: [u64; 3] = [0, 1, 2];

/// Mean scores of `method` over [`SEEDS`].
fn mean_scores(method: &str, scenario: &ScenarioConfig) -> Scores {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/model");
    let device = cpu();
    let lm = CausalLm::<Cpu>::load(&dir, &device).unwrap();
    let tok = LmTokenizer::load_dir(&dir).unwrap();
    let world = FactWorld::generate(WorldConfig::default());
    let (train, eval) = (
        world.zsre_records(Split::Train),
        world.zsre_records(Split::Eval),
    );
    let input = Run {
        model: &lm,
        tokenizer: &tok,
        train: &train,
        eval: &eval,
        source: None,
        skipped: Vec::new(),
        glue: &[],
    };
    let mut spec = MethodSpec::parse(method).unwrap();
    spec.overrides = Overrides::cpu_scale().for_kind(spec.kind);
    let modules = default_modules(&lm, Mode::of(scenario));
    let mut sum = Scores::default();
    for s in SEEDS {
        seed::<Cpu>(&device, s);
        let mut editor = spec.build::<Cpu>(modules.clone(), scenario).unwrap();
        let mut scenario = scenario.clone();
        scenario.seed = s;
        let r = run(editor.as_mut(), &input, &scenario).unwrap();
        sum.efficacy += r.after.efficacy / SEEDS.len() as f64;
        sum.generalization += r.after.generalization / SEEDS.len() as f64;
        sum.specificity += r.after.specificity / SEEDS.len() as f64;
    }
    println!(
        "{method:>8}: efficacy {:.3} generalization {:.3} specificity {:.3}",
        sum.efficacy, sum.generalization, sum.specificity
    );
    sum
}

#[test]
fn sequential_editing_orders_as_the_paper_claims() {
    let _rng = rng_lock();
    let scenario = ScenarioConfig::sequential(8, 4);
    let emsedit = mean_scores("emsedit", &scenario);
    let rledit = mean_scores("rledit", &scenario);
    let rledit2 = mean_scores("rledit2", &scenario);
    assert!(emsedit.efficacy > rledit.efficacy);
    assert!(emsedit.generalization > rledit.generalization);
    assert!(rledit2.efficacy > rledit.efficacy);
}

#[test]
fn batch_editing_orders_as_the_paper_claims() {
    let _rng = rng_lock();
    let scenario = ScenarioConfig::batch(32);
    let emsedit = mean_scores("emsedit", &scenario);
    let malmen = mean_scores("malmen", &scenario);
    let malmen2 = mean_scores("malmen2", &scenario);
    assert!(emsedit.efficacy > malmen.efficacy);
    assert!(emsedit.generalization > malmen.generalization);
    assert!(malmen2.efficacy > malmen.efficacy);
}
