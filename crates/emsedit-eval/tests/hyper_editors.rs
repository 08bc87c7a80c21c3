//! EMSEdit and MALMEN through the scenario driver on the tiny GPT-2 fixture: the training loops take the
//! Adam steps the spec prescribes (spec §7.3: η moves by about meta_lr per effective step).

use std::path::Path;

use emsedit_eval::scenario::{Phase, Run, ScenarioConfig, edit_batches, run, run_with_progress};
use emsedit_eval::synthetic::{FactWorld, Split, WorldConfig};
use emsedit_llm::{CausalLm, LmTokenizer};
use emsedit_meta::hypernet::HyperConfig;
use emsedit_meta::{Editor, Ft, FtConfig, HyperEditor, HyperEditorConfig};
use emsedit_tensor::{Cpu, cpu, rng_lock, seed};

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/llm/gpt2")
}

fn world_records(split: Split) -> Vec<emsedit_eval::data::EditRecord> {
    let world = FactWorld::generate(WorldConfig {
        seed: 7,
        subjects: 40,
        train_records: 12,
        eval_records: 12,
    });
    world.zsre_records(split)
}

fn config(mut c: HyperEditorConfig) -> HyperEditorConfig {
    c.hyper = HyperConfig {
        rank: 8,
        blocks: 2,
        lr: 1e-6,
    };
    c
}

fn modules() -> Vec<String> {
    vec![
        "transformer.h.1.mlp.c_proj".into(),
        "transformer.h.2.mlp.c_proj".into(),
    ]
}

/// Largest |η − η₀| over the networks of each step.
fn eta_moves(editor: &HyperEditor<Cpu>) -> Vec<f64> {
    editor
        .nets()
        .unwrap()
        .iter()
        .map(|nets| {
            nets.iter()
                .flat_map(|n| {
                    n.params
                        .eta
                        .clone()
                        .into_data()
                        .convert::<f64>()
                        .into_vec::<f64>()
                        .unwrap()
                })
                .map(|e| (e - f64::from(1e-6f32)).abs())
                .fold(0.0, f64::max)
        })
        .collect()
}

fn run_with(
    c: HyperEditorConfig,
    scenario: ScenarioConfig,
) -> (HyperEditor<Cpu>, emsedit_eval::scenario::Report) {
    let mut editor = HyperEditor::new(config(c));
    let report = run_editor(&mut editor, &scenario);
    (editor, report)
}

/// `scenario` for `editor` on the fixture model and the fact world's records, seeded alike.
fn run_editor(
    editor: &mut dyn Editor<Cpu>,
    scenario: &ScenarioConfig,
) -> emsedit_eval::scenario::Report {
    seed::<Cpu>(&cpu(), 11);
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let (train, eval) = (world_records(Split::Train), world_records(Split::Eval));
    let input = Run {
        model: &lm,
        tokenizer: &tok,
        train: &train,
        eval: &eval,
        source: None,
        skipped: Vec::new(),
        glue: &[],
    };
    run(editor, &input, scenario).unwrap()
}

#[test]
fn training_reports_every_batch_and_changes_nothing() {
    let _rng = rng_lock();
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let (train, eval) = (world_records(Split::Train), world_records(Split::Eval));
    let input = Run::new(&lm, &tok, &train, &eval);
    let mut scenario = ScenarioConfig::sequential(3, 2);
    scenario.train_epochs = 2;
    // One editor of each training loop: shared networks (MALMEN), step-specific ones
    // (EMSEdit) and RLEdit's backtracking.
    for c in [
        HyperEditorConfig::malmen(modules(), 1),
        HyperEditorConfig::emsedit_sequential(modules()),
        HyperEditorConfig::rledit(modules(), 1),
    ] {
        let name = c.name.clone();
        seed::<Cpu>(&cpu(), 11);
        let mut seen = Vec::new();
        let mut editor = HyperEditor::new(config(c.clone()));
        let watched =
            run_with_progress(&mut editor, &input, &scenario, &mut |p| seen.push(p)).unwrap();
        // The batches each epoch trains on, as the run announced them.
        let batches = match seen[0] {
            Phase::Training { batches, .. } => batches,
            other => panic!("{name}: first phase {other:?}"),
        };
        assert!(batches > 0, "{name}");
        let trained: Vec<Phase> = seen
            .into_iter()
            .filter(|p| matches!(p, Phase::Trained { .. }))
            .collect();
        let expected: Vec<Phase> = (1..=2)
            .flat_map(|epoch| {
                (1..=batches).map(move |batch| Phase::Trained {
                    epoch,
                    epochs: 2,
                    batch,
                    of: batches,
                })
            })
            .collect();
        assert_eq!(trained, expected, "{name}");
        seed::<Cpu>(&cpu(), 11);
        let plain = run(&mut HyperEditor::new(config(c)), &input, &scenario).unwrap();
        assert_eq!(
            (watched.before, watched.after),
            (plain.before, plain.after),
            "{name}"
        );
    }
    let phase = Phase::Trained {
        epoch: 1,
        epochs: 1,
        batch: 2,
        of: 3,
    };
    assert_eq!(phase.to_string(), "trained on 2/3 batches");
}

