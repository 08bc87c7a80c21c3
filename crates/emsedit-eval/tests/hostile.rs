//! Bad input to the scenario layer: clear errors or warnings, never a panic, a wrapped count
//! or a silent skip.

use std::path::Path;

use emsedit_eval::data::{Dataset, EditRecord, Tuple, load};
use emsedit_eval::scenario::{Run, ScenarioConfig, edit_batches, run};
use emsedit_eval::synthetic::{FactWorld, Split, WorldConfig};
use emsedit_llm::{CausalLm, LmTokenizer};
use emsedit_meta::{Editor, Ft, FtConfig, HyperEditor, HyperEditorConfig};
use emsedit_tensor::{Cpu, cpu};

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/llm/gpt2")
}

fn world() -> FactWorld {
    FactWorld::generate(WorldConfig {
        seed: 2,
        subjects: 40,
        train_records: 8,
        eval_records: 8,
    })
}

fn ft() -> Ft {
    Ft::new(FtConfig::new(vec!["transformer.h.1.mlp.c_proj".into()]))
}

#[test]
fn zero_sized_batches_and_overflowing_counts_are_errors() {
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let records = world().zsre_records(Split::Eval);
    let err = edit_batches(&tok, &records, 0, 4, false).unwrap_err();
    assert!(err.to_string().contains("n_edits"), "{err}");
    assert!(edit_batches(&tok, &records, 4, 0, false).is_err());

    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let (train, eval) = (world().zsre_records(Split::Train), records);
    let input = Run::new(&lm, &tok, &train, &eval);
    for (n, t) in [(usize::MAX, 2), (1 << 33, 1 << 33)] {
        let err = run(&mut ft(), &input, &ScenarioConfig::sequential(n, t)).unwrap_err();
        assert!(err.to_string().contains("machine word"), "{err}");
    }
    let mut config = ScenarioConfig::sequential(4, 1);
    config.train_batches = Some(usize::MAX / 2);
    assert!(run(&mut ft(), &input, &config).is_err());
}

#[test]
fn a_short_train_split_is_a_warning_in_the_report() {
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let (train, eval) = (
        world().zsre_records(Split::Train),
        world().zsre_records(Split::Eval),
    );
    let input = Run::new(&lm, &tok, &train[..3], &eval);
    let mut config = ScenarioConfig::sequential(2, 2);
    config.train_batches = Some(4);
    let report = run(&mut ft(), &input, &config).unwrap();
    assert_eq!(report.warnings.len(), 1);
    assert!(
        report.warnings[0].contains("need 8 train records, the data has 3"),
        "{:?}",
        report.warnings
    );
}

#[test]
fn an_over_long_prompt_names_its_record() {
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let mut eval = world().zsre_records(Split::Eval);
    let long = "word ".repeat(lm.context_len() + 5);
    eval[5].equiv[0] = Tuple {
        prompt: long,
        target: "x".into(),
        old_target: None,
    };
    let train = world().zsre_records(Split::Train);
    let input = Run::new(&lm, &tok, &train, &eval);
    let err = run(&mut ft(), &input, &ScenarioConfig::sequential(8, 1))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("eval record 5") && err.contains("context"),
        "{err}"
    );
}

#[test]
fn a_module_listed_twice_is_named() {
    let mut lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let m = "transformer.h.1.mlp.c_proj".to_string();
    let mut editor = HyperEditor::<Cpu>::new(HyperEditorConfig::emsedit_batch(vec![
        m.clone(),
        "transformer.h.2.mlp.c_proj".into(),
        m,
    ]));
    let err = editor.train(&mut lm, &[]).unwrap_err().to_string();
    assert!(
        err.contains("listed twice") && err.contains("transformer.h.1.mlp.c_proj"),
        "{err}"
    );
}

#[test]
fn generation_stops_at_the_context_and_keeps_its_tokens() {
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let context = lm.context_len();
    let prompt: Vec<u32> = (0..context as u32 - 3).map(|i| i % 50 + 1).collect();
    let out = lm.generate(&prompt, 10, None).unwrap();
    assert_eq!(out.len(), 3, "fills the context, keeps what it made");
    let too_long: Vec<u32> = vec![1; context + 1];
    assert!(lm.generate(&too_long, 1, None).is_err());
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let records: Vec<serde_json::Value> = world().zsre(Split::Eval);
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(serde_json::to_vec(&records).unwrap());
    let path = std::env::temp_dir().join(format!("emsedit-bom-{}.json", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let loaded: Vec<EditRecord> = load(&path, Dataset::Zsre).unwrap().strict().unwrap();
    assert_eq!(loaded, world().zsre_records(Split::Eval));
}
