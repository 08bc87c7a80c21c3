//! CounterFact's EasyEdit format, RippleEdits' original format, skipped records and the
//! choice of split files.

use emsedit_eval::DataError;
use emsedit_eval::data::ripple::{Family, split_edit};
use emsedit_eval::data::{Dataset, load, load_splits, ripple_is_eval, skip_summary};
use serde_json::{Value, json};

use crate::files::scratch;

fn write(name: &str, records: &[Value]) -> std::path::PathBuf {
    scratch(name, serde_json::to_string(records).unwrap().as_bytes())
}

fn easyedit(i: usize) -> Value {
    json!({"case_id": i, "prompt": format!("Toko{i} Yasuda, the"), "target_new": "piano",
        "subject": format!("Toko{i} Yasuda"), "ground_truth": "guitar",
        "rephrase_prompt": format!("Toko{i} Yasuda is incredible at"),
        "locality_prompt": "John Lennon performs on the", "locality_ground_truth": "guitar"})
}

#[test]
fn counterfact_easyedit_format_is_counterfact() {
    let path = write("easyedit.json", &[easyedit(0), easyedit(1)]);
    for ds in [Dataset::CounterfactTrain, Dataset::CounterfactEval] {
        let loaded = load(&path, ds).unwrap();
        assert!(loaded.skipped.is_empty());
        let r = &loaded.records[1];
        assert_eq!(r.edit.prompt, "Toko1 Yasuda, the");
        assert_eq!(
            (r.edit.target.as_str(), r.edit.old_target.as_deref()),
            ("piano", Some("guitar"))
        );
        assert_eq!(r.equiv.len(), 1);
        assert_eq!(r.equiv[0].prompt, "Toko1 Yasuda is incredible at");
        assert_eq!(r.equiv[0].old_target.as_deref(), Some("guitar"));
        // The neighbour keeps the true object; its competitor is the new one.
        assert_eq!(r.unrel[0].prompt, "John Lennon performs on the");
        assert_eq!(
            (r.unrel[0].target.as_str(), r.unrel[0].old_target.as_deref()),
            ("guitar", Some("piano"))
        );
    }
    // Lists of prompts are read too (all of them).
    let mut r = easyedit(0);
    r["rephrase_prompt"] = json!(["A is good at", "A plays the"]);
    let recs = load(&write("easyedit-list.json", &[r]), Dataset::CounterfactEval)
        .unwrap()
        .records;
    assert_eq!(recs[0].equiv.len(), 2);
}

#[test]
fn counterfact_in_neither_format_names_both() {
    let path = write("neither.json", &[json!({"question": "q", "answer": "a"})]);
    let err = load(&path, Dataset::CounterfactEval)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("neither.json")
            && err.contains("record 0")
            && err.contains("requested_rewrite")
            && err.contains("EasyEdit")
            && err.contains("target_new"),
        "{err}"
    );
    // A later record missing an EasyEdit field is an error naming it.
    let mut bad = easyedit(1);
    bad.as_object_mut().unwrap().remove("ground_truth");
    let err = load(
        &write("missing-gt.json", &[easyedit(0), bad]),
        Dataset::CounterfactTrain,
    )
    .unwrap_err();
    assert!(
        matches!(&err, DataError::Record { record: 1, field, .. } if field == "ground_truth"),
        "{err}"
    );
}

fn zsre(i: usize, alt: &str) -> Value {
    json!({"subject": "S", "src": format!("What is S{i}?"), "pred": "x",
        "rephrase": format!("What's S{i}?"), "alt": alt, "answers": ["x"],
        "loc": "nq question: who", "loc_ans": "me", "cond": ""})
}

