//! Every format loads; every kind of bad input is an error naming file, record and field.

use std::path::PathBuf;

use emsedit_eval::DataError;
use emsedit_eval::data::{Dataset, load};
use serde_json::json;

pub fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("emsedit-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn zsre_record(i: usize) -> serde_json::Value {
    json!({
        "subject": format!("Entity{i}"),
        "src": format!("What is the capital of Entity{i}?"),
        "pred": "Orsk",
        "rephrase": format!("Which city is the capital of Entity{i}?"),
        "alt": format!("City{i}"),
        "answers": ["Orsk"],
        "loc": "nq question: who wrote the book of love",
        "loc_ans": "Peter Gabriel",
        "cond": "Orsk >> City"
    })
}

fn counterfact_record(i: usize) -> serde_json::Value {
    json!({
        "case_id": i,
        "requested_rewrite": {
            "prompt": "The mother tongue of {} is",
            "subject": format!("Person{i}"),
            "target_new": {"str": "French", "id": "Q150"},
            "target_true": {"str": "English", "id": "Q1860"}
        },
        "paraphrase_prompts": ["Person speaks. The mother tongue of P is", "P grew up speaking"],
        "neighborhood_prompts": (0..10).map(|k| format!("Neighbour {k} speaks")).collect::<Vec<_>>(),
        "attribute_prompts": [],
        "generation_prompts": []
    })
}

fn write(name: &str, records: Vec<serde_json::Value>) -> PathBuf {
    scratch(name, serde_json::to_string(&records).unwrap().as_bytes())
}

#[test]
fn zsre_records_become_tuples() {
    let path = write("zsre.json", (0..5).map(zsre_record).collect());
    let recs = load(&path, Dataset::Zsre).unwrap().records;
    assert_eq!(recs.len(), 5);
    let r = &recs[3];
    assert_eq!(r.edit.prompt, "What is the capital of Entity3?");
    assert_eq!(r.edit.target, "City3");
    assert_eq!(r.equiv[0].prompt, "Which city is the capital of Entity3?");
    assert_eq!(r.equiv[0].target, "City3");
    assert_eq!(
        r.unrel[0].prompt,
        "nq question: who wrote the book of love?"
    );
    assert_eq!(r.unrel[0].target, "Peter Gabriel");
}

#[test]
fn counterfact_train_and_eval_variants() {
    let path = write("cf.json", (0..3).map(counterfact_record).collect());
    let train = load(&path, Dataset::CounterfactTrain).unwrap().records;
    let eval = load(&path, Dataset::CounterfactEval).unwrap().records;
    assert_eq!((train.len(), eval.len()), (3, 3));
    assert_eq!((train[0].equiv.len(), train[0].unrel.len()), (1, 1));
    assert_eq!((eval[0].equiv.len(), eval[0].unrel.len()), (2, 10));
    let e = &eval[1];
    assert_eq!(e.edit.prompt, "The mother tongue of Person1 is");
    assert_eq!(
        (e.edit.target.as_str(), e.edit.old_target.as_deref()),
        ("French", Some("English"))
    );
    // Neighbourhood tuples keep the true target; their "old" target is the new one.
    assert_eq!(
        (e.unrel[9].target.as_str(), e.unrel[9].old_target.as_deref()),
        ("English", Some("French"))
    );
    assert_eq!(e.equiv[1].prompt, "P grew up speaking");
}

#[test]
fn ripple_train_and_test_formats() {
    let train = json!({"prompt": "The capital of X is", "target_new": "Y", "subject": "X",
        "rephrase_prompt": "X's capital is", "locality_prompt": "The capital of Z is", "locality_ground_truth": "W"});
    let test = json!({"prompt": "The capital of X is", "target_new": "Y", "subject": "X",
        "Subject_Aliasing": [{"prompt": "", "targets": ["Y"]}, {"prompt": "The capital of Xland is", "targets": ["ignored"]}],
        "Relation_Specificity": [{"prompt": "The capital of Z is", "targets": []}, {"prompt": "Z's leader is", "targets": ["  ", "Q"]}],
        "Logical_Generalization": []});
    let bare = json!({"prompt": "P", "target_new": "T"});
    let path = write("ripple.json", vec![train, test, bare]);
    let recs = load(&path, Dataset::Ripple).unwrap().records;
    assert_eq!(recs[0].equiv[0].prompt, "X's capital is");
    assert_eq!(
        (
            recs[0].unrel[0].prompt.as_str(),
            recs[0].unrel[0].target.as_str()
        ),
        ("The capital of Z is", "W")
    );
    assert_eq!(
        (
            recs[1].equiv[0].prompt.as_str(),
            recs[1].equiv[0].target.as_str()
        ),
        ("The capital of Xland is", "Y")
    );
    assert_eq!(
        (
            recs[1].unrel[0].prompt.as_str(),
            recs[1].unrel[0].target.as_str()
        ),
        ("Z's leader is", "Q")
    );
    // No aliasing or specificity items: both fall back to the edit itself.
    assert_eq!(recs[2].equiv[0].prompt, "P");
    assert_eq!(
        (
            recs[2].unrel[0].prompt.as_str(),
            recs[2].unrel[0].target.as_str()
        ),
        ("P", "T")
    );
}