#[test]
fn batch_training_takes_one_adam_step_per_bp_step() {
    let _rng = rng_lock();
    let (editor, report) = run_with(
        HyperEditorConfig::emsedit_batch(modules()),
        ScenarioConfig::batch(8),
    );
    let moves = eta_moves(&editor);
    assert_eq!(moves.len(), 1, "one shared network");
    // Two steps of ≈ meta_lr each.
    assert!((moves[0] - 2e-5).abs() < 2e-7, "{moves:?}");
    assert!(report.train_seconds_per_edit > 0.0 && report.edit_seconds_per_edit > 0.0);

    let mut quirky = HyperEditorConfig::emsedit_batch(modules());
    quirky.reference_quirks = true;
    let (editor, _) = run_with(quirky, ScenarioConfig::batch(8));
    // Duplicated registration: two Adam updates per step.
    assert!(
        (eta_moves(&editor)[0] - 4e-5).abs() < 4e-7,
        "{:?}",
        eta_moves(&editor)
    );

    // The ablation without step-wise updating: both steps' gradients, one update.
    let mut summed = HyperEditorConfig::emsedit_batch(modules());
    summed.stepwise_update = false;
    let (editor, _) = run_with(summed, ScenarioConfig::batch(8));
    let moves = eta_moves(&editor);
    assert!((moves[0] - 1e-5).abs() < 1e-7, "{moves:?}");
}

#[test]
fn sequential_training_takes_one_adam_step_with_rank_decay() {
    let _rng = rng_lock();
    let (editor, _) = run_with(
        HyperEditorConfig::emsedit_sequential(modules()),
        ScenarioConfig::sequential(4, 3),
    );
    let nets = editor.nets().unwrap();
    assert_eq!(nets.len(), 2, "one network per step");
    assert_eq!(nets[0][0].params.a[0].dims()[1], 8);
    assert_eq!(nets[1][0].params.a[0].dims()[1], 4, "rank ⌊r/2⌋ at step 2");
    for m in eta_moves(&editor) {
        assert!((m - 1e-5).abs() < 1e-7, "{m}");
    }
}

#[test]
fn training_passes_continue_one_optimizer() {
    let _rng = rng_lock();
    let mut scenario = ScenarioConfig::sequential(4, 3);
    scenario.train_epochs = 3;
    let (editor, report) = run_with(HyperEditorConfig::emsedit_sequential(modules()), scenario);
    assert_eq!(
        editor.meta_steps(),
        3,
        "one Adam step per pass, one optimizer"
    );
    assert!(report.train_seconds_per_edit > 0.0);

    let mut scenario = ScenarioConfig::batch(8);
    scenario.train_epochs = 2;
    let (editor, _) = run_with(HyperEditorConfig::emsedit_batch(modules()), scenario);
    assert_eq!(editor.meta_steps(), 4, "K = 2 steps per pass");
    // Four Adam steps: η moves further than the two of one pass (2e-5).
    assert!(eta_moves(&editor)[0] > 3e-5, "{:?}", eta_moves(&editor));
}