#[test]
fn unusable_zsre_records_are_skipped_and_counted() {
    let records = [zsre(0, "A"), zsre(1, ""), zsre(2, " B"), zsre(3, "  ")];
    let loaded = load(&write("zsre-empty.json", &records), Dataset::Zsre).unwrap();
    assert_eq!(loaded.records.len(), 2);
    // Values are kept as published (the leading space of " B" included).
    assert_eq!(loaded.records[1].edit.target, " B");
    let skipped: Vec<(usize, &str)> = loaded
        .skipped
        .iter()
        .map(|s| (s.record, s.field.as_str()))
        .collect();
    assert_eq!(skipped, [(1, "alt"), (3, "alt")]);
    assert_eq!(
        skip_summary(&loaded.skipped),
        "2 records skipped (2 × `alt`: empty text)"
    );
    assert_eq!(skip_summary(&[]), "");
    let err = loaded.strict().unwrap_err().to_string();
    assert!(
        err.contains("zsre-empty.json: record 1: field `alt`: empty text"),
        "{err}"
    );
}

fn query(prompt: &str, value: &str, aliases: &[&str]) -> Value {
    json!({"prompt": prompt, "answers": [{"value": value, "aliases": aliases}],
        "query_type": "regular", "subject_id": "Q1", "relation": "R", "target_ids": ["Q2"],
        "phrase": null})
}

fn case(tests: Vec<Value>, condition: &str, conditions: Vec<Value>) -> Value {
    json!({"test_queries": tests, "test_condition": condition, "condition_queries": conditions})
}

fn ripple(edit: &str, original: &str) -> Value {
    json!({
        "example_type": "counter_fact",
        "edit": {"prompt": edit, "subject_id": "Q1", "relation": "R", "target_id": "Q9",
            "original_fact": {"prompt": original, "subject_id": "Q1", "relation": "R",
                "target_id": "Q3"}},
        "Relation_Specificity": [case(vec![query("The eye color of Leo is", "blue", &["blue-eyed"])],
            "OR", vec![query("The eye color of Leo is", "blue", &[])])],
        "Logical_Generalization": [case(vec![json!({"prompt": "No answers", "answers": []})], "OR", vec![])],
        "Subject_Aliasing": [case(vec![query("The citizenship of Leonardo is", "Syria", &["SY"])], "AND", vec![])],
        "Compositionality_I": [case(vec![query("The currency of Leo's country is", "Syrian pound", &["SYP", " Syrian pound "])],
            "OR", vec![query("The currency of Syria is", "Syrian pound", &[])])],
        "Compositionality_II": [],
        "Forgetfulness": []
    })
}

#[test]
fn ripple_original_format_keeps_every_family() {
    let r = ripple(
        "The citizenship of Leo is Syria.",
        "The citizenship of Leo is Sweden.",
    );
    let loaded = load(&write("ripple-original.json", &[r]), Dataset::Ripple).unwrap();
    let rec = &loaded.records[0];
    // The shared prefix, cut back to a word ("… is S" → "… is"), and the objects.
    assert_eq!(rec.edit.prompt, "The citizenship of Leo is");
    assert_eq!(rec.edit.target, "Syria");
    // The reference's view: aliasing → generalization, specificity → locality.
    assert_eq!(rec.equiv[0].prompt, "The citizenship of Leonardo is");
    assert_eq!(rec.equiv[0].target, "Syria");
    assert_eq!(
        (rec.unrel[0].prompt.as_str(), rec.unrel[0].target.as_str()),
        ("The eye color of Leo is", "blue")
    );
    let probes = rec.ripple.as_ref().unwrap();
    assert_eq!(probes.old_target, "Sweden");
    let families: Vec<Family> = probes.cases.iter().map(|c| c.family).collect();
    // Logical_Generalization's only query has no answer: that test is left out.
    assert_eq!(
        families,
        [
            Family::CompositionalityI,
            Family::SubjectAliasing,
            Family::RelationSpecificity
        ]
    );
    let comp = &probes.cases[0];
    assert_eq!(comp.queries[0].answers, ["Syrian pound", "SYP"]);
    assert_eq!(comp.conditions[0].prompt, "The currency of Syria is");
    assert!(!comp.all_of && probes.cases[1].all_of);
}