fn expect(err: DataError, record: usize, field: &str, file: &str) {
    let (got_record, got_field) = match &err {
        DataError::Parse { record, field, .. } | DataError::Record { record, field, .. } => {
            (*record, field.clone())
        }
        other => panic!("unexpected error {other}"),
    };
    let msg = err.to_string();
    assert_eq!((got_record, got_field.as_str()), (record, field), "{msg}");
    assert!(
        msg.contains(file) && msg.contains(&format!("record {record}")) && msg.contains(field),
        "{msg}"
    );
}

#[test]
fn truncated_json_names_the_record_and_field() {
    let text = serde_json::to_string(&vec![zsre_record(0), zsre_record(1)]).unwrap();
    let cut = text
        .find("\"rephrase\":\"Which city is the capital of Entity1")
        .unwrap()
        + 20;
    let path = scratch("truncated.json", &text.as_bytes()[..cut]);
    expect(
        load(&path, Dataset::Zsre).unwrap_err(),
        1,
        "rephrase",
        "truncated.json",
    );
}

#[test]
fn missing_field_wrong_type_and_empty_target() {
    let mut r = zsre_record(2);
    r.as_object_mut().unwrap().remove("loc_ans");
    let path = write("missing.json", vec![zsre_record(0), zsre_record(1), r]);
    expect(
        load(&path, Dataset::Zsre).unwrap_err(),
        2,
        "loc_ans",
        "missing.json",
    );

    let mut r = zsre_record(1);
    r["src"] = json!(17);
    let path = write("type.json", vec![zsre_record(0), r]);
    let err = load(&path, Dataset::Zsre).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected a string, found a number"),
        "{err}"
    );
    expect(err, 1, "src", "type.json");

    // A blank target makes the record unusable: skipped and listed, refused in strict mode.
    let mut r = counterfact_record(0);
    r["requested_rewrite"]["target_new"]["str"] = json!("  ");
    let path = write("empty.json", vec![counterfact_record(1), r]);
    let loaded = load(&path, Dataset::CounterfactEval).unwrap();
    assert_eq!(loaded.records.len(), 1);
    assert_eq!(
        (loaded.skipped[0].record, loaded.skipped[0].field.as_str()),
        (1, "requested_rewrite.target_new.str")
    );
    expect(
        loaded.strict().unwrap_err(),
        1,
        "requested_rewrite.target_new.str",
        "empty.json",
    );

    let mut r = counterfact_record(0);
    r["neighborhood_prompts"] = json!([1, 2]);
    let path = write("nested.json", vec![counterfact_record(1), r]);
    expect(
        load(&path, Dataset::CounterfactEval).unwrap_err(),
        1,
        "neighborhood_prompts[0]",
        "nested.json",
    );
}

#[test]
fn hundred_megabyte_line_is_refused() {
    let mut r = zsre_record(0);
    r["src"] = json!("x".repeat(100 << 20));
    let path = write("huge.json", vec![r]);
    let err = load(&path, Dataset::Zsre).unwrap_err();
    assert!(err.to_string().contains("exceeds the limit"), "{err}");
    expect(err, 0, "src", "huge.json");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn non_utf8_byte_names_the_record_and_field() {
    let text =
        serde_json::to_string(&vec![zsre_record(0), zsre_record(1), zsre_record(2)]).unwrap();
    let mut bytes = text.into_bytes();
    let at = String::from_utf8_lossy(&bytes).rfind("Peter").unwrap();
    bytes[at + 1] = 0xFF;
    let path = scratch("latin1.json", &bytes);
    expect(
        load(&path, Dataset::Zsre).unwrap_err(),
        2,
        "loc_ans",
        "latin1.json",
    );
}

#[test]
fn non_array_files_and_non_object_records() {
    let path = scratch("object.json", b"{\"src\": \"x\"}");
    expect(
        load(&path, Dataset::Zsre).unwrap_err(),
        0,
        "(file)",
        "object.json",
    );
    let path = scratch(
        "numbers.json",
        format!("[{}, 5]", zsre_record(0)).as_bytes(),
    );
    expect(
        load(&path, Dataset::Zsre).unwrap_err(),
        1,
        "(record)",
        "numbers.json",
    );
    let err = load(&PathBuf::from("/nonexistent/zsre.json"), Dataset::Zsre).unwrap_err();
    assert!(
        matches!(err, DataError::Io { .. }) && err.to_string().contains("zsre.json"),
        "{err}"
    );
}