#[test]
fn editing_is_cumulative_and_deterministic() {
    let _rng = rng_lock();
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let batches = edit_batches(&tok, &world_records(Split::Eval), 4, 4, false).unwrap();
    let id = lm.module("transformer.h.2.mlp.c_proj").unwrap();
    let weights = |lm: &CausalLm<Cpu>| {
        lm.weight(id)
            .into_data()
            .convert::<f64>()
            .into_vec::<f64>()
            .unwrap()
    };
    let edit_twice = || {
        seed::<Cpu>(&cpu(), 3);
        let mut c = config(HyperEditorConfig::emsedit_batch(modules()));
        c.hyper.lr = 1e-2;
        let mut editor = HyperEditor::<Cpu>::new(c);
        let mut lm = lm.clone();
        editor.edit(&mut lm, &batches[0].batch).unwrap();
        let once = weights(&lm);
        editor.edit(&mut lm, &batches[1].batch).unwrap();
        (once, weights(&lm))
    };
    let (once, twice) = edit_twice();
    let w0 = weights(&lm);
    let changed = |a: &[f64], b: &[f64]| a.iter().zip(b).any(|(x, y)| x != y);
    assert!(
        changed(&once, &w0) && changed(&twice, &once),
        "each batch moves the weights"
    );
    assert_eq!(edit_twice(), (once, twice), "same seed, same edits");
}

#[test]
fn malmen_and_malmen2_train_with_the_kl_locality() {
    let _rng = rng_lock();
    for steps in [1, 2] {
        let (editor, report) = run_with(
            HyperEditorConfig::malmen(modules(), steps),
            ScenarioConfig::batch(8),
        );
        assert_eq!(report.method, if steps == 1 { "MALMEN" } else { "MALMEN2" });
        // One shared network, one Adam step of ≈ meta_lr per back-propagation step.
        let moves = eta_moves(&editor);
        assert!(
            (moves[0] - steps as f64 * 1e-5).abs() < steps as f64 * 1e-7,
            "{moves:?}"
        );
    }
    // A KL locality with step-specific networks is RLEdit's territory: refused, not guessed.
    let mut c = HyperEditorConfig::malmen(modules(), 2);
    c.layout = emsedit_meta::Layout::StepSpecific;
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let recs = world_records(Split::Train);
    let input = Run {
        model: &lm,
        tokenizer: &tok,
        train: &recs,
        eval: &recs,
        source: None,
        skipped: Vec::new(),
        glue: &[],
    };
    let err = run(
        &mut HyperEditor::<Cpu>::new(config(c)),
        &input,
        &ScenarioConfig::sequential(4, 2),
    )
    .unwrap_err();
    assert!(err.to_string().contains("RLEdit"), "{err}");
}

#[test]
fn each_editor_trains_on_the_reference_budget() {
    let _rng = rng_lock();
    // Sequential 4 × 3 with 12 train records: EMSEdit and RLEdit train on the stream's three
    // batches, MALMEN on one (`max_steps` = 1), MEND on all the split holds (100 asked).
    for (c, records) in [
        (HyperEditorConfig::emsedit_sequential(modules()), 12),
        (HyperEditorConfig::rledit(modules(), 1), 12),
        (HyperEditorConfig::malmen(modules(), 1), 4),
        (HyperEditorConfig::malmen(modules(), 2), 4),
        (HyperEditorConfig::mend(modules()), 12),
    ] {
        let name = c.name.clone();
        let (_, report) = run_with(c, ScenarioConfig::sequential(4, 3));
        assert_eq!(report.train_records, records, "{name}");
        let short = report
            .warnings
            .iter()
            .any(|w| w.contains("100 training batches"));
        assert_eq!(short, name == "MEND", "{name}: {:?}", report.warnings);
    }
    // An explicit count is every editor's.
    let mut scenario = ScenarioConfig::sequential(4, 3);
    scenario.train_batches = Some(2);
    let (_, report) = run_with(HyperEditorConfig::malmen(modules(), 1), scenario.clone());
    assert_eq!(report.train_records, 8);
    // A training-free editor is handed them too and trains on none.
    let report = run_editor(&mut Ft::new(FtConfig::new(modules())), &scenario);
    assert_eq!(report.train_records, 0);
}

