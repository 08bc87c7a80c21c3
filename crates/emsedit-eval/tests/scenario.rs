//! The scenario driver end to end with the FT baseline on the tiny GPT-2 fixture.

use std::path::Path;

use emsedit_eval::data::{EditRecord, Tuple};
use emsedit_eval::scenario::{Phase, Run, RunError, ScenarioConfig, run, run_with_progress};
use emsedit_llm::{CausalLm, LmTokenizer};
use emsedit_meta::{EditBatch, Editor, Ft, FtConfig, MetaError};
use emsedit_tensor::{Cpu, cpu};

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/llm/gpt2")
}

/// Distinct prompts (the fixture's tokenizer was trained on sentences like these).
fn records(offset: usize, n: usize) -> Vec<EditRecord> {
    let subjects = [
        "Veltria",
        "Quistan",
        "Orskworks",
        "Anna Kerrow",
        "Brannmoor",
        "Tolmin",
        "Sarnia",
        "Ilvaro",
        "Dorrance",
        "Kestrel",
        "Mirabel",
        "Zurich",
        "Halvard",
        "Pellucid",
        "Corvin",
        "Nadira",
    ];
    let relations = [
        ("The capital of {} is", "{} has its capital in"),
        ("The official language of {} is", "People in {} speak"),
        ("{} was founded in", "The founding year of {} is"),
        ("{} works as a", "The profession of {} is"),
    ];
    let answers = [
        "Orsk",
        "French",
        "1923",
        "violinist",
        "Paris",
        "Quistani",
        "1850",
        "baker",
    ];
    (offset..offset + n)
        .map(|i| {
            let t = |p: String, target: &str| Tuple {
                prompt: p,
                target: target.into(),
                old_target: None,
            };
            let subject = subjects[i % subjects.len()];
            let (edit, para) = relations[i % relations.len()];
            let answer = answers[(i * 3 + 1) % answers.len()];
            let other = subjects[(i + 5) % subjects.len()];
            EditRecord {
                edit: t(edit.replace("{}", subject), answer),
                equiv: vec![t(para.replace("{}", subject), answer)],
                unrel: vec![t(
                    relations[(i + 1) % 4].0.replace("{}", other),
                    answers[i % answers.len()],
                )],
                ripple: None,
            }
        })
        .collect()
}

/// EasyEdit FT-L's defaults (Adam 5e-4, 25 steps) on the last two MLP output projections.
fn ft() -> Ft {
    Ft::new(FtConfig::new(vec![
        "transformer.h.1.mlp.c_proj".into(),
        "transformer.h.2.mlp.c_proj".into(),
    ]))
}

#[test]
fn ft_sequential_run_raises_efficacy() {
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let (train, eval) = (records(0, 8), records(8, 8));
    let input = Run {
        model: &lm,
        tokenizer: &tok,
        train: &train,
        eval: &eval,
        source: None,
        skipped: Vec::new(),
        glue: &[],
    };
    let mut config = ScenarioConfig::sequential(1, 8);
    config.curve = true;
    let report = run(&mut ft(), &input, &config).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert!(
        report.after.efficacy > report.before.efficacy,
        "efficacy {} → {}",
        report.before.efficacy,
        report.after.efficacy
    );
    assert_eq!(report.curve.len(), 8);
    // FT has no training phase.
    assert!(report.edit_seconds_per_edit > 0.0 && report.train_seconds_per_edit < 1e-3);
    assert!(report.peak_memory_bytes > 0);
    // The driver restores the pristine weights: the caller's model is untouched.
    let id = lm.module("transformer.h.1.mlp.c_proj").unwrap();
    let again = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    assert_eq!(
        lm.weight(id).into_data().to_vec::<f32>().unwrap(),
        again.weight(id).into_data().to_vec::<f32>().unwrap()
    );
    // Same seed, same streams, same numbers.
    config.curve = false;
    let a = run(&mut ft(), &input, &config).unwrap();
    let b = run(&mut ft(), &input, &config).unwrap();
    assert_eq!((a.before, a.after), (b.before, b.after));
    // The curve run took its final scores from the curve's last point: the same numbers.
    assert_eq!(report.after, a.after);
    assert_eq!(report.curve.last(), Some(&a.after));
}