#[test]
fn ripple_edit_sentences_split_at_a_word() {
    let cases = [
        (
            "The name of the spouse of Ron DeSantis is Carol Chu.",
            "The name of the spouse of Ron DeSantis is Casey DeSantis.",
            (
                "The name of the spouse of Ron DeSantis is",
                "Carol Chu",
                "Casey DeSantis",
            ),
        ),
        (
            "X is followed by 298 Baptistina.",
            "X is followed by 2024 United States presidential election.",
            (
                "X is followed by",
                "298 Baptistina",
                "2024 United States presidential election",
            ),
        ),
        ("A is B. Jr..", "A is C.", ("A is", "B. Jr.", "C")),
    ];
    for (edit, original, (p, new, old)) in cases {
        assert_eq!(
            split_edit(edit, original),
            Some((p.to_string(), new.to_string(), old.to_string())),
            "{edit}"
        );
    }
    assert_eq!(split_edit("Same.", "Same."), None);
    assert_eq!(split_edit("Syria.", "Sweden."), None);
    // A record whose sentences cannot be split is skipped, not fatal.
    let loaded = load(
        &write("ripple-same.json", &[ripple("A is B.", "A is B.")]),
        Dataset::Ripple,
    )
    .unwrap();
    assert_eq!((loaded.records.len(), loaded.skipped.len()), (0, 1));
    assert_eq!(loaded.skipped[0].field, "edit.prompt");
}

fn folder(name: &str, files: &[&str], content: &[Value]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("emsedit-splits-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in files {
        std::fs::write(dir.join(f), serde_json::to_string(content).unwrap()).unwrap();
    }
    dir
}

#[test]
fn split_files_are_matched_by_whole_words() {
    let recs = [zsre(0, "A")];
    // `interval` contains `val` but is not the word `val`.
    let dir = folder("words", &["interval_train.json", "zsre-dev.json"], &recs);
    let (train, eval) = load_splits(&dir, Dataset::Zsre).unwrap();
    assert_eq!((train.records.len(), eval.records.len()), (1, 1));
    let dir = folder("interval", &["interval_train.json"], &recs);
    let err = load_splits(&dir, Dataset::Zsre).unwrap_err().to_string();
    assert!(err.contains("no eval file"), "{err}");
    // Two candidates for one split: an error listing both.
    let dir = folder(
        "ambiguous",
        &["a_train.json", "b_test.json", "c_val.json"],
        &recs,
    );
    let err = load_splits(&dir, Dataset::Zsre).unwrap_err().to_string();
    assert!(
        err.contains("more than one eval file")
            && err.contains("b_test.json")
            && err.contains("c_val.json"),
        "{err}"
    );
    // An exact name wins over candidates.
    let dir = folder(
        "exact",
        &["train.json", "eval.json", "old_eval.json"],
        &recs,
    );
    assert!(load_splits(&dir, Dataset::Zsre).is_ok());
}

#[test]
fn one_ripple_file_is_split_by_its_rule() {
    let records: Vec<Value> = (0..30)
        .map(|i| {
            ripple(
                &format!("The citizenship of Leo{i} is Syria."),
                &format!("The citizenship of Leo{i} is Sweden."),
            )
        })
        .collect();
    let dir = folder("ripple", &["gpt-j-popular.json"], &records);
    let (train, eval) = load_splits(&dir, Dataset::Ripple).unwrap();
    assert_eq!(train.records.len() + eval.records.len(), 30);
    assert!(!train.records.is_empty() && !eval.records.is_empty());
    assert!(
        eval.records
            .iter()
            .all(|r| ripple_is_eval(&r.edit.prompt, &r.edit.target))
    );
    assert!(
        train
            .records
            .iter()
            .all(|r| !ripple_is_eval(&r.edit.prompt, &r.edit.target))
    );
    // The rule depends on the record, not its position.
    let mut reversed = records.clone();
    reversed.reverse();
    let dir = folder("ripple-reversed", &["gpt-j-popular.json"], &reversed);
    let (_, eval2) = load_splits(&dir, Dataset::Ripple).unwrap();
    let mut a: Vec<_> = eval.records.iter().map(|r| r.edit.prompt.clone()).collect();
    let mut b: Vec<_> = eval2
        .records
        .iter()
        .map(|r| r.edit.prompt.clone())
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}
