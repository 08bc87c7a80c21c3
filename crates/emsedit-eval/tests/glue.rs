//! The general-capability scorer on the embedded default model: files in the reference's
//! shapes, errors that name the record and field, and scores that follow the model's
//! log-probabilities.

use std::path::{Path, PathBuf};

use emsedit_eval::glue::{GlueExample, GlueSet, GlueTask, answer_scores, glue_scores, load_glue};
use emsedit_eval::scenario::{Run, ScenarioConfig, run};
use emsedit_llm::{CausalLm, LmTokenizer};
use emsedit_meta::{Ft, FtConfig};
use emsedit_tensor::{Cpu, cpu};

fn fixture() -> (CausalLm<Cpu>, LmTokenizer) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/model");
    let lm = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&dir).unwrap();
    (lm, tok)
}

fn write(name: &str, json: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("emsedit-glue-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, json).unwrap();
    path
}

fn sst_records(n: usize) -> String {
    let records: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"sentence": "film number {i} was fine", "label": {}}}"#,
                i % 2
            )
        })
        .collect();
    format!("[{}]", records.join(","))
}

#[test]
fn records_after_the_few_shot_head_are_the_tests() {
    let path = write("sst2.json", &sst_records(14));
    let set = load_glue(&path, GlueTask::Sst2, 4).unwrap();
    assert_eq!(set.examples.len(), 4);
    assert_eq!(
        set.examples[0],
        GlueExample {
            prompt: "Review :film number 10 was fine\nSentiment :".into(),
            label: 0
        }
    );
    let err = load_glue(&path, GlueTask::Sst2, 5).unwrap_err().to_string();
    assert!(err.contains("sst2.json") && err.contains('4'), "{err}");
}

#[test]
fn a_bad_record_is_named() {
    let mut records: Vec<String> = (0..11)
        .map(|_| r#"{"question": "q", "choices": ["a", "b", "c", "d"], "answer": 1}"#.into())
        .collect();
    records[10] = r#"{"question": "q", "choices": ["a", "b", "c", "d"], "answer": 4}"#.into();
    let path = write("mmlu.json", &format!("[{}]", records.join(",")));
    let err = load_glue(&path, GlueTask::Mmlu, 1).unwrap_err().to_string();
    assert!(
        err.contains("mmlu.json") && err.contains("record 10") && err.contains("answer"),
        "{err}"
    );
    records[10] = r#"{"sentence1": "a", "sentence2": "b", "label": "maybe"}"#.into();
    let path = write("nli.json", &format!("[{}]", records.join(",")));
    let err = load_glue(&path, GlueTask::Nli, 1).unwrap_err().to_string();
    assert!(err.contains("record 10") && err.contains("label"), "{err}");
}

#[test]
fn scores_follow_the_answer_log_probabilities() {
    let (lm, tok) = fixture();
    // Labels set to the model's own preferred answer score 100; flipped, 0.
    let prompts = ["the capital of", "a story about", "one two three", "it was"];
    let mut examples: Vec<GlueExample> = prompts
        .iter()
        .map(|p| GlueExample {
            prompt: (*p).into(),
            label: 0,
        })
        .collect();
    let set = |examples: &[GlueExample]| GlueSet {
        task: GlueTask::Rte,
        examples: examples.to_vec(),
    };
    let first = glue_scores(&lm, &tok, &[set(&examples)], 3).unwrap();
    let right = (first[0].accuracy * 4.0).round() as usize;
    // Learn the preferred classes from class 0's outcome, then label every example with them.
    let mut preferred = Vec::new();
    for e in &examples {
        let one = glue_scores(&lm, &tok, &[set(std::slice::from_ref(e))], 1).unwrap();
        preferred.push(if one[0].accuracy == 1.0 { 0 } else { 1 });
    }
    assert_eq!(preferred.iter().filter(|&&c| c == 0).count(), right);
    for (e, &c) in examples.iter_mut().zip(&preferred) {
        e.label = c;
    }
    let all = glue_scores(&lm, &tok, &[set(&examples)], 2).unwrap();
    assert_eq!((all[0].accuracy, all[0].f1, all[0].n), (1.0, 1.0, 4));
    for e in &mut examples {
        e.label = 1 - e.label;
    }
    let none = glue_scores(&lm, &tok, &[set(&examples)], 4).unwrap();
    assert_eq!((none[0].accuracy, none[0].f1), (0.0, 0.0));
}

#[test]
fn a_scenario_scores_them_along_the_stream_and_leaves_the_model_alone() {
    let (lm, tok) = fixture();
    let world = emsedit_eval::synthetic::FactWorld::generate(Default::default());
    let train = world.zsre_records(emsedit_eval::synthetic::Split::Train);
    let eval = world.zsre_records(emsedit_eval::synthetic::Split::Eval);
    let path = write("sst2-scenario.json", &sst_records(16));
    let glue = [load_glue(&path, GlueTask::Sst2, 6).unwrap()];
    let mut config = ScenarioConfig::sequential(2, 3);
    config.glue_every = Some(2);
    let input = Run {
        glue: &glue,
        ..Run::new(&lm, &tok, &train, &eval)
    };
    let modules = vec!["transformer.h.3.mlp.c_proj".to_string()];
    let mut editor = Ft::new(FtConfig::new(modules));
    let before = glue_scores(&lm, &tok, &glue, 4).unwrap();
    let report = run(&mut editor, &input, &config).unwrap();
    let at: Vec<(usize, usize)> = report.glue.iter().map(|p| (p.batches, p.edits)).collect();
    assert_eq!(at, [(0, 0), (2, 4), (3, 6)]);
    assert_eq!(report.glue[0].scores, before);
    assert_eq!(glue_scores(&lm, &tok, &glue, 4).unwrap(), before);
    config.glue_every = Some(0);
    assert!(run(&mut editor, &input, &config).is_err());
}

/// SmolLM2 from the models cache of `cargo xtask fetch-models`.
fn smollm2() -> Option<PathBuf> {
    emsedit_llm::models_cache::fetched("smollm2-135m")
        .map_err(|why| eprintln!("skipped: {why}"))
        .ok()
}

#[test]
fn answer_scores_match_the_reference_scorer_on_smollm2() {
    // fixtures/glue/golden-smollm2-135m.json: the reference's glue_eval loop in transformers
    // (scripts/glue/run.sh) on the records in fixtures/glue/.
    let Some(dir) = smollm2() else {
        return;
    };
    let lm = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&dir).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/glue");
    let text = std::fs::read_to_string(fixtures.join("golden-smollm2-135m.json")).unwrap();
    let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (mut compared, mut worst) = (0, 0.0f64);
    for task in GlueTask::ALL {
        let rows = golden["tasks"][task.name()].as_array().unwrap();
        let path = fixtures.join(format!("{}.json", task.name()));
        let set = load_glue(&path, task, rows.len()).unwrap();
        let scores = answer_scores(&lm, &tok, &set, 2).unwrap();
        for (i, (row, ours)) in rows.iter().zip(&scores).enumerate() {
            assert_eq!(row["prompt"].as_str().unwrap(), set.examples[i].prompt);
            let want: Vec<f64> = row["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            for (a, (w, o)) in want.iter().zip(ours).enumerate() {
                assert!(
                    (w - o).abs() <= 1e-3 * w.abs().max(1.0),
                    "{task:?} record {i} answer {a}: reference {w}, here {o}"
                );
                worst = worst.max((w - o).abs());
                compared += 1;
            }
        }
    }
    eprintln!("{compared} answer scores, largest difference {worst:.2e}");
    assert_eq!(compared, 2 * (2 * 5 + 4));
}