/// FT that does not say which modules it changes: its runs score without the scoring cache.
struct Unnamed(Ft);

impl Editor<Cpu> for Unnamed {
    fn name(&self) -> String {
        Editor::<Cpu>::name(&self.0)
    }

    fn train(&mut self, lm: &mut CausalLm<Cpu>, stream: &[EditBatch]) -> Result<(), MetaError> {
        self.0.train(lm, stream)
    }

    fn edit(&mut self, lm: &mut CausalLm<Cpu>, batch: &EditBatch) -> Result<(), MetaError> {
        self.0.edit(lm, batch)
    }
}

#[test]
fn scoring_from_saved_states_changes_no_score() {
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let (train, eval) = (records(0, 4), records(8, 8));
    let input = Run::new(&lm, &tok, &train, &eval);
    let mut config = ScenarioConfig::sequential(2, 4);
    config.curve = true;
    assert_eq!(Editor::<Cpu>::modules(&ft()).len(), 2);
    let cached = run(&mut ft(), &input, &config).unwrap();
    let plain = run(&mut Unnamed(ft()), &input, &config).unwrap();
    assert!(cached.after.efficacy > cached.before.efficacy);
    assert_eq!(
        (cached.before, cached.after, cached.curve),
        (plain.before, plain.after, plain.curve)
    );
}

#[test]
fn a_run_reports_its_phases_in_order() {
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let (train, eval) = (records(0, 4), records(8, 6));
    let input = Run::new(&lm, &tok, &train, &eval);
    let mut config = ScenarioConfig::sequential(2, 3);
    config.train_epochs = 2;
    let mut seen = Vec::new();
    let with = run_with_progress(&mut ft(), &input, &config, &mut |p| seen.push(p)).unwrap();
    let edited = |batch| Phase::Edited { batch, of: 3 };
    let training = |epoch| Phase::Training {
        epoch,
        epochs: 2,
        // FT does not train.
        batches: 0,
    };
    assert_eq!(
        seen,
        [
            training(1),
            training(2),
            Phase::ScoringBefore,
            edited(1),
            edited(2),
            edited(3),
            Phase::ScoringAfter
        ]
    );
    assert_eq!(training(1).to_string(), "no training");
    assert_eq!(edited(2).to_string(), "edited 2/3 batches");
    // Watching changes nothing.
    let without = run(&mut ft(), &input, &config).unwrap();
    assert_eq!((with.before, with.after), (without.before, without.after));
}

#[test]
fn too_few_records_is_a_config_error() {
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let (train, eval) = (records(0, 2), records(10, 3));
    let input = Run {
        model: &lm,
        tokenizer: &tok,
        train: &train,
        eval: &eval,
        source: None,
        skipped: Vec::new(),
        glue: &[],
    };
    let err = run(&mut ft(), &input, &ScenarioConfig::batch(4)).unwrap_err();
    assert!(
        matches!(err, RunError::Config(_)) && err.to_string().contains("need 4 eval records"),
        "{err}"
    );
}

fn counterfact_records(offset: usize, n: usize) -> Vec<EditRecord> {
    records(offset, n)
        .into_iter()
        .map(|mut r| {
            let old = Some("Orsk".to_string());
            let new = if r.edit.target == "Orsk" {
                "Paris".to_string()
            } else {
                r.edit.target.clone()
            };
            r.edit.target = new.clone();
            r.edit.old_target = old.clone();
            for t in &mut r.equiv {
                t.target = new.clone();
                t.old_target = old.clone();
            }
            for t in &mut r.unrel {
                t.old_target = Some(new.clone());
            }
            r
        })
        .collect()
}

