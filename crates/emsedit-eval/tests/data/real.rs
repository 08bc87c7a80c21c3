//! The real data sets under `EMSEDIT_DATA_DIR`: every record of every file loads.
//!
//! Each sub-folder (`zsre/`, `counterfact/`, `ripple_effect/`) is read file by file; a folder
//! or variable that is not there yet skips with a message that names it.

use std::path::PathBuf;

use emsedit_eval::data::{Dataset, EditRecord, load};

fn files(folder: &str) -> Vec<PathBuf> {
    let Some(dir) = std::env::var_os("EMSEDIT_DATA_DIR") else {
        eprintln!("skipping {folder}: EMSEDIT_DATA_DIR is not set");
        return Vec::new();
    };
    let dir = PathBuf::from(dir).join(folder);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipping {folder}: {} does not exist yet", dir.display());
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    out.sort();
    if out.is_empty() {
        eprintln!("skipping {folder}: no .json files in {}", dir.display());
    }
    out
}

fn check(folder: &str, dataset: impl Fn(&str) -> Dataset, tuples: impl Fn(&EditRecord) -> bool) {
    for path in files(folder) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let records = load(&path, dataset(&name)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!records.is_empty(), "{name} has no records");
        let bad = records.iter().position(|r| !tuples(r));
        assert!(
            bad.is_none(),
            "{name}: record {bad:?} has unexpected tuple counts"
        );
        let (eq, un): (usize, usize) = records
            .iter()
            .fold((0, 0), |(e, u), r| (e + r.equiv.len(), u + r.unrel.len()));
        eprintln!(
            "{name}: {} records, {eq} equivalence and {un} locality tuples",
            records.len()
        );
    }
}

#[test]
fn zsre_files_load() {
    check(
        "zsre",
        |_| Dataset::Zsre,
        |r| r.equiv.len() == 1 && r.unrel.len() == 1,
    );
}

#[test]
fn counterfact_files_load() {
    let eval = |name: &str| ["eval", "val", "test"].iter().any(|k| name.contains(k));
    check(
        "counterfact",
        |name| {
            if eval(name) {
                Dataset::CounterfactEval
            } else {
                Dataset::CounterfactTrain
            }
        },
        |r| !r.equiv.is_empty() && !r.unrel.is_empty() && r.edit.old_target.is_some(),
    );
}

#[test]
fn ripple_files_load() {
    check(
        "ripple_effect",
        |_| Dataset::Ripple,
        |r| r.equiv.len() == 1 && r.unrel.len() == 1,
    );
}