#[test]
fn mend_trains_the_sum_predictor() {
    let _rng = rng_lock();
    let mut c = HyperEditorConfig::mend(modules());
    c.hyper.rank = 8;
    let mut scenario = ScenarioConfig::batch(4);
    scenario.train_batches = Some(2);
    seed::<Cpu>(&cpu(), 11);
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let (train, eval) = (world_records(Split::Train), world_records(Split::Eval));
    let input = Run {
        model: &lm,
        tokenizer: &tok,
        train: &train,
        eval: &eval,
        source: None,
        skipped: Vec::new(),
        glue: &[],
    };
    let mut editor = HyperEditor::<Cpu>::new(c);
    let report = run(&mut editor, &input, &scenario).unwrap();
    assert_eq!(report.method, "MEND");
    assert_eq!(editor.nets().unwrap()[0][0].params.a.len(), 2, "two blocks");
    // Two training batches, one step each: η moved by about 2 · meta_lr.
    assert!(
        (eta_moves(&editor)[0] - 2e-5).abs() < 2e-7,
        "{:?}",
        eta_moves(&editor)
    );
}

#[test]
fn rledit_and_rledit2_take_one_adam_step_after_the_stream() {
    let _rng = rng_lock();
    let mut first_step_b: Vec<Vec<f64>> = Vec::new();
    for (steps, quirks) in [(1, false), (2, false), (2, true)] {
        let mut c = HyperEditorConfig::rledit(modules(), steps);
        c.reference_quirks = quirks;
        let (editor, report) = run_with(c, ScenarioConfig::sequential(4, 3));
        assert_eq!(report.method, if steps == 1 { "RLEdit" } else { "RLEdit2" });
        let nets = editor.nets().unwrap();
        assert_eq!(nets.len(), steps, "step-specific networks");
        assert_eq!(
            nets[steps - 1][0].params.a[0].dims()[1],
            8 / steps,
            "rank decay"
        );
        for m in eta_moves(&editor) {
            assert!(
                (m - 1e-5).abs() < 1e-7,
                "steps {steps}, quirks {quirks}: {m}"
            );
        }
        let b = nets[0][0].params.b[0].clone().into_data();
        first_step_b.push(b.convert::<f64>().into_vec::<f64>().unwrap());
    }
    // With the quirk, step 1's network is trained on step 2's Γ: a different update.
    assert_ne!(first_step_b[1], first_step_b[2]);
}