#[test]
fn counterfact_batch_run_scores_both_ways() {
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let (train, eval) = (counterfact_records(0, 4), counterfact_records(4, 4));
    let input = Run {
        model: &lm,
        tokenizer: &tok,
        train: &train,
        eval: &eval,
        source: None,
        skipped: Vec::new(),
        glue: &[],
    };
    let report = run(&mut ft(), &input, &ScenarioConfig::batch(4)).unwrap();
    let seq = report
        .sequence
        .expect("CounterFact data gets the sequence metric");
    for s in [
        report.after.efficacy,
        report.after.specificity,
        seq.efficacy,
        seq.specificity,
    ] {
        assert!((0.0..=1.0).contains(&s));
    }
    // Fine-tuning toward the new targets makes them beat the old ones on the edit prompts.
    assert!(report.after.efficacy > report.before.efficacy, "{report:?}");
    // P(new) > P(old) agrees with summed label log-probabilities computed one tuple at a time
    // (multi-token new targets usually lose to the one-token old one on this random model).
    let tuples: Vec<Tuple> = eval.iter().map(|r| r.edit.clone()).collect();
    let prefs = emsedit_eval::scenario::sequence_preference(&lm, &tok, &tuples, 4).unwrap();
    for (t, pref) in tuples.iter().zip(&prefs) {
        let logprob = |target: &str| -> f32 {
            let plain = Tuple {
                prompt: t.prompt.clone(),
                target: target.into(),
                old_target: None,
            };
            let one = emsedit_eval::data::tokenize(&tok, &plain).unwrap();
            let mb = &emsedit_eval::data::collate(&[one], 4, false)[0];
            lm.label_logprobs(&mb.batch).unwrap().iter().sum()
        };
        let want = f64::from(u8::from(
            logprob(&t.target) > logprob(t.old_target.as_deref().unwrap()),
        ));
        assert_eq!(*pref, want, "{t:?}");
    }
    // A tuple whose old target equals its target is never preferred.
    let same = Tuple {
        prompt: "The capital of Veltria is".into(),
        target: "Orsk".into(),
        old_target: Some("Orsk".into()),
    };
    let prefs = emsedit_eval::scenario::sequence_preference(&lm, &tok, &[same], 4).unwrap();
    assert_eq!(prefs, vec![0.0]);
}

/// Scoring packs all the micro-batches into rows: the scores of one padded pass per
/// micro-batch, ZsRE's token accuracy and CounterFact's new-vs-old comparison alike.
#[test]
fn packed_scoring_gives_each_micro_batch_its_own_scores() {
    use emsedit_eval::data::{collate, tokenize};
    use emsedit_eval::metrics::{counterfact_scores, old_tokens, token_accuracy};
    use emsedit_eval::synthetic::{FactWorld, WorldConfig};
    // The embedded default model knows the synthetic world's facts: scores are not all 0.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/model");
    let lm = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&dir).unwrap();
    let world = FactWorld::generate(WorldConfig::default());
    let tuples: Vec<Tuple> = world
        .fact_tuples()
        .into_iter()
        .step_by(7)
        .take(30)
        .collect();
    for counterfact in [false, true] {
        let tuples: Vec<Tuple> = tuples
            .iter()
            .map(|t| Tuple {
                // A wrong old answer: the known new one should win.
                old_target: counterfact.then(|| "the".into()),
                ..t.clone()
            })
            .collect();
        let tokenized: Vec<_> = tuples.iter().map(|t| tokenize(&tok, t).unwrap()).collect();
        let batches = collate(&tokenized, 4, false);
        assert!(batches.len() > 2 && batches.iter().any(|b| b.batch.attention_mask.contains(&0)));
        let mut want = Vec::new();
        for mb in &batches {
            let b = &mb.batch;
            match &mb.old_labels {
                Some(old) => {
                    let new: Vec<i64> = b.labels.iter().map(|&l| l.max(0)).collect();
                    let new = lm.token_logits(b, &new).unwrap();
                    let olds = lm
                        .token_logits(b, &old_tokens(b, old, mb.old_width))
                        .unwrap();
                    want.extend(counterfact_scores(b, old, mb.old_width, &new, &olds));
                }
                None => want.extend(token_accuracy(b, &lm.argmax(b).unwrap())),
            }
        }
        let got = emsedit_eval::scenario::score(&lm, &batches).unwrap();
        assert_eq!(got, want, "counterfact: {counterfact}");
        let mean = got.iter().sum::<f64>() / got.len() as f64;
        assert!(mean > 0.5, "counterfact: {counterfact}: {got:?}");
    }
}
