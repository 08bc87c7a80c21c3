//! The real data sets under `EMSEDIT_DATA_DIR`: every file loads as published, with the counts,
//! skipped records and contents its README states.
//!
//! Each sub-folder (`zsre/`, `counterfact/`, `ripple_effect/`) is read file by file; a folder
//! or variable that is not there skips with a message that names it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use emsedit_eval::data::ripple::Family;
use emsedit_eval::data::{Dataset, EditRecord, Loaded, load, load_splits};

fn dir(folder: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("EMSEDIT_DATA_DIR") else {
        eprintln!("skipping {folder}: EMSEDIT_DATA_DIR is not set");
        return None;
    };
    let dir = PathBuf::from(dir).join(folder);
    if !dir.is_dir() {
        eprintln!("skipping {folder}: {} does not exist", dir.display());
        return None;
    }
    Some(dir)
}

/// Every `.json` file of the folder, loaded, by file name.
fn files(folder: &str, dataset: impl Fn(&str) -> Dataset) -> BTreeMap<String, Loaded> {
    let Some(dir) = dir(folder) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let loaded = load(&path, dataset(&name)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!loaded.records.is_empty(), "{name} has no records");
        eprintln!(
            "{name}: {} records, {} skipped",
            loaded.records.len(),
            loaded.skipped.len()
        );
        out.insert(name, loaded);
    }
    assert!(!out.is_empty(), "no .json files in {}", dir.display());
    out
}

fn shape(records: &[EditRecord], equiv: usize, unrel: usize, old: bool) {
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            (r.equiv.len(), r.unrel.len(), r.edit.old_target.is_some()),
            (equiv, unrel, old),
            "record {i}"
        );
    }
}

#[test]
fn zsre_files_load() {
    // The records with an empty `alt` (gender questions), as the data README lists them.
    let expected = [
        ("zsre_mend_eval-head.json", [54, 103]),
        ("zsre_mend_train-1k.json", [534, 723]),
    ];
    for (name, loaded) in files("zsre", |_| Dataset::Zsre) {
        shape(&loaded.records, 1, 1, false);
        let skipped: Vec<(usize, &str, &str)> = loaded
            .skipped
            .iter()
            .map(|s| (s.record, s.field.as_str(), s.reason.as_str()))
            .collect();
        let Some((_, at)) = expected.iter().find(|(n, _)| *n == name) else {
            assert!(skipped.iter().all(|s| s.2 == "empty text"), "{name}");
            continue;
        };
        assert_eq!(
            skipped,
            at.map(|i| (i, "alt", "empty text")),
            "{name}: skipped records"
        );
        assert_eq!(loaded.records.len(), 1000 - 2, "{name}");
        // Values are kept as published: some targets begin with a space.
        assert!(
            loaded
                .records
                .iter()
                .any(|r| r.edit.target.starts_with(' '))
        );
        assert!(
            loaded
                .records
                .iter()
                .all(|r| r.unrel[0].prompt.starts_with("nq question: "))
        );
    }
}

#[test]
fn zsre_first_eval_record() {
    let Some(dir) = dir("zsre") else { return };
    let (_, eval) = load_splits(&dir, Dataset::Zsre).unwrap();
    let r = &eval.records[0];
    assert_eq!(r.edit.prompt, "What university did Watts Humphrey attend?");
    assert_eq!(r.edit.target, "University of Michigan");
    assert_eq!(
        r.equiv[0].prompt,
        "What university did Watts Humphrey take part in?"
    );
    assert_eq!(
        r.unrel[0].prompt,
        "nq question: who played desmond doss father in hacksaw ridge?"
    );
    assert_eq!(r.unrel[0].target, "Hugo Weaving");
}

#[test]
fn counterfact_files_load() {
    let eval = |name: &str| ["eval", "val", "test"].iter().any(|k| name.contains(k));
    let sizes = [
        ("counterfact-train.json", 10_000),
        ("counterfact-val.json", 1_919),
    ];
    let loaded = files("counterfact", |name| {
        if eval(name) {
            Dataset::CounterfactEval
        } else {
            Dataset::CounterfactTrain
        }
    });
    for (name, l) in &loaded {
        // EasyEdit's format: one paraphrase and one neighbour per record.
        shape(&l.records, 1, 1, true);
        assert!(l.skipped.is_empty(), "{name}: {:?}", l.skipped);
        for r in &l.records {
            // The neighbour keeps the true object, which is the edit's old target.
            assert_eq!(
                r.unrel[0].target.as_str(),
                r.edit.old_target.as_deref().unwrap()
            );
            assert_eq!(
                r.unrel[0].old_target.as_deref(),
                Some(r.edit.target.as_str())
            );
        }
        if let Some((_, n)) = sizes.iter().find(|(s, _)| s == name) {
            assert_eq!(l.records.len(), *n, "{name}");
        }
    }
    if let Some(l) = loaded.get("counterfact-train.json") {
        let r = &l.records[0];
        assert_eq!(r.edit.prompt, "Toko Yasuda, the");
        assert_eq!(
            (r.edit.target.as_str(), r.edit.old_target.as_deref()),
            ("piano", Some("guitar"))
        );
        assert_eq!(r.equiv[0].prompt, "Toko Yasuda is incredible at");
        assert_eq!(r.unrel[0].prompt, "John Lennon performs on the");
    }
}