#[test]
fn checkpoints_round_trip_and_refuse_other_models() {
    let _rng = rng_lock();
    let (mut editor, _) = run_with(
        HyperEditorConfig::emsedit_batch(modules()),
        ScenarioConfig::batch(8),
    );
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let dir = std::env::temp_dir().join(format!("emsedit-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("emsedit.safetensors");
    editor.save(&lm, &path).unwrap();
    let mut loaded = HyperEditor::<Cpu>::load(&lm, &path).unwrap();
    assert_eq!(loaded.config(), editor.config());
    let flat = |e: &HyperEditor<Cpu>| -> Vec<f64> {
        let net = &e.nets().unwrap()[0][0];
        let mut v: Vec<f64> = net
            .params
            .tensors()
            .into_iter()
            .flat_map(|t| {
                t.clone()
                    .into_data()
                    .convert::<f64>()
                    .into_vec::<f64>()
                    .unwrap()
            })
            .collect();
        v.extend(
            net.norm
                .mean()
                .clone()
                .into_data()
                .convert::<f64>()
                .into_vec::<f64>()
                .unwrap(),
        );
        v.push(net.norm.count() as f64);
        v
    };
    assert_eq!(flat(&loaded), flat(&editor));
    // The loaded editor edits exactly like the saved one.
    let tok = LmTokenizer::load_dir(&fixture()).unwrap();
    let batch = &edit_batches(&tok, &world_records(Split::Eval), 4, 4, false).unwrap()[0].batch;
    let id = lm.module("transformer.h.2.mlp.c_proj").unwrap();
    let (mut a, mut b) = (lm.clone(), lm.clone());
    editor.edit(&mut a, batch).unwrap();
    loaded.edit(&mut b, batch).unwrap();
    let w = |m: &CausalLm<Cpu>| {
        m.weight(id)
            .into_data()
            .convert::<f64>()
            .into_vec::<f64>()
            .unwrap()
    };
    assert_eq!(w(&a), w(&b));

    // Another architecture has no such modules.
    let llama_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/llm/llama");
    let llama = CausalLm::<Cpu>::load(&llama_dir, &cpu()).unwrap();
    let err = HyperEditor::<Cpu>::load(&llama, &path).unwrap_err();
    assert!(err.to_string().contains("another model"), "{err}");
    // Same module names and shapes, different model config: the fingerprint differs.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(
        fixture().join("model.safetensors"),
        other.join("model.safetensors"),
    )
    .unwrap();
    let config = std::fs::read_to_string(fixture().join("config.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&config).unwrap();
    json["layer_norm_epsilon"] = serde_json::json!(1e-3);
    std::fs::write(other.join("config.json"), json.to_string()).unwrap();
    let changed = CausalLm::<Cpu>::load(&other, &cpu()).unwrap();
    let err = HyperEditor::<Cpu>::load(&changed, &path).unwrap_err();
    assert!(err.to_string().contains("fingerprint"), "{err}");
    // Not a checkpoint at all.
    let err = HyperEditor::<Cpu>::load(&lm, &other.join("model.safetensors")).unwrap_err();
    assert!(
        err.to_string().contains("not a hypernetwork checkpoint"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Rewrites the editor config in a checkpoint's JSON header.
fn patch_header(path: &Path, out: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let raw = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(raw[..8].try_into().unwrap()) as usize;
    let mut head: serde_json::Value = serde_json::from_slice(&raw[8..8 + n]).unwrap();
    let meta = head["__metadata__"]["emsedit"].as_str().unwrap();
    let mut inner: serde_json::Value = serde_json::from_str(meta).unwrap();
    edit(&mut inner);
    head["__metadata__"]["emsedit"] = serde_json::Value::String(inner.to_string());
    let mut text = head.to_string().into_bytes();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&text);
    bytes.extend_from_slice(&raw[8 + n..]);
    std::fs::write(out, bytes).unwrap();
}

#[test]
fn checkpoint_headers_are_checked_against_the_stored_tensors() {
    let _rng = rng_lock();
    seed::<Cpu>(&cpu(), 1);
    let lm = CausalLm::<Cpu>::load(&fixture(), &cpu()).unwrap();
    let dir = std::env::temp_dir().join(format!("emsedit-ckpt-hdr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("seq.safetensors");
    let mut editor =
        HyperEditor::<Cpu>::new(config(HyperEditorConfig::emsedit_sequential(modules())));
    editor.save(&lm, &path).unwrap();
    assert!(HyperEditor::<Cpu>::load(&lm, &path).is_ok());
    // Each would ask for gigabytes to terabytes if the networks were built from the header.
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: [(&str, Edit, &str); 5] = [
        (
            "rank",
            Box::new(|h| h["config"]["hyper"]["rank"] = 1_000_000_000.into()),
            "rank",
        ),
        (
            "blocks",
            Box::new(|h| h["config"]["hyper"]["blocks"] = 1_000_000.into()),
            "blocks",
        ),
        (
            "steps",
            Box::new(|h| h["config"]["steps"] = 1_000_000_000.into()),
            "steps",
        ),
        (
            "steps-fits",
            Box::new(|h| h["config"]["steps"] = 3.into()),
            "the file stores",
        ),
        (
            "header-steps",
            Box::new(|h| h["steps"] = 1_000_000_000.into()),
            "the file stores",
        ),
    ];
    for (name, edit, expect) in cases {
        let out = dir.join(format!("{name}.safetensors"));
        patch_header(&path, &out, edit);
        let err = HyperEditor::<Cpu>::load(&lm, &out).unwrap_err().to_string();
        assert!(
            err.contains(expect) && err.contains(&format!("{name}.safetensors")),
            "{name}: {err}"
        );
    }
}