#[test]
fn ripple_files_load() {
    for (name, l) in files("ripple_effect", |_| Dataset::Ripple) {
        shape(&l.records, 1, 1, false);
        assert!(l.records.iter().all(|r| r.ripple.is_some()), "{name}");
        if name != "gpt-j-popular.json" {
            continue;
        }
        assert_eq!((l.records.len(), l.skipped.len()), (710, 0));
        let r = &l.records[0];
        assert_eq!(
            r.edit.prompt,
            "The name of the country of citizenship of Leonardo DiCaprio is"
        );
        assert_eq!(r.edit.target, "Syria");
        assert_eq!(
            r.ripple.as_ref().unwrap().old_target,
            "United States of America"
        );
        assert_eq!(
            (r.unrel[0].prompt.as_str(), r.unrel[0].target.as_str()),
            ("The eye color of Leonardo DiCaprio is", "blue")
        );
        // Tests per family, once queries without answers (and tests left without queries)
        // are dropped; Forgetfulness has none in this file.
        let mut counts = BTreeMap::new();
        for c in l
            .records
            .iter()
            .flat_map(|r| &r.ripple.as_ref().unwrap().cases)
        {
            *counts.entry(c.family).or_insert(0usize) += 1;
        }
        let expected = BTreeMap::from([
            (Family::RelationSpecificity, 793),
            (Family::LogicalGeneralization, 215),
            (Family::SubjectAliasing, 16),
            (Family::CompositionalityI, 309),
            (Family::CompositionalityII, 32),
        ]);
        assert_eq!(counts, expected);
    }
}

#[test]
fn ripple_folder_splits_reproducibly() {
    let Some(dir) = dir("ripple_effect") else {
        return;
    };
    let (train, eval) = load_splits(&dir, Dataset::Ripple).unwrap();
    assert_eq!((train.records.len(), eval.records.len()), (477, 233));
}

#[test]
fn the_general_capability_tasks_load_as_the_reference_reads_them() {
    use emsedit_eval::glue::{DEFAULT_TESTS, GlueTask, load_glue, load_glue_dir};
    let Some(dir) = dir("glue") else {
        return;
    };
    let sets = load_glue_dir(&dir, DEFAULT_TESTS).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sets.len(), 6);
    for set in &sets {
        assert_eq!(set.examples.len(), DEFAULT_TESTS, "{:?}", set.task);
        let classes = set.task.answers().len();
        // Both (or all four) classes occur among the first 100 test records.
        for c in 0..classes {
            assert!(
                set.examples.iter().any(|e| e.label == c),
                "{:?}: no record of class {c}",
                set.task
            );
        }
    }
    // Record 10 of each file (the first after the reference's few-shot records), as the
    // reference's prompt builders write it.
    let first = |task: GlueTask| &sets[GlueTask::ALL.iter().position(|&t| t == task).unwrap()];
    let sst = &first(GlueTask::Sst2).examples[0];
    assert!(sst.prompt.starts_with("Review :") && sst.prompt.ends_with("\nSentiment :"));
    let mmlu = &first(GlueTask::Mmlu).examples[0];
    assert!(mmlu.prompt.starts_with("Question: ") && mmlu.prompt.contains("\n(D) "));
    assert!(mmlu.prompt.ends_with("\nAnswer:"));
    let cola = &first(GlueTask::Cola).examples[0];
    assert!(cola.prompt.ends_with("\nAnswer: "), "{:?}", cola.prompt);
    let nli = &first(GlueTask::Nli).examples[0];
    assert!(
        nli.prompt.contains(" entails the ") && nli.prompt.ends_with(" True or False? Answer:")
    );
    // The files' sizes bound the test count: all of NLI's 2,489 less 10 load, one more does not.
    let nli_file = dir.join("nli.json");
    assert_eq!(
        load_glue(&nli_file, GlueTask::Nli, 2479)
            .unwrap()
            .examples
            .len(),
        2479
    );
    let err = load_glue(&nli_file, GlueTask::Nli, 2480)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nli.json") && err.contains("2479"), "{err}");
}
